package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/models"
	"github.com/exfilguard/exfilguard/pkg/state"
)

func runState(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "inspect" {
		fmt.Fprintln(stderr, "usage: detector state inspect --config FILE --entity KIND/KEY")
		return exitUsage
	}
	fs := flag.NewFlagSet("state inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the detector's config file (for state.dir and the horizons)")
	dir := fs.String("state-dir", "", "state directory (default: the config's state.dir)")
	entity := fs.String("entity", "", "KIND/KEY, e.g. principal/svc-etl, source_net/203.0.113.0/24, credential/AKIA...")
	keyFile := fs.String("pseudonym-key-file", "", "key for customer pseudonyms among top contributors (or set "+pseudonymKeyEnv+"); without one they are redacted")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: detector state inspect [--config FILE] [--state-dir DIR] --entity KIND/KEY\n\nPrints one entity's baselines from the state store. The store is locked while\na detector runs on it: stop it, or inspect a copy of the directory.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	kindName, key, ok := strings.Cut(*entity, "/")
	if !ok || key == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	kind, ok := models.ParseKind(kindName)
	if !ok {
		fmt.Fprintf(stderr, "--entity: unknown kind %q (known: principal, source_net, credential, source_ip, client)\n", kindName)
		return exitUsage
	}
	h, ok := models.EntityHash(kind, key)
	if !ok {
		fmt.Fprintf(stderr, "--entity: %q is not a %s key\n", key, kind)
		return exitUsage
	}
	cfg, err := configOrDefault(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if *dir != "" {
		cfg.State.Dir = *dir
	}
	store, err := state.Open(state.Options{Dir: cfg.State.Dir, MemTableBytes: 1 << 20})
	if err != nil {
		fmt.Fprintf(stderr, "open state %s: %v\n", state.Dir(cfg.State.Dir), err)
		return exitFailed
	}
	defer store.Close()
	data, found, err := store.LoadEntity(h, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	if !found {
		fmt.Fprintf(stderr, "no entity %s/%s in %s (never seen, or forgotten after entity_ttl)\n", kind, key, state.Dir(cfg.State.Dir))
		return exitFailed
	}
	eng, err := models.New(cfg, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	pkey, err := pseudonymKey(*keyFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if err := eng.Describe(stdout, h, data, alerts.NewPseudonymizer(pkey).Name); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	return exitOK
}
