package state

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// Checkpoint is one atomic write of state: nothing of it is visible until
// Commit has made all of it durable. Engine shards may put their parts
// concurrently; Commit comes after all of them.
type Checkpoint struct {
	s  *Store
	wb *badger.WriteBatch
	ts uint64
	mu sync.Mutex // guards the counters
	// Entities, Deleted and Bytes count what was written; read them after
	// the puts.
	Entities, Deleted int
	Bytes             int64
}

func (c *Checkpoint) count(entities, deleted int, bytes int64) {
	c.mu.Lock()
	c.Entities += entities
	c.Deleted += deleted
	c.Bytes += bytes
	c.mu.Unlock()
}

// Begin starts a checkpoint. Its timestamp is above every version in the
// store, including those of a checkpoint a crash interrupted, so that its
// writes supersede them.
func (s *Store) Begin() *Checkpoint {
	if f := s.filter.Load(); f != nil && f.full() {
		// Grown past its size: rebuild from the store before this
		// checkpoint adds more. Lookups meanwhile use the old one.
		if err := s.buildFilter(); err != nil {
			s.log.Warn("rebuild entity filter; lookups go to the store", "err", err)
			s.filter.Store(nil)
		}
	}
	ts := max(s.db.MaxVersion(), s.readTs.Load()) + 1
	return &Checkpoint{s: s, wb: s.db.NewWriteBatchAt(ts), ts: ts}
}

// PutEntity writes entity h, whose newest event is at last (kept in front
// of the encoding so that Sweep can age entities without decoding them).
// data is copied.
func (c *Checkpoint) PutEntity(h uint64, last int64, data []byte) error {
	return c.putEntity(0, h, last, data)
}

func (c *Checkpoint) putEntity(ns Space, h uint64, last int64, data []byte) error {
	v := make([]byte, 8+len(data))
	binary.BigEndian.PutUint64(v, uint64(last))
	copy(v[8:], data)
	c.count(1, 0, int64(len(v)+9))
	// Before the write: a reader that misses the filter must not miss an
	// entity that is in the store (false positives are harmless).
	if f := c.s.filter.Load(); f != nil {
		f.add(filterKey(ns, h))
	}
	if err := c.wb.Set(spaceEntityKey(make([]byte, 0, 13), ns, h), v); err != nil {
		return fmt.Errorf("write entity: %w", err)
	}
	return nil
}

// DeleteEntity removes entity h.
func (c *Checkpoint) DeleteEntity(h uint64) error {
	c.count(0, 1, 0)
	if err := c.wb.Delete(entityKey(make([]byte, 0, 9), h)); err != nil {
		return fmt.Errorf("delete entity: %w", err)
	}
	return nil
}

// PutEngine writes the engine-global state of a single engine.
func (c *Checkpoint) PutEngine(data []byte) error { return c.PutBlob("engine", data) }

// PutAlerts writes the alert builder's state (open incidents).
func (c *Checkpoint) PutAlerts(data []byte) error { return c.PutBlob("alerts", data) }

// PutBlob writes a named piece of global state ("engine", "engine/1",
// "alerts", ...), read back with Store.Blob.
func (c *Checkpoint) PutBlob(name string, data []byte) error {
	key := blobPrefix + name
	c.count(0, 0, int64(len(data)+len(key)))
	if err := c.wb.Set([]byte(key), append([]byte(nil), data...)); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// Commit makes the checkpoint durable together with the partition
// positions it covers, and only then visible. positions holds the next
// offset to consume per partition; partitions it omits keep their
// previous position.
func (c *Checkpoint) Commit(positions map[Partition]int64) error {
	if err := c.wb.Flush(); err != nil {
		return fmt.Errorf("flush checkpoint: %w", err)
	}
	if err := c.s.db.Sync(); err != nil {
		return fmt.Errorf("sync checkpoint: %w", err)
	}
	// The marker goes last and alone: once it is durable, so is
	// everything before it.
	mb := c.s.db.NewWriteBatchAt(c.ts)
	for p, off := range positions {
		if err := mb.Set(positionKey(p), binary.BigEndian.AppendUint64(nil, uint64(off))); err != nil {
			mb.Cancel()
			return fmt.Errorf("write position %s: %w", p, err)
		}
	}
	if err := mb.Set([]byte(keyFormat), binary.BigEndian.AppendUint64(nil, formatVersion)); err != nil {
		mb.Cancel()
		return fmt.Errorf("write format: %w", err)
	}
	if err := mb.Set([]byte(keyMarker), binary.BigEndian.AppendUint64(nil, c.ts)); err != nil {
		mb.Cancel()
		return fmt.Errorf("write marker: %w", err)
	}
	if err := mb.Flush(); err != nil {
		return fmt.Errorf("flush checkpoint marker: %w", err)
	}
	if err := c.s.db.Sync(); err != nil {
		return fmt.Errorf("sync checkpoint marker: %w", err)
	}
	c.s.readTs.Store(c.ts)
	c.s.db.SetDiscardTs(c.ts)
	return nil
}

// Abort drops a checkpoint that will not be committed. Whatever it flushed
// stays invisible.
func (c *Checkpoint) Abort() { c.wb.Cancel() }

// Sweep deletes stored entities for which forgotten(last) holds, last
// being the event time of their newest event: entities silent past their
// TTL that are no longer in memory (see models.Engine.Forgotten). It is
// its own atomic step with unchanged positions. An entity that is in
// memory and newer is written again by the next checkpoint, above the
// deletion.
func (s *Store) Sweep(forgotten func(last int64) bool) (int, error) {
	deleted, err := s.sweep(0, forgotten)
	return len(deleted), err
}

// SweepSpace is Sweep for a task's space. It returns the hashes of the
// entities it deleted, for the changelog's tombstones.
func (s *Store) SweepSpace(ns Space, forgotten func(last int64) bool) ([]uint64, error) {
	return s.sweep(ns, forgotten)
}

func (s *Store) sweep(ns Space, forgotten func(last int64) bool) ([]uint64, error) {
	if s.readTs.Load() == 0 {
		return nil, nil
	}
	var stale [][]byte
	seen := 0
	txn := s.db.NewTransactionAt(s.readTs.Load(), false)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: spacePrefix(ns), PrefetchValues: false})
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		var last int64
		err := item.Value(func(b []byte) error {
			if len(b) >= 8 {
				last = int64(binary.BigEndian.Uint64(b))
			}
			return nil
		})
		if err != nil {
			it.Close()
			txn.Discard()
			return nil, fmt.Errorf("sweep entities: %w", err)
		}
		seen++
		if forgotten(last) {
			stale = append(stale, item.KeyCopy(nil))
		}
	}
	it.Close()
	txn.Discard()
	if ns == 0 {
		s.stored.Store(int64(seen - len(stale)))
	}
	if len(stale) == 0 {
		return nil, nil
	}
	c := s.Begin()
	hashes := make([]uint64, 0, len(stale))
	for _, k := range stale {
		if err := c.wb.Delete(k); err != nil {
			c.Abort()
			return nil, fmt.Errorf("sweep entities: %w", err)
		}
		hashes = append(hashes, binary.BigEndian.Uint64(k[len(k)-8:]))
	}
	if err := c.Commit(nil); err != nil {
		return nil, err
	}
	return hashes, nil
}
