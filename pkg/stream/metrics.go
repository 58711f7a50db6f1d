package stream

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/state"
)

// metrics are the pipeline's counters, written by readers, shards and the dispatcher
// with atomics and read by Stats (and by the Prometheus collector of the
// telemetry package).
type metrics struct {
	messages     atomic.Uint64
	events       atomic.Uint64 // processed by the engine
	deadLettered atomic.Uint64
	// deadLetterFailed counts rejected messages the dead-letter topic
	// refused for good (skipped, logged).
	deadLetterFailed atomic.Uint64
	fetchErrors      atomic.Uint64
	retentionLost    atomic.Uint64
	commitErrors     atomic.Uint64
	checkpoints      atomic.Uint64
	checkpointErr    atomic.Uint64
	evicted          atomic.Uint64
	byReason         [16]atomic.Uint64
	// ignoredBy counts well-formed messages without an access (ordinary
	// log lines, heartbeats), by event.Reason.
	ignoredBy [16]atomic.Uint64
	// topics counts messages per configured topic (fixed at New).
	topics map[string]*atomic.Uint64
	// Written by shard 0 after every batch (every shard sees every
	// event, so its numbers are the pipeline's): newest event time, and
	// the engine's late and future counts.
	watermark, late, future atomic.Int64
	// Scale-out (task.go): tasks held, partitions being restored, records
	// left to read of the restore in progress, the last restore's
	// duration (ns); records read from and written to the changelog, and
	// events produced to the repartition topics.
	tasks, restoring, restoreRemaining, lastRestore  atomic.Int64
	restoredRecords, changelogRecords, repartitioned atomic.Uint64
	// duplicates: routed events a repartition task had applied already.
	duplicates atomic.Uint64
	// resident is each shard's entities in memory.
	resident []atomic.Int64
	// lastCkptOK is the Unix nanoseconds of the last committed checkpoint.
	lastCkptOK atomic.Int64

	mu        sync.Mutex
	connected map[state.Partition]bool
	lags      map[state.Partition]*partLag
	joined    bool
	restored  bool
	lastCkpt  CheckpointInfo
}

// CheckpointInfo describes the newest checkpoint.
type CheckpointInfo struct {
	At       time.Time
	Duration time.Duration
	Entities int // entities written
	Deleted  int
	Bytes    int64
	Evicted  int
}

// partLag is one partition's high watermark and next offset, written by
// its reader after every fetch.
type partLag struct{ hw, next atomic.Int64 }

func newMetrics(topics []string, shards int) *metrics {
	m := &metrics{connected: map[state.Partition]bool{}, lags: map[state.Partition]*partLag{},
		topics: map[string]*atomic.Uint64{}, resident: make([]atomic.Int64, shards)}
	for _, t := range topics {
		m.topics[t] = new(atomic.Uint64)
	}
	return m
}

// topic returns the message counter of a topic; a topic not configured
// (the group cannot assign one) counts into a throwaway.
func (m *metrics) topic(t string) *atomic.Uint64 {
	if c, ok := m.topics[t]; ok {
		return c
	}
	return new(atomic.Uint64)
}

// partLag returns the lag record of a partition, kept while assigned.
func (m *metrics) partLag(p state.Partition) *partLag {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.lags[p]
	if !ok {
		l = &partLag{}
		l.hw.Store(-1)
		m.lags[p] = l
	}
	return l
}

func (m *metrics) rejected(r event.Reason) {
	if int(r) < len(m.byReason) {
		m.byReason[r].Add(1)
	}
}

func (m *metrics) ignored(r event.Reason) {
	if int(r) < len(m.ignoredBy) {
		m.ignoredBy[r].Add(1)
	}
}

func (m *metrics) setConnected(p state.Partition, ok bool) {
	m.mu.Lock()
	m.connected[p] = ok
	m.mu.Unlock()
}

func (m *metrics) setAssigned(ps []state.Partition, joined bool) {
	m.mu.Lock()
	m.connected = map[state.Partition]bool{}
	lags := map[state.Partition]*partLag{}
	for _, p := range ps {
		m.connected[p] = false
		if l, ok := m.lags[p]; ok {
			lags[p] = l
		}
	}
	m.lags = lags
	m.joined = joined
	m.mu.Unlock()
}

// Stats is a snapshot of what the pipeline did.
type Stats struct {
	Messages uint64 // read from Kafka
	Events   uint64 // processed by the engine
	// Late counts events older than the allowed lateness behind the
	// engine's clock, kept out of the windows.
	Late     uint64
	Rejected map[string]uint64
	// Ignored counts messages without an access in them (ordinary log
	// lines, heartbeats), by reason.
	Ignored      map[string]uint64
	DeadLettered uint64
	// DeadLetterFailed counts rejected messages the dead-letter topic
	// refused for good.
	DeadLetterFailed uint64
	FetchErrors      uint64
	RetentionLost    uint64
	CommitErrors     uint64
	Checkpoints      uint64
	CheckpointErr    uint64
	Evicted          uint64
	Last             CheckpointInfo
}

func (m *metrics) stats() Stats {
	s := Stats{
		Messages: m.messages.Load(), Events: m.events.Load(), Late: uint64(m.late.Load()), DeadLettered: m.deadLettered.Load(), DeadLetterFailed: m.deadLetterFailed.Load(),
		FetchErrors: m.fetchErrors.Load(), RetentionLost: m.retentionLost.Load(), CommitErrors: m.commitErrors.Load(),
		Checkpoints: m.checkpoints.Load(), CheckpointErr: m.checkpointErr.Load(), Evicted: m.evicted.Load(),
		Rejected: map[string]uint64{}, Ignored: map[string]uint64{},
	}
	for i := range m.ignoredBy {
		if n := m.ignoredBy[i].Load(); n > 0 {
			s.Ignored[event.Reason(i).String()] = n
		}
	}
	for i := range m.byReason {
		if n := m.byReason[i].Load(); n > 0 {
			s.Rejected[event.Reason(i).String()] = n
		}
	}
	m.mu.Lock()
	s.Last = m.lastCkpt
	m.mu.Unlock()
	return s
}

// ready reports whether the pipeline is doing its job: state restored, a
// member of its group, and connected to every partition it was assigned.
// The reason names what is missing, for /readyz.
func (m *metrics) ready(maxLag int64) (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.restored:
		return false, "restoring state"
	case m.restoring.Load() > 0:
		return false, fmt.Sprintf("restoring the state of %d partitions from the changelog", m.restoring.Load())
	case !m.joined:
		return false, "not a member of the consumer group"
	}
	for p, ok := range m.connected {
		if !ok {
			return false, "partition " + p.String() + " unavailable"
		}
	}
	if maxLag > 0 {
		var lag int64
		for _, l := range m.lags {
			if hw := l.hw.Load(); hw >= 0 {
				lag += max(hw-l.next.Load(), 0)
			}
		}
		if lag > maxLag {
			return false, fmt.Sprintf("consumer lag %d messages exceeds http.ready_max_lag %d", lag, maxLag)
		}
	}
	return true, "ok"
}

// limiter lets a log line with a given key through at most once per
// interval, so that a flood of bad messages or a broker outage is visible
// without drowning the logs. Each reader has its own: no lock.
type limiter struct {
	every time.Duration
	now   func() time.Time
	last  map[string]time.Time
}

func newLimiter(every time.Duration, now func() time.Time) *limiter {
	return &limiter{every: every, now: now, last: map[string]time.Time{}}
}

func (l *limiter) allow(key string) bool {
	t := l.now()
	if last, ok := l.last[key]; ok && t.Sub(last) < l.every {
		return false
	}
	l.last[key] = t
	return true
}
