package stream

import (
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/state"
)

// batchSize is the number of events a partition reader hands the engine's
// shards at once: channel operations vanish from the profile, and a batch
// stays in cache.
const batchSize = 1024

// batch is decoded events of one partition and the position after them.
//
// Ownership: a batch is taken from the pool by one partition reader,
// filled, and sent to the dispatcher, which hands it to every engine shard
// at once. The reader touches it only between taking it and sending it;
// the shards only read it, and the last one done (pending reaches zero)
// puts it back. Events are reused in place (Reset by the decoder), so
// nothing is allocated per event.
type batch struct {
	pending atomic.Int32 // shards yet to process the batch
	part    state.Partition
	// next is the offset after the last message the batch accounts for,
	// including messages that were dead-lettered rather than decoded.
	next int64
	n    int
	// fetched is when the reader took the batch for its first message:
	// processing latency runs from it to the engine's verdict.
	fetched time.Time
	// fetch is the span context of the fetch that filled the batch;
	// span is its "process batch" span, started by the dispatcher and
	// ended by the last shard done.
	fetch  trace.SpanContext
	span   trace.Span
	events [batchSize]event.Event
}

// pool is a fixed set of batches cycling between readers and the shards. Its
// size bounds the memory between Kafka and the engine, and makes a slow
// engine slow the fetches down (backpressure) instead of growing a queue.
type pool chan *batch

func newPool(n int) pool {
	p := make(pool, n)
	for range n {
		p <- &batch{}
	}
	return p
}
