package alerts

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/exfilguard/exfilguard/pkg/state"
)

// Outbox keys: "e/" + sequence (big endian, so iteration is raise order)
// holds an alert awaiting delivery and the sinks that have not
// acknowledged it; "d/" + alert id marks an alert every sink took, for a
// day, so that an alert raised again by the replay after a crash is not
// delivered twice; "s/" + sink name holds a Stateful sink's state.
const (
	prefixEntry = "e/"
	prefixDone  = "d/"
	prefixSink  = "s/"
)

// doneTTL is how long a delivered alert's id is remembered. A replay after
// a crash re-raises only alerts of events after the last checkpoint,
// seconds to minutes old; a day is ample.
const doneTTL = 24 * time.Hour

// Outbox is the durable queue between the alert builder and the sinks: an
// alert is on disk before any sink sees it and leaves only when every sink
// its route sends it to has acknowledged it (or refused it for good). It
// lives in its own small Badger beside the state store, because its
// writes follow deliveries, not checkpoints.
//
// Ownership: Add is called by the deliverer's writer; Pending, Ack and
// Drop by each sink's worker for its own sink index. All go through mu.
type Outbox struct {
	db  *badger.DB
	log *slog.Logger
	max int

	mu      sync.Mutex
	entries []*outboxEntry // in raise order
	ids     map[string]*outboxEntry
	nextSeq uint64
	dropped uint64 // entries evicted because the outbox was full
	closed  atomic.Bool
}

type outboxEntry struct {
	seq   uint64
	alert *Alert
	// pending has bit i set while sink i still has to take the alert.
	pending uint64
}

// storedEntry is an entry on disk. Sinks are named, not numbered, so that
// an outbox survives a config that adds, removes or reorders sinks.
type storedEntry struct {
	Alert *Alert   `json:"alert"`
	Sinks []string `json:"sinks"`
}

// OpenOutbox opens (creating) the outbox in dir. sinks are the configured
// sink names in index order: pending deliveries to sinks no longer
// configured are dropped with a warning.
func OpenOutbox(dir string, max int, sinks []string, log *slog.Logger) (*Outbox, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(false). // Add syncs explicitly, once per batch
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithValueLogFileSize(16 << 20).
		WithValueThreshold(64 << 10).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithCompression(options.None).
		WithNumCompactors(2)
	db, err := state.OpenBadger(opts, false, log)
	if err != nil {
		return nil, fmt.Errorf("open alert outbox %s: %w", dir, err)
	}
	o := &Outbox{db: db, log: log, max: max, ids: map[string]*outboxEntry{}}
	if err := o.load(sinks); err != nil {
		db.Close()
		return nil, err
	}
	return o, nil
}

func (o *Outbox) load(sinks []string) error {
	return o.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixEntry), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			seq := binary.BigEndian.Uint64(item.Key()[len(prefixEntry):])
			var se storedEntry
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &se) }); err != nil {
				return fmt.Errorf("load alert outbox entry %d: %w", seq, err)
			}
			e := &outboxEntry{seq: seq, alert: se.Alert}
			for _, name := range se.Sinks {
				if i := slices.Index(sinks, name); i >= 0 {
					e.pending |= 1 << i
				} else {
					o.log.Warn("outbox entry for a sink no longer configured dropped", "sink", name, "alert_id", se.Alert.ID)
				}
			}
			o.nextSeq = seq + 1
			if e.pending != 0 && se.Alert != nil {
				o.entries = append(o.entries, e)
				o.ids[se.Alert.ID] = e
			}
		}
		return nil
	})
}

// Len is the number of alerts awaiting delivery.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.entries)
}

// Dropped counts alerts evicted because the outbox was full.
func (o *Outbox) Dropped() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

// Add persists alerts, each with the sinks that must take it (masks[i] for
// as[i]), and syncs before it returns: only then may a sink see them, and
// only then may the offsets of the events that raised them be committed.
// An alert already pending, or delivered within the last day, is not added
// again (the replay after a crash raises it with the same id). A full
// outbox drops its oldest entries to make room: the newest alerts are the
// ones an analyst needs, and the dropped ones are counted.
func (o *Outbox) Add(as []*Alert, masks []uint64, sinks []string) (added int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var fresh []*outboxEntry
	for i, a := range as {
		if masks[i] == 0 || o.ids[a.ID] != nil || slices.ContainsFunc(fresh, func(e *outboxEntry) bool { return e.alert.ID == a.ID }) {
			continue
		}
		done, err := o.delivered(a.ID)
		if err != nil {
			return 0, err
		}
		if !done {
			fresh = append(fresh, &outboxEntry{alert: a, pending: masks[i]})
		}
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	// Room first: the oldest go, be they stored or in this batch.
	var evicted []*outboxEntry
	over := len(o.entries) + len(fresh) - o.max
	wb := o.db.NewWriteBatch()
	defer wb.Cancel()
	for ; over > 0 && len(o.entries) > 0; over-- {
		e := o.entries[0]
		o.entries = o.entries[1:]
		delete(o.ids, e.alert.ID)
		evicted = append(evicted, e)
		if err := wb.Delete(entryKey(e.seq)); err != nil {
			return 0, fmt.Errorf("evict from alert outbox: %w", err)
		}
	}
	if over > 0 {
		evicted = append(evicted, fresh[:over]...)
		fresh = fresh[over:]
	}
	for _, e := range fresh {
		e.seq = o.nextSeq
		o.nextSeq++
		v, err := o.encode(e, sinks)
		if err != nil {
			return 0, err
		}
		if err := wb.Set(entryKey(e.seq), v); err != nil {
			return 0, fmt.Errorf("add to alert outbox: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return 0, fmt.Errorf("write alert outbox: %w", err)
	}
	if err := o.db.Sync(); err != nil {
		return 0, fmt.Errorf("sync alert outbox: %w", err)
	}
	for _, e := range evicted {
		o.dropped++
		o.log.Warn("alert outbox full: oldest alert dropped undelivered", "alert_id", e.alert.ID, "rule", e.alert.Rule, "max_entries", o.max)
	}
	for _, e := range fresh {
		o.entries = append(o.entries, e)
		o.ids[e.alert.ID] = e
	}
	return len(fresh), nil
}

func (o *Outbox) delivered(id string) (bool, error) {
	err := o.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(prefixDone + id))
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("read alert outbox: %w", err)
	}
}

func (o *Outbox) encode(e *outboxEntry, sinks []string) ([]byte, error) {
	se := storedEntry{Alert: e.alert}
	for i, name := range sinks {
		if e.pending&(1<<i) != 0 {
			se.Sinks = append(se.Sinks, name)
		}
	}
	v, err := json.Marshal(se)
	if err != nil {
		return nil, fmt.Errorf("encode outbox entry: %w", err)
	}
	return v, nil
}

func entryKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixEntry), seq)
}

// Pending returns up to n alerts sink i has yet to take, oldest first.
func (o *Outbox) Pending(i, n int) []*Alert {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*Alert
	for _, e := range o.entries {
		if e.pending&(1<<i) != 0 {
			out = append(out, e.alert)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// Ack records that sink i took (or refused for good) the alerts. An alert
// every sink has taken leaves the outbox and is remembered as delivered.
// Acks are not synced: losing the last ones to a crash re-delivers those
// alerts with the same ids, which receivers deduplicate.
func (o *Outbox) Ack(i int, as []*Alert, sinks []string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	wb := o.db.NewWriteBatch()
	defer wb.Cancel()
	gone := map[*outboxEntry]bool{}
	for _, a := range as {
		e := o.ids[a.ID]
		if e == nil || e.pending&(1<<i) == 0 {
			continue
		}
		e.pending &^= 1 << i
		if e.pending == 0 {
			gone[e] = true
			delete(o.ids, a.ID)
			if err := wb.Delete(entryKey(e.seq)); err != nil {
				return fmt.Errorf("ack alert: %w", err)
			}
			if err := wb.SetEntry(badger.NewEntry([]byte(prefixDone+a.ID), nil).WithTTL(doneTTL)); err != nil {
				return fmt.Errorf("ack alert: %w", err)
			}
			continue
		}
		v, err := o.encode(e, sinks)
		if err != nil {
			return err
		}
		if err := wb.Set(entryKey(e.seq), v); err != nil {
			return fmt.Errorf("ack alert: %w", err)
		}
	}
	if len(gone) > 0 {
		o.entries = slices.DeleteFunc(o.entries, func(e *outboxEntry) bool { return gone[e] })
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("write alert outbox: %w", err)
	}
	return nil
}

// SinkState returns what a Stateful sink saved, or nil.
func (o *Outbox) SinkState(name string) ([]byte, error) {
	var v []byte
	err := o.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixSink + name))
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sink state %s: %w", name, err)
	}
	return v, nil
}

// SaveSinkState stores a Stateful sink's state.
func (o *Outbox) SaveSinkState(name string, v []byte) error {
	if err := o.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixSink+name), v) }); err != nil {
		return fmt.Errorf("save sink state %s: %w", name, err)
	}
	return nil
}

// Close syncs and closes the outbox.
func (o *Outbox) Close() error {
	o.closed.Store(true)
	if err := o.db.Close(); err != nil {
		return fmt.Errorf("close alert outbox: %w", err)
	}
	return nil
}

// Size is the outbox's Badger LSM and value-log size in bytes; 0 once
// closed (a last scrape may come after).
func (o *Outbox) Size() (lsm, vlog int64) {
	if o.closed.Load() {
		return 0, 0
	}
	return o.db.Size()
}
