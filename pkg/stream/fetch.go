package stream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/state"
)

// Special start offsets, as kafka-go's.
const (
	startFirst = kafka.FirstOffset // -2
	startLast  = kafka.LastOffset  // -1
)

// reader is the fetch loop of one assigned partition: it fetches, decodes
// into pooled batches and hands them to the dispatcher, and survives every
// broker error by reconnecting with backoff. It returns only when its
// context ends (the generation or the process), because kafka-go ends a
// generation as soon as any of its functions returns.
type reader struct {
	p      state.Partition
	k      *config.Kafka
	dialer *kafka.Dialer
	dec    event.Decoder
	// split is dec as an event.Splitter when its messages may carry
	// several records, and recs its reused result.
	split event.Splitter
	recs  [][]byte
	// routed is dec when the partition is a repartition topic's: it
	// says where each event came from.
	routed *routedDecoder
	// limit is input.max_message_bytes: larger messages are dead-lettered
	// as too_large without being decoded.
	limit int
	buf   []byte
	pool  *pool
	// credits holds one token per batch of this partition taken and not
	// yet released (at most batchesPerPartition; see merge.go).
	credits chan struct{}
	// idleSent: the dispatcher was told this partition is caught up and
	// has nothing queued, and nothing was handed on since.
	idleSent bool
	out      chan<- item
	dl       *deadLetters
	m        *metrics
	log      *slog.Logger
	warn     *limiter
	now      func() time.Time
	// msgs counts this topic's messages; lag is this partition's high
	// watermark and position, for the consumer-lag gauge.
	msgs *atomic.Uint64
	lag  *partLag
	// tracer spans every fetch; with headers, each message's W3C trace
	// context (a producer's) becomes a link of the fetch span. Reading
	// headers costs an allocation per message, so only when tracing.
	tracer  trace.Tracer
	headers bool
	span    trace.Span // the current fetch's

	conn *kafka.Conn
	// next is the offset of the next message to process; negative before
	// the first fetch (startFirst or startLast).
	next int64
	cur  *batch
}

// run consumes from offset until ctx ends. What it has handed over is
// processed; what it holds when ctx ends is dropped, and its positions are
// not advanced, so it is fetched again after the restart or rebalance.
func (r *reader) run(ctx context.Context, offset int64) {
	r.next = offset
	r.buf = make([]byte, r.limit+1)
	backoff := r.k.BackoffMin.D()
	defer func() {
		r.disconnect()
		if r.cur != nil {
			r.pool.c <- r.cur // never blocks: the pool has room for every batch
			r.cur = nil
			<-r.credits
		}
	}()
	for ctx.Err() == nil {
		if r.conn == nil {
			if err := r.connect(ctx); err != nil {
				r.m.fetchErrors.Add(1)
				r.m.setConnected(r.p, false)
				if r.warn.allow("connect") {
					r.log.Warn("kafka partition unavailable, retrying", "partition", r.p.String(), "backoff", backoff, "err", err)
				}
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(2*backoff, r.k.BackoffMax.D())
				continue
			}
			r.m.setConnected(r.p, true)
			backoff = r.k.BackoffMin.D()
		}
		if err := r.fetch(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.m.fetchErrors.Add(1)
			if r.warn.allow("fetch") {
				r.log.Warn("kafka fetch failed, reconnecting", "partition", r.p.String(), "err", err)
			}
			r.disconnect()
			r.m.setConnected(r.p, false)
		}
	}
}

// connect dials the partition's leader through any bootstrap broker and
// seeks to the next offset.
func (r *reader) connect(ctx context.Context) error {
	var err error
	for _, b := range r.k.Brokers {
		var c *kafka.Conn
		c, err = r.dialer.DialLeader(ctx, "tcp", b, r.p.Topic, r.p.Partition)
		if err != nil {
			continue
		}
		if err = r.seek(c); err != nil {
			c.Close()
			continue
		}
		r.conn = c
		return nil
	}
	return err
}

func (r *reader) seek(c *kafka.Conn) error {
	first, last, err := c.ReadOffsets()
	if err != nil {
		return err
	}
	switch {
	case r.next == startFirst:
		r.next = first
	case r.next == startLast:
		r.next = last
	case r.next < first:
		// Retention deleted what we had not consumed: say how much, then
		// go on from what is left.
		r.m.retentionLost.Add(uint64(first - r.next))
		r.log.Error("kafka retention deleted unconsumed messages", "partition", r.p.String(), "from", r.next, "to", first, "lost", first-r.next)
		r.next = first
	case r.next > last:
		// The topic was recreated or truncated under us.
		r.log.Error("kafka position beyond the end of the partition, starting at its end", "partition", r.p.String(), "position", r.next, "end", last)
		r.next = last
	}
	_, err = c.Seek(r.next, kafka.SeekAbsolute)
	return err
}

func (r *reader) disconnect() {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

// fetch reads one fetch response and hands on what it decoded.
func (r *reader) fetch(ctx context.Context) error {
	c := r.conn
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	wait := r.k.FetchMaxWait.D()
	if err := c.SetReadDeadline(r.now().Add(wait + r.k.DialTimeout.D())); err != nil {
		return err
	}
	b := c.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: r.k.FetchMaxBytes, MaxWait: wait})
	_, r.span = r.tracer.Start(ctx, "fetch batch", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.destination.name", r.p.Topic), attribute.Int("messaging.destination.partition.id", r.p.Partition)))
	defer r.span.End()
	first := r.next
	var tooLarge bool
	if r.headers {
		if err := r.readTraced(ctx, b); err != nil {
			b.Close()
			return err
		}
	}
	for !r.headers {
		n, err := b.Read(r.buf)
		if errors.Is(err, io.ErrShortBuffer) {
			tooLarge = true
			break
		}
		if err != nil {
			break
		}
		off := b.Offset() - 1
		if off < r.next {
			continue // a compressed batch may start before the position
		}
		if err := r.message(ctx, off, r.buf[:n]); err != nil {
			b.Close()
			return err
		}
	}
	r.lag.hw.Store(b.HighWaterMark())
	r.lag.next.Store(r.next)
	r.span.SetAttributes(attribute.Int64("messaging.batch.message_count", r.next-first))
	err := b.Close()
	if errors.Is(err, kafka.RequestTimedOut) || (tooLarge && errors.Is(err, io.ErrShortBuffer)) {
		// RequestTimedOut is kafka-go's word for a fetch that waited
		// FetchMaxWait and found nothing new: a quiet partition, not an
		// error. A short buffer is the large message, handled below.
		err = nil
	}
	if err == nil && tooLarge {
		err = r.oversized(ctx)
	}
	if err != nil {
		return err
	}
	return r.handOn(ctx, true)
}

// maxLinks bounds the producer contexts linked from one fetch span.
const maxLinks = 32

// readTraced reads a fetch with ReadMessage, which gives the headers: a
// message's W3C traceparent links the fetch span to its producer's trace.
func (r *reader) readTraced(ctx context.Context, b *kafka.Batch) error {
	var linked []trace.TraceID
	for {
		msg, err := b.ReadMessage()
		if err != nil {
			return nil // the cause, if any, is b.Close's
		}
		if msg.Offset < r.next {
			continue
		}
		if len(linked) < maxLinks {
			sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, headerCarrier(msg.Headers)))
			if sc.IsValid() && !slices.Contains(linked, sc.TraceID()) {
				linked = append(linked, sc.TraceID())
				r.span.AddLink(trace.Link{SpanContext: sc})
			}
		}
		if err := r.message(ctx, msg.Offset, msg.Value); err != nil {
			return err
		}
	}
}

// headerCarrier reads W3C trace context from Kafka headers.
type headerCarrier []kafka.Header

func (h headerCarrier) Get(key string) string {
	for _, x := range h {
		if strings.EqualFold(x.Key, key) {
			return string(x.Value)
		}
	}
	return ""
}

func (h headerCarrier) Set(string, string) {}

func (h headerCarrier) Keys() []string {
	out := make([]string, len(h))
	for i, x := range h {
		out[i] = x.Key
	}
	return out
}

// message decodes one message into the current batch, or dead-letters it.
// A message of several records (see event.Splitter) goes whole into one
// batch when it fits, so that a crash cannot split it between a batch that
// was checkpointed and one that was not; one larger than a batch spans
// batches, and the positions of the earlier ones stay before it, so after a
// crash in between its first records are counted again (at least once,
// never lost).
func (r *reader) message(ctx context.Context, off int64, value []byte) error {
	if err := r.take(ctx); err != nil {
		return err
	}
	r.m.messages.Add(1)
	r.msgs.Add(1)
	switch {
	case len(value) > r.limit:
		if err := r.reject(ctx, off, value, &event.DecodeError{Reason: event.ReasonTooLarge, Offset: -1}); err != nil {
			return err
		}
	case r.split != nil:
		recs, err := r.split.Split(r.recs[:0], value)
		r.recs = recs[:0]
		if err != nil {
			if err := r.reject(ctx, off, value, err); err != nil {
				return err
			}
			break
		}
		if r.cur.n > 0 && len(recs) > batchSize-r.cur.n {
			if err := r.flush(ctx); err != nil {
				return err
			}
			if err := r.take(ctx); err != nil {
				return err
			}
		}
		for _, rec := range recs {
			if err := r.decode(ctx, off, rec); err != nil {
				return err
			}
			if r.cur.n == batchSize {
				if err := r.flush(ctx); err != nil {
					return err
				}
				if err := r.take(ctx); err != nil {
					return err
				}
			}
		}
	default:
		if err := r.decode(ctx, off, value); err != nil {
			return err
		}
	}
	r.next = off + 1
	r.cur.next = r.next
	if r.cur.n == batchSize {
		return r.flush(ctx)
	}
	return nil
}

// take makes sure there is a current batch to decode into.
func (r *reader) take(ctx context.Context) error {
	if r.cur != nil {
		return nil
	}
	select {
	case r.credits <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case r.cur = <-r.pool.c:
	case <-ctx.Done():
		<-r.credits
		return ctx.Err()
	}
	r.cur.part, r.cur.n, r.cur.fetched, r.cur.fetch = r.p, 0, r.now(), r.span.SpanContext()
	r.cur.next, r.cur.caughtUp, r.cur.credits = r.next, false, r.credits
	return nil
}

// decode decodes one record into the next slot of the current batch. A
// record that holds no access (event.Reason.Ignored) is only counted.
func (r *reader) decode(ctx context.Context, off int64, rec []byte) error {
	derr := r.dec.Decode(rec, &r.cur.events[r.cur.n])
	if derr == nil {
		r.cur.offs[r.cur.n] = off
		if r.routed != nil {
			r.cur.src[r.cur.n] = r.routed.src
		}
		r.cur.n++
		return nil
	}
	if reason, _ := event.ReasonOf(derr); reason.Ignored() {
		r.m.ignored(reason)
		return nil
	}
	return r.reject(ctx, off, rec, derr)
}

// reject counts, logs (rate limited) and dead-letters a message that
// cannot be an event. The partition moves on; only a dead-letter write
// that may yet succeed (the broker is away) holds it, so that a dead
// letter is not lost to a commit. One that never can (too large for the
// dead-letter topic, refused) is logged and counted instead.
func (r *reader) reject(ctx context.Context, off int64, value []byte, derr error) error {
	reason, _ := event.ReasonOf(derr)
	if r.dl != nil {
		if err := r.dl.send(ctx, r.p, off, value, reason.String()); err != nil {
			if !permanent(err) {
				return err
			}
			r.m.deadLetterFailed.Add(1)
			r.log.Error("dead letter refused; message skipped", "partition", r.p.String(), "offset", off, "reason", reason.String(), "err", err)
		} else {
			r.m.deadLettered.Add(1)
		}
	}
	r.m.rejected(reason)
	if r.warn.allow(reason.String()) {
		r.log.Warn("message rejected", "reason", reason.String(), "partition", r.p.String(), "offset", off, "err", derr)
	}
	return nil
}

// oversized reads a fetch again after a message did not fit the read
// buffer: with ReadMessage, which allocates every message but skips those
// before the position itself, so the large one is dead-lettered with its
// bytes and whatever shares its record batch is processed. Later fetches
// start past it, so this happens once per large record batch.
func (r *reader) oversized(ctx context.Context) error {
	c := r.conn
	if _, err := c.Seek(r.next, kafka.SeekAbsolute); err != nil {
		return err
	}
	if err := c.SetReadDeadline(r.now().Add(r.k.FetchMaxWait.D() + r.k.DialTimeout.D())); err != nil {
		return err
	}
	b := c.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: r.k.FetchMaxBytes, MaxWait: r.k.FetchMaxWait.D()})
	for {
		msg, err := b.ReadMessage()
		if err != nil {
			break
		}
		if msg.Offset < r.next {
			continue
		}
		if err := r.message(ctx, msg.Offset, msg.Value); err != nil {
			b.Close()
			return err
		}
	}
	if err := b.Close(); err != nil && !errors.Is(err, kafka.RequestTimedOut) {
		return err
	}
	return nil
}

// flush hands the current batch to the dispatcher.
func (r *reader) flush(ctx context.Context) error {
	return r.handOn(ctx, false)
}

// handOn hands the current batch to the dispatcher. At the end of a fetch
// (end), the batch says whether the reader has read up to the high
// watermark that fetch returned; a batch handed on because it is full, in
// the middle of a fetch, never does.
func (r *reader) handOn(ctx context.Context, end bool) error {
	hw := r.lag.hw.Load()
	caughtUp := end && hw >= 0 && r.next >= hw
	if r.cur == nil {
		// Nothing read: tell the merge once that nothing older is on
		// its way, so that it does not wait for this partition.
		if !caughtUp || r.idleSent {
			return nil
		}
		select {
		case r.out <- item{idle: true, part: r.p}:
			r.idleSent = true
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.cur.caughtUp = caughtUp
	select {
	case r.out <- item{b: r.cur}:
		r.cur = nil
		r.idleSent = false
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sleep waits d or until ctx ends, reporting whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
