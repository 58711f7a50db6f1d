package stream

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/exfilguard/exfilguard/pkg/event"
)

// The forwarder produces the input's events to the repartition topics, for
// the kinds routed through them (docs/scaling.md). It is one goroutine fed
// the merged batches in the order the dispatcher emits them, so a
// repartition partition receives its events in the merge's event-time
// order, whichever input partitions they came from, and a repartition task
// sees none late even while the input is caught up from far behind. (The
// merge never goes on without a partition that is behind when there are
// repartition topics: see merger.strict.)
//
// A checkpoint waits for the forwarder to have produced, and the brokers to
// have acknowledged, every batch before it: a committed input position
// never passes an event a repartition task did not get. A crash between
// the two produces the events again: at least once for routed kinds.

// fwdItem is a merged batch to forward, a checkpoint's flush request, or
// a new generation (whose readers start at a message boundary: the event
// indexes of origins start again).
type fwdItem struct {
	b     *mbatch
	flush chan error
	reset bool
}

type forwarder struct {
	ts *taskSet
	in chan fwdItem
	// last is, per input partition, the origin of the last event
	// forwarded: the next event of the same message is its index + 1.
	last map[int32]origin
	err  error // the first failure; every later flush returns it
	// Reused buffers: each record is the entity hash (the key), the tag
	// of its topic, then the event in the internal format.
	msgs []kafka.Message
	enc  []byte
	ends []int
}

func newForwarder(ts *taskSet) *forwarder {
	return &forwarder{ts: ts, in: make(chan fwdItem, 8), last: map[int32]origin{}}
}

// run is the forwarder's goroutine; it returns when in is closed.
func (f *forwarder) run(p *Pipeline) {
	for it := range f.in {
		if it.flush != nil {
			it.flush <- f.err
			continue
		}
		if it.reset {
			clear(f.last)
			continue
		}
		if f.err == nil {
			if err := f.forward(it.b, p.m); err != nil {
				f.err = err
				p.fail(err)
			}
		}
		p.done(it.b)
	}
}

func (f *forwarder) forward(b *mbatch, m *metrics) error {
	ts := f.ts
	input := ts.topics[tagInput]
	f.enc, f.ends, f.msgs = f.enc[:0], f.ends[:0], f.msgs[:0]
	for j, ev := range b.evs[:b.n] {
		if b.part[j].Topic != input {
			continue
		}
		o := origin{part: int32(b.part[j].Partition), off: b.off[j]}
		if last, ok := f.last[o.part]; ok && last.off == o.off {
			o.k = last.k + 1
		}
		f.last[o.part] = o
		for i, kind := range ts.routes {
			h, ok := ts.router.Hash(kind, ev)
			if !ok {
				continue
			}
			f.enc = binary.BigEndian.AppendUint64(f.enc, h)
			f.enc = append(f.enc, byte(i+1))
			f.enc = appendOrigin(f.enc, o)
			f.enc = event.AppendInternal(f.enc, ev)
			f.ends = append(f.ends, len(f.enc))
		}
	}
	start := 0
	for _, end := range f.ends {
		rec := f.enc[start:end]
		f.msgs = append(f.msgs, kafka.Message{Topic: ts.topics[rec[8]], Key: rec[:8], Value: rec[9:]})
		start = end
	}
	if len(f.msgs) == 0 {
		return nil
	}
	err := ts.out.WriteMessages(context.Background(), f.msgs...)
	clear(f.msgs) // no references to enc past the call
	if err != nil {
		return fmt.Errorf("produce to repartition topics: %w", err)
	}
	m.repartitioned.Add(uint64(len(f.ends)))
	return nil
}

// flushForwarder waits until everything handed to the forwarder is
// acknowledged by the brokers.
func (p *Pipeline) flushForwarder() error {
	if p.fwd == nil {
		return nil
	}
	done := make(chan error, 1)
	p.fwd.in <- fwdItem{flush: done}
	return <-done
}
