package stream

import (
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

	mu        sync.Mutex
	connected map[state.Partition]bool
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

func newMetrics() *metrics { return &metrics{connected: map[state.Partition]bool{}} }

func (m *metrics) rejected(r event.Reason) {
	if int(r) < len(m.byReason) {
		m.byReason[r].Add(1)
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
	for _, p := range ps {
		m.connected[p] = false
	}
	m.joined = joined
	m.mu.Unlock()
}

// Stats is a snapshot of what the pipeline did.
type Stats struct {
	Messages     uint64 // read from Kafka
	Events       uint64 // processed by the engine
	Rejected     map[string]uint64
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
		Messages: m.messages.Load(), Events: m.events.Load(), DeadLettered: m.deadLettered.Load(), DeadLetterFailed: m.deadLetterFailed.Load(),
		FetchErrors: m.fetchErrors.Load(), RetentionLost: m.retentionLost.Load(), CommitErrors: m.commitErrors.Load(),
		Checkpoints: m.checkpoints.Load(), CheckpointErr: m.checkpointErr.Load(), Evicted: m.evicted.Load(),
		Rejected: map[string]uint64{},
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
func (m *metrics) ready() (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.restored:
		return false, "restoring state"
	case !m.joined:
		return false, "not a member of the consumer group"
	}
	for p, ok := range m.connected {
		if !ok {
			return false, "partition " + p.String() + " unavailable"
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
