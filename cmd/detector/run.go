package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/state"
	"github.com/exfilguard/exfilguard/pkg/stream"
	"github.com/exfilguard/exfilguard/pkg/telemetry"
)

func runRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (required)")
	listen := fs.String("listen", "", "address of /metrics, /healthz and /readyz, overriding http.listen; \"none\": no server")
	keyFile := fs.String("pseudonym-key-file", "", "file holding the key for customer pseudonyms (or set "+pseudonymKeyEnv+"); without one, customer ids are redacted")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	enableReload := fs.Bool("enable-reload", false, "serve POST /-/reload (SIGHUP always reloads)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: detector run --config FILE [--listen ADDR]\n\nConsumes the configured Kafka topics; alerts go to stdout as JSONL, logs to stderr.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *cfgPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "--log-level: %v\n", err)
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
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
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	store, err := state.Open(state.Options{Dir: cfg.State.Dir, MemTableBytes: cfg.State.MemTableBytes, BlockCacheBytes: cfg.State.BlockCacheBytes, IndexCacheBytes: cfg.State.IndexCacheBytes, Logger: log})
	if err != nil {
		log.Error("open state", "dir", state.Dir(cfg.State.Dir), "err", err)
		return exitFailed
	}
	defer store.Close()
	tracing, err := telemetry.NewTracing(context.Background(), nil)
	if err != nil {
		log.Error("tracing", "err", err)
		return exitUsage
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(ctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()
	p, err := stream.New(stream.Options{Config: cfg, Store: store, Alerts: stdout, Pseudonymizer: alerts.NewPseudonymizer(key), Logger: log,
		Tracer: tracing.Tracer(), TraceHeaders: tracing.Enabled})
	if err != nil {
		log.Error("start pipeline", "err", err)
		return exitFailed
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reg := telemetry.NewRegistry()
	cfgStatus := telemetry.NewConfigStatus(reg)
	cfgStatus.Loaded(true, time.Now())
	// A reload rereads the file; an invalid or non-reloadable config is
	// refused whole, the running one stays, and the metric says so.
	var reloadMu sync.Mutex
	reloadConfig := func(ctx context.Context) error {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		next, err := config.Load(*cfgPath)
		if err == nil {
			err = p.Reload(ctx, next)
		}
		cfgStatus.Loaded(err == nil, time.Now())
		if err != nil {
			log.Error("config reload refused; the running config stays", "file", *cfgPath, "err", err)
			return err
		}
		log.Info("config reloaded", "file", *cfgPath)
		return nil
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				_ = reloadConfig(ctx)
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := p.Register(reg); err != nil {
		log.Error("register metrics", "err", err)
		return exitFailed
	}
	addr := cfg.HTTP.Listen
	if *listen != "" {
		addr = *listen
	}
	if addr != "" && addr != "none" {
		ep := telemetry.Endpoints{Gatherer: reg, Ready: p.Ready, Pprof: cfg.HTTP.Pprof, Logger: log}
		if *enableReload {
			ep.Reload = reloadConfig
		}
		srv, bound, err := telemetry.Serve(addr, ep)
		if err != nil {
			log.Error("listen", "addr", addr, "err", err)
			return exitFailed
		}
		defer srv.Close()
		log.Info("serving metrics and probes", "addr", bound.String(), "pprof", cfg.HTTP.Pprof)
	}
	log.Info("detector running", "brokers", cfg.Kafka.Brokers, "group", cfg.Kafka.GroupID, "state", state.Dir(cfg.State.Dir))
	if err := p.Run(ctx); err != nil {
		log.Error("detector stopped", "err", err)
		return exitFailed
	}
	st := p.Stats()
	log.Info("detector stopped", "messages", st.Messages, "events", st.Events, "dead_lettered", st.DeadLettered, "checkpoints", st.Checkpoints)
	return exitOK
}
