package models

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/sim"
)

// memStore is an in-memory EntityStore and CheckpointWriter: a test
// double for the Badger store, which has its own tests.
type memStore struct {
	entities map[uint64][]byte
	last     map[uint64]int64
	engine   []byte
	deleted  int
}

func newMemStore() *memStore {
	return &memStore{entities: map[uint64][]byte{}, last: map[uint64]int64{}}
}

func (m *memStore) LoadEntity(h uint64, dst []byte) ([]byte, bool, error) {
	b, ok := m.entities[h]
	if !ok {
		return dst, false, nil
	}
	return append(dst, b...), true, nil
}

func (m *memStore) PutEntity(h uint64, last int64, data []byte) error {
	m.entities[h] = bytes.Clone(data)
	m.last[h] = last
	return nil
}

func (m *memStore) DeleteEntity(h uint64) error {
	delete(m.entities, h)
	delete(m.last, h)
	m.deleted++
	return nil
}

func (m *memStore) PutEngine(data []byte) error {
	m.engine = bytes.Clone(data)
	return nil
}

// simEvents decodes a sim run into events (record id slices copied, as the
// decoder reuses them).
func simEvents(tb testing.TB, o sim.Options) []event.Event {
	tb.Helper()
	g, err := sim.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	dec := event.NewNative(event.Limits{MaxMessageBytes: 1 << 20, MaxRecordIDs: 4096})
	var evs []event.Event
	var line []byte
	var ev event.Event
	for {
		var ok bool
		if line, ok = g.Next(line[:0]); !ok {
			break
		}
		if err := dec.Decode(line, &ev); err != nil {
			tb.Fatalf("decode %s: %v", line, err)
		}
		c := ev
		c.RecordIDs, c.RecordNums = slices.Clone(ev.RecordIDs), slices.Clone(ev.RecordNums)
		evs = append(evs, c)
	}
	return evs
}

var (
	storeSimOnce sync.Once
	storeSim     []event.Event
)

// storeSimEvents is six days of a small company with every attack
// scenario: every horizon rolls, the weekly one included, and detectors
// of every kind fire.
func storeSimEvents(tb testing.TB) []event.Event {
	storeSimOnce.Do(func() {
		storeSim = simEvents(tb, sim.Options{Seed: 11, Days: 6, Scale: 0.05, Scenarios: sim.ScenarioNames()})
	})
	return storeSim
}

// shortTTL is a config under which entities are forgotten within a sim
// run: horizons up to a day, a TTL of two days.
func shortTTL() *config.Config {
	c := config.Default()
	c.Engine.Horizons = c.Engine.Horizons[:4]
	c.Engine.EntityTTL = config.Duration(50 * time.Hour)
	c.Detectors.Dormant.DormantFor = config.Duration(36 * time.Hour)
	c.Detectors.Dormant.MinHistory = config.Duration(12 * time.Hour)
	return c
}

var (
	defaultSimOnce sync.Once
	defaultSimDets []Detection
	defaultSimEng  *Engine
)

// defaultSimRun is storeSimEvents through a plain engine with the default
// config, shared by the tests that need it.
func defaultSimRun(t *testing.T) ([]Detection, *Engine) {
	defaultSimOnce.Do(func() { defaultSimDets, defaultSimEng = plainRun(t, config.Default(), storeSimEvents(t)) })
	return defaultSimDets, defaultSimEng
}

func plainRun(t *testing.T, cfg *config.Config, evs []event.Event) ([]Detection, *Engine) {
	t.Helper()
	var dets []Detection
	e, err := New(cfg, func(d *Detection) { dets = append(dets, *d) })
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		e.Process(&evs[i])
	}
	return dets, e
}

// durableRun is what the Kafka pipeline does: an engine with a store and a
// tiny in-memory cap, checkpointing at pseudo-random points and whenever
// it must to evict, evicting whenever it is over the cap, and thrown away
// and restored from the store at a few checkpoints, as after a crash.
type durableRun struct {
	dets                                 []Detection
	evicted, loaded, restarts, forgotten uint64
	checkpoints, deleted                 int
	maxBytes                             int
}

func runDurable(t *testing.T, cfg *config.Config, evs []event.Event, seed uint64, restartEvery int) *durableRun {
	t.Helper()
	r := &durableRun{}
	store := newMemStore()
	build := func() *Engine {
		e, err := New(cfg, func(d *Detection) { r.dets = append(r.dets, *d) })
		if err != nil {
			t.Fatal(err)
		}
		if store.engine != nil {
			if err := e.Restore(store.engine); err != nil {
				t.Fatal(err)
			}
		}
		e.SetStore(store)
		return e
	}
	retire := func(e *Engine) {
		s := e.StoreStats()
		r.evicted += s.Evicted
		r.loaded += s.Loaded
		r.forgotten += s.Forgotten
		if s.Corrupt != 0 || s.LoadErrors != 0 {
			t.Fatalf("store stats %+v", s)
		}
	}
	e := build()
	rng := rand.New(rand.NewPCG(seed, seed^0xc0ffee))
	next := rng.IntN(4000)
	nextRestart := restartEvery/2 + rng.IntN(restartEvery)
	for i := range evs {
		e.Process(&evs[i])
		if e.NeedsCheckpoint() || i == next {
			st, err := e.Checkpoint(store)
			if err != nil {
				t.Fatal(err)
			}
			r.checkpoints++
			r.deleted += st.Deleted
			// The store's own garbage collection, at its own pace.
			if rng.IntN(20) == 0 {
				for h, last := range store.last {
					if e.Forgotten(last) {
						store.DeleteEntity(h)
						r.deleted++
					}
				}
			}
			if i == next {
				next = i + 1 + rng.IntN(4000)
				if i >= nextRestart {
					retire(e)
					e = build()
					r.restarts++
					nextRestart = i + restartEvery/2 + rng.IntN(restartEvery)
				}
			}
		}
		e.Evict()
		if e.Resident() > 2*cfg.Engine.MaxEntities+3 {
			t.Fatalf("%d entities in memory, cap %d", e.Resident(), cfg.Engine.MaxEntities)
		}
	}
	retire(e)
	for _, b := range store.entities {
		r.maxBytes = max(r.maxBytes, len(b))
	}
	return r
}

// TestDurableEngineIsExact: eviction, reloading, checkpoints and restarts
// from a checkpoint change nothing the engine computes.
func TestDurableEngineIsExact(t *testing.T) {
	evs := storeSimEvents(t)
	for _, tc := range []struct {
		name string
		cfg  func() *config.Config
	}{
		{"defaults", config.Default},
		{"short ttl", shortTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg()
			var want []Detection
			var plain *Engine
			if tc.name == "defaults" {
				want, plain = defaultSimRun(t)
			} else {
				want, plain = plainRun(t, cfg, evs)
			}
			cfg.Engine.MaxEntities = 40
			got := runDurable(t, cfg, evs, 1, len(evs)/5)
			t.Logf("%d events, %d entities, %d detections; %d checkpoints, %d evicted, %d loaded, %d restarts, %d deleted, %d forgotten, largest entity %d bytes",
				len(evs), plain.Resident(), len(want), got.checkpoints, got.evicted, got.loaded, got.restarts, got.deleted, got.forgotten, got.maxBytes)
			if len(want) < 20 {
				t.Fatalf("only %d detections: the stream does not exercise the detectors", len(want))
			}
			if got.evicted < 10_000 || got.loaded < 10_000 || got.restarts < 3 {
				t.Errorf("evicted %d, loaded %d, restarted %d times: the test does not exercise the store", got.evicted, got.loaded, got.restarts)
			}
			if tc.name == "short ttl" && (plain.StoreStats().Forgotten < 100 || got.forgotten < 10 || got.deleted < 100) {
				t.Errorf("%d forgotten in memory, %d with the store, %d deleted: the test does not exercise the TTL", plain.StoreStats().Forgotten, got.forgotten, got.deleted)
			}
			compareDetections(t, want, got.dets)
		})
	}
}

func compareDetections(t *testing.T, want, got []Detection) {
	t.Helper()
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			t.Fatalf("detection %d differs:\nwant %s\ngot  %s", i, describe(&want[i]), describe(&got[i]))
		}
	}
	if len(want) != len(got) {
		t.Fatalf("%d detections, want %d", len(got), len(want))
	}
}

// TestForgettingIsTheSameInMemoryAndFromStore: an entity silent longer
// than the TTL starts afresh whether it stayed in memory, was evicted to
// the store, or was already deleted from both.
func TestForgettingIsTheSameInMemoryAndFromStore(t *testing.T) {
	cfg := config.Default()
	cfg.Engine.MaxEntities = 1
	ttl := int64(cfg.Engine.EntityTTL)
	alice := func(ts int64) *event.Event {
		e := ev(time.Unix(0, ts), "alice")
		e.Role = "cs_agent"
		return e
	}
	bob := func(ts int64) *event.Event { return ev(time.Unix(0, ts), "bob") }
	t0 := at(0, 9, 0).UnixNano()

	type variant struct {
		name  string
		store bool
		// between runs after alice's history and bob's keep-alive events,
		// before alice returns.
		between func(e *Engine, s *memStore)
	}
	variants := []variant{
		{name: "in memory"},
		{name: "evicted", store: true, between: func(e *Engine, s *memStore) {
			if _, err := e.Checkpoint(s); err != nil {
				t.Fatal(err)
			}
			if e.Evict() == 0 {
				t.Fatal("nothing evicted")
			}
		}},
		{name: "restarted", store: true, between: func(e *Engine, s *memStore) {
			if _, err := e.Checkpoint(s); err != nil {
				t.Fatal(err)
			}
		}},
	}
	type result struct {
		alice     []byte
		stats     Stats
		forgotten uint64
		pop       uint32
		group     uint32
		gone      bool
		detect    int
	}
	run := func(v variant, returnAfter int64) result {
		var dets int
		s := newMemStore()
		e, err := New(cfg, func(*Detection) { dets++ })
		if err != nil {
			t.Fatal(err)
		}
		if v.store {
			e.SetStore(s)
		}
		for d := int64(0); d < 10; d++ {
			for k := int64(0); k < 20; k++ {
				e.Process(alice(t0 + d*dayNs + k*int64(time.Minute)))
			}
		}
		last := t0 + 9*dayNs + 19*int64(time.Minute)
		// Bob keeps event time moving while alice is silent.
		for ts := last + hourNs; ts < last+returnAfter; ts += dayNs {
			e.Process(bob(ts))
		}
		if v.between != nil {
			v.between(e, s)
			if v.name == "restarted" {
				e, _ = New(cfg, func(*Detection) { dets++ })
				if err := e.Restore(s.engine); err != nil {
					t.Fatal(err)
				}
				e.SetStore(s)
			}
		}
		e.Process(bob(last + returnAfter))
		_, inStore := s.entities[keyHash(KindPrincipal, "alice")]
		gone := e.Lookup(KindPrincipal, "alice") == nil && !inStore
		e.Process(alice(last + returnAfter))
		a := e.Lookup(KindPrincipal, "alice")
		return result{alice: e.appendEntity(nil, a), stats: e.Stats(), forgotten: e.StoreStats().Forgotten, pop: e.pop[KindPrincipal].members, group: e.groups["cs_agent"].members, gone: gone, detect: dets}
	}
	for _, returnAfter := range []int64{ttl - hourNs, ttl + hourNs, ttl + 3*dayNs} {
		ref := run(variants[0], returnAfter)
		forgotten := returnAfter > ttl
		if got := ref.forgotten; (got == 2) != forgotten {
			t.Errorf("back after %v: %d entities forgotten, want alice and her credential", time.Duration(returnAfter), got)
		}
		e, _ := New(cfg, nil)
		a, err := e.decodeEntity(keyHash(KindPrincipal, "alice"), ref.alice)
		if err != nil {
			t.Fatal(err)
		}
		if fresh := a.first == a.last; fresh != forgotten {
			t.Errorf("back after %v: history from %v to %v", time.Duration(returnAfter), time.Unix(0, a.first).UTC(), time.Unix(0, a.last).UTC())
		}
		for _, v := range variants[1:] {
			got := run(v, returnAfter)
			if !bytes.Equal(got.alice, ref.alice) || got.stats != ref.stats || got.pop != ref.pop || got.group != ref.group || got.detect != ref.detect {
				t.Errorf("back after %v, %s: differs from in memory\n%+v\n%+v", time.Duration(returnAfter), v.name, got, ref)
			}
		}
	}
	// Deleted by the sweep: the store's garbage collection must not change
	// anything either.
	ref := run(variants[0], ttl+3*dayNs)
	swept := run(variant{name: "swept", store: true, between: func(e *Engine, s *memStore) {
		st, err := e.Checkpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		if st.Deleted != 2 {
			t.Errorf("checkpoint deleted %d entities, want 2 (alice and her credential)", st.Deleted)
		}
	}}, ttl+3*dayNs)
	if !swept.gone {
		t.Error("alice not deleted")
	}
	if !bytes.Equal(swept.alice, ref.alice) || swept.pop != ref.pop || swept.group != ref.group {
		t.Errorf("deleted and back: differs from forgotten in memory\n%+v\n%+v", swept, ref)
	}
}

// TestReloadedEntityKeepsItsGroup: an entity reloaded from the store is
// in its peer group without being counted again, and a later change of
// role moves it out.
func TestReloadedEntityKeepsItsGroup(t *testing.T) {
	cfg := config.Default()
	cfg.Engine.MaxEntities = 1
	s := newMemStore()
	e, _ := New(cfg, nil)
	e.SetStore(s)
	a := ev(at(0, 9, 0), "alice")
	a.Role = "cs_agent"
	e.Process(a)
	b := ev(at(0, 9, 1), "bob")
	b.Role = "cs_agent"
	e.Process(b)
	if _, err := e.Checkpoint(s); err != nil {
		t.Fatal(err)
	}
	e.Evict()
	if e.Lookup(KindPrincipal, "alice") != nil {
		t.Fatal("alice still in memory")
	}
	cs := e.groups["cs_agent"]
	a.Time = at(0, 9, 2).UnixNano()
	e.Process(a)
	al := e.Lookup(KindPrincipal, "alice")
	if al == nil || al.group != cs || cs.members != 2 {
		t.Fatalf("reloaded alice in group %p (cs_agent %p), %d members, want 2", al.group, cs, cs.members)
	}
	a.Role, a.Time = "analyst", at(0, 9, 3).UnixNano()
	e.Process(a)
	if cs.members != 1 || e.groups["analyst"].members != 1 {
		t.Errorf("after the role change: cs_agent %d, analyst %d members, want 1 and 1", cs.members, e.groups["analyst"].members)
	}
}

// TestEvictSelectsLeastRecentlyActive checks selectOldest against a sort.
func TestEvictSelectsLeastRecentlyActive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		c := make([]*Entity, n)
		for i := range c {
			c[i] = &Entity{last: int64(rng.IntN(10)), hash: rng.Uint64()}
		}
		k := 0
		if n > 0 {
			k = rng.IntN(n + 1)
		}
		want := slices.Clone(c)
		slices.SortFunc(want, func(a, b *Entity) int {
			if lessActive(a, b) {
				return -1
			}
			return 1
		})
		selectOldest(c, k)
		got := slices.Clone(c[:k])
		slices.SortFunc(got, func(a, b *Entity) int {
			if lessActive(a, b) {
				return -1
			}
			return 1
		})
		if !slices.Equal(got, want[:k]) {
			t.Fatalf("n=%d k=%d: wrong selection", n, k)
		}
	}
}

// TestProcessWithStoreAllocatesNothing: with a store set and every entity
// in memory, the hot path is what it is without one.
func TestProcessWithStoreAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("warms several hours of state")
	}
	evs := steadyEvents(400_000, 500)
	e, err := New(config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newMemStore()
	e.SetStore(s)
	for i := range evs[:300_000] {
		e.Process(&evs[i])
	}
	// A checkpoint leaves every entity clean: the next events mark them
	// dirty again, which must not allocate either.
	if _, err := e.Checkpoint(s); err != nil {
		t.Fatal(err)
	}
	i := 300_000
	allocs := testing.AllocsPerRun(50_000, func() {
		e.Process(&evs[i])
		i++
	})
	if allocs != 0 {
		t.Errorf("%.4f allocations per event, want 0", allocs)
	}
	if st := e.StoreStats(); st.Loaded != 0 {
		t.Errorf("%d entities loaded, want none", st.Loaded)
	}
}

// TestStateBytesPerEntity reports the encoded size of the entities of a
// sim run (run with -v to see it): most are customers and their home
// networks, seen a few times.
func TestStateBytesPerEntity(t *testing.T) {
	_, e := defaultSimRun(t)
	var sizes [numKinds][]int
	var all []int
	for _, ent := range e.entities {
		n := len(e.appendEntity(nil, ent))
		sizes[ent.kind] = append(sizes[ent.kind], n)
		all = append(all, n)
	}
	report := func(name string, s []int) {
		if len(s) == 0 {
			return
		}
		slices.Sort(s)
		sum := 0
		for _, n := range s {
			sum += n
		}
		t.Logf("%-10s %6d entities: median %5d bytes, mean %5.0f, p99 %5d, max %5d", name, len(s), s[len(s)/2], float64(sum)/float64(len(s)), s[len(s)*99/100], s[len(s)-1])
	}
	for k := range numKinds {
		report(k.String(), sizes[k])
	}
	report("all", all)
	if m := all[len(all)/2]; m > 600 {
		t.Errorf("median entity %d bytes, want a few hundred", m)
	}
	t.Logf("engine state: %d bytes", len(e.appendEngine(nil)))
}
