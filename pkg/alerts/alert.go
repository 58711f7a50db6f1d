// Package alerts turns detections into the alerts a SOC receives: explained,
// grouped into incidents so that one exfiltration is one alert that
// escalates rather than a stream of repeats, pseudonymised, and written to
// sinks.
package alerts

import "github.com/exfilguard/exfilguard/pkg/models"

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
	ID       string `json:"id"`
	Status   string `json:"status"`
	Sequence int    `json:"sequence"`
}
