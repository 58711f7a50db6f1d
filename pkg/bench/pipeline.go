package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/state"
	"github.com/exfilguard/exfilguard/pkg/stream"
)

// pipeline is the real `detector run` pipeline (pkg/stream) on the
// benchmark's topic, built as `detector demo` builds it: default config,
// a new consumer group from the earliest offset, Badger state and the
// alert outbox in a temporary directory, and one in-process sink that
// records when each alert arrives.
type pipeline struct {
	cfg   *config.Config
	p     *stream.Pipeline
	reg   *prometheus.Registry
	store *state.Store
	sink  *alertSink

	cancel context.CancelFunc
	done   chan error

	processed atomic.Uint64
	first     atomic.Int64 // Unix ns of the first batch processed
	mu        sync.Mutex
	waiters   []waiter

	// Checkpoints observed (polled from Stats): the longest one and
	// how many.
	ckptMu    sync.Mutex
	ckptMax   time.Duration
	ckptSeen  int
	ckptLast  time.Time
	stopPoll  chan struct{}
	pollAlive sync.WaitGroup
}

type waiter struct {
	n  uint64
	at chan reached
}

// reached is when a waiter's count was reached, and the count then.
type reached struct {
	at    time.Time
	total uint64
}

// pipelineConfig is config.Default() pointed at the cluster, with state
// in dir; maxEntities > 0 overrides engine.max_entities.
func pipelineConfig(brokers []string, topic, dir string, maxEntities int) (*config.Config, error) {
	cfg := config.Default()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.GroupID = "exfilguard-bench"
	cfg.Kafka.Topics = []config.Topic{{Name: topic, Format: "native"}}
	// A fresh group on a one-process cluster: no need to wait long for
	// members that will not come.
	cfg.Kafka.SessionTimeout = config.Duration(6 * time.Second)
	cfg.Kafka.RebalanceTimeout = config.Duration(6 * time.Second)
	cfg.State.Dir = filepath.Join(dir, "state")
	if maxEntities > 0 {
		cfg.Engine.MaxEntities = maxEntities
	}
	cfg.HTTP.Listen = ""
	cfg.Alerts.Sinks = []config.Sink{{Name: "bench", Type: config.SinkStdout}}
	cfg.Alerts.FillDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errs[0]
	}
	return cfg, nil
}

func startPipeline(cfg *config.Config, sink *alertSink, logw io.Writer) (*pipeline, error) {
	s := cfg.State
	store, err := state.Open(state.Options{Dir: s.Dir, MemTableBytes: s.MemTableBytes, BlockCacheBytes: s.BlockCacheBytes, IndexCacheBytes: s.IndexCacheBytes})
	if err != nil {
		return nil, err
	}
	pl := &pipeline{cfg: cfg, store: store, sink: sink, done: make(chan error, 1), stopPoll: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pl.p, err = stream.New(stream.Options{Config: cfg, Store: store, Logger: log,
		Sink:      func(config.Sink, alerts.Deps) (alerts.Sink, error) { return sink, nil },
		Processed: pl.onProcessed,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	pl.reg = prometheus.NewRegistry()
	if err := pl.p.Register(pl.reg); err != nil {
		store.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	pl.cancel = cancel
	pl.pollAlive.Add(1)
	go pl.pollCheckpoints()
	go func() { pl.done <- pl.p.Run(ctx) }()
	return pl, nil
}

// onProcessed runs after every batch, on an engine shard.
func (pl *pipeline) onProcessed(total uint64) {
	now := time.Now()
	pl.first.CompareAndSwap(0, now.UnixNano())
	for old := pl.processed.Load(); total > old && !pl.processed.CompareAndSwap(old, total); old = pl.processed.Load() {
	}
	pl.mu.Lock()
	keep := pl.waiters[:0]
	for _, w := range pl.waiters {
		if total >= w.n {
			w.at <- reached{now, total}
		} else {
			keep = append(keep, w)
		}
	}
	pl.waiters = keep
	pl.mu.Unlock()
}

// waitFor returns when the pipeline had processed n events in total,
// failing after timeout (a hang, not a measurement) or if it stopped.
func (pl *pipeline) waitFor(n uint64, timeout time.Duration) (reached, error) {
	at := make(chan reached, 1)
	pl.mu.Lock()
	if t := pl.processed.Load(); t >= n {
		pl.mu.Unlock()
		return reached{time.Now(), t}, nil
	}
	pl.waiters = append(pl.waiters, waiter{n: n, at: at})
	pl.mu.Unlock()
	select {
	case r := <-at:
		return r, nil
	case err := <-pl.done:
		pl.done <- err
		return reached{}, fmt.Errorf("pipeline stopped after %d of %d events: %v", pl.processed.Load(), n, err)
	case <-time.After(timeout):
		return reached{}, fmt.Errorf("pipeline processed %d of %d events in %v", pl.processed.Load(), n, timeout)
	}
}

// waitDelivered returns when every alert raised so far reached the sink.
func (pl *pipeline) waitDelivered(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !pl.p.AlertsDelivered() {
		if time.Now().After(deadline) {
			return fmt.Errorf("alerts not delivered within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// pollCheckpoints notes every checkpoint's duration (Stats().Last),
// looking ten times more often than the shortest checkpoint interval.
func (pl *pipeline) pollCheckpoints() {
	defer pl.pollAlive.Done()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-pl.stopPoll:
			pl.noteCheckpoint()
			return
		case <-t.C:
			pl.noteCheckpoint()
		}
	}
}

func (pl *pipeline) noteCheckpoint() {
	last := pl.p.Stats().Last
	pl.ckptMu.Lock()
	defer pl.ckptMu.Unlock()
	if !last.At.IsZero() && !last.At.Equal(pl.ckptLast) {
		pl.ckptLast = last.At
		pl.ckptSeen++
		pl.ckptMax = max(pl.ckptMax, last.Duration)
	}
}

// checkpoints returns how many checkpoints were seen so far and the
// longest.
func (pl *pipeline) checkpoints() (int, time.Duration) {
	pl.noteCheckpoint()
	pl.ckptMu.Lock()
	defer pl.ckptMu.Unlock()
	return pl.ckptSeen, pl.ckptMax
}

// metric sums the series of one of the pipeline's metrics (see
// docs/metrics.md) whose labels include every name=value pair given.
func (pl *pipeline) metric(name string, labels ...string) float64 {
	mfs, err := pl.reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// stop drains, checkpoints, commits and closes the store.
func (pl *pipeline) stop() (stream.Stats, error) {
	pl.cancel()
	err := <-pl.done
	close(pl.stopPoll)
	pl.pollAlive.Wait()
	st := pl.p.Stats()
	if cerr := pl.store.Close(); err == nil {
		err = cerr
	}
	return st, err
}
