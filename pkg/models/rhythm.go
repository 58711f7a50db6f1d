package models

import "time"

const (
	slotsPerWeek = 7 * 24
	hourNs       = int64(time.Hour)
	dayNs        = 24 * hourNs
	weekNs       = 7 * dayNs
)

// slotOf returns the hour-of-week slot of t, Monday 00:00 UTC being slot 0
// (the Unix epoch fell on a Thursday, 72 hours into its week).
func slotOf(t int64) int {
	h := t / hourNs
	if t < 0 && t%hourNs != 0 {
		h--
	}
	s := (h + 72) % slotsPerWeek
	if s < 0 {
		s += slotsPerWeek
	}
	return int(s)
}

// rhythm is an entity's hour-of-week profile: in how many weeks it was
// active in each slot, and how its hourly level there compares to its
// overall hourly level. Slots are sparse, so both are shrunk towards the
// overall level by credibility when used. 336 bytes, allocated at the
// entity's first closed active hour.
type rhythm struct {
	active [slotsPerWeek]uint8
	// level is the slot's offset from the overall hourly log-level, in
	// sixteenths of a natural-log unit.
	level [slotsPerWeek]int8
}

// levelScale is the fixed-point scale of rhythm.level.
const levelScale = 16

// observe records a closed active hour in slot s whose log-level differs
// from the overall one by diff.
func (r *rhythm) observe(s int, diff float64) {
	if r.active[s] == 255 {
		// Halve everything rather than saturate, so old weeks fade and
		// shares stay comparable across slots.
		for i := range r.active {
			r.active[i] /= 2
		}
	}
	r.active[s]++
	a := 1 / float64(r.active[s])
	if a < 0.125 {
		a = 0.125
	}
	cur := float64(r.level[s]) / levelScale
	nv := (cur + a*(diff-cur)) * levelScale
	if nv > 127 {
		nv = 127
	} else if nv < -127 {
		nv = -127
	}
	r.level[s] = int8(nv)
}

// offset is the credibility-weighted log-level offset of slot s.
func (r *rhythm) offset(s int, credibility float64) float64 {
	n := float64(r.active[s])
	return n / (n + credibility) * float64(r.level[s]) / levelScale
}

// maxNear is the most weeks active in slot s or its neighbours: work that
// starts at 08:55 should not make 08:00 look like off-hours.
func (r *rhythm) maxNear(s int) uint8 {
	m := r.active[s]
	for _, o := range [2]int{(s + slotsPerWeek - 1) % slotsPerWeek, (s + 1) % slotsPerWeek} {
		if r.active[o] > m {
			m = r.active[o]
		}
	}
	return m
}
