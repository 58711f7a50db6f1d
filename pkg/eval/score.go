// Package eval measures detection against the simulator's ground truth:
// per attack, whether and how soon it was detected and how many customer
// records it had exposed by then (the product's headline number), and
// the false alerts on everything else. `detector eval` and `detector demo`
// report with it.
package eval

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/sim"
)

// Scorer follows a run: every event (with the scenario that produced it,
// from the simulator, which a detector never sees) and every alert.
// Observe and Alert may be called from different goroutines only if the
// caller serialises them.
type Scorer struct {
	labels  []sim.Label
	attacks map[string]*attack
	dec     *event.Native
	ev      event.Event
	first   int64 // event time of the first event
	last    int64 // event time of the newest event
	// Alerts not matching any attack: false alerts, by severity.
	falseBySev map[string]int
	falseRules map[string]int
	alerts     int
}

type attack struct {
	name  string
	unit  string
	start int64 // earliest label start
	end   int64
	// exposure timeline: cumulative records exposed (distinct record ids,
	// or rows where the source names none) after each attack event.
	times []int64
	cum   []float64
	seen  map[uint64]struct{}
	total float64
	// first alert matching the attack.
	firstAlert *AlertRef
	alerts     int
}

// AlertRef is what the scorer keeps of an alert.
type AlertRef struct {
	Time     time.Time
	Rule     string
	Severity string
	Kind     string
	Key      string
	Summary  string
}

// NewScorer scores against labels.
func NewScorer(labels []sim.Label) *Scorer {
	s := &Scorer{labels: labels, attacks: map[string]*attack{}, falseBySev: map[string]int{}, falseRules: map[string]int{},
		dec: event.NewNative(event.Limits{MaxMessageBytes: 1 << 20, MaxRecordIDs: 1 << 16})}
	for _, l := range labels {
		a := s.attacks[l.Scenario]
		if a == nil {
			a = &attack{name: l.Scenario, unit: l.Unit, start: l.Start.UnixNano(), end: l.End.UnixNano(), seen: map[uint64]struct{}{}}
			s.attacks[l.Scenario] = a
		}
		a.start = min(a.start, l.Start.UnixNano())
		a.end = max(a.end, l.End.UnixNano())
	}
	return s
}

// Observe takes one event line and the scenario that produced it ("" for
// benign traffic).
func (s *Scorer) Observe(line []byte, scenario string) {
	if err := s.dec.Decode(line, &s.ev); err != nil {
		return
	}
	t := s.ev.Time
	if s.first == 0 || t < s.first {
		s.first = t
	}
	s.last = max(s.last, t)
	a := s.attacks[scenario]
	if a == nil {
		return
	}
	if len(s.ev.RecordIDs) > 0 {
		for _, h := range s.ev.RecordIDs {
			if _, ok := a.seen[h]; !ok {
				a.seen[h] = struct{}{}
				a.total++
			}
		}
	} else if s.ev.HasRows {
		a.total += float64(s.ev.Rows)
	}
	a.times = append(a.times, t)
	a.cum = append(a.cum, a.total)
}

// exposedBefore is the attack's exposure from events strictly before t.
func (a *attack) exposedBefore(t int64) float64 {
	i := sort.Search(len(a.times), func(i int) bool { return a.times[i] >= t })
	if i == 0 {
		return 0
	}
	return a.cum[i-1]
}

// wireAlert is the part of an alert line the scorer reads.
type wireAlert struct {
	Rule      string `json:"rule"`
	Severity  string `json:"severity"`
	EventTime string `json:"event_time"`
	Summary   string `json:"summary"`
	Entity    struct {
		Kind string `json:"kind"`
		Key  string `json:"key"`
	} `json:"entity"`
	Incident struct {
		Status string `json:"status"`
	} `json:"incident"`
}

// matchSlack lets an alert count for an attack slightly before its label
// starts (an event's time and the label's are the same event, but a
// window judged at its close may carry the close's time).
const matchSlack = time.Minute

// Alert takes one alert line (JSON). Resolutions are not alerts anyone is
// paged for, and are not counted.
func (s *Scorer) Alert(line []byte) error {
	var w wireAlert
	if err := json.Unmarshal(line, &w); err != nil {
		return fmt.Errorf("score alert: %w", err)
	}
	if w.Incident.Status == "resolved" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, w.EventTime)
	if err != nil {
		return fmt.Errorf("score alert: event_time %q: %w", w.EventTime, err)
	}
	s.alerts++
	ref := &AlertRef{Time: t, Rule: w.Rule, Severity: w.Severity, Kind: w.Entity.Kind, Key: w.Entity.Key, Summary: w.Summary}
	for _, l := range s.labels {
		if l.EntityKind != w.Entity.Kind || l.Entity != w.Entity.Key {
			continue
		}
		if t.Before(l.Start.Add(-matchSlack)) {
			continue
		}
		a := s.attacks[l.Scenario]
		a.alerts++
		if a.firstAlert == nil || t.Before(a.firstAlert.Time) {
			a.firstAlert = ref
		}
		return nil
	}
	s.falseBySev[w.Severity]++
	s.falseRules[w.Rule]++
	return nil
}

// AttackResult is one attack's outcome.
type AttackResult struct {
	Scenario string
	// Unit is what exposure counts: "records" or "rows".
	Unit     string
	Detected bool
	// Delay is from the attack's start to the event time of its first
	// alert.
	Delay time.Duration
	// ExposedBefore is what the attack had exposed when the first alert
	// fired (records, or rows where the source names no record ids), and
	// Exposed all it exposed.
	ExposedBefore, Exposed float64
	First                  *AlertRef
	Alerts                 int
}

// Result is a run's score.
type Result struct {
	Attacks []AttackResult
	// FalseBySeverity counts alerts matching no attack.
	FalseBySeverity map[string]int
	FalseByRule     map[string]int
	Alerts          int
	Days            float64
	Entities        int
}

// Result scores the run; entities is the number of entities the detector
// tracked (for false alerts per 1,000 entities per day).
func (s *Scorer) Result(entities int) Result {
	r := Result{FalseBySeverity: s.falseBySev, FalseByRule: s.falseRules, Alerts: s.alerts, Entities: entities,
		Days: float64(s.last-s.first) / float64(24*time.Hour)}
	for _, a := range s.attacks {
		ar := AttackResult{Scenario: a.name, Unit: a.unit, Exposed: a.total, Alerts: a.alerts}
		if a.firstAlert != nil {
			ar.Detected, ar.First = true, a.firstAlert
			ar.Delay = max(a.firstAlert.Time.Sub(time.Unix(0, a.start)), 0)
			ar.ExposedBefore = a.exposedBefore(a.firstAlert.Time.UnixNano())
		}
		r.Attacks = append(r.Attacks, ar)
	}
	slices.SortFunc(r.Attacks, func(x, y AttackResult) int { return cmpStrings(x.Scenario, y.Scenario) })
	return r
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// FalsePerKEntityDay is the false alerts of the given severities per 1,000
// entities per day.
func (r Result) FalsePerKEntityDay(severities ...string) float64 {
	n := 0
	for _, sev := range severities {
		n += r.FalseBySeverity[sev]
	}
	if r.Entities == 0 || r.Days <= 0 {
		return 0
	}
	return float64(n) / (float64(r.Entities) / 1000) / r.Days
}

// MedianExposedBefore is the median exposure before the first alert over
// the detected attacks other than except.
func (r Result) MedianExposedBefore(except ...string) float64 {
	var xs []float64
	for _, a := range r.Attacks {
		if a.Detected && !slices.Contains(except, a.Scenario) {
			xs = append(xs, a.ExposedBefore)
		}
	}
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func timeString(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
