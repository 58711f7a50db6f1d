package main

import (
	"fmt"
	"io"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// runConfig implements `config check FILE` (every problem, as
// FILE:LINE: field: message) and `config defaults` (the complete effective
// default config).
func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: detector config check FILE | detector config defaults")
		return exitUsage
	}
	switch args[0] {
	case "check":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: detector config check FILE")
			return exitUsage
		}
		cfg, err := config.Load(args[1])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		// An expired allowlist entry is valid (a backtest over older logs
		// still applies it) but no longer protects anything live: say so,
		// with the owner to chase.
		for _, a := range cfg.Expired(time.Now()) {
			fmt.Fprintf(stderr, "%s: warning: allowlist entry %s (owner %s) expired on %s and no longer applies\n",
				args[1], allowName(cfg, a), a.Owner, a.Expires.Format(time.DateOnly))
		}
		fmt.Fprintf(stdout, "%s: ok\n", args[1])
		return exitOK
	case "defaults":
		b, err := yaml.Marshal(config.Default())
		if err != nil {
			fmt.Fprintln(stderr, "encode defaults:", err)
			return exitFailed
		}
		_, _ = stdout.Write(b)
		return exitOK
	}
	fmt.Fprintf(stderr, "detector config: unknown subcommand %q\n", args[0])
	return exitUsage
}

// configOrDefault loads the config at path, or returns the built-in
// defaults when no path is given.
func configOrDefault(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

// allowName is an allowlist entry's name, or its position when unnamed.
func allowName(cfg *config.Config, a *config.AllowEntry) string {
	if a.Name != "" {
		return fmt.Sprintf("%q", a.Name)
	}
	for i := range cfg.Allowlist {
		if &cfg.Allowlist[i] == a {
			return fmt.Sprintf("allowlist[%d]", i)
		}
	}
	return "?"
}
