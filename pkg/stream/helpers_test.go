package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/state"
)

const samplePath = "../../testdata/sample/events.jsonl.gz"

func sampleLines(t testing.TB) [][]byte { return kafkatest.Lines(t, samplePath) }

func cluster(t testing.TB, partitions int32, topics []string, opts ...kfake.Opt) *kfake.Cluster {
	return kafkatest.Cluster(t, partitions, topics, opts...)
}

func produce(t testing.TB, addrs []string, topic string, values [][]byte) {
	kafkatest.Produce(t, addrs, topic, values)
}

// testConfig is the default config pointed at the cluster and a state dir.
func testConfig(addrs []string, topic, dir string) *config.Config {
	cfg := config.Default()
	cfg.Kafka.Brokers = addrs
	cfg.Kafka.Topics = []config.Topic{{Name: topic, Format: "native"}}
	cfg.Kafka.GroupID = "exfilguard-test"
	cfg.Kafka.SessionTimeout = config.Duration(6 * time.Second)
	cfg.Kafka.RebalanceTimeout = config.Duration(6 * time.Second)
	cfg.Kafka.FetchMaxWait = config.Duration(100 * time.Millisecond)
	cfg.Kafka.BackoffMin = config.Duration(20 * time.Millisecond)
	cfg.Kafka.BackoffMax = config.Duration(500 * time.Millisecond)
	cfg.State.Dir = dir
	cfg.State.MemTableBytes = 8 << 20
	cfg.State.CheckpointInterval = config.Duration(time.Hour) // tests checkpoint by count or on stop
	cfg.State.CheckpointEvents = 50_000
	return cfg
}

// running is a pipeline running in the background.
type running struct {
	p      *Pipeline
	store  *state.Store
	alerts *bytes.Buffer
	cancel context.CancelFunc
	done   chan error
	// reached is closed once the pipeline processed want events.
	reached chan struct{}
}

// start runs a pipeline on cfg until stop; reached closes once it has
// processed want events in total during this run.
func start(t testing.TB, cfg *config.Config, want uint64, extra ...func(*Options)) *running {
	t.Helper()
	store, err := state.Open(state.Options{Dir: cfg.State.Dir, MemTableBytes: cfg.State.MemTableBytes, BlockCacheBytes: 1 << 20, IndexCacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	r := &running{store: store, alerts: &bytes.Buffer{}, done: make(chan error, 1), reached: make(chan struct{})}
	var once sync.Once
	opts := Options{Config: cfg, Store: store, Alerts: r.alerts, Logger: testLogger(t),
		Processed: func(n uint64) {
			if n >= want {
				once.Do(func() { close(r.reached) })
			}
		}}
	for _, f := range extra {
		f(&opts)
	}
	p, err := New(opts)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	r.p = p
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- p.Run(ctx) }()
	return r
}

// wait blocks until the pipeline processed its events, failing the test
// after a generous bound (a hang, not a timing assumption).
func (r *running) wait(t testing.TB) {
	t.Helper()
	select {
	case <-r.reached:
	case err := <-r.done:
		t.Fatalf("pipeline stopped early: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatalf("pipeline stuck: %+v", r.p.Stats())
	}
}

// stop stops the pipeline cleanly and closes its store.
func (r *running) stop(t testing.TB) Stats {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := r.p.Stats()
	if err := r.store.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// alertLines parses JSONL alerts, dropping detected_at (wall clock, the
// one field a live run and a replay may not share).
func alertLines(t testing.TB, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var a map[string]any
		if err := dec.Decode(&a); err != nil {
			t.Fatal(err)
		}
		delete(a, "detected_at")
		out = append(out, a)
	}
	return out
}
