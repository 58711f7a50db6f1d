package models

import (
	"errors"
	"fmt"
)

// Durability and bounded memory.
//
// A checkpoint writes every entity changed since the previous one and the
// engine-global state to a CheckpointWriter; a store (EntityStore) gives
// them back. With a store set, an event whose entity is not in memory
// loads it, and Evict may drop entities that are clean (unchanged since
// they were written) when more than engine.max_entities are held. What the
// engine computes is exactly what it would compute with every entity in
// memory: eviction, reloading, checkpoints and restarts at a checkpoint
// change nothing but where state lives.
//
// Forgetting is in event time: an entity whose newest event is more than
// engine.entity_ttl before the event at hand starts afresh, whether it was
// in memory, in the store or already deleted. Deleting such entities
// (Checkpoint's sweep, the store's own garbage collection) only frees
// space.

// EntityStore is where the engine finds entities it evicted or an earlier
// run checkpointed.
type EntityStore interface {
	// LoadEntity appends the stored encoding of entity h to dst; ok is
	// false if none is stored.
	LoadEntity(h uint64, dst []byte) (data []byte, ok bool, err error)
}

// CheckpointWriter receives what a checkpoint makes durable. data is only
// valid during the call. The writes of one checkpoint must become visible
// together (one batch committed as a unit): a restart reads the engine
// state of one checkpoint, and entities of a later, partial one would not
// match it.
type CheckpointWriter interface {
	// PutEntity stores the encoding of entity h, whose newest event is at
	// last (Unix ns, event time). The entity is forgotten once the
	// watermark passes last + entity_ttl + allowed_lateness, so a store
	// may delete it then (see Engine.Forgotten), never earlier.
	PutEntity(h uint64, last int64, data []byte) error
	// DeleteEntity removes entity h, forgotten by its TTL.
	DeleteEntity(h uint64) error
	// PutEngine stores the engine-global state, for Restore.
	PutEngine(data []byte) error
}

// CheckpointStats says what a checkpoint wrote.
type CheckpointStats struct {
	Written int   // entities written
	Deleted int   // entities deleted, forgotten by their TTL
	Bytes   int64 // bytes of entity and engine state written
}

// StoreStats counts the engine's traffic with its store, and what it
// forgot, since it was built. Unlike Stats they describe this process, not the detection
// state, and are not checkpointed.
type StoreStats struct {
	Loaded  uint64 // entities loaded from the store
	Evicted uint64 // entities dropped from memory by Evict
	// Corrupt counts stored entities that could not be decoded; each
	// started afresh.
	Corrupt uint64
	// LoadErrors counts loads the store failed (see Err).
	LoadErrors uint64
	// Forgotten counts entities that came back after a silence longer
	// than engine.entity_ttl while their state was still held, and started
	// afresh. (Those whose state was deleted already are new entities:
	// which of the two an entity is depends on when state is swept, so
	// this is not part of Stats.)
	Forgotten uint64
}

// sweepEvery is the event time between Checkpoint's sweeps of forgotten
// entities out of memory: they are few, and a sweep reads every entity.
const sweepEvery = dayNs

// SetStore sets where the engine loads entities that are not in memory;
// nil means none (every entity not in memory is new, and nothing is
// evicted), as in a replay.
func (e *Engine) SetStore(s EntityStore) { e.store = s }

// StoreStats returns the engine's counters of store traffic.
func (e *Engine) StoreStats() StoreStats { return e.storeStats }

// Err returns the first error of the store in loading an entity. The
// entity was started afresh, so the state is no longer exact: Checkpoint
// refuses to write over the stored state, and the caller should stop and
// restart from the last checkpoint.
func (e *Engine) Err() error { return e.err }

// Resident returns the number of entities in memory.
func (e *Engine) Resident() int { return len(e.entities) }

// Forgotten reports whether an entity whose newest event is at last is
// forgotten for good: any event the engine still accepts is more than
// entity_ttl after it. A store may delete such entities.
func (e *Engine) Forgotten(last int64) bool {
	return e.watermark != 0 && last < e.watermark-e.lateness-e.ttl
}

// load returns the entity of hash h from the store, now in memory, or nil
// if the store has none (or none it can read).
func (e *Engine) load(h uint64) *Entity {
	data, ok, err := e.store.LoadEntity(h, e.loadBuf[:0])
	if err != nil {
		e.storeStats.LoadErrors++
		if e.err == nil {
			e.err = fmt.Errorf("load entity %016x: %w", h, err)
		}
		return nil
	}
	if !ok {
		return nil
	}
	e.loadBuf = data[:0]
	ent, err := e.decodeEntity(h, data)
	if err != nil {
		e.storeStats.Corrupt++
		return nil
	}
	e.entities[h] = ent
	e.storeStats.Loaded++
	return ent
}

// Checkpoint writes every entity changed since the last checkpoint,
// deletes forgotten ones, and writes the engine-global state (event
// time, statistics, peer groups and populations), then marks every entity
// clean. On error nothing is marked clean, and what was written is
// incomplete: the caller must not treat it as a checkpoint.
func (e *Engine) Checkpoint(w CheckpointWriter) (CheckpointStats, error) {
	var st CheckpointStats
	if e.err != nil {
		return st, fmt.Errorf("checkpoint: state not exact after a failed load: %w", e.err)
	}
	for _, ent := range e.dirty {
		if e.Forgotten(ent.last) {
			if err := e.drop(w, ent); err != nil {
				return st, err
			}
			st.Deleted++
			continue
		}
		e.encBuf = e.appendEntity(e.encBuf[:0], ent)
		if err := w.PutEntity(ent.hash, ent.last, e.encBuf); err != nil {
			return st, fmt.Errorf("checkpoint entity %016x: %w", ent.hash, err)
		}
		st.Written++
		st.Bytes += int64(len(e.encBuf))
	}
	if e.watermark >= e.nextSweep {
		e.nextSweep = e.watermark + sweepEvery
		for _, ent := range e.entities {
			if !ent.dirty && e.Forgotten(ent.last) {
				if err := e.drop(w, ent); err != nil {
					return st, err
				}
				st.Deleted++
			}
		}
	}
	e.encBuf = e.appendEngine(e.encBuf[:0])
	if err := w.PutEngine(e.encBuf); err != nil {
		return st, fmt.Errorf("checkpoint engine state: %w", err)
	}
	st.Bytes += int64(len(e.encBuf))
	for _, ent := range e.dirty {
		ent.dirty = false
	}
	clear(e.dirty)
	e.dirty = e.dirty[:0]
	return st, nil
}

// drop deletes a forgotten entity from memory and store.
func (e *Engine) drop(w CheckpointWriter, ent *Entity) error {
	if e.entities[ent.hash] == ent {
		delete(e.entities, ent.hash)
	}
	if err := w.DeleteEntity(ent.hash); err != nil {
		return fmt.Errorf("checkpoint delete entity %016x: %w", ent.hash, err)
	}
	return nil
}

// Restore loads the engine-global state written by a checkpoint. It is
// called once, on a new engine, before any event; entities are loaded
// from the store (SetStore) as their events come.
func (e *Engine) Restore(data []byte) error {
	if e.stats.Events != 0 || e.watermark != 0 || len(e.entities) != 0 {
		return errors.New("restore: engine already has state")
	}
	if err := e.decodeEngine(data); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// Dirty is the number of entities changed since the last checkpoint: what
// the next one writes.
func (e *Engine) Dirty() int { return len(e.dirty) }

// evictTarget is what Evict brings the entities in memory down to.
func (e *Engine) evictTarget() int { return e.maxEntities - e.maxEntities/10 }

// NeedsCheckpoint reports that more entities are in memory than the cap
// and too few are clean to evict down to it: the caller should checkpoint,
// after which every entity is clean and can be evicted.
func (e *Engine) NeedsCheckpoint() bool {
	n := len(e.entities)
	if e.store == nil || e.maxEntities <= 0 || n <= e.maxEntities {
		return false
	}
	return n-len(e.dirty) < n-e.evictTarget()
}

// Evict drops clean entities (durable in the store) from memory, least
// recently active first, down to 90% of engine.max_entities, or as many
// as are clean; it returns how many. It does nothing without a store or
// under the cap. The writes of the checkpoint that made them clean must be
// readable from the store by then.
func (e *Engine) Evict() int {
	n := len(e.entities)
	if e.store == nil || e.maxEntities <= 0 || n <= e.maxEntities || n == len(e.dirty) {
		return 0
	}
	c := e.evictBuf[:0]
	for _, ent := range e.entities {
		if !ent.dirty {
			c = append(c, ent)
		}
	}
	k := min(n-e.evictTarget(), len(c))
	selectOldest(c, k)
	for _, ent := range c[:k] {
		delete(e.entities, ent.hash)
	}
	clear(c)
	e.evictBuf = c[:0]
	e.storeStats.Evicted += uint64(k)
	return k
}

// lessActive orders entities by their newest event, then by hash.
func lessActive(a, b *Entity) bool {
	return a.last < b.last || a.last == b.last && a.hash < b.hash
}

// selectOldest reorders c so that its first k entities are the k least
// recently active (quickselect: linear on average, where sorting a
// million candidates would not be).
func selectOldest(c []*Entity, k int) {
	lo, hi := 0, len(c)
	for hi-lo > 1 && k > lo && k < hi {
		a, b, m := c[lo], c[hi-1], c[lo+(hi-lo)/2]
		// The median of three is the pivot.
		if lessActive(b, a) {
			a, b = b, a
		}
		p := m
		if lessActive(m, a) {
			p = a
		} else if lessActive(b, m) {
			p = b
		}
		i, j := lo, hi-1
		for i <= j {
			for lessActive(c[i], p) {
				i++
			}
			for lessActive(p, c[j]) {
				j--
			}
			if i <= j {
				c[i], c[j] = c[j], c[i]
				i++
				j--
			}
		}
		// c[lo:j+1] <= p <= c[i:hi], and anything between equals p.
		switch {
		case k <= j:
			hi = j + 1
		case k >= i:
			lo = i
		default:
			return
		}
	}
}
