package stream

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// reload is a config change on its way to the dispatcher.
type reload struct {
	cfg  *config.Config
	done chan error
}

// errNotRunning refuses a reload outside Run.
var errNotRunning = errors.New("reload: the pipeline is not running")

// Reload applies a new config without losing state or positions: the
// detectors, the sensitive-object patterns and the incident settings
// (quiet period, escalation step, samples, runbook link). Sections that
// shape the state or the connections (engine, baseline, input, kafka,
// state, http, the sinks and the outbox) must be unchanged; a config that
// changes them is refused whole, with what to restart for, and the
// running config stays. The change applies at a batch boundary, between
// the batches already handed to the engine and the next ones.
func (p *Pipeline) Reload(ctx context.Context, cfg *config.Config) error {
	if errs := cfg.Validate(); len(errs) > 0 {
		return fmt.Errorf("reload: invalid config: %v", errs[0])
	}
	if err := p.reloadable(cfg); err != nil {
		return err
	}
	r := reload{cfg: cfg, done: make(chan error, 1)}
	select {
	case p.reloads <- r:
	case <-p.stopped:
		return errNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pipeline) reloadable(cfg *config.Config) error {
	if err := models.Reloadable(p.cfg, cfg); err != nil {
		return err
	}
	same := func(name string, a, b any) error {
		if !reflect.DeepEqual(a, b) {
			return fmt.Errorf("reload: the %s section changed: restart to apply it", name)
		}
		return nil
	}
	for _, c := range []error{
		same("input", p.cfg.Input, cfg.Input), same("kafka", p.cfg.Kafka, cfg.Kafka), same("state", p.cfg.State, cfg.State),
		same("http", p.cfg.HTTP, cfg.HTTP), same("scale_out", p.cfg.ScaleOut, cfg.ScaleOut), same("alerts.sinks", p.cfg.Alerts.Sinks, cfg.Alerts.Sinks),
		same("alerts.outbox", p.cfg.Alerts.Outbox, cfg.Alerts.Outbox),
	} {
		if c != nil {
			return c
		}
	}
	return nil
}

// applyReload runs on the dispatcher: every shard reconfigures its engine
// at the same point of the stream, then the builder and the pipeline's
// own copy take the new values (only the dispatcher reads those; other
// goroutines read only sections a reload may not change).
func (p *Pipeline) applyReload(r reload) {
	n := len(p.shards)
	done := make(chan error, n)
	for _, s := range p.shards {
		sc := shardConfig(r.cfg, n)
		if s.t != nil {
			sc = p.tasks.taskConfig(r.cfg)
		}
		s.in <- shardItem{reload: sc, reloaded: done}
	}
	var err error
	for range n {
		if e := <-done; e != nil && err == nil {
			err = e
		}
	}
	if err == nil {
		p.alertMu.Lock()
		p.builder.Reconfigure(r.cfg)
		for _, b := range p.builders {
			if b != p.builder {
				b.Reconfigure(r.cfg)
			}
		}
		// Under alertMu: the metrics collector reads the allowlist.
		p.cfg.Detectors, p.cfg.Sensitive = r.cfg.Detectors, r.cfg.Sensitive
		p.cfg.Overrides, p.cfg.Allowlist, p.cfg.Maintenance = r.cfg.Overrides, r.cfg.Allowlist, r.cfg.Maintenance
		p.cfg.Alerts.QuietPeriod, p.cfg.Alerts.EscalationStep = r.cfg.Alerts.QuietPeriod, r.cfg.Alerts.EscalationStep
		p.cfg.Alerts.Samples, p.cfg.Alerts.RunbookURL = r.cfg.Alerts.Samples, r.cfg.Alerts.RunbookURL
		p.alertMu.Unlock()
		p.log.Info("config reloaded")
		p.warnExpired()
	}
	r.done <- err
}

// shardConfig is a shard's copy of cfg: its share of the entity cap.
func shardConfig(cfg *config.Config, shards int) *config.Config {
	sc := *cfg
	if sc.Engine.MaxEntities > 0 {
		sc.Engine.MaxEntities = (sc.Engine.MaxEntities + shards - 1) / shards
	}
	return &sc
}

// warnExpired logs the allowlist entries that no longer apply, with their
// owners: an expired exception is a decision someone has to take again.
func (p *Pipeline) warnExpired() {
	p.alertMu.Lock()
	expired := p.cfg.Expired(p.now())
	p.alertMu.Unlock()
	for _, a := range expired {
		p.log.Warn("allowlist entry expired; it no longer applies", "entry", a.Name, "owner", a.Owner, "expired", a.Expires.Format(time.DateOnly))
	}
}
