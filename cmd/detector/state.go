package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/config"
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
	var datas [][]byte
	var where []string
	if found {
		datas, where = append(datas, data), append(where, "")
	}
	// With scale_out, each partition's task keeps its own copy (a source
	// network seen on several partitions is in several).
	spaces, err := store.EntitySpaces(h)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	for _, ns := range spaces {
		d, ok, err := store.Space(ns).LoadEntity(h, nil)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
		if ok {
			datas = append(datas, d)
			where = append(where, spaceName(cfg, ns))
		}
	}
	if len(datas) == 0 {
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
	for i, data := range datas {
		if where[i] != "" {
			fmt.Fprintf(stdout, "%s── task %s\n", map[bool]string{true: "\n", false: ""}[i > 0], where[i])
		}
		if err := eng.Describe(stdout, h, data, alerts.NewPseudonymizer(pkey).Name); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
	}
	return exitOK
}

// spaceName names a scale-out task's space: its topic and partition.
func spaceName(cfg *config.Config, ns state.Space) string {
	tag, part := ns.Task()
	topic := fmt.Sprintf("topic %d", tag)
	switch {
	case tag == 0 && len(cfg.Kafka.Topics) > 0:
		topic = cfg.Kafka.Topics[0].Name
	case tag > 0 && tag <= len(cfg.ScaleOut.Repartition):
		topic = cfg.ScaleOut.RepartitionTopic(&cfg.Kafka, cfg.ScaleOut.Repartition[tag-1])
	}
	return fmt.Sprintf("%s/%d", topic, part)
}
