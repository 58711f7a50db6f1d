package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/dgraph-io/badger/v4"
)

// A Space is one task's share of the store in scale-out mode: the entities,
// engine state and incidents of one input partition (or one repartition
// topic's partition), kept apart from every other task's so that a task can
// be dropped when its partition moves away and rebuilt from the changelog
// when it comes back, without touching the others. The same entity (a
// source network seen on two partitions) may live in two spaces: each task
// is a detector of its own.
//
// Space 0 is the keyspace of a detector without tasks ('e' keys, "g/"
// blobs); its layout is unchanged, so state written before scale-out reads
// as is.
type Space uint32

const prefixSpace = 'n' // n + 4-byte space + 8-byte entity hash → like 'e'

func spaceEntityKey(dst []byte, ns Space, h uint64) []byte {
	if ns == 0 {
		return entityKey(dst, h)
	}
	dst = append(dst[:0], prefixSpace)
	dst = binary.BigEndian.AppendUint32(dst, uint32(ns))
	return binary.BigEndian.AppendUint64(dst, h)
}

func spacePrefix(ns Space) []byte {
	if ns == 0 {
		return []byte{prefixEntity}
	}
	return binary.BigEndian.AppendUint32([]byte{prefixSpace}, uint32(ns))
}

func spaceBlob(ns Space, name string) string {
	if ns == 0 {
		return name
	}
	return "t" + strconv.FormatUint(uint64(ns), 16) + "/" + name
}

// filterKey spreads the spaces over the entity filter: one entity hash in
// two spaces is two entries.
func filterKey(ns Space, h uint64) uint64 {
	if ns == 0 {
		return h
	}
	return h ^ (uint64(ns)+1)*0x9e3779b97f4a7c15
}

// SpaceView reads one space: the engine of a task loads its entities
// through it.
type SpaceView struct {
	s  *Store
	ns Space
}

// Space returns the view of space ns.
func (s *Store) Space(ns Space) *SpaceView { return &SpaceView{s: s, ns: ns} }

// LoadEntity appends the stored encoding of entity h of the space to dst.
func (v *SpaceView) LoadEntity(h uint64, dst []byte) ([]byte, bool, error) {
	return v.s.loadEntity(v.ns, h, dst)
}

// Blob returns the space's named state of the newest checkpoint.
func (v *SpaceView) Blob(name string) ([]byte, error) { return v.s.Blob(spaceBlob(v.ns, name)) }

func (s *Store) loadEntity(ns Space, h uint64, dst []byte) ([]byte, bool, error) {
	if s.readTs.Load() == 0 {
		return dst, false, nil
	}
	if f := s.filter.Load(); f != nil && !f.mayContain(filterKey(ns, h)) {
		return dst, false, nil
	}
	var kb [13]byte
	txn := s.db.NewTransactionAt(s.readTs.Load(), false)
	defer txn.Discard()
	it, err := txn.Get(spaceEntityKey(kb[:0], ns, h))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return dst, false, nil
	}
	if err != nil {
		return dst, false, fmt.Errorf("load entity: %w", err)
	}
	err = it.Value(func(b []byte) error {
		if len(b) < 8 {
			return fmt.Errorf("entity %016x: value of %d bytes", h, len(b))
		}
		dst = append(dst, b[8:]...)
		return nil
	})
	if err != nil {
		return dst, false, fmt.Errorf("load entity: %w", err)
	}
	return dst, true, nil
}

// SpaceWriter writes one space's part of a checkpoint. It is a
// models.CheckpointWriter.
type SpaceWriter struct {
	c  *Checkpoint
	ns Space
}

// Space returns the writer of space ns's part of the checkpoint.
func (c *Checkpoint) Space(ns Space) SpaceWriter { return SpaceWriter{c: c, ns: ns} }

// PutEntity writes entity h of the space (see Checkpoint.PutEntity).
func (w SpaceWriter) PutEntity(h uint64, last int64, data []byte) error {
	return w.c.putEntity(w.ns, h, last, data)
}

// PutValue writes entity h of the space from its stored form (the 8-byte
// last event time and the encoding, as a changelog carries it).
func (w SpaceWriter) PutValue(h uint64, value []byte) error {
	if len(value) < 8 {
		return fmt.Errorf("write entity %016x: value of %d bytes", h, len(value))
	}
	return w.c.putEntity(w.ns, h, int64(binary.BigEndian.Uint64(value)), value[8:])
}

// DeleteEntity removes entity h of the space.
func (w SpaceWriter) DeleteEntity(h uint64) error {
	w.c.count(0, 1, 0)
	if err := w.c.wb.Delete(spaceEntityKey(make([]byte, 0, 13), w.ns, h)); err != nil {
		return fmt.Errorf("delete entity: %w", err)
	}
	return nil
}

// PutEngine writes the space's engine-global state.
func (w SpaceWriter) PutEngine(data []byte) error { return w.PutBlob("engine", data) }

// PutBlob writes a named piece of the space's state.
func (w SpaceWriter) PutBlob(name string, data []byte) error {
	return w.c.PutBlob(spaceBlob(w.ns, name), data)
}

// DeleteBlob removes a named piece of the space's state.
func (w SpaceWriter) DeleteBlob(name string) error {
	if err := w.c.wb.Delete([]byte(blobPrefix + spaceBlob(w.ns, name))); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// ClearSpace deletes everything of space ns (its entities and blobs) in
// one atomic step of its own: before a task's state is rebuilt from the
// changelog, so that nothing of an older ownership survives it. A crash
// after it leaves the space empty, which the next restore rebuilds whole.
func (s *Store) ClearSpace(ns Space) error {
	if ns == 0 {
		return errors.New("clear space 0: not a task's space")
	}
	if s.readTs.Load() == 0 {
		return nil
	}
	var keys [][]byte
	txn := s.db.NewTransactionAt(s.readTs.Load(), false)
	for _, prefix := range [][]byte{spacePrefix(ns), []byte(blobPrefix + spaceBlob(ns, ""))} {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		it.Close()
	}
	txn.Discard()
	if len(keys) == 0 {
		return nil
	}
	c := s.Begin()
	for _, k := range keys {
		if err := c.wb.Delete(k); err != nil {
			c.Abort()
			return fmt.Errorf("clear space: %w", err)
		}
	}
	if err := c.Commit(nil); err != nil {
		return fmt.Errorf("clear space: %w", err)
	}
	return nil
}

// EntitySpaces returns the task spaces that hold entity h: a full key scan,
// for tools (state inspect), never the hot path.
func (s *Store) EntitySpaces(h uint64) ([]Space, error) {
	if s.readTs.Load() == 0 {
		return nil, nil
	}
	var out []Space
	txn := s.db.NewTransactionAt(s.readTs.Load(), false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixSpace}, PrefetchValues: false})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) == 13 && binary.BigEndian.Uint64(k[5:]) == h {
			out = append(out, Space(binary.BigEndian.Uint32(k[1:])))
		}
	}
	return out, nil
}

// TaskSpace is the space of a scale-out task: the tag of its topic (0 the
// input, 1.. the repartition topics) and its partition. Never 0.
func TaskSpace(tag byte, partition int) Space {
	return Space(uint32(tag+1)<<24 | uint32(partition)&0xffffff)
}

// Task returns the tag and partition of a task's space.
func (ns Space) Task() (tag, partition int) { return int(ns>>24) - 1, int(ns & 0xffffff) }
