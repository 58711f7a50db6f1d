package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/exfilguard/exfilguard/pkg/bench"
)

// runBench is `detector bench`: the performance proof, on this machine,
// in one run (pkg/bench). The report goes to stdout (text, or JSON with
// --json), progress to stderr.
func runBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.Int("events", 2_000_000, "events of the throughput part, produced once and consumed by every consumer")
	partitions := fs.Int("partitions", 6, "partitions of the benchmark topic")
	rate := fs.Float64("rate", 50_000, "offered rate of the live part, events/s")
	live := fs.Duration("live", time.Minute, "cap on the wall time of the live part (it otherwise runs from an hour of event time before the first attack to an hour after the last begins)")
	entities := fs.String("entities", "100000,1000000", "entity counts of the memory measurement (k and M suffixes allowed)")
	engineEvents := fs.Int("engine-events", 0, "events of the engine-alone pass, decoded in memory first (0: min(--events, 1M))")
	maxEntities := fs.Int("max-entities", 0, "engine.max_entities of the pipeline (0: the default, 100000)")
	profile := fs.String("profile", "", "write CPU and heap profiles of the pipeline's throughput pass into this directory")
	seed := fs.Int64("seed", 1, "seed of the simulated company")
	quick := fs.Bool("quick", false, "small sizes, for a smoke test (sets --events 60000 --rate 10000 --live 20s --entities 10000,50000 unless given)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: detector bench [--events N] [--partitions P] [--rate R] [--live D] [--entities N,N] [--profile DIR] [--quick] [--json]\n\nMeasures, on an embedded broker: bare kafka-go and franz-go consumers, the real pipeline on the same topic, produce-to-alert latency at a fixed rate with attacks, the engine alone, memory per entity and the longest checkpoint pause. See docs/benchmarks.md.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		if !set["events"] {
			*events = 60_000
		}
		if !set["rate"] {
			*rate = 10_000
		}
		if !set["live"] {
			*live = 20 * time.Second
		}
		if !set["entities"] {
			*entities = "10000,50000"
		}
	}
	ents, err := parseCounts(*entities)
	if err != nil {
		fmt.Fprintln(stderr, "bench: --entities:", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, bench.Options{Events: *events, Partitions: *partitions, Rate: *rate, Live: *live, Entities: ents,
		EngineEvents: *engineEvents, MaxEntities: *maxEntities, ProfileDir: *profile, Seed: *seed, Quick: *quick, Log: stderr})
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return exitFailed
		}
		return exitOK
	}
	rep.Text(stdout)
	return exitOK
}

// parseCounts reads "100000,1M,250k".
func parseCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mul := 1
		switch {
		case strings.HasSuffix(f, "k"), strings.HasSuffix(f, "K"):
			mul, f = 1_000, f[:len(f)-1]
		case strings.HasSuffix(f, "M"), strings.HasSuffix(f, "m"):
			mul, f = 1_000_000, f[:len(f)-1]
		}
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n*mul)
	}
	return out, nil
}
