package stream

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// RuleDetectorDegraded is the rule of the alert the detector raises about
// itself when entities arrive faster than memory can hold them: a flood
// of never-seen principals is either a broken feed or an attack on the
// detector meant to blind it.
const RuleDetectorDegraded = "detector_degraded"

// selfAlerts tracks the detector's own degraded state. It lives on the
// dispatcher goroutine.
type selfAlerts struct {
	pressured bool // the entity cap forced a checkpoint since the last one
	open      bool // an episode is open: the alert was raised
	lastPress time.Time
	// resident and loaded as of the last checkpoint, to count the entities
	// created since (resident grows by creations and loads, shrinks by
	// evictions).
	lastResident int
	lastLoaded   uint64
	// raised is the alert that opened the episode, the template of its
	// resolution.
	raised *alerts.Alert
}

func (s *selfAlerts) pressure(now time.Time) {
	s.pressured = true
	s.lastPress = now
}

// checkpointed raises the alert when the cap forced a checkpoint and the
// entities created since the last checkpoint are at least a twentieth of
// the cap and twice those reloaded from the store: a flood of entities
// never seen before. A large working set that merely cycles
// through the store (reloads, not creations) is not one; it shows in the
// eviction metrics instead. Once per episode; an episode ends after a
// quiet period without pressure.
func (s *selfAlerts) checkpointed(p *Pipeline, rep shardReport, now time.Time) {
	evicted, resident := rep.evicted, rep.resident
	loaded := int(rep.loaded - s.lastLoaded)
	created := (resident + evicted) - s.lastResident - loaded
	s.lastResident, s.lastLoaded = resident, rep.loaded
	if s.open && !s.pressured && now.Sub(s.lastPress) > p.cfg.Alerts.QuietPeriod.D() {
		s.open = false
		s.resolve(p, now)
	}
	pressured := s.pressured
	s.pressured = false
	if !pressured || created < p.cfg.Engine.MaxEntities/20 || created < 2*loaded {
		return
	}
	if s.open {
		return
	}
	s.open = true
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d", RuleDetectorDegraded, p.cfg.Kafka.GroupID, now.UnixNano())))
	id := hex.EncodeToString(sum[:12])
	ts := now.UTC().Format(time.RFC3339Nano)
	a := &alerts.Alert{
		ID:         id,
		Rule:       RuleDetectorDegraded,
		Severity:   "high",
		Entity:     alerts.EntityRef{Kind: "detector", Key: p.cfg.Kafka.GroupID},
		EventTime:  ts,
		DetectedAt: ts,
		Window:     alerts.Window{Start: ts, End: ts, Horizon: p.cfg.State.CheckpointInterval.String()},
		Observed:   map[string]float64{"resident_entities": float64(resident), "evicted": float64(evicted), "new_entities": float64(created)},
		Expected:   map[string]float64{"resident_entities": float64(p.cfg.Engine.MaxEntities)},
		Summary: fmt.Sprintf("%d never-seen entities arrived since the last checkpoint and pushed the detector over its cap of %d entities in memory; "+
			"it evicted %d to its store. Detection goes on, but every returning entity is reloaded from disk. New entities arriving this fast "+
			"are a broken feed or a flood of forged principals meant to blind the detector; look at the input topic's principals.", created, p.cfg.Engine.MaxEntities, evicted),
		Objects:     []string{},
		MitreAttack: []models.Technique{{Tactic: "Defense Evasion", Technique: "T1562", Name: "Impair Defenses"}},
		Incident:    alerts.Incident{ID: id, Status: alerts.StatusOpened, OpenedAt: ts, Family: "detector", Rules: []string{RuleDetectorDegraded}, Detections: 1},
		Basis:       "prior",
	}
	s.raised = a
	p.writeAlert(a)
	p.log.Error("flood of new entities over the cap; detector degraded", "cap", p.cfg.Engine.MaxEntities, "new_entities", created, "evicted", evicted)
}

// resolve ends the episode's incident, so that receivers which keep
// alerts firing until told (Alertmanager, PagerDuty) close it.
func (s *selfAlerts) resolve(p *Pipeline, now time.Time) {
	if s.raised == nil {
		return
	}
	r := *s.raised
	s.raised = nil
	sum := sha256.Sum256([]byte(r.Incident.ID + "/resolved"))
	r.ID = hex.EncodeToString(sum[:12])
	ts := now.UTC().Format(time.RFC3339Nano)
	r.EventTime, r.DetectedAt = ts, ts
	r.Window = alerts.Window{Start: r.Incident.OpenedAt, End: ts, Horizon: p.cfg.Alerts.QuietPeriod.String()}
	r.Incident.Status, r.Incident.Sequence = alerts.StatusResolved, 1
	r.Summary = fmt.Sprintf("Resolved: no flood of new entities for %s; the detector holds its working set in memory again.", p.cfg.Alerts.QuietPeriod)
	p.writeAlert(&r)
	p.log.Info("entity flood over; detector no longer degraded")
}
