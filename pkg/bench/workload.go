package bench

import (
	"bytes"
	"fmt"
	"time"

	"github.com/exfilguard/exfilguard/pkg/sim"
)

// LiveScenarios are the attacks injected into the live part: each is
// caught within minutes of event time by the default config, so every
// one yields alerts to time.
var LiveScenarios = []string{"bulk_dump", "huge_export", "scraper_key"}

// simDays is the length of the simulated period. The live scenarios
// fall at 2/3, 0.7 and 0.8 of it (days 6 and 7 of 9), which leaves six
// days of history: a baseline, and room for the throughput part.
const simDays = 9

// Workload is the traffic of one benchmark: the sim's options, sized so
// that at least Events events come before the live part, and where in
// event time the live part (the attacks) begins and ends.
type Workload struct {
	Sim sim.Options
	// History is the number of events before LiveFrom; the first Events
	// of them are the throughput part.
	History int
	// LiveFrom and LiveUntil bound the live part in event time: from an
	// hour before the first attack to an hour after the last one begins.
	LiveFrom, LiveUntil time.Time
	Labels              []sim.Label
	// liveFrom and liveUntil are LiveFrom and LiveUntil in the sim's ts
	// format, which sorts as the times do.
	liveFrom, liveUntil []byte
}

// PlanWorkload sizes the simulated company (its Scale) so that the
// history before the first attack holds at least events events. The
// count is exact: each candidate scale is generated and counted (the sim
// makes about 3M events/s), the scale growing until it fits.
func PlanWorkload(seed int64, events int) (*Workload, error) {
	// About 365k events a day at Scale 1, six days of history.
	scale := max(float64(events)/(6*365_000)*1.03, 0.005)
	for range 12 {
		w, err := planAt(seed, scale)
		if err != nil {
			return nil, err
		}
		if w.History >= events {
			return w, nil
		}
		scale *= max(1.05, 1.03*float64(events)/float64(max(w.History, 1)))
		if scale > 100 {
			break
		}
	}
	return nil, fmt.Errorf("bench: no simulated company of %d+ events of history found", events)
}

func planAt(seed int64, scale float64) (*Workload, error) {
	o := sim.Options{Seed: seed, Days: simDays, Scale: scale, Scenarios: LiveScenarios}
	g, err := sim.New(o)
	if err != nil {
		return nil, err
	}
	w := &Workload{Sim: o, Labels: g.Labels()}
	if len(w.Labels) == 0 {
		return nil, fmt.Errorf("bench: the sim placed no attack at scale %v", scale)
	}
	first, last := w.Labels[0].Start, w.Labels[0].Start
	for _, l := range w.Labels {
		if l.Start.Before(first) {
			first = l.Start
		}
		if l.Start.After(last) {
			last = l.Start
		}
	}
	w.LiveFrom, w.LiveUntil = first.Add(-time.Hour), last.Add(time.Hour)
	w.liveFrom, w.liveUntil = simTS(w.LiveFrom), simTS(w.LiveUntil)
	var buf []byte
	for {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			break
		}
		if bytes.Compare(lineTS(buf), w.liveFrom) >= 0 {
			break
		}
		w.History++
	}
	return w, nil
}

// simTS formats t as the sim writes ts.
func simTS(t time.Time) []byte { return []byte(t.UTC().Format("2006-01-02T15:04:05.000Z")) }

// Phase says which part of the workload a line belongs to.
type Phase uint8

// Phases, in the order the lines come.
const (
	PhaseThroughput Phase = iota // the first Events lines
	PhaseHistory                 // the rest of the history, before LiveFrom
	PhaseLive                    // LiveFrom to LiveUntil, paced
	PhaseDone
)

// Source streams the workload's lines in event-time order and says the
// phase of each.
type Source struct {
	w      *Workload
	events int
	g      *sim.Generator
	n      int
	buf    []byte
	// held is a line given back with unread, returned again by Next.
	held  bool
	heldP Phase
}

// NewSource starts the workload's traffic from its first event; the
// first events lines are the throughput part.
func (w *Workload) NewSource(events int) (*Source, error) {
	g, err := sim.New(w.Sim)
	if err != nil {
		return nil, err
	}
	return &Source{w: w, events: events, g: g, buf: make([]byte, 0, 4096)}, nil
}

// Next returns the next line (valid until the next call) and its phase;
// PhaseDone once the live part is over.
func (s *Source) Next() ([]byte, Phase) {
	if s.held {
		s.held = false
		return s.buf, s.heldP
	}
	p := s.next()
	s.heldP = p
	return s.buf, p
}

// unread gives the line last returned back, to be returned by the next
// Next.
func (s *Source) unread() { s.held = true }

func (s *Source) next() Phase {
	var ok bool
	if s.buf, ok = s.g.Next(s.buf[:0]); !ok {
		return PhaseDone
	}
	s.n++
	switch ts := lineTS(s.buf); {
	case s.n <= s.events:
		return PhaseThroughput
	case bytes.Compare(ts, s.w.liveFrom) < 0:
		return PhaseHistory
	case bytes.Compare(ts, s.w.liveUntil) < 0:
		return PhaseLive
	}
	return PhaseDone
}

// lineTS is the ts string of a sim line ({"ts":"...", first field).
func lineTS(line []byte) []byte {
	const pre = `{"ts":"`
	if !bytes.HasPrefix(line, []byte(pre)) {
		return nil
	}
	rest := line[len(pre):]
	if i := bytes.IndexByte(rest, '"'); i >= 0 {
		return rest[:i]
	}
	return nil
}

// lineMillis is the ts of a sim line in Unix milliseconds.
func lineMillis(line []byte) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, string(lineTS(line)))
	if err != nil {
		return 0, err
	}
	return t.UnixMilli(), nil
}

// principalOf is a native line's principal, the message key: a shipper
// keys by principal, so one principal's events stay in order on one
// partition.
func principalOf(line []byte) []byte {
	const field = `"principal":"`
	i := bytes.Index(line, []byte(field))
	if i < 0 {
		return nil
	}
	rest := line[i+len(field):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return nil
}
