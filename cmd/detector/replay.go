package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/replay"
)

// pseudonymKeyEnv names the environment variable holding the key that
// pseudonymises customer accounts in alerts. Keys never live in the config
// file, which is shared and versioned.
const pseudonymKeyEnv = "EXFILGUARD_PSEUDONYM_KEY"

func runReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (default: built-in defaults)")
	format := fs.String("format", "", "input format, one of "+strings.Join(event.Formats(), ", ")+" (default: the config's input.format)")
	prefix := fs.String("log-line-prefix", "", "PostgreSQL's log_line_prefix, for --format pgaudit_stderr (default: the config's input.log_line_prefix)")
	input := fs.String("input", "", "input file (a log or JSONL file, gzip-compressed or not); - for standard input")
	keyFile := fs.String("pseudonym-key-file", "", "file holding the key for customer pseudonyms (or set "+pseudonymKeyEnv+"); without one, customer ids are redacted")
	compare := fs.String("compare", "", "candidate config: replay once under both configs and report what changes instead of printing alerts")
	asJSON := fs.Bool("json", false, "with --compare: the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: detector replay [--config FILE] [--format F [--log-line-prefix P]] --input PATH|-\n       detector replay --config CURRENT --compare CANDIDATE --input PATH|- [--json]\n\nAlerts go to stdout as JSONL; a summary goes to stderr. With --compare, a report of alerts per rule per day under\neach config and the entities that gain or lose alerts goes to stdout instead.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *input == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := configOrDefault(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	// The input's format is a fact about the file, not about a config:
	// under --compare it applies to both.
	setInput := func(c *config.Config) bool {
		if *format != "" {
			c.Input.Format = *format
		}
		if *prefix != "" {
			c.Input.LogLinePrefix = *prefix
		}
		if errs := c.Validate(); len(errs) > 0 {
			fmt.Fprintf(stderr, "--format: %s: %s\n", errs[0].Path, errs[0].Msg)
			return false
		}
		return true
	}
	if !setInput(cfg) {
		return exitUsage
	}
	key, err := pseudonymKey(*keyFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if cfg.Alerts.Samples > 0 && len(key) == 0 {
		fmt.Fprintf(stderr, "warning: alerts.samples is %d but no pseudonym key is set (--pseudonym-key-file or %s): alerts carry no samples\n", cfg.Alerts.Samples, pseudonymKeyEnv)
	}
	in, err := replay.OpenInput(*input)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer in.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if *compare != "" {
		cand, err := config.Load(*compare)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		if !setInput(cand) {
			return exitUsage
		}
		d, err := replay.Compare(ctx, replay.CompareOptions{Current: cfg, Candidate: cand, Input: in, Logger: log})
		if err != nil {
			fmt.Fprintln(stderr, "replay:", err)
			return exitFailed
		}
		if *asJSON {
			if err := d.WriteJSON(stdout); err != nil {
				fmt.Fprintln(stderr, "replay:", err)
				return exitFailed
			}
			return exitOK
		}
		d.WriteText(stdout)
		return exitOK
	}
	sum, err := replay.Run(ctx, replay.Options{
		Config:        cfg,
		Input:         in,
		Alerts:        stdout,
		Pseudonymizer: alerts.NewPseudonymizer(key),
		Logger:        log,
	})
	if sum != nil {
		printSummary(stderr, sum)
	}
	if err != nil {
		fmt.Fprintln(stderr, "replay:", err)
		return exitFailed
	}
	return exitOK
}

func pseudonymKey(file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read pseudonym key: %w", err)
		}
		return []byte(strings.TrimSpace(string(b))), nil
	}
	return []byte(os.Getenv(pseudonymKeyEnv)), nil
}

func printSummary(w io.Writer, s *replay.Summary) {
	skipped := uint64(0)
	for _, n := range s.DecodeErrors {
		skipped += n
	}
	fmt.Fprintf(w, "replay: %d lines, %d events, %d skipped%s, %d late, %d ahead of time\n", s.Lines, s.Events, skipped, counts(s.DecodeErrors), s.Late, s.Future)
	if len(s.Ignored) > 0 {
		n := uint64(0)
		for _, c := range s.Ignored {
			n += c
		}
		fmt.Fprintf(w, "ignored: %d lines without an access%s\n", n, counts(s.Ignored))
	}
	fmt.Fprintf(w, "entities: %d\n", s.Entities)
	det := uint64(0)
	for _, n := range s.Detections {
		det += n
	}
	al := uint64(0)
	for _, n := range s.Alerts {
		al += n
	}
	fmt.Fprintf(w, "detections: %d%s\n", det, counts(s.Detections))
	fmt.Fprintf(w, "alerts: %d%s; %d detections folded into open incidents; %d incidents resolved\n", al, counts(s.Alerts), s.Suppressed, s.Resolved)
	for _, m := range s.Muted {
		fmt.Fprintf(w, "%s %s: %d detections kept from alerting\n", m.Reason, m.Name, m.N)
	}
	fmt.Fprintf(w, "throughput: %.0f events/s (%.2fs)\n", s.EventsPerSecond(), s.Elapsed.Seconds())
}

// counts renders a map as " (a=1, b=2)" in key order.
func counts(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
