package alerts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// RuleSinkFailing is the rule of the alert the detector raises about
// itself when a sink has failed for longer than
// alerts.outbox.sink_failing_after: alerts are piling up undelivered, and
// an attacker who can break the alert path can work unseen.
const RuleSinkFailing = "detector_sink_failing"

// DelivererOptions configure a Deliverer.
type DelivererOptions struct {
	Config config.Alerts
	// Dir is the outbox directory.
	Dir  string
	Deps Deps
	// Detector names this detector in its own alerts (the consumer group).
	Detector string
	// NewSink builds a sink; nil means the real one of each type. Tests of
	// the delivery logic itself may inject faulty sinks.
	NewSink func(config.Sink, Deps) (Sink, error)
	// Tracer spans every delivery attempt, as a child of the trace of the
	// batch that raised its first alert; nil: no tracing.
	Tracer trace.Tracer
	// Sleep waits out a backoff; nil means a timer. Tests inject one that
	// does not wait, so that no test depends on wall-clock time.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Deliverer moves alerts from the builder to the sinks through the
// outbox. Submit queues, a writer goroutine persists what was queued in
// batches (one fsync per batch), and one worker per sink delivers what it
// has not taken yet, oldest first, retrying with backoff. Sync lets the
// pipeline wait until everything submitted is durable before it commits
// the offsets of the events that raised it.
type Deliverer struct {
	cfg    config.Alerts
	ob     *Outbox
	log    *slog.Logger
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	names  []string
	w      []*worker
	detect string
	tracer trace.Tracer

	mu        sync.Mutex
	queue     []*Alert
	submitted uint64
	persisted uint64
	round     chan struct{} // closed and replaced after every write round
	writeErr  error
	wakeW     chan struct{}

	ctx      context.Context
	cancel   context.CancelFunc
	progress chan struct{} // signalled after every persist and ack, for Close
	wg       sync.WaitGroup
}

// worker delivers to one sink.
type worker struct {
	i     int
	cfg   config.Sink
	sink  Sink
	route Route
	wake  chan struct{}

	delivered, failed, dropped, retries atomic.Uint64
	failing                             atomic.Bool
	raised                              bool // a sink-failing alert is open
	failingSince                        time.Time
	selfIncident                        string
	lastRefusalLog                      time.Time
	refusedSince                        int // refusals not logged yet
}

// SinkStats are one sink's delivery counters.
type SinkStats struct {
	Name string
	Type string
	// Delivered counts alerts acknowledged; Dropped those refused for
	// good (a 4xx other than 408/429); Failed the attempts that failed;
	// Retries the failed attempts that will be repeated.
	Delivered, Dropped, Failed, Retries uint64
	// Failing is true from a retryable failure to the next success.
	Failing bool
}

// NewDeliverer opens the outbox and builds the sinks; Start runs them.
func NewDeliverer(opts DelivererOptions) (*Deliverer, error) {
	opts.Deps.defaults()
	if opts.NewSink == nil {
		opts.NewSink = NewSink
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Tracer == nil {
		opts.Tracer = noop.NewTracerProvider().Tracer("")
	}
	sinks := opts.Config.Sinks
	if len(sinks) == 0 {
		sinks = []config.Sink{DefaultSink()}
	}
	d := &Deliverer{
		cfg: opts.Config, log: opts.Deps.Logger, now: opts.Deps.Now, sleep: opts.Sleep, detect: opts.Detector, tracer: opts.Tracer,
		round: make(chan struct{}), wakeW: make(chan struct{}, 1), progress: make(chan struct{}, 1),
	}
	for i, sc := range sinks {
		s, err := opts.NewSink(sc, opts.Deps)
		if err != nil {
			d.closeSinks()
			return nil, fmt.Errorf("sink %s: %w", sc.Name, err)
		}
		d.names = append(d.names, sc.Name)
		d.w = append(d.w, &worker{i: i, cfg: sc, sink: s, route: NewRoute(sc), wake: make(chan struct{}, 1)})
	}
	ob, err := OpenOutbox(opts.Dir, opts.Config.Outbox.MaxEntries, d.names, d.log)
	if err != nil {
		d.closeSinks()
		return nil, err
	}
	d.ob = ob
	for _, w := range d.w {
		st, ok := w.sink.(Stateful)
		if !ok {
			continue
		}
		v, err := ob.SinkState(w.cfg.Name)
		if err == nil && v != nil {
			err = st.LoadState(v)
		}
		if err != nil {
			d.closeSinks()
			ob.Close()
			return nil, fmt.Errorf("sink %s: load state: %w", w.cfg.Name, err)
		}
	}
	return d, nil
}

// DefaultSink is the sink of a config that names none: the native alert
// as JSON lines on stdout.
func DefaultSink() config.Sink {
	c := config.Default()
	c.Alerts.Sinks = []config.Sink{{Name: "stdout", Type: config.SinkStdout}}
	c.Alerts.FillDefaults()
	return c.Alerts.Sinks[0]
}

// Start runs the writer and one worker per sink until Close.
func (d *Deliverer) Start() {
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Add(1 + len(d.w))
	go d.writer()
	for _, w := range d.w {
		go d.work(w)
	}
}

// Submit queues alerts for persistence and delivery; it never blocks on
// disk or network.
func (d *Deliverer) Submit(as ...*Alert) {
	if len(as) == 0 {
		return
	}
	d.mu.Lock()
	d.queue = append(d.queue, as...)
	d.submitted += uint64(len(as))
	d.mu.Unlock()
	select {
	case d.wakeW <- struct{}{}:
	default:
	}
}

// Sync returns once every alert submitted before the call is in the
// outbox on disk, or the first persistence error.
func (d *Deliverer) Sync(ctx context.Context) error {
	d.mu.Lock()
	target := d.submitted
	for d.persisted < target && d.writeErr == nil {
		round := d.round
		d.mu.Unlock()
		select {
		case <-round:
		case <-ctx.Done():
			return fmt.Errorf("wait for alert outbox: %w", ctx.Err())
		}
		d.mu.Lock()
	}
	err := d.writeErr
	d.mu.Unlock()
	return err
}

func (d *Deliverer) writer() {
	defer d.wg.Done()
	for {
		select {
		case <-d.wakeW:
		case <-d.ctx.Done():
			return
		}
		d.mu.Lock()
		batch := d.queue
		d.queue = nil
		d.mu.Unlock()
		err := d.persist(batch)
		d.mu.Lock()
		if err != nil && d.writeErr == nil {
			d.writeErr = err
			d.log.Error("alert outbox write failed: alerts are not delivered", "err", err)
		}
		if err == nil {
			d.persisted += uint64(len(batch))
		}
		close(d.round)
		d.round = make(chan struct{})
		d.mu.Unlock()
		d.signal()
	}
}

func (d *Deliverer) signal() {
	select {
	case d.progress <- struct{}{}:
	default:
	}
}

// Idle reports that nothing is queued, unpersisted or undelivered.
func (d *Deliverer) Idle() bool { return d.idle() }

// idle reports that nothing is queued, unpersisted or undelivered.
//
// The outbox is read first: a worker submits a sink's resolution before it
// acks the delivery that proved the recovery, so an outbox found empty
// means that submission is already counted. Read the other way round, a
// Close could see an empty queue, then an empty outbox, and stop before
// the resolution was delivered.
func (d *Deliverer) idle() bool {
	if d.ob.Len() != 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.queue) == 0 && (d.persisted == d.submitted || d.writeErr != nil)
}

// persist routes and stores a batch, then wakes the sinks it concerns.
func (d *Deliverer) persist(batch []*Alert) error {
	if len(batch) == 0 {
		return nil
	}
	masks := make([]uint64, len(batch))
	var all uint64
	for i, a := range batch {
		for _, w := range d.w {
			if w.route.Match(a) {
				masks[i] |= 1 << w.i
			}
		}
		all |= masks[i]
	}
	if _, err := d.ob.Add(batch, masks, d.names); err != nil {
		return err
	}
	for _, w := range d.w {
		if all&(1<<w.i) != 0 {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// work delivers to one sink until Close.
func (d *Deliverer) work(w *worker) {
	defer d.wg.Done()
	var refresh <-chan time.Time
	if r, ok := w.sink.(Refresher); ok && r.RefreshInterval() > 0 {
		t := time.NewTicker(r.RefreshInterval())
		defer t.Stop()
		refresh = t.C
	}
	attempt := 0
	for {
		batch := d.ob.Pending(w.i, w.cfg.BatchSize)
		if len(batch) == 0 {
			select {
			case <-d.ctx.Done():
				return
			case <-w.wake:
			case <-refresh:
				d.refresh(w)
			}
			continue
		}
		retry, err := d.notify(w, batch)
		if err != nil && retry {
			if d.ctx.Err() != nil {
				return
			}
			w.failed.Add(1)
			w.retries.Add(1)
			d.failure(w, err)
			wait := backoff(w.cfg.BackoffMin.D(), w.cfg.BackoffMax.D(), attempt)
			attempt++
			if d.sleep(d.ctx, wait) != nil {
				return
			}
			continue
		}
		attempt = 0
		if err != nil {
			w.failed.Add(1)
			w.dropped.Add(uint64(len(batch)))
			// A misconfigured receiver refuses every alert: say so once a
			// minute, with how many, not once per alert.
			w.refusedSince += len(batch)
			if now := d.now(); now.Sub(w.lastRefusalLog) >= time.Minute {
				d.log.Warn("alert refused by sink for good: dropped for this sink", "sink", w.cfg.Name, "alerts", w.refusedSince, "err", err)
				w.lastRefusalLog, w.refusedSince = now, 0
			}
		} else {
			w.delivered.Add(uint64(len(batch)))
			d.recovered(w)
			if st, ok := w.sink.(Stateful); ok {
				if v, err := st.SaveState(); err != nil {
					d.log.Warn("sink state not saved", "sink", w.cfg.Name, "err", err)
				} else if err := d.ob.SaveSinkState(w.cfg.Name, v); err != nil {
					d.log.Warn("sink state not saved", "sink", w.cfg.Name, "err", err)
				}
			}
		}
		if err := d.ob.Ack(w.i, batch, d.names); err != nil {
			d.log.Error("alert outbox ack failed", "sink", w.cfg.Name, "err", err)
		}
		d.signal()
	}
}

// notify makes one delivery attempt under the sink's timeout, in a span
// that continues the trace of the batch that raised the first alert and
// links the others', so a delivery shows up in the trace of its cause.
func (d *Deliverer) notify(w *worker, batch []*Alert) (bool, error) {
	ctx := d.ctx
	var links []trace.Link
	for i, a := range batch {
		sc := a.spanContext()
		if !sc.IsValid() {
			continue
		}
		if i == 0 {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		} else {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := d.tracer.Start(ctx, "deliver alerts", trace.WithSpanKind(trace.SpanKindProducer), trace.WithLinks(links...),
		trace.WithAttributes(attribute.String("exfilguard.sink.name", w.cfg.Name), attribute.String("exfilguard.sink.type", w.cfg.Type),
			attribute.Int("exfilguard.alerts", len(batch))))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout.D())
	defer cancel()
	retry, err := w.sink.Notify(ctx, batch...)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "delivery failed")
		span.SetAttributes(attribute.Bool("exfilguard.retry", retry))
	}
	return retry, err
}

func (d *Deliverer) refresh(w *worker) {
	r := w.sink.(Refresher)
	ctx, cancel := context.WithTimeout(d.ctx, w.cfg.Timeout.D())
	defer cancel()
	if _, err := r.Refresh(ctx); err != nil && d.ctx.Err() == nil {
		w.failed.Add(1)
		d.failure(w, err)
	}
}

// failure logs a failed attempt and raises the sink-failing alert once
// the sink has failed without a success for the configured period.
func (d *Deliverer) failure(w *worker, err error) {
	now := d.now()
	if !w.failing.Load() {
		w.failing.Store(true)
		w.failingSince = now
		d.log.Warn("alert sink failing: retrying with backoff", "sink", w.cfg.Name, "type", w.cfg.Type, "err", err)
	}
	if w.raised || now.Sub(w.failingSince) < d.cfg.Outbox.SinkFailingAfter.D() {
		return
	}
	w.raised = true
	a := d.sinkAlert(w, now, StatusOpened, err)
	w.selfIncident = a.Incident.ID
	d.log.Error("alert sink failing for too long: raised an alert about the detector", "sink", w.cfg.Name, "since", w.failingSince, "err", err)
	d.Submit(a)
}

// recovered resolves the sink-failing alert after a success.
func (d *Deliverer) recovered(w *worker) {
	if !w.failing.Load() {
		return
	}
	w.failing.Store(false)
	d.log.Info("alert sink recovered", "sink", w.cfg.Name, "failing_for", d.now().Sub(w.failingSince).String())
	if w.raised {
		w.raised = false
		d.Submit(d.sinkAlert(w, d.now(), StatusResolved, nil))
	}
}

func (d *Deliverer) sinkAlert(w *worker, now time.Time, status string, cause error) *Alert {
	incSum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%s/%d", RuleSinkFailing, d.detect, w.cfg.Name, w.failingSince.UnixNano()))
	inc := hex.EncodeToString(incSum[:12])
	idSum := sha256.Sum256([]byte(inc + "/" + status))
	ts := now.UTC().Format(time.RFC3339Nano)
	failing := now.Sub(w.failingSince).Round(time.Second)
	seq := 0
	summary := fmt.Sprintf("Alert sink %s (%s) has failed every delivery for %s; %d alerts wait in the outbox. "+
		"Alerts are kept and will be delivered when it recovers, but nobody sees them through it now: check the receiver and the detector's logs.",
		w.cfg.Name, w.cfg.Type, failing, d.ob.Len())
	if cause != nil {
		summary += " Last error: " + cause.Error()
	}
	if status == StatusResolved {
		seq = 1
		summary = fmt.Sprintf("Resolved: alert sink %s (%s) delivers again after failing for %s.", w.cfg.Name, w.cfg.Type, failing)
	}
	return &Alert{
		ID:          hex.EncodeToString(idSum[:12]),
		Rule:        RuleSinkFailing,
		Severity:    "high",
		Entity:      EntityRef{Kind: "detector", Key: d.detect},
		EventTime:   ts,
		DetectedAt:  ts,
		Window:      Window{Start: w.failingSince.UTC().Format(time.RFC3339Nano), End: ts, Horizon: config.Duration(failing).String()},
		Observed:    map[string]float64{"failing_seconds": failing.Seconds(), "outbox_depth": float64(d.ob.Len())},
		Expected:    map[string]float64{"failing_seconds": d.cfg.Outbox.SinkFailingAfter.D().Seconds()},
		Summary:     summary,
		Objects:     []string{w.cfg.Name},
		MitreAttack: []models.Technique{{Tactic: "Defense Evasion", Technique: "T1562", Name: "Impair Defenses"}},
		Incident:    Incident{ID: inc, Status: status, Sequence: seq, OpenedAt: w.failingSince.UTC().Format(time.RFC3339Nano), Detections: 1},
		Basis:       "prior",
		Runbook:     runbook(d.cfg.RunbookURL, RuleSinkFailing),
	}
}

func runbook(tmpl, rule string) string {
	if tmpl == "" {
		return ""
	}
	return strings.ReplaceAll(tmpl, "{rule}", rule)
}

// backoff is exponential with jitter: attempt n waits a random time in
// [b/2, b] where b = min·2ⁿ capped at max, so that detectors restarted
// together do not retry in lockstep.
func backoff(min, max time.Duration, attempt int) time.Duration {
	b := min
	for i := 0; i < attempt && b < max; i++ {
		b *= 2
	}
	if b > max {
		b = max
	}
	return b/2 + time.Duration(rand.Int64N(int64(b/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns every sink's counters, in config order.
func (d *Deliverer) Stats() []SinkStats {
	out := make([]SinkStats, len(d.w))
	for i, w := range d.w {
		out[i] = SinkStats{Name: w.cfg.Name, Type: w.cfg.Type, Delivered: w.delivered.Load(), Dropped: w.dropped.Load(),
			Failed: w.failed.Load(), Retries: w.retries.Load(), Failing: w.failing.Load()}
	}
	return out
}

// Pending is the outbox depth: alerts some sink has yet to take.
func (d *Deliverer) Pending() int { return d.ob.Len() }

// Dropped counts alerts the full outbox evicted undelivered.
func (d *Deliverer) Dropped() uint64 { return d.ob.Dropped() }

// Close persists what was submitted, gives the sinks until ctx is done to
// deliver what the outbox holds, then stops them and closes the outbox.
// What is still undelivered stays in the outbox for the next start.
func (d *Deliverer) Close(ctx context.Context) error {
	if d.ctx == nil {
		d.closeSinks()
		return d.ob.Close()
	}
	err := d.Sync(ctx)
	// Sinks go on until nothing is left (a recovering sink may still
	// raise its resolution) or ctx ends.
	for !d.idle() {
		select {
		case <-d.progress:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	d.cancel()
	d.wg.Wait()
	d.closeSinks()
	return errors.Join(err, d.ob.Close())
}

func (d *Deliverer) closeSinks() {
	for _, w := range d.w {
		if c, ok := w.sink.(Flusher); ok {
			if err := c.Close(); err != nil {
				d.log.Warn("close sink", "sink", w.cfg.Name, "err", err)
			}
		}
	}
}

// StoreSize is the outbox store's LSM and value-log size in bytes.
func (d *Deliverer) StoreSize() (lsm, vlog int64) { return d.ob.Size() }
