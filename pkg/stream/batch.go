package stream

import (
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
// Ownership: a batch is taken from the pool by one partition reader, with
// one of its partition's credits, filled, and sent to the dispatcher,
// which merges the partitions' batches by event time into merged batches
// for the engine shards (merge.go). The reader touches it only between
// taking it and sending it; the shards only read its events, and the
// merged batch holding its last event puts it back when every shard is
// done. Events are reused in place (Reset by the decoder), so nothing is
// allocated per event.
type batch struct {
	part state.Partition
	// next is the offset after the last message the batch accounts for,
	// including messages that were dead-lettered rather than decoded.
	next int64
	n    int
	// fetched is when the reader took the batch for its first message:
	// processing latency runs from it to the engine's verdict.
	fetched time.Time
	// fetch is the span context of the fetch that filled the batch.
	fetch trace.SpanContext
	// caughtUp: when the batch was handed on, its reader had read up to
	// the partition's high watermark.
	caughtUp bool
	// credits is the reader's credit channel, to return one to when the
	// batch is released.
	credits chan struct{}
	events  [batchSize]event.Event
	// offs is each event's message offset, for the position of a batch
	// merged in part.
	offs [batchSize]int64
	// src is, for a repartition topic's events, where the input task
	// read each (see routed.go).
	src [batchSize]origin
}

// pool is the set of batches cycling between readers and the shards.
// batchesPerPartition of them per assigned partition bound the memory
// between Kafka and the engine (about 240 KB a batch), and make a slow
// engine slow the fetches down (backpressure) instead of growing a queue.
type pool struct {
	c chan *batch
	// made is how many batches exist; only generation starts grow it.
	made int
}

// maxBatches bounds the pool's channel: batchesPerPartition for every
// partition one member could be assigned.
const maxBatches = 1 << 14

func newPool(n int) *pool {
	p := &pool{c: make(chan *batch, maxBatches)}
	p.grow(n)
	return p
}

// grow makes batches until there are n, for a generation with more
// partitions than any before; it never shrinks.
func (p *pool) grow(n int) {
	for ; p.made < min(n, maxBatches); p.made++ {
		p.c <- &batch{}
	}
}
