package models

import (
	"slices"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// profile is the detector settings that judge an entity: the top-level
// detectors section, or the first override (config.Override) that matches
// the entity. Entities point at their profile, resolved once (at their
// first event, when their role changes, and after a reload) rather than
// matched on every event, so an override costs the hot path one pointer.
type profile struct {
	// name is the override's, "" for the top-level settings.
	name string
	det  *config.Detectors
	// spikes points each measure at its enabled spike detector.
	spikes [numMeasures]*config.Spike
	// judged has bit hi set when the window detectors judge horizon hi.
	judged   uint8
	learning int64
	match    *config.OverrideMatch
}

// newProfiles builds the default profile and one per override, in order.
func newProfiles(cfg *config.Config) []*profile {
	all := uint8(1<<len(cfg.Engine.Horizons) - 1)
	base := &profile{det: &cfg.Detectors, judged: all, learning: int64(cfg.Engine.LearningPeriod)}
	base.setSpikes()
	out := []*profile{base}
	for i := range cfg.Overrides {
		o := &cfg.Overrides[i]
		p := &profile{name: o.Name, det: &o.Detectors, judged: all, learning: base.learning, match: &o.Match}
		if len(o.Horizons) > 0 {
			p.judged = 0
			for hi, h := range cfg.Engine.Horizons {
				if slices.Contains(o.Horizons, h) {
					p.judged |= 1 << hi
				}
			}
		}
		if o.LearningPeriod > 0 {
			p.learning = int64(o.LearningPeriod)
		}
		p.setSpikes()
		out = append(out, p)
	}
	return out
}

func (p *profile) setSpikes() {
	d := p.det
	for m, s := range map[int]*config.Spike{mRows: &d.VolumeSpike, mSensitive: &d.SensitiveVolumeSpike, mRecords: &d.DistinctRecords, mPrincipals: &d.FanOut, mDenied: &d.DeniedBurst, mObjects: &d.DistinctObjects} {
		if s.Enabled {
			p.spikes[m] = s
		}
	}
}

// matches reports whether the override's match selects ent.
func (p *profile) matches(ent *Entity) bool {
	m := p.match
	if len(m.Kinds) > 0 && !slices.Contains(m.Kinds, ent.kind.String()) {
		return false
	}
	if len(m.Roles) > 0 && (ent.kind != KindPrincipal || !config.GlobAny(m.Roles, ent.role)) {
		return false
	}
	if len(m.Entities) > 0 && !config.GlobAny(m.Entities, ent.key) {
		return false
	}
	return true
}

// profileOf returns the profile judging ent, resolving it when unknown.
// Small enough to inline: the hot path pays a load and a nil test.
func (e *Engine) profileOf(ent *Entity) *profile {
	if p := ent.prof; p != nil {
		return p
	}
	return e.resolveProfile(ent)
}

func (e *Engine) resolveProfile(ent *Entity) *profile {
	ent.prof = e.profiles[0]
	for _, p := range e.profiles[1:] {
		if p.matches(ent) {
			ent.prof = p
			break
		}
	}
	return ent.prof
}
