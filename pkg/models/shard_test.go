package models

import (
	"slices"
	"testing"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// TestShardsDetectExactlyWhatOneEngineDoes: engines sharded by kind, each
// fed every event, together raise exactly the detections of one engine,
// for every shard count up to the enabled kinds.
func TestShardsDetectExactlyWhatOneEngineDoes(t *testing.T) {
	evs := storeSimEvents(t)
	want, _ := defaultSimRun(t)
	if len(want) == 0 {
		t.Fatal("the sim raises no detection; the comparison would be empty")
	}
	type indexed struct {
		i int
		d Detection
	}
	order := func(ds []indexed) []Detection {
		slices.SortStableFunc(ds, func(a, b indexed) int {
			if a.i != b.i {
				return a.i - b.i
			}
			if a.d.Kind != b.d.Kind {
				return int(a.d.Kind) - int(b.d.Kind)
			}
			return int(a.d.Rule) - int(b.d.Rule)
		})
		out := make([]Detection, len(ds))
		for k := range ds {
			out[k] = ds[k].d
		}
		return out
	}
	// The reference, in the same canonical order.
	var ref []indexed
	{
		cur := 0
		e, err := New(config.Default(), func(d *Detection) { ref = append(ref, indexed{cur, *d}) })
		if err != nil {
			t.Fatal(err)
		}
		for i := range evs {
			cur = i
			e.Process(&evs[i])
		}
	}
	wantOrdered := order(ref)
	if len(wantOrdered) != len(want) {
		t.Fatalf("reference run gave %d detections, the shared run %d", len(wantOrdered), len(want))
	}
	for _, shards := range []int{2, 3} {
		var got []indexed
		cur := 0
		var engines []*Engine
		for s := range shards {
			e, err := NewShard(config.Default(), func(d *Detection) { got = append(got, indexed{cur, *d}) }, s, shards)
			if err != nil {
				t.Fatal(err)
			}
			engines = append(engines, e)
		}
		for i := range evs {
			cur = i
			for _, e := range engines {
				e.Process(&evs[i])
			}
		}
		compareDetections(t, wantOrdered, order(got))
		total := 0
		for _, e := range engines {
			total += e.Entities()
		}
		if _, one := defaultSimRun(t); total != one.Entities() {
			t.Errorf("%d shards hold %d entities, one engine %d", shards, total, one.Entities())
		}
	}
}
