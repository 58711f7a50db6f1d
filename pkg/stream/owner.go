package stream

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models"
	"github.com/exfilguard/exfilguard/pkg/state"
)

// sweepEvery is the number of checkpoints between sweeps of the store: a
// sweep reads every stored entity's header.
const sweepEvery = 360

// MaxDirty is the most entities one shard may have changed before a
// checkpoint is taken, whatever the interval: every shard waits at the
// barrier while the checkpoint writes, and writing 100,000 entities takes
// about half a second (BenchmarkCheckpoint), where a million took 16-25 s.
const MaxDirty = 100_000

// shard is one engine shard and its goroutine: the only one that touches
// that engine (the "one owner per entity" invariant, without a lock). Each
// shard keeps a share of the entity kinds and sees every event.
type shard struct {
	i      int
	engine *models.Engine
	in     chan shardItem
	kinds  []models.Kind
	// span is the "process batch" span of the batch being processed:
	// the alerts it raises carry it.
	span trace.SpanContext
	// t is the scale-out task the shard is (task.go); nil for a kind
	// shard.
	t *task
	// cap is the shard's share of engine.max_entities (0: none);
	// evictStuck: an eviction between checkpoints found too few clean
	// entities, so none is tried again before the next checkpoint (each
	// is a scan of every entity in memory).
	cap        int
	evictStuck bool
}

// owns reports whether the shard's engine keeps entities of kind k.
func (s *shard) owns(k models.Kind) bool { return slices.Contains(s.kinds, k) }

// shardItem is a merged batch to process, or a checkpoint barrier to
// meet.
type shardItem struct {
	b  *mbatch
	cp *barrier
	// reload is a new config for the shard's engine, answered on
	// reloaded.
	reload   *config.Config
	reloaded chan error
}

// barrier is one checkpoint across the shards. Every shard writes its part
// into the checkpoint when it reaches the barrier (after every batch sent
// before it), reports, and waits for the verdict, so that no shard runs
// ahead while the checkpoint is committed: the open incidents and the
// positions written with it are those of exactly the batches before it.
type barrier struct {
	cp     *state.Checkpoint
	shards int // kind shards: the names of their blobs depend on it
	sweep  bool
	done   chan error       // one per shard: its part is written
	commit chan bool        // one per shard: committed (evict, go on) or not
	report chan shardReport // one per shard after a commit
}

type shardReport struct {
	evicted, resident int
	loaded            uint64
}

// blobName is the key of a shard's engine-global state. A single engine
// keeps the name of a detector without shards, so its state reads as is.
func blobName(i, shards int) string {
	if shards == 1 {
		return "engine"
	}
	return "engine/" + strconv.Itoa(i)
}

// shardWriter routes a shard's engine-global state to its own blob.
type shardWriter struct {
	*state.Checkpoint
	name string
}

func (w shardWriter) PutEngine(data []byte) error { return w.PutBlob(w.name, data) }

// blob is the name of kind shard i's engine state.
func (b *barrier) blob(i int) string { return blobName(i, b.shards) }

// run is the shard's goroutine.
func (s *shard) run(p *Pipeline, wg *sync.WaitGroup) {
	defer wg.Done()
	for it := range s.in {
		if it.b != nil {
			s.process(p, it.b)
			continue
		}
		if it.reload != nil {
			it.reloaded <- s.engine.Reconfigure(it.reload)
			continue
		}
		bar := it.cp
		var err error
		if s.t != nil {
			err = s.t.checkpoint(p, s, bar)
		} else {
			_, err = s.engine.Checkpoint(shardWriter{bar.cp, bar.blob(s.i)})
		}
		bar.done <- err
		if !<-bar.commit {
			continue
		}
		evicted := s.engine.Evict()
		s.evictStuck = false
		if s.t != nil {
			p.taskMetrics(s)
			if bar.sweep {
				// The store's copy of forgotten entities goes, and the
				// changelog's with the next checkpoint's tombstones.
				if hs, err := p.store.SweepSpace(s.t.ns, s.engine.Forgotten); err != nil {
					p.log.Warn("sweep forgotten entities", "partition", s.t.part.String(), "err", err)
				} else {
					s.t.deletes = append(s.t.deletes, hs...)
				}
			}
		} else {
			p.m.resident[s.i].Store(int64(s.engine.Resident()))
		}
		if bar.sweep && s.t == nil && s.i == 0 {
			// Stored entities silent past their TTL and not in memory:
			// every shard would start them afresh; free their space.
			if n, err := p.store.Sweep(s.engine.Forgotten); err != nil {
				p.log.Warn("sweep forgotten entities", "err", err)
			} else if n > 0 {
				p.log.Info("swept forgotten entities", "deleted", n)
			}
		}
		bar.report <- shardReport{evicted: evicted, resident: s.engine.Resident(), loaded: s.engine.StoreStats().Loaded}
	}
}

func (s *shard) process(p *Pipeline, b *mbatch) {
	s.span = b.span.SpanContext()
	if s.t != nil {
		// A task takes its partition's events only.
		routed := s.t.tag != tagInput
		for i, ev := range b.evs[:b.n] {
			if b.part[i] != s.t.part {
				continue
			}
			if routed && !s.t.fresh(b.src[i]) {
				// Routed again after a crash: counted already.
				p.m.duplicates.Add(1)
				continue
			}
			s.engine.Process(ev)
		}
	} else {
		for _, ev := range b.evs[:b.n] {
			s.engine.Process(ev)
		}
	}
	if err := s.engine.Err(); err != nil {
		// The store failed to give an entity back: state is no longer
		// exact. Stop without committing; the restart resumes from the
		// last checkpoint.
		p.fail(fmt.Errorf("state store: %w", err))
	}
	// Over the entity cap with clean entities to spare: make room now
	// rather than at the next checkpoint, so that memory stays near the
	// cap. An eviction scans every entity in memory, so it waits for 5%
	// above the cap (it brings memory down to 90%: at least 15% of the cap
	// in new entities pays for each scan), and after one that could not
	// reach the cap, for the next checkpoint.
	if s.cap > 0 && !s.evictStuck && s.engine.Resident() > s.cap+s.cap/20 {
		if n := s.engine.Evict(); n > 0 {
			p.m.evicted.Add(uint64(n))
		}
		s.evictStuck = s.engine.Resident() > s.cap
	}
	// A checkpoint's pause grows with what it writes: bound it.
	if s.engine.Dirty() >= MaxDirty {
		p.dirtyCkpt.Store(true)
	}

	p.resolve(s)
	if s.t != nil {
		p.taskMetrics(s)
	} else {
		p.m.resident[s.i].Store(int64(s.engine.Resident()))
	}
	if s.t == nil && s.i == 0 {
		// Every shard sees every event: shard 0's clock and counts are
		// the pipeline's.
		st := s.engine.Stats()
		p.m.watermark.Store(s.engine.Watermark())
		p.m.late.Store(int64(st.Late))
		p.m.future.Store(int64(st.Future))
	}
	if s.engine.NeedsCheckpoint() {
		// Over the entity cap with nothing clean to evict: state must be
		// made durable so that idle entities can leave memory.
		p.needCkpt.Store(true)
	}
	p.done(b)
}

// done releases a merged batch once every shard (and the forwarder) is
// done with it: the last one accounts for it and frees it and the source
// batches whose last event it held.
func (p *Pipeline) done(b *mbatch) {
	if b.pending.Add(-1) > 0 {
		return
	}
	n := b.n
	p.latency.Observe(p.now().Sub(b.fetched).Seconds())
	b.span.End()
	for i, src := range b.release {
		p.free(src)
		b.release[i] = nil
	}
	b.release = b.release[:0]
	p.merge.pool <- b
	total := p.m.events.Add(uint64(n))
	if p.processed != nil {
		p.processed(total)
	}
}

// own is the dispatcher: it hands every batch to every shard, keeps the
// positions the shards' state will cover, and runs checkpoints when
// enough events or time have passed, when memory is over the entity cap,
// or on request. It returns when p.in is closed, after the shards.
func (p *Pipeline) own() {
	var wg sync.WaitGroup
	if p.fwd != nil {
		fwdDone := make(chan struct{})
		go func() { defer close(fwdDone); p.fwd.run(p) }()
		defer func() { close(p.fwd.in); <-fwdDone }()
	}
	for _, s := range p.shards {
		wg.Add(1)
		go s.run(p, &wg)
	}
	defer func() {
		for _, s := range p.shards {
			close(s.in)
		}
		wg.Wait()
		for _, s := range p.shards {
			if s.t != nil {
				<-s.t.done
				p.log.Debug("task stopped", "partition", s.t.part.String(), "late", s.engine.Stats().Late, "watermark", s.engine.Watermark())
			}
		}
	}()
	every := p.cfg.State.CheckpointInterval.D()
	tick := time.NewTicker(every)
	defer tick.Stop()
	// retry wakes the merge when a partition it waits for has been
	// waited for long enough (merge.go).
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	merge := func(all bool) {
		if until := p.mergeReady(all); !until.IsZero() {
			retry.Reset(max(until.Sub(p.now()), time.Millisecond))
		}
		p.maybeCheckpoint(p.sinceCkpt >= p.cfg.State.CheckpointEvents)
	}
	p.lastCkpt = p.now()
	for {
		select {
		case it, ok := <-p.in:
			switch {
			case !ok:
				return
			case it.ckpt != nil:
				p.drain()
				it.ckpt <- p.checkpoint()
			case it.tasks != nil:
				pos, err := p.assignTasks(it.assign)
				p.merge.assign(it.assign)
				if p.fwd != nil {
					p.fwd.in <- fwdItem{reset: true}
				}
				it.tasks <- taskReply{pos, err}
			case it.assign != nil:
				p.merge.assign(it.assign)
			case it.idle:
				p.idle(it.part)
				merge(false)
			default:
				p.add(it.b)
				merge(false)
			}
		case r := <-p.reloads:
			p.applyReload(r)
		case <-retry.C:
			merge(false)
		case <-tick.C:
			p.maybeCheckpoint(p.now().Sub(p.lastCkpt) >= every)
		}
	}
}

// flushMerged hands the merged batch being filled to every shard.
func (p *Pipeline) flushMerged() {
	b := p.merge.cur
	if b == nil {
		return
	}
	p.merge.cur = nil
	p.sinceCkpt += b.n
	if p.tasks != nil {
		p.send(b, p.tasks.touched(b))
		return
	}
	p.send(b, p.shards)
}

// send hands a merged batch to the shards that process it; the last one
// done releases it.
func (p *Pipeline) send(b *mbatch, to []*shard) {
	fwd := int32(0)
	if p.fwd != nil {
		fwd = 1
	}
	b.pending.Store(int32(len(to)) + fwd)
	_, b.span = p.tracer.Start(trace.ContextWithSpanContext(context.Background(), b.fetch), "process batch",
		trace.WithAttributes(attribute.Int("exfilguard.events", b.n), attribute.Int("exfilguard.shards", len(to))))
	for _, s := range to {
		s.in <- shardItem{b: b}
	}
	if p.fwd != nil {
		p.fwd.in <- fwdItem{b: b}
	}
}

// maybeCheckpoint checkpoints when due, or when a shard is over its
// entity cap with nothing clean to evict (which the self-alert counts).
func (p *Pipeline) maybeCheckpoint(due bool) {
	pressed := p.needCkpt.Load()
	if pressed {
		p.selfAlert.pressure(p.now())
	}
	if due || pressed || p.dirtyCkpt.Load() {
		p.checkpointLogged()
	}
}

func (p *Pipeline) checkpointLogged() {
	if err := p.checkpoint(); err != nil {
		p.log.Error("checkpoint", "err", err)
	}
}

// checkpoint makes alerts, every shard's engine state and the incidents
// durable with the positions they cover, then publishes the positions to
// the committers; the shards evict idle entities if memory is over the
// cap. Nothing is committed to Kafka unless all of it is durable, and a
// checkpoint that fails stops the pipeline: the engines consider what
// they wrote clean, and must not evict it.
func (p *Pipeline) checkpoint() error {
	if p.ckptFailed != nil {
		// The engines marked what the failed checkpoint wrote as clean;
		// a later one would leave it out and commit positions past it.
		return fmt.Errorf("no checkpoint after a failed one: %w", p.ckptFailed)
	}
	// The positions cover what was merged: hand it all on first.
	p.flushMerged()
	start := p.now()
	p.lastCkpt = start
	p.needCkpt.Store(false)
	p.dirtyCkpt.Store(false)
	_, span := p.tracer.Start(context.Background(), "checkpoint")
	defer span.End()
	n := len(p.shards)
	bar := &barrier{cp: p.store.Begin(), shards: n, sweep: (p.m.checkpoints.Load()+1)%sweepEvery == 0,
		done: make(chan error, n), commit: make(chan bool, n), report: make(chan shardReport, n)}
	for _, s := range p.shards {
		s.in <- shardItem{cp: bar}
	}
	var err error
	for range n {
		if e := <-bar.done; e != nil && err == nil {
			err = e
		}
	}
	// What the positions cover has reached the repartition topics.
	if err == nil {
		err = p.flushForwarder()
	}
	// Every shard is waiting at the barrier: nothing emits alerts now.
	// They must be durable in the outbox before the positions that
	// cover their events are; a failure here fails the checkpoint, so
	// no offset passes an alert nobody will receive.
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.State.ShutdownTimeout.D())
		err = p.deliver.Sync(ctx)
		cancel()
	}
	switch {
	case err != nil:
	case p.tasks != nil:
		// The tasks' markers, now that what they cover is durable.
		err = p.writeMarkers(bar.cp)
	default:
		p.buf = p.builder.AppendState(p.buf[:0])
		err = bar.cp.PutAlerts(p.buf)
		if err == nil {
			err = bar.cp.PutBlob("shards", []byte{byte(n)})
		}
	}
	if err == nil {
		err = bar.cp.Commit(p.positions)
	}
	ok := err == nil
	for range n {
		bar.commit <- ok
	}
	if !ok {
		span.RecordError(err)
		span.SetStatus(codes.Error, "checkpoint failed")
		bar.cp.Abort()
		p.ckptFailed = err
		p.m.checkpointErr.Add(1)
		p.fail(fmt.Errorf("checkpoint: %w", err))
		return fmt.Errorf("checkpoint: %w", err)
	}
	var rep shardReport
	for range n {
		r := <-bar.report
		rep.evicted += r.evicted
		rep.resident += r.resident
		rep.loaded += r.loaded
	}
	p.sinceCkpt = 0
	p.m.evicted.Add(uint64(rep.evicted))
	info := CheckpointInfo{At: start, Duration: p.now().Sub(start), Entities: bar.cp.Entities, Deleted: bar.cp.Deleted, Bytes: bar.cp.Bytes, Evicted: rep.evicted}
	span.SetAttributes(attribute.Int("exfilguard.entities_written", info.Entities), attribute.Int64("exfilguard.bytes", info.Bytes),
		attribute.Int("exfilguard.evicted", info.Evicted))
	p.m.checkpoints.Add(1)
	p.ckptDuration.Observe(info.Duration.Seconds())
	p.m.lastCkptOK.Store(p.now().UnixNano())
	p.m.mu.Lock()
	p.m.lastCkpt = info
	p.m.mu.Unlock()
	p.selfAlert.checkpointed(p, rep, start)

	p.durableMu.Lock()
	p.durable = maps.Clone(p.positions)
	p.durableMu.Unlock()
	select {
	case p.durableC <- struct{}{}:
	default:
	}
	p.log.Debug("checkpoint", "entities", info.Entities, "deleted", info.Deleted, "bytes", info.Bytes, "evicted", rep.evicted, "duration", info.Duration)
	return nil
}
