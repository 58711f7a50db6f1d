package main

import (
	"context"
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
// optional attack scenarios and their ground-truth labels, to a file,
// stdout, or a Kafka topic (keyed by principal, as a shipper should).
func runGen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	days := fs.Int("days", 7, "days of traffic")
	seed := fs.Int64("seed", 1, "seed: the same seed gives the same traffic")
	scale := fs.Float64("scale", 1, "multiplies the company's size (1 is ~360k events a day)")
	scenarios := fs.String("scenarios", "", "comma-separated attack scenarios, or \"all\" ("+strings.Join(sim.ScenarioNames(), ", ")+")")
	out := fs.String("out", "-", "output file, - for stdout, or kafka://HOST:PORT[,HOST:PORT]/TOPIC")
	labels := fs.String("labels", "", "write the attacks' ground truth as JSON to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: detector gen [--days N] [--seed S] [--scale X] [--scenarios a,b|all] [--out FILE|-|kafka://HOST:PORT/TOPIC] [--labels FILE]")
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
	start := time.Now()
	var n int
	if strings.HasPrefix(*out, "kafka://") {
		brokers, topic, err := parseKafkaURL(*out)
		if err != nil {
			fmt.Fprintln(stderr, "gen: --out:", err)
			return exitUsage
		}
		if n, err = genToKafka(g, brokers, topic); err != nil {
			fmt.Fprintln(stderr, "gen:", err)
			return exitFailed
		}
	} else if n, err = genToFile(*out, stdout, opts); err != nil {
		fmt.Fprintln(stderr, "gen:", err)
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

// genToFile writes the traffic to path ("-": w).
func genToFile(path string, w io.Writer, opts sim.Options) (int, error) {
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		w = f
	}
	n, err := sim.WriteJSONL(w, opts)
	if err != nil {
		return n, fmt.Errorf("write: %w", err)
	}
	return n, nil
}

// genToKafka produces the traffic to a topic, keyed by principal.
func genToKafka(g *sim.Generator, brokers []string, topic string) (int, error) {
	ctx := context.Background()
	p := newProducer(brokers, topic)
	defer p.close()
	var buf []byte
	n := 0
	for {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			break
		}
		if err := p.add(ctx, buf); err != nil {
			return n, err
		}
		n++
	}
	return n, p.flush(ctx)
}
