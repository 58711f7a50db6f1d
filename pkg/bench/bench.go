package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// Options are a benchmark run's settings.
type Options struct {
	// Events is the size of the throughput part.
	Events     int
	Partitions int
	// Rate is the offered rate of the live part, events/s; Live caps its
	// wall time (the live part otherwise runs from an hour before the
	// first attack to an hour after the last one begins).
	Rate float64
	Live time.Duration
	// Entities are the entity counts of the memory measurement.
	Entities []int
	// EngineEvents is how many of the events the engine-alone pass
	// uses (decoded in memory beforehand); 0 means min(Events, 1M).
	EngineEvents int
	// MaxEntities overrides the pipeline's engine.max_entities; 0 keeps
	// the default.
	MaxEntities int
	// ProfileDir, if set, receives cpu.pprof and heap.pprof of the
	// pipeline's throughput pass.
	ProfileDir string
	Seed       int64
	Quick      bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// The benchmark's topics: the partitioned one, and one of a single
// partition holding the same throughput part.
const (
	topic  = "bench"
	topic1 = "bench-1p"
)

// Run measures everything in order and returns the report, its targets
// judged.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Events < 10_000 || o.Partitions < 1 || o.Rate <= 0 || o.Live <= 0 {
		return nil, fmt.Errorf("bench: want --events >= 10000, --partitions >= 1, --rate > 0 and --live > 0")
	}
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	say := func(f string, a ...any) { fmt.Fprintf(logw, "bench: "+f+"\n", a...) }
	r := &Report{Machine: machine()}

	say("planning the simulated company for %d events of history", o.Events)
	w, err := PlanWorkload(o.Seed, o.Events)
	if err != nil {
		return nil, err
	}
	r.Params = Params{Events: o.Events, Partitions: o.Partitions, Rate: o.Rate, LiveCap: o.Live.String(), Entities: o.Entities,
		Seed: o.Seed, SimDays: w.Sim.Days, SimScale: w.Sim.Scale, History: w.History, Quick: o.Quick}
	dir, err := os.MkdirTemp("", "exfilguard-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	if err := r.runKafka(ctx, o, w, dir, say, logw); err != nil {
		return nil, err
	}
	runtime.GC()

	src, err := w.NewSource(o.Events)
	if err != nil {
		return nil, err
	}
	n := o.EngineEvents
	if n <= 0 {
		n = min(o.Events, 1_000_000)
	}
	say("engine alone: %d events on one goroutine", n)
	if r.Engine, err = measureEngine(src, n, o.ProfileDir); err != nil {
		return nil, err
	}
	src = nil
	runtime.GC()
	for _, e := range o.Entities {
		say("memory: %d entities, then one checkpoint of all of them", e)
		m, err := measureMemory(e, dir)
		if err != nil {
			return nil, err
		}
		r.Memory = append(r.Memory, m)
		runtime.GC()
	}
	r.judge()
	return r, nil
}

// runKafka is everything on the broker, once on the partitioned topic
// and once on a topic of one partition: produce the throughput part, the
// bare consumers, the pipeline's pass over it, then its history and the
// paced live part.
func (r *Report) runKafka(ctx context.Context, o Options, w *Workload, dir string, say func(string, ...any), logw io.Writer) error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.Partitions), topic), kfake.SeedTopics(1, topic1),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": "8388608"}))
	if err != nil {
		return fmt.Errorf("start embedded broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	for i, parts := range []int{o.Partitions, 1} {
		name, suffix := topic, ""
		if i == 1 {
			name, suffix = topic1, "-1p"
		}
		if err := r.runTopic(ctx, o, w, brokers, name, parts, filepath.Join(dir, name), suffix, say, logw); err != nil {
			return err
		}
		runtime.GC()
	}
	return nil
}

// runTopic measures one topic of parts partitions.
func (r *Report) runTopic(ctx context.Context, o Options, w *Workload, brokers []string, topic string, parts int, dir, suffix string, say func(string, ...any), logw io.Writer) error {
	n := int64(o.Events)
	timeout := max(2*time.Minute, time.Duration(n/20_000)*time.Second)
	src, err := w.NewSource(o.Events)
	if err != nil {
		return err
	}
	say("%s: producing %d events to %d partition(s)", topic, o.Events, parts)
	prod := newProducer(brokers, topic, 10*time.Millisecond)
	defer prod.close()
	start := time.Now()
	if err := produceBulk(ctx, src, prod, PhaseThroughput); err != nil {
		return err
	}
	if prod.Values != n {
		return fmt.Errorf("bench: produced %d events, want %d", prod.Values, n)
	}
	if len(r.Throughput) == 0 {
		r.Produce = throughput("produce", prod.Values, prod.Bytes, start, start, time.Now())
	}

	pass := Pass{Topic: topic, Partitions: parts}
	cfg, err := pipelineConfig(brokers, topic, dir, o.MaxEntities)
	if err != nil {
		return err
	}
	k := &cfg.Kafka
	say("%s: (a) kafka-go Reader, one per partition, fetch only", topic)
	t, err := consumeKafkaGoReader(ctx, k, topic, parts, n, timeout)
	if err != nil {
		return err
	}
	pass.Consumers = append(pass.Consumers, t)
	if parts > 1 {
		say("%s: (b) franz-go kgo, fetch only", topic)
		if t, err = consumeFranz(ctx, k, topic, parts, n, timeout); err != nil {
			return err
		}
		pass.Consumers = append(pass.Consumers, t)
		say("%s: (a') kafka-go Conn.ReadBatch, as the pipeline's readers fetch, no decode", topic)
		if t, err = consumeKafkaGoConn(ctx, k, topic, parts, n, cfg.Input.MaxMessageBytes, timeout); err != nil {
			return err
		}
		pass.Consumers = append(pass.Consumers, t)
	}
	runtime.GC()
	say("%s: (c) the pipeline from the start of the topic", topic)
	sink := &alertSink{}
	pl, err := r.pipelinePass(&pass, cfg, sink, prod.Bytes, n, o.ProfileDir, suffix, timeout, logw)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			pl.stop()
		}
	}()

	say("%s: history up to %s at full speed (%d events in all), for the baseline", topic, w.LiveFrom.Format(time.RFC3339), w.History)
	if err := produceBulk(ctx, src, prod, PhaseHistory); err != nil {
		return err
	}
	if _, err := pl.waitFor(uint64(prod.Values), timeout); err != nil {
		return err
	}
	if err := pl.waitDelivered(time.Minute); err != nil {
		return err
	}
	say("%s: live at %.0f events/s with %v (at most %v)", topic, o.Rate, w.Sim.Scenarios, o.Live)
	lat := Latency{Topic: topic, Partitions: parts}
	if err := lat.run(ctx, o, w, src, brokers, topic, pl, sink, timeout); err != nil {
		return err
	}
	r.Latency = append(r.Latency, lat)
	stopped = true
	if err := pass.Pipeline.finish(pl, sink); err != nil {
		return err
	}
	r.Throughput = append(r.Throughput, pass)
	return nil
}

// pipelinePass runs the pipeline on the pass's topic from its start
// until it has processed n events, profiled into dir if set, and
// returns it still running.
func (r *Report) pipelinePass(pass *Pass, cfg *config.Config, sink *alertSink, bytes, n int64, dir, suffix string, timeout time.Duration, logw io.Writer) (*pipeline, error) {
	stopProfile, err := r.startProfile(dir, suffix)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	pl, err := startPipeline(cfg, sink, logw)
	if err != nil {
		stopProfile(false)
		return nil, err
	}
	got, err := pl.waitFor(uint64(n), timeout)
	stopProfile(err == nil)
	if err != nil {
		pl.stop()
		return nil, err
	}
	pp := &pass.Pipeline
	pp.Throughput = throughput("pipeline", int64(got.total), bytes, start, time.Unix(0, pl.first.Load()), got.at)
	pp.Processed = got.total
	pp.Late = uint64(pl.metric("exfilguard_late_events_total"))
	pp.Resident = int64(pl.metric("exfilguard_entities", "where", "memory"))
	ck, longest := pl.checkpoints()
	pp.Checkpoints, pp.MaxCheckpointSeconds = ck, longest.Seconds()
	pp.MaxEntities = cfg.Engine.MaxEntities
	for _, c := range pass.Consumers {
		if c.Name == readerName && c.EventsPerSec > 0 && c.SteadyEventsPerSec > 0 {
			pass.Ratio = pp.EventsPerSec / c.EventsPerSec
			pass.SteadyRatio = pp.SteadyEventsPerSec / c.SteadyEventsPerSec
		}
	}
	return pl, nil
}

// finish stops the pipeline and notes what it did over the whole run.
func (pp *Pipeline) finish(pl *pipeline, sink *alertSink) error {
	st, err := pl.stop()
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	pp.Evicted = st.Evicted
	for _, v := range st.Rejected {
		pp.Rejected += v
	}
	pp.Alerts = sink.count()
	return nil
}

// produceBulk writes every line of phase as fast as the broker takes
// them, in flushes of 20,000, and leaves the first line of the next
// phase unread.
func produceBulk(ctx context.Context, src *Source, prod *producer, phase Phase) error {
	for {
		line, ph := src.Next()
		if ph != phase {
			src.unread()
			break
		}
		prod.add(line)
		if prod.queued() >= 20_000 {
			if err := prod.flush(ctx); err != nil {
				return err
			}
		}
	}
	return prod.flush(ctx)
}

// run produces the live part at o.Rate, in ticks of 5 ms, notes each
// tick's produce time, and measures the alerts' latency.
func (lat *Latency) run(ctx context.Context, o Options, w *Workload, src *Source, brokers []string, topic string, pl *pipeline, sink *alertSink, timeout time.Duration) error {
	prod := newProducer(brokers, topic, time.Millisecond)
	defer prod.close()
	before := pl.processed.Load()
	lateBefore := pl.metric("exfilguard_late_events_total")
	x := &produceIndex{}
	sink.record(true)
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	start := time.Now()
	var produced int64
	lat.OfferedRate = o.Rate
	for {
		el := time.Since(start)
		if el >= o.Live {
			lat.Truncated = true
			break
		}
		due := int64(o.Rate * el.Seconds())
		var lastMs int64
		for produced+int64(prod.queued()) < due {
			line, ph := src.Next()
			if ph != PhaseLive {
				break
			}
			ms, err := lineMillis(line)
			if err != nil {
				return fmt.Errorf("bench: live line without ts: %w", err)
			}
			if len(x.ticks) == 0 && prod.queued() == 0 {
				x.firstMs = ms
			}
			lastMs = ms
			prod.add(line)
		}
		if q := prod.queued(); q > 0 {
			at := time.Now()
			if err := prod.flush(ctx); err != nil {
				return err
			}
			x.ticks = append(x.ticks, tick{lastMs: lastMs, at: at})
			produced += int64(q)
		}
		if produced < due {
			break // the live part is over
		}
		select {
		case <-tk.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	lat.Seconds = time.Since(start).Seconds()
	lat.Events = produced
	lat.AchievedRate = float64(produced) / lat.Seconds
	if _, err := pl.waitFor(before+uint64(produced), timeout); err != nil {
		return err
	}
	if err := pl.waitDelivered(time.Minute); err != nil {
		return err
	}
	sink.record(false)
	lat.Late = uint64(pl.metric("exfilguard_late_events_total") - lateBefore)
	lat.measure(x, sink.taken(), w)
	return nil
}

// startProfile starts a CPU profile into dir (if set); the returned
// function stops it and, if ok, writes a heap profile beside it.
func (r *Report) startProfile(dir, suffix string) (func(ok bool), error) {
	if dir == "" {
		return func(bool) {}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cpuPath := filepath.Join(dir, "cpu"+suffix+".pprof")
	f, err := os.Create(cpuPath)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func(ok bool) {
		pprof.StopCPUProfile()
		f.Close()
		r.Profiles = append(r.Profiles, cpuPath)
		if !ok {
			return
		}
		heapPath := filepath.Join(dir, "heap"+suffix+".pprof")
		if h, err := os.Create(heapPath); err == nil {
			runtime.GC()
			if pprof.WriteHeapProfile(h) == nil {
				r.Profiles = append(r.Profiles, heapPath)
			}
			h.Close()
		}
	}, nil
}
