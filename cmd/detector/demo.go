package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/eval"
	"github.com/exfilguard/exfilguard/pkg/sim"
	"github.com/exfilguard/exfilguard/pkg/state"
	"github.com/exfilguard/exfilguard/pkg/stream"
	"github.com/exfilguard/exfilguard/pkg/telemetry"
)

// runDemo is the first five minutes: no service needed. It starts an
// in-process Kafka-protocol broker, produces weeks of a synthetic
// company's history at full speed and then its last days, with attacks,
// in accelerated event time; the real pipeline (consumer group, Badger
// state, outbox, metrics) consumes them; alerts print as they fire, and a
// summary per attack says whether and how soon it was caught and how many
// customer records it had exposed by then.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Int64("seed", 7, "seed of the synthetic company and its attacks")
	days := fs.Int("days", 21, "days of traffic")
	scale := fs.Float64("scale", 0.1, "size of the company (1 is ~360k events a day)")
	live := fs.Duration("live", 45*time.Second, "wall time of the live phase (the days with attacks)")
	listen := fs.String("listen", "127.0.0.1:8080", "address of /metrics, /healthz and /readyz (a free port if taken)")
	keep := fs.Bool("keep-running", false, "keep running after the summary, for a look at /metrics, until Ctrl-C")
	noColor := fs.Bool("no-color", false, "plain output even on a terminal")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: detector demo [--seed S] [--days N] [--scale X] [--live 45s] [--listen ADDR] [--keep-running]\n\nRuns the real pipeline against an embedded Kafka-protocol broker and a synthetic company with attacks.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{out: stdout, color: !*noColor && isTerminal(stdout) && os.Getenv("NO_COLOR") == ""}
	if err := d.run(ctx, *seed, *days, *scale, *live, *listen, *keep, stderr); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return exitFailed
	}
	return exitOK
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type demo struct {
	out   io.Writer
	color bool
	// live is set once the live phase starts; before, only high and
	// critical alerts print (warm-up and history noise is counted).
	live   atomic.Bool
	hidden atomic.Int64
	mu     sync.Mutex // the scorer and the terminal
	sc     *eval.Scorer
	shown  atomic.Int64
}

const demoTopic = "audit"

func (d *demo) run(ctx context.Context, seed int64, days int, scale float64, live time.Duration, listen string, keep bool, stderr io.Writer) error {
	so := sim.Options{Seed: seed, Days: days, Scale: scale, Scenarios: sim.ScenarioNames()}
	g, err := sim.New(so)
	if err != nil {
		return err
	}
	labels := g.Labels()
	d.sc = eval.NewScorer(labels)
	liveFrom := time.Now()
	for i, l := range labels {
		if i == 0 || l.Start.Before(liveFrom) {
			liveFrom = l.Start
		}
	}
	liveFrom = liveFrom.Add(-time.Hour)

	// One partition: the live phase runs event time thousands of times
	// faster than the wall clock, so a few milliseconds between two
	// partitions' fetches would be minutes of event time, beyond the
	// allowed lateness (docs/benchmarks.md, "Latency"). At real speed the
	// pipeline merges partitions by event time.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, demoTopic),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": "8388608"}))
	if err != nil {
		return fmt.Errorf("start embedded broker: %w", err)
	}
	defer cluster.Close()
	dir, err := os.MkdirTemp("", "exfilguard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	cfg := config.Default()
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	cfg.Kafka.GroupID = "exfilguard-demo"
	cfg.Kafka.Topics = []config.Topic{{Name: demoTopic, Format: "native"}}
	cfg.Kafka.FetchMaxWait = config.Duration(100 * time.Millisecond)
	cfg.Kafka.SessionTimeout = config.Duration(6 * time.Second)
	cfg.Kafka.RebalanceTimeout = config.Duration(6 * time.Second)
	cfg.State.Dir = filepath.Join(dir, "state")
	cfg.State.CheckpointInterval = config.Duration(2 * time.Second)
	cfg.State.MemTableBytes = 8 << 20
	// The synthetic company has more customers than the default cap
	// holds in memory; the demo is not about eviction.
	cfg.Engine.MaxEntities = 1_000_000
	cfg.Alerts.Sinks = []config.Sink{{Name: "terminal", Type: config.SinkStdout}}
	cfg.Alerts.FillDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return errs[0]
	}
	store, err := state.Open(state.Options{Dir: cfg.State.Dir, MemTableBytes: cfg.State.MemTableBytes, BlockCacheBytes: 8 << 20, IndexCacheBytes: 8 << 20})
	if err != nil {
		return err
	}
	defer store.Close()
	var processed atomic.Uint64
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := stream.New(stream.Options{Config: cfg, Store: store, Logger: log,
		Sink:      func(config.Sink, alerts.Deps) (alerts.Sink, error) { return d, nil },
		Processed: func(n uint64) { processed.Store(n) },
	})
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	if err := p.Register(reg); err != nil {
		return err
	}
	srv, addr, err := telemetry.Serve(listen, telemetry.Endpoints{Gatherer: reg, Ready: p.Ready})
	if err != nil {
		srv, addr, err = telemetry.Serve("127.0.0.1:0", telemetry.Endpoints{Gatherer: reg, Ready: p.Ready})
		if err != nil {
			return err
		}
	}
	defer srv.Close()

	pctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	stopPipeline := func() error {
		cancel()
		return <-done
	}

	d.printf("%s\n", d.bold("Exfilguard demo"))
	d.printf("A synthetic company, %d days of database and API access (seed %d), %d attacks hidden in its last days.\n", days, seed, len(sim.ScenarioNames()))
	d.printf("Embedded Kafka-protocol broker %s, topic %q keyed by principal; the real pipeline with state in %s.\n", cfg.Kafka.Brokers[0], demoTopic, dir)
	d.printf("Metrics: http://%s/metrics   Readiness: http://%s/readyz\n", addr, addr)
	simStart := so.Start
	if simStart.IsZero() {
		simStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	d.printf("History up to %s at full speed (only high and critical alerts shown), then live: %s of event time in %s.\n\n",
		liveFrom.Format("Mon Jan 2 15:04"), simStart.Add(time.Duration(days)*24*time.Hour).Sub(liveFrom).Round(time.Hour), live)

	prod := newProducer(cfg.Kafka.Brokers, demoTopic)
	defer prod.close()
	produced, err := d.produce(ctx, g, prod, liveFrom.UnixNano(), time.Duration(days)*24*time.Hour, so, live)
	if err != nil {
		stopPipeline()
		return err
	}
	// Wait for the engine to have seen everything and the terminal every
	// alert, then score.
	for processed.Load() < uint64(produced) || !p.AlertsDelivered() {
		select {
		case <-ctx.Done():
			stopPipeline()
			return ctx.Err()
		case err := <-done:
			return fmt.Errorf("pipeline stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.summary(produced, addr.String())
	if keep {
		d.printf("\nStill running; Ctrl-C to stop.\n")
		<-ctx.Done()
	}
	return stopPipeline()
}

// produce writes the traffic to the broker: history as fast as it goes,
// then from liveFrom paced so the rest takes about live of wall time.
func (d *demo) produce(ctx context.Context, g *sim.Generator, prod *producer, liveFrom int64, period time.Duration, so sim.Options, live time.Duration) (int, error) {
	start := so.Start
	if start.IsZero() {
		start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	end := start.Add(period).UnixNano()
	speed := float64(end-liveFrom) / float64(live)
	var wallFrom time.Time
	var buf []byte
	n := 0
	for {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			break
		}
		d.mu.Lock()
		d.sc.Observe(buf, g.Scenario())
		d.mu.Unlock()
		t, err := lineTime(buf)
		if err == nil && t >= liveFrom {
			if wallFrom.IsZero() {
				if err := prod.flush(ctx); err != nil {
					return n, err
				}
				wallFrom = time.Now()
				d.live.Store(true)
				d.printf("%s\n", d.dim(fmt.Sprintf("── live from %s ──", time.Unix(0, t).UTC().Format("Mon Jan 2 15:04"))))
			}
			due := wallFrom.Add(time.Duration(float64(t-liveFrom) / speed))
			if wait := time.Until(due); wait > 20*time.Millisecond {
				if err := prod.flush(ctx); err != nil {
					return n, err
				}
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return n, ctx.Err()
				}
			}
		}
		if err := prod.add(ctx, buf); err != nil {
			return n, err
		}
		n++
	}
	return n, prod.flush(ctx)
}

// lineTime reads the ts of a native event line.
func lineTime(line []byte) (int64, error) {
	i := strings.Index(string(line[:min(len(line), 64)]), `"ts":"`)
	if i < 0 {
		return 0, fmt.Errorf("no ts")
	}
	rest := line[i+6:]
	j := strings.IndexByte(string(rest[:min(len(rest), 40)]), '"')
	if j < 0 {
		return 0, fmt.Errorf("no ts")
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t.UnixNano(), err
}

// Notify is the demo's terminal sink: each alert as a line a person can
// read, colored when the terminal allows.
func (d *demo) Notify(_ context.Context, as ...*alerts.Alert) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range as {
		line, err := alerts.Render(config.FormatNative, a)
		if err == nil {
			_ = d.sc.Alert(line)
		}
		if !d.live.Load() && a.Severity != "high" && a.Severity != "critical" {
			d.hidden.Add(1)
			continue
		}
		d.shown.Add(1)
		t, _ := time.Parse(time.RFC3339Nano, a.EventTime)
		status := a.Incident.Status
		sev := strings.ToUpper(a.Severity)
		head := fmt.Sprintf("%s  %-8s %-22s %s %s", t.UTC().Format("Mon Jan 2 15:04"), sev, a.Rule, a.Entity.Kind, a.Entity.Key)
		exp := a.Incident.Exposure
		tail := fmt.Sprintf("%s · incident %s · customer data so far: %s rows, %s records", status, a.Incident.ID[:8], eval.Thousands(exp.Rows), eval.Thousands(exp.Records))
		if status == alerts.StatusResolved {
			fmt.Fprintf(d.out, "%s  %s\n", d.paint("32", head), d.dim(tail))
			continue
		}
		fmt.Fprintf(d.out, "%s  %s\n    %s\n", d.paint(sevColor(a.Severity), head), d.dim(tail), a.Summary)
	}
	return false, nil
}

func (d *demo) summary(events int, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.sc.Result(0)
	fmt.Fprintf(d.out, "\n%s\n", d.bold(fmt.Sprintf("Summary: %d events, %d alerts shown, %d low or medium alerts of the history not shown", events, d.shown.Load(), d.hidden.Load())))
	fmt.Fprintf(d.out, "%-22s %-9s %-16s %s\n", "attack", "caught", "after it began", "exposed before the first alert, of all it exposed")
	for _, a := range r.Attacks {
		if !a.Detected {
			fmt.Fprintf(d.out, "%-22s %s\n", a.Scenario, d.paint("31;1", "NO"))
			continue
		}
		fmt.Fprintf(d.out, "%-22s %-9s %-16s %s of %s %s\n", a.Scenario, d.paint("32", "yes"), a.Delay.Round(time.Second), eval.Thousands(a.ExposedBefore), eval.Thousands(a.Exposed), a.Unit)
	}
	falseN, falseHigh := 0, r.FalseBySeverity["high"]+r.FalseBySeverity["critical"]
	for _, n := range r.FalseBySeverity {
		falseN += n
	}
	fmt.Fprintf(d.out, "alerts about no attack: %d (%d high or critical)\n", falseN, falseHigh)
	fmt.Fprintf(d.out, "%s\n", d.dim("`detector eval` scores every scenario against a static-threshold baseline; metrics were on http://"+addr+"/metrics"))
}

func (d *demo) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, format, args...)
}

func sevColor(s string) string {
	switch s {
	case "critical":
		return "31;1"
	case "high":
		return "31"
	case "medium":
		return "33"
	}
	return "36"
}

func (d *demo) paint(code, s string) string {
	if !d.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (d *demo) bold(s string) string { return d.paint("1", s) }
func (d *demo) dim(s string) string  { return d.paint("2", s) }
