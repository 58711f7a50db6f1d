package alerts

import (
	"context"
	"errors"
	"fmt"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// PagerDuty sends alerts as PagerDuty Events API v2 events. An incident
// of ours is one PagerDuty alert: every event carries the incident id as
// dedup_key, so "opened" triggers it, "escalated" updates the same alert
// instead of paging again, and "resolved" resolves it.
//
// The API takes one event per request; several alerts in one Notify are
// sent one by one, in order, and a retry after a partial failure sends
// only those not yet accepted.
type PagerDuty struct {
	post *httpPoster
	key  string
	once oneByOne
}

// pdSummaryMax is the Events API limit on payload.summary.
const pdSummaryMax = 1024

// NewPagerDuty builds the PagerDuty sink of cfg. The routing key is read
// now, so a missing one stops startup rather than every page.
func NewPagerDuty(cfg config.Sink, d Deps) (*PagerDuty, error) {
	d.defaults()
	if cfg.URL == "" && cfg.URLFile == "" && cfg.URLEnv == "" {
		cfg.URL = config.DefaultPagerDutyURL
	}
	u, err := resolveSinkURL(cfg, d.Getenv)
	if err != nil {
		return nil, err
	}
	key, err := readSecret(cfg.SecretFile, cfg.SecretEnv, d.Getenv)
	if err != nil {
		return nil, fmt.Errorf("pagerduty routing key: %w", err)
	}
	if key == "" {
		return nil, errors.New("pagerduty routing key: set secret_file or secret_env")
	}
	return &PagerDuty{post: newHTTPPoster(config.SinkPagerDuty, u, d.HTTP, key), key: key}, nil
}

// Notify sends one event per alert; PagerDuty answers 202 when it has
// queued one.
func (p *PagerDuty) Notify(ctx context.Context, alerts ...*Alert) (bool, error) {
	return p.once.notify(alerts, func(a *Alert) (bool, error) {
		body, err := encodeBody(pdEventOf(p.key, a))
		if err != nil {
			return false, fmt.Errorf("post pagerduty: encode event: %w", err)
		}
		return p.post.post(ctx, body, nil)
	})
}

type pdEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"`
	DedupKey    string     `json:"dedup_key"`
	Client      string     `json:"client,omitempty"`
	Payload     *pdPayload `json:"payload,omitempty"`
	Links       []pdLink   `json:"links,omitempty"`
}

type pdPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

type pdLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// pdEventOf maps a to an event. A resolve carries only the dedup key: the
// API ignores a payload on resolve, and the alert it resolves already
// shows what happened.
func pdEventOf(key string, a *Alert) pdEvent {
	ev := pdEvent{RoutingKey: key, EventAction: "trigger", DedupKey: a.Incident.ID, Client: "exfilguard"}
	if a.Incident.Status == StatusResolved {
		ev.EventAction = "resolve"
		return ev
	}
	summary := a.Summary
	if summary == "" {
		summary = fmt.Sprintf("%s on %s %s", a.Rule, a.Entity.Kind, a.Entity.Key)
	}
	mitre := make([]string, len(a.MitreAttack))
	for i, t := range a.MitreAttack {
		mitre[i] = t.Technique + " " + t.Name
	}
	ev.Payload = &pdPayload{
		Summary:   truncateRunes(fmt.Sprintf("[%s] %s: %s", a.Severity, a.Rule, summary), pdSummaryMax),
		Source:    "exfilguard/" + a.Entity.Kind,
		Severity:  pdSeverity(a.Severity),
		Timestamp: a.DetectedAt,
		Component: a.Entity.Kind,
		Group:     a.Rule,
		Class:     a.Rule,
		// Numbers first-responders need without opening our logs; record
		// samples stay out, a paging service is not where they belong.
		CustomDetails: map[string]any{
			"alert_id":   a.ID,
			"rule":       a.Rule,
			"severity":   a.Severity,
			"score":      a.Score,
			"entity":     a.Entity,
			"principal":  a.Principal,
			"event_time": a.EventTime,
			"window":     a.Window,
			"observed":   a.Observed,
			"expected":   a.Expected,
			"exposure":   a.Exposure,
			"incident":   a.Incident,
			"basis":      a.Basis,
			"learning":   a.Learning,
			"objects":    a.Objects,
			"mitre":      mitre,
		},
	}
	if a.Runbook != "" {
		ev.Links = []pdLink{{Href: a.Runbook, Text: "Runbook: " + a.Rule}}
	}
	return ev
}

// pdSeverity maps our severities onto PagerDuty's four, whose urgency
// rules decide who is woken: only critical is critical.
func pdSeverity(s string) string {
	switch s {
	case "critical":
		return "critical"
	case "high":
		return "error"
	case "medium":
		return "warning"
	case "low":
		return "info"
	}
	return "warning"
}
