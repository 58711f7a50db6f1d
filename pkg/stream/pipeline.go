// Package stream is `detector run`: Kafka consumption through a consumer
// group, one fetch loop per assigned partition, a dispatcher feeding the
// engine shards, and checkpoints that make state durable before the
// offsets they cover are committed. docs/design.md ("The live pipeline")
// describes the data path and its ownership rules.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
	"github.com/exfilguard/exfilguard/pkg/state"
)

// Options configures a pipeline.
type Options struct {
	Config *config.Config
	// Store holds state; the pipeline does not close it.
	Store *state.Store
	// Alerts is where stdout sinks write (nil: os.Stdout). Alerts go to
	// the sinks of the config through the outbox in state.dir/outbox: an
	// alert is durable there before the offsets of its events are
	// committed.
	Alerts io.Writer
	// Tracer spans fetches, batches, checkpoints and deliveries; nil: no
	// tracing. TraceHeaders reads each message's W3C trace context (an
	// allocation per message): set it when spans are exported.
	Tracer       trace.Tracer
	TraceHeaders bool
	// Sink builds a sink; nil means the real one of each type.
	Sink          func(config.Sink, alerts.Deps) (alerts.Sink, error)
	Pseudonymizer *alerts.Pseudonymizer
	Logger        *slog.Logger
	// Now is the wall clock (detected_at, checkpoint interval, log rate
	// limits, fetch deadlines); nil means time.Now.
	Now func() time.Time
	// Processed, if set, is called after each batch with the number of
	// events processed in this run: progress for tests and tools, so that
	// none has to poll or sleep. It runs on whichever engine shard
	// finished the batch last, so it must be safe for concurrent use.
	Processed func(total uint64)
}

// Pipeline consumes the configured topics into the engine. Build it with
// New, run it with Run.
type Pipeline struct {
	cfg    *config.Config
	store  *state.Store
	log    *slog.Logger
	now    func() time.Time
	dialer *kafka.Dialer
	m      *metrics
	tracer trace.Tracer
	// headers: read message headers for trace context.
	headers bool
	// reloads carries config reloads to the dispatcher; stopped closes
	// when the dispatcher has returned.
	reloads chan reload
	stopped chan struct{}

	// The engine shards, each run by its own goroutine (see owner.go).
	shards   []*shard
	needCkpt atomic.Bool // a shard is over its entity cap with nothing clean
	// dirtyCkpt: a shard has MaxDirty entities changed since the last
	// checkpoint.
	dirtyCkpt atomic.Bool

	// The alert builder, fed by every shard's detections, and the
	// deliverer that takes its alerts to the sinks; what they raised is
	// counted under the same lock, for the metrics. With scale-out each
	// task has its own builder (builders, changed under alertMu).
	alertMu    sync.Mutex
	builder    *alerts.Builder
	builders   []*alerts.Builder
	pseudo     *alerts.Pseudonymizer
	tasks      *taskSet
	fwd        *forwarder // repartition producer; nil without routed kinds
	deliver    *alerts.Deliverer
	detections map[string]uint64
	raised     map[alertKey]uint64

	// Histograms observed by the shards and the dispatcher; registered
	// by Register (see collector.go).
	latency      prometheus.Histogram
	ckptDuration prometheus.Histogram

	// Owned by the dispatcher goroutine (see own).
	ckptFailed error // set by a failed checkpoint: none may follow it
	positions  map[state.Partition]int64
	sinceCkpt  int
	lastCkpt   time.Time
	buf        []byte
	selfAlert  selfAlerts
	processed  func(uint64)
	// fatal is the error that stopped the pipeline from the inside; stop
	// cancels Run's context.
	fatalMu sync.Mutex
	fatal   error
	stop    context.CancelFunc

	pool  *pool
	merge *merger
	in    chan item

	// durable is the positions of the newest durable checkpoint, for the
	// committers; durableC signals a new one.
	durableMu sync.Mutex
	durable   map[state.Partition]int64
	durableC  chan struct{}
}

// item is what the dispatcher receives: a batch of events, or a request to
// checkpoint now (answered on done).
type item struct {
	b *batch
	// idle: part's reader has read up to the high watermark and has
	// nothing to hand on.
	idle bool
	part state.Partition
	// assign starts a generation's partitions in the merge, or with
	// tasks (scale-out) drops, restores and starts tasks and answers
	// where each partition's reading starts.
	assign []state.Partition
	tasks  chan taskReply
	// ckpt drains the merge (the readers have stopped) and checkpoints.
	ckpt chan error
}

// taskReply answers an assignment of scale-out tasks.
type taskReply struct {
	positions map[state.Partition]int64
	err       error
}

// New builds the engine and restores it from the store.
func New(opts Options) (*Pipeline, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := NewDialer(&opts.Config.Kafka)
	if err != nil {
		return nil, err
	}
	tracer := opts.Tracer
	if tracer == nil {
		tracer = noop.NewTracerProvider().Tracer("")
	}
	p := &Pipeline{
		cfg: opts.Config, store: opts.Store, log: log, now: now, dialer: d, m: newMetrics(topicNames(opts.Config), max(opts.Config.Engine.Shards, 1)),
		builder:    alerts.NewBuilder(opts.Config, opts.Pseudonymizer, now),
		pseudo:     opts.Pseudonymizer,
		positions:  map[state.Partition]int64{},
		pool:       newPool(0),
		merge:      newMerger(8),
		in:         make(chan item, 8),
		durableC:   make(chan struct{}, 1),
		processed:  opts.Processed,
		tracer:     tracer,
		headers:    opts.TraceHeaders,
		reloads:    make(chan reload),
		stopped:    make(chan struct{}),
		detections: map[string]uint64{}, raised: map[alertKey]uint64{},
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "exfilguard_processing_latency_seconds", Help: "Time from a batch's fetch to the engine's verdict on it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		ckptDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "exfilguard_checkpoint_duration_seconds", Help: "Time to make one checkpoint durable.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
	}
	p.merge.strict = opts.Config.ScaleOut.Enabled && len(opts.Config.ScaleOut.Repartition) > 0
	n := max(opts.Config.Engine.Shards, 1)
	if opts.Config.ScaleOut.Enabled {
		n = 0 // tasks come with their partitions
		p.builders = nil
	} else {
		p.builders = []*alerts.Builder{p.builder}
	}
	for i := range n {
		// Each shard holds its share of the entity cap.
		s := &shard{i: i, in: make(chan shardItem, 8), kinds: models.ShardKinds(opts.Config, n)[i], cap: shardConfig(opts.Config, n).Engine.MaxEntities}
		s.engine, err = models.NewShard(shardConfig(opts.Config, n), func(d *models.Detection) { p.detection(s, d) }, i, n)
		if err != nil {
			return nil, err
		}
		p.shards = append(p.shards, s)
	}
	if err := p.restore(); err != nil {
		return nil, err
	}
	p.deliver, err = alerts.NewDeliverer(alerts.DelivererOptions{
		Config:   opts.Config.Alerts,
		Dir:      filepath.Join(opts.Config.State.Dir, "outbox"),
		Detector: opts.Config.Kafka.GroupID,
		NewSink:  opts.Sink,
		Tracer:   tracer,
		Deps: alerts.Deps{Now: now, Stdout: opts.Alerts, Logger: log.With("component", "alerts"),
			KafkaBrokers: opts.Config.Kafka.Brokers, KafkaDialer: d},
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// restore loads engine state, incidents and positions of the newest
// checkpoint. Entities stay in the store until their next event.
func (p *Pipeline) restore() error {
	if p.cfg.ScaleOut.Enabled {
		// Tasks restore when their partitions are assigned.
		p.m.mu.Lock()
		p.m.restored = true
		p.m.mu.Unlock()
		p.durable = map[state.Partition]int64{}
		return nil
	}
	n := len(p.shards)
	layout, err := p.store.Blob("shards")
	if err != nil {
		return err
	}
	if len(layout) == 1 && int(layout[0]) != n {
		return fmt.Errorf("restore: state was written by %d engine shards and engine.shards is %d: set it back, or start from an empty state.dir", layout[0], n)
	}
	if layout == nil && n > 1 {
		if old, err := p.store.Blob("engine"); err != nil || old != nil {
			return fmt.Errorf("restore: state was written by one engine and engine.shards is %d: set it back to 1, or start from an empty state.dir", n)
		}
	}
	for _, s := range p.shards {
		s.engine.SetStore(p.store)
		blob, err := p.store.Blob(blobName(s.i, n))
		if err != nil {
			return err
		}
		if blob != nil {
			if err := s.engine.Restore(blob); err != nil {
				return fmt.Errorf("restore engine state: %w", err)
			}
		}
	}
	al, err := p.store.Blob("alerts")
	if err != nil {
		return err
	}
	if err := p.builder.RestoreState(al); err != nil {
		return err
	}
	if err := p.store.CountEntities(); err != nil {
		return err
	}
	pos, err := p.store.Positions()
	if err != nil {
		return err
	}
	p.positions = pos
	p.durable = maps.Clone(pos)
	p.m.mu.Lock()
	p.m.restored = true
	p.m.mu.Unlock()
	if p.store.Checkpointed() {
		p.log.Info("state restored", "positions", len(pos), "shards", n)
	}
	return nil
}

// detection turns a detection into alerts. It runs on the shard that
// raised it; shards take turns on the builder. Detections are rare next
// to events, so the lock is cheap.
func (p *Pipeline) detection(s *shard, d *models.Detection) {
	p.alertMu.Lock()
	defer p.alertMu.Unlock()
	p.detections[d.Rule.String()]++
	b := p.builder
	if s.t != nil {
		b = s.t.builder
	}
	p.submit(b.Build(d), s.span)
}

// submit counts and hands alerts to the deliverer, stamped with the span
// of the batch that raised them; alertMu is held.
func (p *Pipeline) submit(as []*alerts.Alert, sc trace.SpanContext) {
	for _, a := range as {
		p.raised[alertKey{a.Rule, a.Severity, a.Incident.Status}]++
		if sc.IsValid() {
			a.TraceID, a.SpanID = sc.TraceID().String(), sc.SpanID().String()
		}
	}
	p.deliver.Submit(as...)
}

// resolve resolves the incidents of a shard's kinds that its engine's
// event time has left quiet. Each shard resolves only its own, as of its
// own watermark, so that a resolution never overtakes a detection of a
// shard that is behind.
func (p *Pipeline) resolve(s *shard) {
	p.alertMu.Lock()
	defer p.alertMu.Unlock()
	b := p.builder
	if s.t != nil {
		b = s.t.builder
	}
	p.submit(b.Resolve(s.engine.Watermark(), s.owns), s.span)
}

// writeAlert submits an alert the pipeline raises itself.
func (p *Pipeline) writeAlert(a *alerts.Alert) {
	p.alertMu.Lock()
	defer p.alertMu.Unlock()
	p.submit([]*alerts.Alert{a}, trace.SpanContext{})
}

// fail stops the pipeline from the inside, without committing: the
// restart resumes from the last checkpoint. The first error wins.
func (p *Pipeline) fail(err error) {
	p.fatalMu.Lock()
	first := p.fatal == nil
	if first {
		p.fatal = err
	}
	p.fatalMu.Unlock()
	if first {
		p.log.Error("stopping without committing; the restart resumes from the last checkpoint", "err", err)
		p.stop()
	}
}

// AlertsDelivered reports that every alert raised so far has been taken
// by every sink (or refused for good): nothing is queued or in the
// outbox. For tools that wait for the alerts of a known input.
func (p *Pipeline) AlertsDelivered() bool { return p.deliver.Idle() }

// Stats returns what the pipeline did so far; safe from any goroutine.
func (p *Pipeline) Stats() Stats { return p.m.stats() }

// Ready reports whether the pipeline is consuming: for /readyz.
func (p *Pipeline) Ready() (bool, string) { return p.m.ready(p.cfg.HTTP.ReadyMaxLag) }

// Run consumes until ctx ends, then stops fetching, drains, checkpoints
// and commits within the configured shutdown timeout. It returns nil on a
// clean stop.
func (p *Pipeline) Run(ctx context.Context) error {
	ctx, p.stop = context.WithCancel(ctx)
	defer p.stop()
	// Sinks deliver from the start (the outbox may hold alerts of the last
	// run) to the end, and get the shutdown timeout to empty it.
	p.deliver.Start()
	p.warnExpired()
	defer func() {
		// A sink that is down must not hold the shutdown for long: what
		// it has not taken stays in the outbox for the next start.
		dctx, cancel := context.WithTimeout(context.Background(), min(p.cfg.State.ShutdownTimeout.D(), 10*time.Second))
		defer cancel()
		if err := p.deliver.Close(dctx); err != nil {
			p.log.Error("close alert delivery", "err", err)
		}
		if n := p.deliver.Pending(); n > 0 {
			p.log.Warn("alerts left undelivered in the outbox for the next start", "alerts", n)
		}
	}()
	k := &p.cfg.Kafka
	topics := make([]string, len(k.Topics))
	for i, t := range k.Topics {
		topics[i] = t.Name
	}
	start := kafka.FirstOffset
	if k.StartOffset == "latest" {
		start = kafka.LastOffset
	}
	if p.cfg.ScaleOut.Enabled {
		n, err := ensureTopics(ctx, p.cfg, p.dialer)
		if err != nil {
			return fmt.Errorf("scale_out: %w", err)
		}
		p.tasks = newTaskSet(p.cfg, p.dialer, n)
		topics = p.tasks.topics
		if p.tasks.out != nil {
			defer p.tasks.out.Close()
			p.fwd = newForwarder(p.tasks)
		}
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                k.GroupID,
		Brokers:           k.Brokers,
		Dialer:            p.dialer,
		Topics:            topics,
		SessionTimeout:    k.SessionTimeout.D(),
		RebalanceTimeout:  k.RebalanceTimeout.D(),
		HeartbeatInterval: k.SessionTimeout.D() / 10,
		JoinGroupBackoff:  k.BackoffMax.D(),
		StartOffset:       start,
		Timeout:           k.DialTimeout.D(),
		ErrorLogger:       kafka.LoggerFunc(func(f string, a ...any) { p.log.Debug("kafka group", "msg", fmt.Sprintf(f, a...)) }),
	})
	if err != nil {
		return fmt.Errorf("create consumer group: %w", err)
	}
	dl := newDeadLetters(k.DeadLetterTopic, k.Brokers, k.FetchMaxBytes, p.dialer)
	defer dl.close()

	ownerDone := make(chan struct{})
	go func() {
		defer close(ownerDone)
		defer close(p.stopped)
		p.own()
	}()

	// Close the group when ctx ends: that ends the current generation,
	// whose functions drain, checkpoint and commit before Close returns.
	closed := make(chan bool, 1) // true: the group closed in time
	go func() {
		<-ctx.Done()
		done := make(chan struct{})
		go func() { group.Close(); close(done) }()
		t := time.NewTimer(p.cfg.State.ShutdownTimeout.D())
		defer t.Stop()
		select {
		case <-done:
			closed <- true
		case <-t.C:
			closed <- false
		}
	}()

	warn := newLimiter(10*time.Second, p.now)
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				break
			}
			p.m.setAssigned(nil, false)
			if warn.allow("group") {
				p.log.Warn("kafka consumer group unavailable, retrying", "err", err)
			}
			continue
		}
		p.generation(gen, dl)
	}
	if !<-closed {
		// A generation's functions are stuck (a broker that does not
		// answer the commit): leave them; the checkpoint they could not
		// commit is in the store and is where the next start resumes.
		return fmt.Errorf("shutdown: consumer group did not close within %v", p.cfg.State.ShutdownTimeout)
	}
	// A last checkpoint, for the case that no generation ran one.
	err = p.checkpointNow()
	close(p.in)
	<-ownerDone
	p.fatalMu.Lock()
	fatal := p.fatal
	p.fatalMu.Unlock()
	if fatal != nil {
		return fatal
	}
	return err
}

// generation runs one consumer group generation: a reader per assigned
// partition and a committer that commits durable positions, and at the
// end of the generation (revocation or shutdown) drains, checkpoints and
// commits before the partitions can move.
func (p *Pipeline) generation(gen *kafka.Generation, dl *deadLetters) {
	var assigned []state.Partition
	for topic, parts := range gen.Assignments {
		for _, a := range parts {
			assigned = append(assigned, state.Partition{Topic: topic, Partition: a.ID})
		}
	}
	p.m.setAssigned(assigned, true)
	p.log.Info("partitions assigned", "generation", gen.ID, "partitions", len(assigned))
	var durable map[state.Partition]int64
	if p.tasks != nil {
		// Restored before any reader starts: each reads from where its
		// task's state is.
		reply := make(chan taskReply, 1)
		p.in <- item{assign: assigned, tasks: reply}
		r := <-reply
		if r.err != nil {
			p.fail(r.err)
			return
		}
		durable = r.positions
	}
	if p.tasks == nil {
		p.in <- item{assign: assigned}
	}
	credits := perPartition(len(assigned))
	p.pool.grow(len(assigned) * credits)

	if durable == nil {
		p.durableMu.Lock()
		durable = maps.Clone(p.durable)
		p.durableMu.Unlock()
	}
	var readers sync.WaitGroup
	for topic, parts := range gen.Assignments {
		format := p.format(topic)
		for _, a := range parts {
			part := state.Partition{Topic: topic, Partition: a.ID}
			// The checkpoint is what state agrees with; the group's
			// committed offset only counts when there is none (state
			// lost or a new topic), and then the loss is said.
			off, ok := durable[part]
			if !ok {
				off = a.Offset
				if p.store.Checkpointed() && a.Offset >= 0 && p.tasks == nil {
					p.log.Warn("no checkpointed position for partition; starting at the group's committed offset", "partition", part.String(), "offset", a.Offset)
				}
			}
			r := &reader{
				p: part, k: &p.cfg.Kafka, dialer: p.dialer, dec: newDecoder(format, p.topic(topic), &p.cfg.Input, len(assigned)),
				limit: p.cfg.Input.MaxMessageBytes, pool: p.pool, out: p.in, dl: dl, m: p.m, log: p.log,
				warn: newLimiter(10*time.Second, p.now), now: p.now, msgs: p.m.topic(topic), lag: p.m.partLag(part),
				tracer: p.tracer, headers: p.headers, credits: make(chan struct{}, credits),
			}
			if repartitionTopic(p.cfg, topic) {
				r.routed = &routedDecoder{inner: r.dec}
				r.dec = r.routed
			}
			r.split, _ = r.dec.(event.Splitter)
			readers.Add(1)
			gen.Start(func(ctx context.Context) {
				defer readers.Done()
				r.run(ctx, off)
			})
		}
	}
	gen.Start(func(ctx context.Context) {
		p.commitLoop(ctx, gen, assigned, &readers)
	})
}

// topic returns the config of an input topic.
func (p *Pipeline) topic(name string) config.Topic {
	if repartitionTopic(p.cfg, name) {
		return config.Topic{Name: name, Format: event.InternalFormat}
	}
	for _, t := range p.cfg.Kafka.Topics {
		if t.Name == name {
			return t
		}
	}
	return config.Topic{Name: name, Format: p.cfg.Input.Format, LogLinePrefix: p.cfg.Input.LogLinePrefix}
}

func (p *Pipeline) format(topic string) string {
	if repartitionTopic(p.cfg, topic) {
		return event.InternalFormat
	}
	for _, t := range p.cfg.Kafka.Topics {
		if t.Name == topic {
			return t.Format
		}
	}
	return p.cfg.Input.Format
}

// newDecoder returns a decoder for one partition reader. The readers of a
// generation share the principal interner budget of one decoder: interned
// principals are a cache, and a flood of unique ones must not cost its
// bound once per partition.
func newDecoder(format string, t config.Topic, in *config.Input, readers int) event.Decoder {
	d, err := event.NewDecoder(format, event.Limits{MaxMessageBytes: in.MaxMessageBytes, MaxRecordIDs: in.MaxRecordIDs,
		PrincipalIntern: max(event.DefaultInternCapacity/max(readers, 1), 1<<12)}, event.Options{LogLinePrefix: t.LogLinePrefix})
	if err != nil {
		// The config was validated by building this same decoder.
		panic(fmt.Sprintf("stream: %v", err))
	}
	return d
}

// commitLoop commits each durable checkpoint's positions for the
// generation's partitions. When the generation ends it waits for the
// readers to stop, has the dispatcher drain the shards and checkpoint, and
// commits that.
func (p *Pipeline) commitLoop(ctx context.Context, gen *kafka.Generation, assigned []state.Partition, readers *sync.WaitGroup) {
	commit := func() {
		p.durableMu.Lock()
		offs := map[string]map[int]int64{}
		for _, a := range assigned {
			if off, ok := p.durable[a]; ok && off >= 0 {
				if offs[a.Topic] == nil {
					offs[a.Topic] = map[int]int64{}
				}
				offs[a.Topic][a.Partition] = off
			}
		}
		p.durableMu.Unlock()
		if err := gen.CommitOffsets(offs); err != nil {
			// Not fatal: the checkpoint holds the positions, and the next
			// commit carries them.
			p.m.commitErrors.Add(1)
			p.log.Warn("commit offsets", "generation", gen.ID, "err", err)
		}
	}
	for {
		select {
		case <-p.durableC:
			commit()
		case <-ctx.Done():
			readers.Wait()
			if err := p.checkpointNow(); err != nil {
				p.log.Error("final checkpoint of generation", "generation", gen.ID, "err", err)
				return
			}
			commit()
			p.m.setAssigned(nil, false)
			p.log.Info("partitions released", "generation", gen.ID)
			return
		}
	}
}

// checkpointNow has the dispatcher hand on everything queued before it
// and checkpoint.
func (p *Pipeline) checkpointNow() error {
	done := make(chan error, 1)
	p.in <- item{ckpt: done}
	return <-done
}

// repartitionTopic reports whether topic is one of scale-out's repartition
// topics, whose records are the detector's own.
func repartitionTopic(cfg *config.Config, topic string) bool {
	if !cfg.ScaleOut.Enabled {
		return false
	}
	for _, k := range cfg.ScaleOut.Repartition {
		if cfg.ScaleOut.RepartitionTopic(&cfg.Kafka, k) == topic {
			return true
		}
	}
	return false
}

// topicNames is every topic read: the input topics, and with scale-out
// the repartition topics.
func topicNames(cfg *config.Config) []string {
	var out []string
	for _, t := range cfg.Kafka.Topics {
		out = append(out, t.Name)
	}
	if cfg.ScaleOut.Enabled {
		for _, k := range cfg.ScaleOut.Repartition {
			out = append(out, cfg.ScaleOut.RepartitionTopic(&cfg.Kafka, k))
		}
	}
	return out
}
