package stream

import (
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/exfilguard/exfilguard/pkg/state"
)

// mergeRig is a dispatcher's merge without readers or engines: batches
// are queued by hand and the merged batches read off one shard's input.
type mergeRig struct {
	p     *Pipeline
	out   chan shardItem
	clock time.Time
}

func newMergeRig(parts ...state.Partition) *mergeRig {
	r := &mergeRig{out: make(chan shardItem, 64), clock: time.Unix(1000, 0)}
	r.p = &Pipeline{merge: newMerger(8), positions: map[state.Partition]int64{}, pool: newPool(0),
		tracer: noop.NewTracerProvider().Tracer(""), shards: []*shard{{in: r.out}}}
	r.p.now = func() time.Time { return r.clock }
	r.p.merge.assign(parts)
	return r
}

// batch queues events with the given times on part, at offsets from off.
func (r *mergeRig) batch(part state.Partition, off int64, caughtUp bool, times ...int64) {
	b := &batch{part: part, n: len(times), caughtUp: caughtUp, next: off + int64(len(times))}
	for i, t := range times {
		b.events[i].Time = t
		b.offs[i] = off + int64(i)
	}
	r.p.add(b)
}

// merged returns the times handed to the shards so far.
func (r *mergeRig) merged() []int64 {
	var out []int64
	for {
		select {
		case it := <-r.out:
			for _, ev := range it.b.evs[:it.b.n] {
				out = append(out, ev.Time)
			}
		default:
			return out
		}
	}
}

func TestMergeOrdersPartitionsByEventTime(t *testing.T) {
	a, b := state.Partition{Topic: "t", Partition: 0}, state.Partition{Topic: "t", Partition: 1}
	r := newMergeRig(a, b)
	r.batch(a, 100, false, 1, 3, 5, 7)
	// b has sent nothing and is behind: nothing may go before it speaks.
	if until := r.p.mergeReady(false); until.IsZero() || len(r.merged()) != 0 {
		t.Fatalf("merged without the partition that is behind (until %v)", until)
	}
	r.batch(b, 200, false, 2, 4, 6)
	r.p.mergeReady(false)
	// a's 7 waits: b, behind, may still have something older.
	if got := r.merged(); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("merged %v", got)
	}
	// Positions follow what was merged, to the message: a's next event
	// is at offset 103, b's batch is done.
	if r.p.positions[a] != 103 || r.p.positions[b] != 203 {
		t.Errorf("positions %v", r.p.positions)
	}
	// b says it is caught up: a goes on without waiting for it (and then
	// waits for a itself, which is behind and has nothing queued).
	r.p.idle(b)
	r.p.mergeReady(false)
	if got := r.merged(); !slices.Equal(got, []int64{7}) || r.p.positions[a] != 104 {
		t.Errorf("merged %v, positions %v", got, r.p.positions)
	}
}

func TestMergeGoesOnWithoutAStuckPartition(t *testing.T) {
	a, b := state.Partition{Topic: "t", Partition: 0}, state.Partition{Topic: "t", Partition: 1}
	r := newMergeRig(a, b)
	r.batch(a, 0, false, 10, 20)
	until := r.p.mergeReady(false)
	if until.IsZero() || len(r.merged()) != 0 {
		t.Fatal("did not wait for the partition that is behind")
	}
	r.clock = until // the broker of b is away for mergeWait
	r.p.mergeReady(false)
	if got := r.merged(); !slices.Equal(got, []int64{10, 20}) {
		t.Errorf("after mergeWait merged %v, want a's events", got)
	}
	// b comes back with an older event: it is handed on (late for the
	// engine, which counts it), not lost. (a, caught up now, is not
	// waited for.)
	r.p.idle(a)
	r.batch(b, 0, true, 5)
	r.p.mergeReady(false)
	if got := r.merged(); !slices.Equal(got, []int64{5}) {
		t.Errorf("merged %v after b came back", got)
	}
}

func TestMergeDrainTakesEverything(t *testing.T) {
	a, b := state.Partition{Topic: "t", Partition: 0}, state.Partition{Topic: "t", Partition: 1}
	r := newMergeRig(a, b)
	r.batch(a, 0, false, 3, 9)
	r.batch(b, 0, false) // only dead letters: nothing to merge, position moves
	r.batch(b, 0, false, 1)
	r.p.drain()
	if got := r.merged(); !slices.Equal(got, []int64{1, 3, 9}) {
		t.Errorf("drain merged %v", got)
	}
	if len(r.p.merge.parts) != 0 {
		t.Error("drain kept the generation's partitions")
	}
}
