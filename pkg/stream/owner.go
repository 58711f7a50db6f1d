package stream

import (
	"fmt"
	"maps"
	"time"
)

// sweepEvery is the number of checkpoints between sweeps of the store: a
// sweep reads every stored entity's header.
const sweepEvery = 360

// own is the engine's owner goroutine: the only one that touches the
// engine, the alert builder and their state (the "one owner per entity"
// invariant, without a lock). It processes batches in the order they
// arrive, returns them to the pool, and checkpoints when enough events or
// time have passed, when memory is over the entity cap, or on request.
func (p *Pipeline) own() {
	every := p.cfg.State.CheckpointInterval.D()
	tick := time.NewTicker(every)
	defer tick.Stop()
	p.lastCkpt = p.now()
	for {
		select {
		case it, ok := <-p.in:
			if !ok {
				return
			}
			if it.ckpt != nil {
				it.ckpt <- p.checkpoint()
				continue
			}
			p.process(it.b)
		case <-tick.C:
			if p.now().Sub(p.lastCkpt) >= every {
				p.checkpointLogged()
			}
		}
	}
}

func (p *Pipeline) process(b *batch) {
	for i := range b.n {
		p.engine.Process(&b.events[i])
	}
	total := p.m.events.Add(uint64(b.n))
	p.sinceCkpt += b.n
	p.positions[b.part] = b.next
	p.pool <- b
	if p.writeErr != nil && p.fatal == nil {
		// Alerts cannot be written: going on would commit offsets of
		// events whose alerts nobody received.
		p.fatal = fmt.Errorf("write alerts: %w", p.writeErr)
		p.log.Error("alert output failed; stopping without committing", "err", p.writeErr)
		p.stop()
	}
	if err := p.engine.Err(); err != nil && p.fatal == nil {
		// The store failed to give an entity back: state is no longer
		// exact. Stop without committing; the restart resumes from the
		// last checkpoint.
		p.fatal = err
		p.log.Error("state store failed; stopping to resume from the last checkpoint", "err", err)
		p.stop()
	}
	if p.processed != nil {
		p.processed(total)
	}
	switch {
	case p.sinceCkpt >= p.cfg.State.CheckpointEvents:
		p.checkpointLogged()
	case p.engine.NeedsCheckpoint():
		// Over the entity cap with nothing clean to evict: make state
		// durable so that idle entities can leave memory.
		p.selfAlert.pressure(p, p.now())
		p.checkpointLogged()
	}
}

func (p *Pipeline) checkpointLogged() {
	if err := p.checkpoint(); err != nil {
		p.log.Error("checkpoint", "err", err)
	}
}

// checkpoint makes alerts, engine state and incidents durable with the
// positions they cover, then publishes the positions to the committers
// and evicts idle entities if memory is over the cap. Nothing is
// committed to Kafka unless all of it is durable.
func (p *Pipeline) checkpoint() error {
	start := p.now()
	p.lastCkpt = start
	if p.writeErr == nil {
		p.writeErr = p.out.Flush()
	}
	if p.writeErr != nil {
		p.m.checkpointErr.Add(1)
		return fmt.Errorf("flush alerts before checkpoint: %w", p.writeErr)
	}
	cp := p.store.Begin()
	_, err := p.engine.Checkpoint(cp) // cp counts what it was given
	if err == nil {
		p.buf = p.builder.AppendState(p.buf[:0])
		err = cp.PutAlerts(p.buf)
	}
	if err == nil {
		err = cp.Commit(p.positions)
	}
	if err != nil {
		cp.Abort()
		p.m.checkpointErr.Add(1)
		return fmt.Errorf("checkpoint: %w", err)
	}
	p.sinceCkpt = 0
	evicted := p.engine.Evict()
	p.m.evicted.Add(uint64(evicted))
	info := CheckpointInfo{At: start, Duration: p.now().Sub(start), Entities: cp.Entities, Deleted: cp.Deleted, Bytes: cp.Bytes, Evicted: evicted}
	p.m.checkpoints.Add(1)
	p.m.mu.Lock()
	p.m.lastCkpt = info
	p.m.mu.Unlock()
	p.selfAlert.checkpointed(p, evicted, start)
	if p.m.checkpoints.Load()%sweepEvery == 0 {
		// Stored entities silent past their TTL, and not in memory: the
		// engine would start them afresh anyway; free their space.
		if n, err := p.store.Sweep(p.engine.Forgotten); err != nil {
			p.log.Warn("sweep forgotten entities", "err", err)
		} else if n > 0 {
			p.log.Info("swept forgotten entities", "deleted", n)
		}
	}

	p.durableMu.Lock()
	p.durable = maps.Clone(p.positions)
	p.durableMu.Unlock()
	select {
	case p.durableC <- struct{}{}:
	default:
	}
	p.log.Debug("checkpoint", "entities", info.Entities, "deleted", info.Deleted, "bytes", info.Bytes, "evicted", evicted, "duration", info.Duration)
	return nil
}
