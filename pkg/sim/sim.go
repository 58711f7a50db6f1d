package sim

import (
	"bufio"
	"container/heap"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Options select the traffic. Equal Options give byte-identical output.
type Options struct {
	// Seed selects one company and one history; any value is valid.
	Seed int64
	// Start is the event time of the first moment of the traffic, truncated
	// to the millisecond. Zero means 2026-01-05T00:00:00Z, a Monday, so that
	// a default run starts with a working week.
	Start time.Time
	// Days is the length of the traffic; zero means 7.
	Days int
	// Scale multiplies the number of actors (staff, services, partners,
	// customer population and their traffic); zero means 1. Each pool keeps
	// a small minimum so every role is present at any scale.
	Scale float64
	// Scenarios names attack scenarios to inject (see ScenarioNames); empty
	// means benign traffic only. Order and repetition do not matter.
	Scenarios []string
}

// Label is the ground truth of one injected attack as seen from one entity.
// A scenario yields one Label per entity a detector should flag, so that an
// evaluation can match alerts by (EntityKind, Entity) and time.
type Label struct {
	// Scenario is the scenario name.
	Scenario string
	// EntityKind is "principal", "source_net" or "credential", the entity
	// kinds of the detector.
	EntityKind string
	// Entity is the entity key: a principal, a network such as
	// "198.19.250.0/24", or a credential id.
	Entity string
	// Start and End bound the attack activity [Start, End).
	Start, End time.Time
	// Unit is what the attack's exposure is counted in: "records"
	// (distinct customer records, where its events carry record ids) or
	// "rows" (database reads that name none).
	Unit string
	// Description says what happens, with the numbers, in plain words.
	Description string
}

// Label entity kinds.
const (
	KindPrincipal  = "principal"
	KindSourceNet  = "source_net"
	KindCredential = "credential"
)

// proc is one actor: a person, a service, a customer session slot or an
// attacker. step fills e with the actor's event due at t and returns the
// time of its next event (never when it is done); times returned are >= t.
type proc interface {
	step(e *event, t int64) int64
}

type actor struct {
	p        proc
	scenario string
}

// item is a heap entry: the next event time of one actor. Ties are broken by
// the actor index, which makes the merge of all actors a deterministic total
// order; attack actors come after all benign ones, so they never reorder
// benign events among themselves.
type item struct {
	t   int64
	idx int32
}

type queue []item

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	return q[i].t < q[j].t || (q[i].t == q[j].t && q[i].idx < q[j].idx)
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(item)) }
func (q *queue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// Generator streams the traffic. It holds one small state per actor and a
// heap of next-event times, so its memory does not grow with Days. It is not
// safe for concurrent use.
type Generator struct {
	w        *world
	actors   []actor
	q        queue
	e        event
	scenario string
	labels   []Label

	tsOK  bool
	tsDay int64
	tsPre [11]byte
}

// New builds a generator. It fails on an unknown scenario name (the error
// lists the valid ones) and on a negative or non-finite Days or Scale.
func New(o Options) (*Generator, error) {
	if o.Days < 0 || o.Days > 3660 {
		return nil, fmt.Errorf("sim: Days %d out of range [0, 3660]", o.Days)
	}
	if o.Days == 0 {
		o.Days = 7
	}
	if math.IsNaN(o.Scale) || math.IsInf(o.Scale, 0) || o.Scale < 0 || o.Scale > 1000 {
		return nil, fmt.Errorf("sim: Scale %v out of range (0, 1000]", o.Scale)
	}
	if o.Scale == 0 {
		o.Scale = 1
	}
	if o.Start.IsZero() {
		o.Start = defaultStart
	}
	if y := o.Start.UTC().Year(); y < 1971 || y > 9000 {
		return nil, fmt.Errorf("sim: Start year %d out of range", y)
	}
	want := make(map[string]bool, len(o.Scenarios))
	for _, s := range o.Scenarios {
		if scenarioByName(s) == nil {
			return nil, fmt.Errorf("sim: unknown scenario %q; valid scenarios: %s", s, strings.Join(ScenarioNames(), ", "))
		}
		want[s] = true
	}

	start := o.Start.UnixMilli()
	w := &world{
		seed:  uint64(o.Seed),
		start: start,
		end:   start + int64(o.Days)*msDay,
		days:  o.Days,
		scale: o.Scale,
	}
	g := &Generator{w: w}
	pop := buildPopulation(w, g)
	// Scenarios are built in their canonical order, whatever the order of
	// Options.Scenarios, each from its own random stream.
	for i := range scenarios {
		s := &scenarios[i]
		if want[s.name] {
			b := &builder{w: w, pop: pop, g: g, name: s.name, r: newRand(deriveSeed(w.seed, "scenario:"+s.name, 0))}
			s.build(b)
		}
	}
	heap.Init(&g.q)
	return g, nil
}

var defaultStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// add registers an actor whose first event is at first.
func (g *Generator) add(p proc, first int64, scenario string) {
	if first < g.w.start {
		first = g.w.start
	}
	if first >= g.w.end {
		return
	}
	g.q = append(g.q, item{t: first, idx: int32(len(g.actors))})
	g.actors = append(g.actors, actor{p: p, scenario: scenario})
}

// Next appends the next event's JSON object (no trailing newline) to buf and
// returns it; it returns buf unchanged and false when the traffic is over.
// Events come in non-decreasing ts order. In steady state it allocates
// nothing when buf has room.
func (g *Generator) Next(buf []byte) ([]byte, bool) {
	for len(g.q) > 0 {
		top := &g.q[0]
		t := top.t
		if t >= g.w.end {
			g.q = g.q[:0]
			break
		}
		a := &g.actors[top.idx]
		g.e = event{t: t}
		nt := a.p.step(&g.e, t)
		if nt < t {
			nt = t
		}
		if nt >= g.w.end {
			heap.Pop(&g.q)
		} else {
			g.q[0].t = nt
			heap.Fix(&g.q, 0)
		}
		g.scenario = a.scenario
		return g.appendEvent(buf, &g.e), true
	}
	g.scenario = ""
	return buf, false
}

// Scenario returns the scenario that produced the event last returned by
// Next, or "" for benign traffic. The event itself carries no such mark (a
// detector must not be able to read the answer); evaluations use this to
// count the records an attack exposed before the first alert, and tests to
// separate attack from benign lines.
func (g *Generator) Scenario() string { return g.scenario }

// Labels returns the ground truth of the injected attacks, known as soon as
// the generator is built, in canonical scenario order.
func (g *Generator) Labels() []Label { return slices.Clone(g.labels) }

// ScenarioNames lists the attack scenarios in canonical order:
//
//   - bulk_dump: an agent's credential dumps public.customers at night from
//     a never-seen network.
//   - forged_token_crawl: the 2025 case; tokens forged with the customer
//     signing key, a different account each request, from 2-3 networks.
//   - departed_credential: an engineer who left comes back reading customers.
//   - slow_insider: an analyst reads a little more customer data every day.
//   - service_new_table: an app account starts reading public.payment_cards.
//   - huge_export: one request exports the whole customers table.
//   - scraper_key: a never-seen API key walks customer ids in sequence.
//   - denied_probe: an agent hits many denied requests.
func ScenarioNames() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

// WriteJSONL writes the traffic of o to w, one event per line, through a
// buffer, and returns the number of events written.
func WriteJSONL(w io.Writer, o Options) (events int, err error) {
	g, err := New(o)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	buf := make([]byte, 0, 4096)
	for {
		var ok bool
		buf, ok = g.Next(buf[:0])
		if !ok {
			break
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return events, err
		}
		events++
	}
	if err := bw.Flush(); err != nil {
		return events, err
	}
	return events, nil
}
