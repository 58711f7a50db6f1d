// Package alerts turns detections into the alerts a SOC receives: explained,
// grouped into incidents so that one exfiltration is one alert that
// escalates rather than a stream of repeats, pseudonymised, and written to
// sinks.
package alerts

import (
	"go.opentelemetry.io/otel/trace"

	"github.com/exfilguard/exfilguard/pkg/models"
)

// Alert is the alert contract of DESIGN.md, one JSON object per line on the
// stdout and file sinks. Field order is the contract's, and encoding is
// deterministic (maps are written with sorted keys), so replays are
// byte-identical.
type Alert struct {
	ID          string             `json:"id"`
	Rule        string             `json:"rule"`
	Severity    string             `json:"severity"`
	Score       float64            `json:"score"`
	Entity      EntityRef          `json:"entity"`
	Principal   string             `json:"principal"`
	EventTime   string             `json:"event_time"`
	DetectedAt  string             `json:"detected_at"`
	Window      Window             `json:"window"`
	Observed    map[string]float64 `json:"observed"`
	Expected    map[string]float64 `json:"expected"`
	Summary     string             `json:"summary"`
	Objects     []string           `json:"objects"`
	MitreAttack []models.Technique `json:"mitre_attack"`

	// Incident groups the alerts about one entity and rule: "opened" first,
	// then "escalated" when severity or exposure grew past a step.
	Incident Incident `json:"incident"`
	// Exposure estimates customer records exposed so far in the window.
	Exposure float64 `json:"exposure"`
	// Basis says what the expectation rested on: own, peers, population or
	// prior; Learning that the entity is still young.
	Basis    string `json:"basis"`
	Learning bool   `json:"learning"`
	// Override names the override (config overrides) whose settings
	// judged the entity, so that an analyst reading a threshold knows
	// which one it was.
	Override string `json:"override,omitempty"`
	// Sensitivity is the heaviest sensitivity class of the objects, when
	// sensitive.classes are configured.
	Sensitivity string `json:"sensitivity_class,omitempty"`
	// RowsUnknown says that a source of the entity reports no row counts:
	// its rows were counted as requests (or record ids), so the figures
	// are a floor.
	RowsUnknown bool `json:"rows_unknown,omitempty"`
	// Runbook links the rule's explanation and first steps.
	Runbook string `json:"runbook_url,omitempty"`
	// Samples are pseudonymised record ids of the triggering request
	// (keyed HMAC), only when alerts.samples opts in.
	Samples []string `json:"samples,omitempty"`
	// TraceID and SpanID name the span of the batch that raised the alert,
	// when tracing is on: a delivery joins that trace, and an analyst can
	// go from the alert to the trace.
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
}

// EntityRef names the entity an alert is about.
type EntityRef struct {
	Kind string `json:"kind"`
	Key  string `json:"key"`
}

// Window is the judged window of event time.
type Window struct {
	Start   string `json:"start"`
	End     string `json:"end"`
	Horizon string `json:"horizon"`
}

// Incident is the alert's place in its incident.
type Incident struct {
	ID string `json:"id"`
	// Status is "opened", "escalated" or "resolved".
	Status   string `json:"status"`
	Sequence int    `json:"sequence"`
	// OpenedAt is the event time of the detection that opened it.
	OpenedAt string `json:"opened_at"`
	// Family is the rule family the incident is about: exfiltration,
	// unusual_access or denied_access; Rules the rules of its alerts so
	// far, in first-seen order.
	Family string   `json:"family"`
	Rules  []string `json:"rules"`
	// Detections counts the detections folded into the incident so far.
	Detections int `json:"detections"`
	// Exposure is what the incident has exposed so far, across all its
	// windows: a lower bound, since overlapping windows are not added.
	Exposure Exposure `json:"exposure"`
}

// Exposure counts customer data read: sensitive rows, and distinct
// customer records where the source names them (0 when it does not).
type Exposure struct {
	Rows    float64 `json:"rows"`
	Records float64 `json:"records"`
}

// Incident statuses.
const (
	StatusOpened    = "opened"
	StatusEscalated = "escalated"
	StatusResolved  = "resolved"
)

// spanContext is the remote span context of the batch that raised a, or
// an invalid one.
func (a *Alert) spanContext() trace.SpanContext {
	tid, err1 := trace.TraceIDFromHex(a.TraceID)
	sid, err2 := trace.SpanIDFromHex(a.SpanID)
	if err1 != nil || err2 != nil {
		return trace.SpanContext{}
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}
