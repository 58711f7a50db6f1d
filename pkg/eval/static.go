package eval

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/sim"
)

// static is the baseline a SIEM rule would give: per principal, fixed
// thresholds on rows per clock hour and distinct records per day, the same
// for everyone. Calibrated on benign principals so that it raises as many
// false alerts as the detector did, it shows what per-entity baselines
// buy at equal noise.
type static struct {
	attackers map[string]bool // principals named by a label
	// calibration: closed bucket values of benign principals
	rowVals, recVals []float64
	rows             map[string]*bucket
	recs             map[string]*recBucket
	alerts           [][]byte
}

type bucket struct {
	start int64
	sum   float64
	fired bool
}

type recBucket struct {
	start int64
	seen  map[uint64]struct{}
	fired bool
}

func newStatic(labels []sim.Label) *static {
	s := &static{attackers: map[string]bool{}, rows: map[string]*bucket{}, recs: map[string]*recBucket{}}
	for _, l := range labels {
		if l.EntityKind == sim.KindPrincipal {
			s.attackers[l.Entity] = true
		}
	}
	return s
}

const (
	hourNs = int64(time.Hour)
	dayNs  = 24 * hourNs
)

// calibrate records the buckets of benign principals as they close.
func (s *static) calibrate(principal string, t, rows int64, ids []uint64) {
	if principal == "" || s.attackers[principal] {
		return
	}
	b := s.rows[principal]
	if b == nil || t-b.start >= hourNs {
		if b != nil {
			s.rowVals = append(s.rowVals, b.sum)
		} else {
			b = &bucket{}
			s.rows[principal] = b
		}
		b.start, b.sum = t-t%hourNs, 0
	}
	b.sum += float64(rows)
	r := s.recs[principal]
	if r == nil || t-r.start >= dayNs {
		if r != nil {
			s.recVals = append(s.recVals, float64(len(r.seen)))
		} else {
			r = &recBucket{}
			s.recs[principal] = r
		}
		r.start, r.seen = t-t%dayNs, map[uint64]struct{}{}
	}
	for _, h := range ids {
		r.seen[h] = struct{}{}
	}
}

// thresholds picks, per rule, the value that benign buckets exceed
// falseAlerts/2 times (at least not at all: the largest benign value).
func (s *static) thresholds(falseAlerts int) (rowsPerHour, recordsPerDay float64) {
	for _, b := range s.rows {
		s.rowVals = append(s.rowVals, b.sum)
	}
	for _, r := range s.recs {
		s.recVals = append(s.recVals, float64(len(r.seen)))
	}
	pick := func(vals []float64, k int) float64 {
		if len(vals) == 0 {
			return 0
		}
		slices.Sort(vals)
		i := max(len(vals)-1-k, 0)
		return vals[i]
	}
	k := falseAlerts / 2
	s.rows, s.recs = map[string]*bucket{}, map[string]*recBucket{}
	return pick(s.rowVals, k), pick(s.recVals, falseAlerts-k)
}

// detect runs the static rules over one event: an alert when a bucket's
// running total first exceeds its threshold.
func (s *static) detect(ev *event.Event, rowsThr, recsThr float64) {
	p, t := ev.Principal, ev.Time
	if p == "" {
		return
	}
	b := s.rows[p]
	if b == nil {
		b = &bucket{}
		s.rows[p] = b
	}
	if t-b.start >= hourNs {
		b.start, b.sum, b.fired = t-t%hourNs, 0, false
	}
	b.sum += float64(ev.Rows)
	if !b.fired && b.sum > rowsThr {
		b.fired = true
		s.alert(p, t, "static_rows_per_hour")
	}
	r := s.recs[p]
	if r == nil {
		r = &recBucket{seen: map[uint64]struct{}{}}
		s.recs[p] = r
	}
	if t-r.start >= dayNs {
		r.start, r.seen, r.fired = t-t%dayNs, map[uint64]struct{}{}, false
	}
	for _, h := range ev.RecordIDs {
		r.seen[h] = struct{}{}
	}
	if !r.fired && float64(len(r.seen)) > recsThr {
		r.fired = true
		s.alert(p, t, "static_records_per_day")
	}
}

func (s *static) alert(principal string, t int64, rule string) {
	a := map[string]any{
		"rule": rule, "severity": "high", "event_time": time.Unix(0, t).UTC().Format(time.RFC3339Nano),
		"entity":   map[string]string{"kind": "principal", "key": principal},
		"incident": map[string]string{"status": "opened"},
	}
	line, _ := json.Marshal(a) // plain maps always encode
	s.alerts = append(s.alerts, line)
}
