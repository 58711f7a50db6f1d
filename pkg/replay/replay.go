// Package replay runs the detection engine over recorded logs in event
// time: the backtest of a config change, and the reference that the live
// pipeline must agree with.
package replay

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// Options configures one replay.
type Options struct {
	Config *config.Config
	// Input is read line by line; gzip is recognised by its magic bytes.
	Input io.Reader
	// Alerts receives the alerts as JSONL.
	Alerts io.Writer
	// Pseudonymizer names customer accounts in alerts; nil redacts them.
	Pseudonymizer *alerts.Pseudonymizer
	// Logger gets rate-limited warnings about skipped lines.
	Logger *slog.Logger
	// Now is the wall clock, for throughput only; nil means time.Now.
	Now func() time.Time
}

// Summary is what a replay did.
type Summary struct {
	Lines        uint64
	Events       uint64 // decoded
	Late         uint64 // older than the allowed lateness, kept out of windows
	Future       uint64 // too far ahead of event time to believe, kept out
	DecodeErrors map[string]uint64
	// Ignored counts lines without an access in them (a PostgreSQL log's
	// ordinary lines, heartbeats), by reason; nil when none.
	Ignored    map[string]uint64
	Detections map[string]uint64
	Alerts     map[string]uint64 // by rule
	Suppressed uint64            // detections folded into open incidents
	// Muted counts detections kept from alerting by each allowlist entry
	// and maintenance window.
	Muted    []alerts.Suppression
	Resolved uint64 // incidents resolved (quiet for the quiet period)
	Entities int
	Elapsed  time.Duration
}

// EventsPerSecond is the replay's throughput in decoded events.
func (s *Summary) EventsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Events) / s.Elapsed.Seconds()
}

// batchSize is the number of events handed from the decoder to the engine
// at once: large enough that channel operations vanish from the profile,
// small enough to stay in cache.
const batchSize = 1024

type batch struct {
	events [batchSize]event.Event
	n      int
}

// Run replays opts.Input. Bad lines are counted and skipped; only an
// unusable input (unreadable, a broken gzip stream) is an error.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := now()
	in, err := maybeGunzip(opts.Input)
	if err != nil {
		return nil, err
	}

	sum := &Summary{DecodeErrors: map[string]uint64{}, Detections: map[string]uint64{}, Alerts: map[string]uint64{}}
	out := alerts.NewJSONL(opts.Alerts)
	builder := alerts.NewBuilder(opts.Config, opts.Pseudonymizer, nil)
	var writeErr error
	write := func(as []*alerts.Alert) {
		for _, a := range as {
			if writeErr != nil {
				return
			}
			if a.Incident.Status == alerts.StatusResolved {
				sum.Resolved++
			} else {
				sum.Alerts[a.Rule]++
			}
			writeErr = out.Write(a)
		}
	}
	engine, err := models.New(opts.Config, func(d *models.Detection) { write(builder.Build(d)) })
	if err != nil {
		return nil, err
	}

	readErr := decodeAndProcess(ctx, in, opts.Config, log, sum, func(ev *event.Event) {
		engine.Process(ev)
		// Free until an incident is due to resolve.
		write(builder.Resolve(engine.Watermark(), nil))
	})
	if writeErr == nil {
		writeErr = out.Flush()
	}

	st := engine.Stats()
	sum.Late = st.Late
	sum.Future = st.Future
	for _, r := range models.Rules() {
		if n := st.Detections[r]; n > 0 {
			sum.Detections[r.String()] = n
		}
	}
	sum.Suppressed = builder.Suppressed
	sum.Muted = builder.Muted()
	sum.Entities = engine.Entities()
	sum.Elapsed = now().Sub(start)
	if readErr != nil {
		return sum, readErr
	}
	if writeErr != nil {
		return sum, fmt.Errorf("write alerts: %w", writeErr)
	}
	return sum, nil
}

// decodeAndProcess runs process over every event of in on a second
// goroutine, one per core: the caller's reads and decodes into batches,
// the other processes them. Batches cycle through free and full so that
// nothing is allocated per event.
func decodeAndProcess(ctx context.Context, in io.Reader, cfg *config.Config, log *slog.Logger, sum *Summary, process func(*event.Event)) error {
	const inflight = 4
	free := make(chan *batch, inflight)
	full := make(chan *batch, inflight)
	for range inflight {
		free <- &batch{}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range full {
			for i := range b.n {
				process(&b.events[i])
			}
			free <- b
		}
	}()
	err := decodeAll(ctx, in, cfg, log, sum, free, full)
	close(full)
	<-done
	return err
}

// decodeAll reads lines, decodes them into batches and sends the batches
// to full.
func decodeAll(ctx context.Context, in io.Reader, cfg *config.Config, log *slog.Logger, sum *Summary, free, full chan *batch) error {
	dec, err := event.NewDecoder(cfg.Input.Format, event.Limits{MaxMessageBytes: cfg.Input.MaxMessageBytes, MaxRecordIDs: cfg.Input.MaxRecordIDs},
		event.Options{LogLinePrefix: cfg.Input.LogLinePrefix})
	if err != nil {
		return err
	}
	split, _ := dec.(event.Splitter)
	var recs [][]byte
	lines := newRecords(in, cfg.Input.Format, cfg.Input.MaxMessageBytes)
	warn := newLimiter()
	b := <-free
	b.n = 0
	one := [][]byte{nil}
	for {
		if sum.Lines&0xffff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		line, tooLong, err := lines.next()
		if err != nil {
			if b.n > 0 {
				full <- b
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read input: %w", err)
		}
		if len(line) == 0 && !tooLong {
			continue // blank lines are separators, not events
		}
		sum.Lines++
		var derr error
		switch {
		case tooLong:
			derr = &event.DecodeError{Reason: event.ReasonTooLarge, Offset: -1}
		case split != nil:
			recs, derr = split.Split(recs[:0], line)
		default:
			one[0], recs = line, one
		}
		if derr != nil {
			skip(log, warn, sum, derr)
			continue
		}
		for _, rec := range recs {
			if derr := dec.Decode(rec, &b.events[b.n]); derr != nil {
				skip(log, warn, sum, derr)
				continue
			}
			sum.Events++
			b.n++
			if b.n == batchSize {
				full <- b
				b = <-free
				b.n = 0
			}
		}
	}
}

// skip counts a message or record that is not an event: a failure, or an
// ignored line (event.Reason.Ignored), which is counted but not warned of.
func skip(log *slog.Logger, warn *limiter, sum *Summary, derr error) {
	reason, _ := event.ReasonOf(derr)
	if reason.Ignored() {
		if sum.Ignored == nil {
			sum.Ignored = map[string]uint64{}
		}
		sum.Ignored[reason.String()]++
		return
	}
	sum.DecodeErrors[reason.String()]++
	if warn.allow(reason) {
		log.Warn("message skipped", "reason", reason.String(), "line", sum.Lines, "err", derr, "skipped_so_far", sum.DecodeErrors[reason.String()])
	}
}

// maybeGunzip unwraps a gzip stream, recognised by its magic bytes so that
// a compressed file piped to stdin works too.
func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open gzip input: %w", err)
		}
		return bufio.NewReaderSize(zr, 1<<20), nil
	}
	return br, nil
}

// OpenInput opens path for replay; "-" is standard input.
func OpenInput(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	return f, nil
}
