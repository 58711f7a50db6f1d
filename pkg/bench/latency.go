package bench

import (
	"cmp"
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/exfilguard/exfilguard/pkg/alerts"
)

// Latency is produce-to-alert latency at a fixed offered rate.
//
// Method. The live part is produced in ticks: every tick the producer
// hands kafka-go the events due by then at the offered rate and waits for
// their acknowledgement; the wall time just before that hand-over is the
// produce time of every event of the tick, and the tick's newest event
// time is noted with it. The sink is an in-process alerts.Sink (the
// pipeline's outbox worker calls it), which notes the wall time each
// alert arrives. An alert's event_time is the event time of the event
// that triggered it (milliseconds), and the sim produces in event-time
// order, so the triggering event is at or after the first produced event
// whose event time is >= event_time: the alert's produce time is that
// event's tick's. Where several events share a millisecond, or a
// detection names a bucket boundary before its event, this picks an
// event produced no later than the true trigger, so the latency measured
// is an upper bound, never flattering. Resolutions (raised by event time
// passing a quiet period, not by an event) and alerts whose event_time
// falls outside the live part are not measured; they are counted.
type Latency struct {
	Topic        string  `json:"topic"`
	Partitions   int     `json:"partitions"`
	OfferedRate  float64 `json:"offered_events_per_s"`
	AchievedRate float64 `json:"achieved_events_per_s"`
	Events       int64   `json:"events"`
	Seconds      float64 `json:"seconds"`
	// Truncated is set when the live part was cut by --live.
	Truncated bool `json:"truncated"`
	// Late is the live events the engine kept out of windows: event
	// time runs thousands of times faster than the wall clock here, so a
	// partition read a few milliseconds behind the others is minutes of
	// event time behind, past engine.allowed_lateness (1m).
	Late uint64 `json:"late_events"`
	// Alerts measured, and alerts that arrived during the live part but
	// could not be measured (resolutions, event_time outside it).
	Alerts   int `json:"alerts"`
	Excluded int `json:"excluded"`
	// Attacks is the live scenarios; Caught those with at least one
	// measured alert on one of their entities.
	Attacks []string `json:"attacks"`
	Caught  []string `json:"caught"`
	P50Ms   float64  `json:"p50_ms"`
	P99Ms   float64  `json:"p99_ms"`
	MaxMs   float64  `json:"max_ms"`
	// ByRule is the number of measured alerts per rule.
	ByRule map[string]int `json:"by_rule"`
	// Slowest are the five slowest alerts measured.
	Slowest []Slow `json:"slowest"`
}

// Slow is one alert's latency, for the slowest.
type Slow struct {
	Rule      string  `json:"rule"`
	Status    string  `json:"status"`
	Entity    string  `json:"entity"`
	EventTime string  `json:"event_time"`
	Ms        float64 `json:"ms"`
}

// tick is one hand-over of the paced producer.
type tick struct {
	lastMs int64     // newest event time in the tick, Unix ms
	at     time.Time // when the tick was handed to the producer
}

// produceIndex maps an event time to the produce time of the first event
// at or after it.
type produceIndex struct {
	firstMs int64
	ticks   []tick
}

// at returns the produce time for an alert's event time, false when it
// is outside the live part.
func (x *produceIndex) at(eventMs int64) (time.Time, bool) {
	if len(x.ticks) == 0 || eventMs < x.firstMs {
		return time.Time{}, false
	}
	i := sort.Search(len(x.ticks), func(i int) bool { return x.ticks[i].lastMs >= eventMs })
	if i == len(x.ticks) {
		return time.Time{}, false
	}
	return x.ticks[i].at, true
}

// arrival is an alert as the sink saw it.
type arrival struct {
	eventTime, status, rule, kind, key string
	at                                 time.Time
}

// alertSink is the pipeline's only sink: it notes each alert's arrival
// while recording is on, and counts the rest.
type alertSink struct {
	mu        sync.Mutex
	recording bool
	arrivals  []arrival
	total     int
}

func (s *alertSink) Notify(_ context.Context, as ...*alerts.Alert) (bool, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total += len(as)
	if !s.recording {
		return false, nil
	}
	for _, a := range as {
		s.arrivals = append(s.arrivals, arrival{eventTime: a.EventTime, status: a.Incident.Status, rule: a.Rule, kind: a.Entity.Kind, key: a.Entity.Key, at: now})
	}
	return false, nil
}

func (s *alertSink) record(on bool) {
	s.mu.Lock()
	s.recording = on
	s.mu.Unlock()
}

func (s *alertSink) taken() []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.arrivals)
}

func (s *alertSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// measure computes the latency of every measurable arrival; w gives the
// attacks' entities.
func (l *Latency) measure(x *produceIndex, as []arrival, w *Workload) {
	l.ByRule = map[string]int{}
	var lat []time.Duration
	var slow []Slow
	caught := map[string]bool{}
	for _, a := range as {
		if a.status == alerts.StatusResolved {
			l.Excluded++
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, a.eventTime)
		if err != nil {
			l.Excluded++
			continue
		}
		at, ok := x.at(t.UnixMilli())
		if !ok {
			l.Excluded++
			continue
		}
		lat = append(lat, a.at.Sub(at))
		slow = append(slow, Slow{Rule: a.rule, Status: a.status, Entity: a.kind + "/" + a.key, EventTime: a.eventTime, Ms: ms(a.at.Sub(at))})
		l.ByRule[a.rule]++
		for _, lb := range w.Labels {
			if lb.EntityKind == a.kind && lb.Entity == a.key {
				caught[lb.Scenario] = true
			}
		}
	}
	l.Alerts = len(lat)
	l.Attacks = slices.Clone(w.Sim.Scenarios)
	for _, s := range l.Attacks {
		if caught[s] {
			l.Caught = append(l.Caught, s)
		}
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	slices.SortStableFunc(slow, func(a, b Slow) int { return cmp.Compare(b.Ms, a.Ms) })
	l.Slowest = slow[:min(len(slow), 5)]
	l.P50Ms = ms(percentile(lat, 0.50))
	l.P99Ms = ms(percentile(lat, 0.99))
	l.MaxMs = ms(lat[len(lat)-1])
}

// percentile is the nearest-rank percentile of sorted d.
func percentile(d []time.Duration, p float64) time.Duration {
	i := int(float64(len(d))*p+0.999999) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
