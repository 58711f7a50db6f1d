package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/exfilguard/exfilguard/pkg/sim"
)

// runGen writes synthetic company traffic (pkg/sim) as native JSONL, with
// optional attack scenarios and their ground-truth labels. Kafka output
// comes with the pipeline; until then it writes files or stdout.
func runGen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	days := fs.Int("days", 7, "days of traffic")
	seed := fs.Int64("seed", 1, "seed: the same seed gives the same traffic")
	scale := fs.Float64("scale", 1, "multiplies the company's size (1 is ~360k events a day)")
	scenarios := fs.String("scenarios", "", "comma-separated attack scenarios, or \"all\" ("+strings.Join(sim.ScenarioNames(), ", ")+")")
	out := fs.String("out", "-", "output file, - for stdout")
	labels := fs.String("labels", "", "write the attacks' ground truth as JSON to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: detector gen [--days N] [--seed S] [--scale X] [--scenarios a,b|all] [--out FILE|-] [--labels FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	opts := sim.Options{Seed: *seed, Days: *days, Scale: *scale}
	switch *scenarios {
	case "":
	case "all":
		opts.Scenarios = sim.ScenarioNames()
	default:
		opts.Scenarios = strings.Split(*scenarios, ",")
	}
	g, err := sim.New(opts)
	if err != nil {
		fmt.Fprintln(stderr, "gen:", err)
		return exitUsage
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(stderr, "gen:", err)
			return exitFailed
		}
		defer f.Close()
		w = f
	}
	start := time.Now()
	n, err := sim.WriteJSONL(w, opts)
	if err != nil {
		fmt.Fprintln(stderr, "gen: write:", err)
		return exitFailed
	}
	if *labels != "" {
		b, err := json.MarshalIndent(g.Labels(), "", "  ")
		if err == nil {
			err = os.WriteFile(*labels, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, "gen: labels:", err)
			return exitFailed
		}
	}
	fmt.Fprintf(stderr, "gen: %d events, %d days, %d scenario labels (%.1fs)\n", n, *days, len(g.Labels()), time.Since(start).Seconds())
	return exitOK
}
