package models

import (
	"fmt"
	"reflect"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// Reconfigure applies what a config reload may change while the engine
// runs: the detectors' thresholds and switches and the sensitive-object
// patterns. The engine and baseline sections shape the state itself
// (horizons, entity kinds, half-lives) and must be unchanged. A spike
// threshold already fixed for a current bucket holds until the bucket
// rolls; every other check reads the new values at once. Like Process, it
// must run on the engine's goroutine.
func (e *Engine) Reconfigure(cfg *config.Config) error {
	if errs := cfg.Validate(); len(errs) > 0 {
		return fmt.Errorf("reconfigure engine: invalid config: %v", errs[0])
	}
	if err := Reloadable(e.cfg, cfg); err != nil {
		return err
	}
	e.cfg = cfg
	e.sens = newClassifier(cfg.Sensitive)
	e.profiles = newProfiles(cfg)
	// Entities resolve their override again at their next event; evicted
	// ones do when they are loaded.
	for _, ent := range e.entities {
		ent.prof = nil
	}
	return nil
}

// Reloadable reports why cfg cannot replace old in a running engine: the
// engine and baseline sections are the shape of the state.
func Reloadable(old, cfg *config.Config) error {
	if !reflect.DeepEqual(old.Engine, cfg.Engine) {
		return fmt.Errorf("reload: the engine section changed; it shapes the state (horizons, entity kinds, caps): restart to apply it")
	}
	if !reflect.DeepEqual(old.Baseline, cfg.Baseline) {
		return fmt.Errorf("reload: the baseline section changed; it shapes the learned baselines: restart to apply it")
	}
	return nil
}
