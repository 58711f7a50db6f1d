package alerts

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"sort"

	"github.com/exfilguard/exfilguard/pkg/models"
)

// incidentKey identifies an incident's subject: one entity, one rule
// family.
type incidentKey struct {
	entity uint64
	family models.Family
}

type incident struct {
	kind     models.Kind
	opened   int64 // event time of the opening detection
	last     int64 // event time of the newest detection, emitted or not
	seq      int
	severity models.Severity
	// exposure is the window exposure last emitted: a detection escalates
	// when its window has grown by the step over it.
	exposure   float64
	detections int

	// Exposure so far: windows of detections that overlap form a segment
	// whose exposure is the largest window's; segments that do not overlap
	// add up. It is a lower bound that never counts a row twice.
	doneRows, doneRecs float64
	segEnd             int64
	segRows, segRecs   float64
	// emitted is the accumulated exposure at the last emission, the base
	// of the next escalation by accumulation.
	emitted float64

	// rules are the rules of the alerts emitted, in first-seen order.
	rules []string

	// lastAlert is the newest alert emitted, the template of the
	// resolution. Nil only for incidents restored from a version 1 state,
	// which resolve silently.
	lastAlert *Alert
}

func (in *incident) add(d *models.Detection) {
	in.detections++
	if d.Time > in.last {
		in.last = d.Time
	}
	if d.WindowStart >= in.segEnd {
		in.doneRows += in.segRows
		in.doneRecs += in.segRecs
		in.segRows, in.segRecs = 0, 0
	}
	in.segEnd = max(in.segEnd, d.WindowEnd)
	in.segRows = max(in.segRows, d.Rows)
	in.segRecs = max(in.segRecs, d.Records)
}

func (in *incident) rows() float64    { return in.doneRows + in.segRows }
func (in *incident) records() float64 { return in.doneRecs + in.segRecs }
func (in *incident) total() float64   { return max(in.rows(), in.records()) }

// incidents turns detections into incident transitions. A detection about
// an entity and rule with an open incident is emitted again only when its
// severity rose, or its window's or the incident's accumulated exposure
// grew by the escalation step; otherwise it is folded into the incident.
// An incident quiet for the quiet period resolves.
type incidents struct {
	open map[incidentKey]*incident
	// quiet is the quiet period; grace adds the engine's allowed lateness
	// before a resolution is decided, because no detection can arrive
	// that late: the decision then does not depend on how events were
	// batched or sharded, and a replay resolves exactly what the live
	// pipeline did.
	quiet, grace int64
	step         float64
	// due is, per entity kind, a lower bound of the watermark at which an
	// incident of that kind resolves, and minDue the least of them, so
	// that checking is free until then.
	due    [256]int64
	minDue int64
}

// quietIncident is an incident that resolved, with its key.
type quietIncident struct {
	key incidentKey
	*incident
}

func newIncidents(quiet, lateness int64, step float64) *incidents {
	s := &incidents{open: make(map[incidentKey]*incident), quiet: quiet, grace: lateness, step: step}
	for i := range s.due {
		s.due[i] = math.MaxInt64
	}
	s.minDue = math.MaxInt64
	return s
}

// transition is what a detection does to its incident.
type transition uint8

const (
	suppressed transition = iota
	opened
	escalated
)

// observe folds d into its incident. An incident whose quiet period
// passed before d is returned as stale, to be resolved before d opens a
// new one.
func (s *incidents) observe(d *models.Detection) (in *incident, tr transition, stale *incident) {
	k := incidentKey{d.Hash, d.Rule.Family()}
	in, ok := s.open[k]
	if ok && d.Time-in.last > s.quiet {
		stale, ok = in, false
	}
	if !ok {
		in = &incident{kind: d.Kind, opened: d.Time, last: d.Time, severity: d.Severity, exposure: d.Exposure}
		in.add(d)
		in.emitted = in.total()
		s.open[k] = in
		s.due[d.Kind] = min(s.due[d.Kind], in.last+s.quiet+s.grace)
		s.minDue = min(s.minDue, s.due[d.Kind])
		return in, opened, stale
	}
	in.add(d)
	grown := (d.Exposure > 0 && d.Exposure >= in.exposure*s.step) || (in.total() > 0 && in.total() >= in.emitted*s.step)
	if d.Severity > in.severity || grown {
		in.seq++
		in.severity = max(in.severity, d.Severity)
		in.exposure = max(in.exposure, d.Exposure)
		in.emitted = in.total()
		return in, escalated, stale
	}
	return in, suppressed, stale
}

// expired removes and returns, in key order, the incidents of kinds owns
// accepts (nil: all) that are quiet as of watermark.
func (s *incidents) expired(watermark int64, owns func(models.Kind) bool) []quietIncident {
	if watermark < s.minDue {
		return nil
	}
	var out []quietIncident
	for kind := range s.due {
		if s.due[kind] > watermark || (owns != nil && !owns(models.Kind(kind))) {
			continue
		}
		next := int64(math.MaxInt64)
		for k, in := range s.open {
			if in.kind != models.Kind(kind) {
				continue
			}
			if watermark-in.last > s.quiet+s.grace {
				out = append(out, quietIncident{k, in})
			} else {
				next = min(next, in.last+s.quiet+s.grace)
			}
		}
		s.due[kind] = next
	}
	s.minDue = math.MaxInt64
	for _, d := range s.due {
		s.minDue = min(s.minDue, d)
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i].key, out[j].key) })
	for _, q := range out {
		delete(s.open, q.key)
	}
	return out
}

// resetDue recomputes the due times after a restore.
func (s *incidents) resetDue() {
	for i := range s.due {
		s.due[i] = math.MaxInt64
	}
	s.minDue = math.MaxInt64
	for _, in := range s.open {
		d := in.last + s.quiet + s.grace
		s.due[in.kind] = min(s.due[in.kind], d)
		s.minDue = min(s.minDue, d)
	}
}

func keyLess(a, b incidentKey) bool {
	if a.entity != b.entity {
		return a.entity < b.entity
	}
	return a.family < b.family
}

// ids derives the incident id and the alert id from what they are about,
// so a replay after a crash re-emits the same ids and sinks can drop
// duplicates.
func ids(hash uint64, family models.Family, opened int64, seq int) (incidentID, alertID string) {
	var b [8 + 1 + 8 + 8]byte
	binary.BigEndian.PutUint64(b[0:], hash)
	b[8] = byte(family)
	binary.BigEndian.PutUint64(b[9:], uint64(opened))
	sum := sha256.Sum256(b[:17])
	incidentID = hex.EncodeToString(sum[:12])
	binary.BigEndian.PutUint64(b[17:], uint64(seq))
	sum = sha256.Sum256(b[:])
	alertID = hex.EncodeToString(sum[:12])
	return incidentID, alertID
}
