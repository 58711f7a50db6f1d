// Package state keeps the detector's state in Badger: entity baselines,
// engine-global state, alert incidents and the Kafka positions they cover.
//
// A checkpoint is atomic. Badger runs in managed mode and every
// checkpoint writes all its keys at one commit timestamp, its marker (the
// partition positions) last; readers read at the timestamp of the newest
// complete marker. A crash in the middle of a checkpoint leaves versions
// no reader sees, and the next checkpoint writes at a higher timestamp
// over them. So restored state always matches the positions restored with
// it: a restart neither loses nor double-counts an event.
package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Key layout. One byte of prefix keeps the kinds apart in one keyspace.
const (
	prefixEntity   = 'e'            // e + 8-byte entity hash → 8-byte last event time + encoding
	prefixPosition = 'p'            // p + topic + 0 + 4-byte partition → 8-byte next offset
	blobPrefix     = "g/"           // g/ + name → a blob of global state (engine, engine/N, alerts, shards)
	keyMarker      = "m/checkpoint" // 8-byte commit ts of the newest complete checkpoint
	keyFormat      = "m/format"
)

// formatVersion is the store's layout version. The encodings inside values
// carry their own versions; this one changes only if the key layout does.
const formatVersion = 1

// Options sizes the store.
type Options struct {
	Dir             string
	MemTableBytes   int64
	BlockCacheBytes int64
	IndexCacheBytes int64
	// InMemory keeps everything in memory (tests and benchmarks only).
	InMemory bool
	Logger   *slog.Logger
}

// Store is the Badger-backed state. Loads and checkpoints come from one
// goroutine, the engine's owner; Checkpointed and Positions may be called
// from any.
type Store struct {
	db *badger.DB
	// readTs is the commit timestamp of the newest complete checkpoint:
	// everything is read as of it.
	readTs atomic.Uint64
	log    *slog.Logger
	closed atomic.Bool
	// stored is the number of stored entities as of the last count: at
	// open (CountEntities) and at every sweep; -1 before the first.
	stored atomic.Int64
	// filter answers "certainly not stored" without a Badger read
	// (filter.go).
	filter atomic.Pointer[filter]
}

// Open opens or creates the store in opts.Dir.
func Open(opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bo := badger.DefaultOptions(opts.Dir).
		WithLogger(badgerLogger{log}).
		WithInMemory(opts.InMemory).
		// Two memtables and few L0 tables: a small pod, not a database
		// server. Writes come in bursts at checkpoints; stalls there are
		// acceptable, memory spikes are not.
		WithMemTableSize(opts.MemTableBytes).
		WithNumMemtables(2).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(12).
		WithBlockCacheSize(opts.BlockCacheBytes).
		WithIndexCacheSize(opts.IndexCacheBytes).
		WithNumCompactors(2).
		// Each table build holds the table and a 3 MiB index builder in
		// memory, and every level is rewritten by compaction: mid-sized
		// tables and a large first level keep both the count of builds and
		// the write amplification of checkpoint-heavy traffic down.
		WithBaseTableSize(4 << 20).
		WithBaseLevelSize(64 << 20).
		WithValueLogFileSize(64 << 20).
		// Entities are small; keep them in the LSM tree (one read per
		// reload) unless a pathological one carries many dense sketches.
		WithValueThreshold(min(64<<10, opts.MemTableBytes/10)).
		// No compression: entity encodings are compact already, and
		// Badger's table builders hold a compressed copy of every block in
		// flight, which in a small pod is the largest memory spike of all
		// (over 100 MiB during a flush and a compaction at once).
		WithCompression(options.None).
		WithDetectConflicts(false).
		WithNumVersionsToKeep(1)
	if opts.InMemory {
		bo = bo.WithDir("").WithValueDir("")
	} else if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	db, err := OpenBadger(bo, true, log)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", opts.Dir, err)
	}
	s := &Store{db: db, log: log}
	s.stored.Store(-1)
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.buildFilter(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init() error {
	txn := s.db.NewTransactionAt(^uint64(0)-1, false)
	defer txn.Discard()
	ts, err := getU64(txn, keyMarker)
	if err != nil {
		return fmt.Errorf("read checkpoint marker: %w", err)
	}
	s.readTs.Store(ts)
	if ts == 0 {
		return nil
	}
	f, err := getU64(txn, keyFormat)
	if err != nil {
		return fmt.Errorf("read state format: %w", err)
	}
	if f > formatVersion {
		return fmt.Errorf("state format %d was written by a newer detector (this one reads up to %d)", f, formatVersion)
	}
	// Versions below the newest checkpoint can go; the newest stays.
	s.db.SetDiscardTs(ts)
	if s.db.MaxVersion() > ts {
		return s.repair()
	}
	return nil
}

// repair undoes what a checkpoint interrupted by a crash wrote: every key
// with a version above the newest complete checkpoint gets its value as of
// that checkpoint back (or is deleted if it had none), in a checkpoint of
// its own. Without it, the next checkpoint would leave the orphans of the
// interrupted one visible under the keys it does not rewrite.
func (s *Store) repair() error {
	var orphans [][]byte
	txn := s.db.NewTransactionAt(s.db.MaxVersion(), false)
	it := txn.NewIterator(badger.IteratorOptions{AllVersions: true})
	for it.Rewind(); it.Valid(); it.Next() {
		if it.Item().Version() > s.readTs.Load() {
			k := it.Item().KeyCopy(nil)
			if n := len(orphans); n == 0 || string(orphans[n-1]) != string(k) {
				orphans = append(orphans, k)
			}
		}
	}
	it.Close()
	txn.Discard()
	s.log.Warn("undoing an interrupted checkpoint", "keys", len(orphans), "checkpoint_ts", s.readTs.Load())

	c := s.Begin()
	old := s.db.NewTransactionAt(s.readTs.Load(), false)
	defer old.Discard()
	for _, k := range orphans {
		item, err := old.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			err = c.wb.Delete(k)
		} else if err == nil {
			var v []byte
			if v, err = item.ValueCopy(nil); err == nil {
				err = c.wb.Set(k, v)
			}
		}
		if err != nil {
			c.Abort()
			return fmt.Errorf("undo interrupted checkpoint: %w", err)
		}
	}
	return c.Commit(nil)
}

// Close closes the store.
// Close closes the store; Size answers 0 from then on.
func (s *Store) Close() error {
	s.closed.Store(true)
	return s.db.Close()
}

// Checkpointed reports whether the store holds a complete checkpoint.
func (s *Store) Checkpointed() bool { return s.readTs.Load() != 0 }

func getU64(txn *badger.Txn, key string) (uint64, error) {
	it, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = it.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("key %s: %d bytes, want 8", key, len(b))
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

func entityKey(dst []byte, h uint64) []byte {
	dst = append(dst[:0], prefixEntity)
	return binary.BigEndian.AppendUint64(dst, h)
}

// LoadEntity appends the stored encoding of entity h to dst.
func (s *Store) LoadEntity(h uint64, dst []byte) ([]byte, bool, error) {
	return s.loadEntity(0, h, dst)
}

// Blob returns the named global state (see Checkpoint.PutBlob) of the
// newest checkpoint, nil if none.
func (s *Store) Blob(name string) ([]byte, error) {
	key := blobPrefix + name
	if s.readTs.Load() == 0 {
		return nil, nil
	}
	txn := s.db.NewTransactionAt(s.readTs.Load(), false)
	defer txn.Discard()
	it, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s state: %w", name, err)
	}
	return it.ValueCopy(nil)
}

// Partition names one Kafka partition.
type Partition struct {
	Topic     string
	Partition int
}

func (p Partition) String() string { return p.Topic + "/" + strconv.Itoa(p.Partition) }

func positionKey(p Partition) []byte {
	k := append([]byte{prefixPosition}, p.Topic...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(p.Partition))
}

// Positions returns the next offset to consume of every partition the
// newest checkpoint covers.
func (s *Store) Positions() (map[Partition]int64, error) {
	out := map[Partition]int64{}
	if s.readTs.Load() == 0 {
		return out, nil
	}
	txn := s.db.NewTransactionAt(s.readTs.Load(), false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixPosition}, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		z := strings.IndexByte(string(k[1:]), 0)
		if z < 0 || len(k) != 1+z+1+4 {
			return nil, fmt.Errorf("read positions: malformed key %q", k)
		}
		p := Partition{Topic: string(k[1 : 1+z]), Partition: int(binary.BigEndian.Uint32(k[2+z:]))}
		err := it.Item().Value(func(b []byte) error {
			if len(b) != 8 {
				return fmt.Errorf("position %s: %d bytes", p, len(b))
			}
			out[p] = int64(binary.BigEndian.Uint64(b))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read positions: %w", err)
		}
	}
	return out, nil
}

// Stats describes the store for logs and the operations guide.
type Stats struct {
	LSMBytes, VlogBytes int64
	Entities            int
}

// Stats counts entities (a full key scan: for tools and tests, not the
// hot path) and reports Badger's on-disk size.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	st.LSMBytes, st.VlogBytes = s.db.Size()
	if s.readTs.Load() == 0 {
		return st, nil
	}
	txn := s.db.NewTransactionAt(s.readTs.Load(), false)
	defer txn.Discard()
	for _, prefix := range []byte{prefixEntity, prefixSpace} {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}})
		for it.Rewind(); it.Valid(); it.Next() {
			st.Entities++
		}
		it.Close()
	}
	return st, nil
}

// Dir returns the absolute directory of the store, for messages.
func Dir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

// badgerLogger routes Badger's logs to slog at one level lower than Badger
// thinks: its INFO is chatty about compactions an operator never acts on.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error("badger", "msg", strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn("badger", "msg", strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug("badger", "msg", strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Debugf(string, ...any) {}

// Size is Badger's LSM and value-log size in bytes (cheap: for metrics).
func (s *Store) Size() (lsm, vlog int64) {
	if s.closed.Load() {
		return 0, 0
	}
	return s.db.Size()
}

// Stored is the number of stored entities as of the last CountEntities or
// Sweep, or -1 if never counted: a full count reads every key, so it is
// not kept exact between sweeps.
func (s *Store) Stored() int64 { return s.stored.Load() }

// CountEntities counts the stored entities (a key scan) for Stored.
func (s *Store) CountEntities() error {
	st, err := s.Stats()
	if err != nil {
		return err
	}
	s.stored.Store(int64(st.Entities))
	return nil
}
