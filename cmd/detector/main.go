// Command detector is Exfilguard's binary: the streaming detector, its
// replay (backtest) mode and its tools. main only dispatches; each
// subcommand lives in its own file.
package main

import (
	"fmt"
	"io"
	"os"
	// Allowlist entries name IANA time zones; a minimal container image
	// has no zoneinfo of its own.
	_ "time/tzdata"
)

// Exit codes: 0 success, 1 the input or a runtime resource was unusable,
// 2 usage or configuration error.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"demo", "the real pipeline on an embedded broker and a synthetic company with attacks; no services needed", runDemo},
		{"run", "consume Kafka with durable state; alerts as JSONL on stdout", runRun},
		{"replay", "run the engine over recorded logs in event time; alerts as JSONL on stdout", runReplay},
		{"gen", "write synthetic company traffic with optional attacks as native JSONL", runGen},
		{"bench", "the performance proof: bare consumers vs the pipeline, alert latency, engine, memory per entity", runBench},
		{"eval", "score detection on synthetic attacks against the ground truth, next to static thresholds", runEval},
		{"config", "config check FILE | config defaults", runConfig},
		{"state", "state inspect --entity KIND/KEY: one entity's baselines from the state store", runState},
		{"pseudonym", "pseudonym --record ID | --customer ID: the pseudonym alerts show for an id", runPseudonym},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "detector: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: detector COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nrun 'detector COMMAND -h' for a command's flags")
}
