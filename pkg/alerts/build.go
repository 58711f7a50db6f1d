package alerts

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// Builder makes alerts from detections. It is owned by one goroutine, like
// the engine that feeds it.
type Builder struct {
	inc   *incidents
	pseud *Pseudonymizer
	// now is the wall clock for detected_at; nil in replay, where
	// detected_at equals event_time so that replays are reproducible.
	now func() time.Time

	// Suppressed counts detections folded into an open incident.
	Suppressed uint64
}

// NewBuilder returns a Builder; now may be nil (replay).
func NewBuilder(cfg config.Alerts, p *Pseudonymizer, now func() time.Time) *Builder {
	return &Builder{inc: newIncidents(int64(cfg.QuietPeriod), cfg.EscalationStep), pseud: p, now: now}
}

// Build returns the alert for d, or false when d only continues an open
// incident without escalating it.
func (b *Builder) Build(d *models.Detection) (*Alert, bool) {
	in, tr := b.inc.observe(d)
	if tr == suppressed {
		b.Suppressed++
		return nil, false
	}
	incID, id := ids(d, in)
	status := "opened"
	if tr == escalated {
		status = "escalated"
	}
	key := d.Key
	if d.Kind == models.KindPrincipal && d.PrincipalType == event.PrincipalCustomer {
		key = b.pseud.Name(key)
	}
	principal := d.Principal
	if d.PrincipalType == event.PrincipalCustomer {
		principal = b.pseud.Name(principal)
	}
	et := formatTime(d.Time)
	detected := et
	if b.now != nil {
		detected = b.now().UTC().Format(time.RFC3339Nano)
	}
	a := &Alert{
		ID:          id,
		Rule:        d.Rule.String(),
		Severity:    max(d.Severity, in.severity).String(),
		Score:       d.Score,
		Entity:      EntityRef{Kind: d.Kind.String(), Key: key},
		Principal:   principal,
		EventTime:   et,
		DetectedAt:  detected,
		Window:      Window{Start: formatTime(d.WindowStart), End: formatTime(d.WindowEnd), Horizon: formatHorizon(d.Horizon)},
		Observed:    make(map[string]float64, d.NMeasures),
		Expected:    make(map[string]float64, d.NMeasures),
		Objects:     make([]string, 0, d.NObjects),
		MitreAttack: d.Rule.MITRE(),
		Incident:    Incident{ID: incID, Status: status, Sequence: in.seq},
		Exposure:    round2(d.Exposure),
		Basis:       d.Basis.String(),
		Learning:    d.Learning,
	}
	for _, m := range d.Measures[:d.NMeasures] {
		a.Observed[m.Name] = round2(m.Observed)
		a.Expected[m.Name] = round2(m.Expected)
	}
	for _, o := range d.Objects[:d.NObjects] {
		a.Objects = append(a.Objects, redactObject(o))
	}
	a.Summary = summary(d, a)
	return a, true
}

// redactObject hides ids inside API paths: a producer that logs
// "/api/v1/customers/8812345" as the object must not put a customer id
// into every alert. Each path segment holding a digit becomes ":id";
// table names (no slash) are kept as they are.
func redactObject(o string) string {
	if !strings.Contains(o, "/") || !strings.ContainsAny(o, "0123456789") {
		return o
	}
	parts := strings.Split(o, "/")
	for i, p := range parts {
		if i > 0 && strings.ContainsAny(p, "0123456789") && !isVersion(p) {
			parts[i] = ":id"
		}
	}
	return strings.Join(parts, "/")
}

// isVersion reports an API version segment such as "v1" or "v2beta",
// which is not an id.
func isVersion(p string) bool {
	return len(p) >= 2 && len(p) <= 8 && p[0] == 'v' && p[1] >= '0' && p[1] <= '9'
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func formatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// formatHorizon prints a window length the way the config writes it.
func formatHorizon(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return config.Duration(d.Round(time.Second)).String()
}

// num prints a count for people: 1,234,567 or 3.2 for small fractions.
func num(x float64) string {
	if x < 10 && x != math.Trunc(x) {
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(x)), 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

var basisWords = map[string]string{
	"own":        "its own baseline",
	"peers":      "its peer group's baseline",
	"population": "the baseline of all entities of its kind",
	"prior":      "the default prior (nothing learned yet)",
}

// summary is the one sentence an analyst reads first: who, what, how much
// against how much is normal, and where.
func summary(d *models.Detection, a *Alert) string {
	who := a.Entity.Kind + " " + a.Entity.Key
	if d.Kind == models.KindPrincipal {
		who = "Principal " + a.Entity.Key
	} else {
		who = strings.ToUpper(who[:1]) + who[1:]
	}
	var b strings.Builder
	m0 := d.Measures[0]
	ratio := (m0.Observed + 1) / (m0.Expected + 1)
	horizon := a.Window.Horizon
	switch d.Rule {
	case models.RuleVolumeSpike, models.RuleDistinctRecords, models.RuleFanOut, models.RuleDeniedBurst:
		what := map[string]string{
			"rows": "read %s rows", "sensitive_rows": "read %s rows of customer data",
			"distinct_records": "touched %s distinct customer records", "distinct_principals": "acted for %s distinct principals",
			"denied": "had %s denied or failed requests", "requests": "made %s requests",
			"distinct_objects": "touched %s distinct objects",
		}[m0.Name]
		fmt.Fprintf(&b, "%s "+what+" in the last %s, %sx the %s expected from %s", who, num(m0.Observed), horizon, num(ratio), num(m0.Expected), basisWords[a.Basis])
	case models.RuleBulkRead:
		fmt.Fprintf(&b, "%s read %s rows of customer data in a single request; the cap is %s and the most it (or its peers) normally reads in one request or one day is %s", who, num(m0.Observed), num(d.Measures[1].Observed), num(m0.Expected))
	case models.RuleFirstSensitiveObject:
		fmt.Fprintf(&b, "%s read %s rows from a sensitive object it had never touched before", who, num(m0.Observed))
		if a.Basis == "peers" {
			b.WriteString(", and none of its peers reads it either")
		}
	case models.RuleLowAndSlow:
		fmt.Fprintf(&b, "%s has read more customer data than normal for %s days in a row: %s rows today against %s expected, %s rows above normal in all", who, num(d.Measures[2].Observed), num(m0.Observed), num(m0.Expected), num(d.Measures[1].Observed))
	case models.RuleDormantCredential:
		fmt.Fprintf(&b, "%s came back after %s days of silence and read %s rows of customer data", who, num(m0.Observed), num(d.Measures[1].Observed))
	case models.RuleNewSource:
		fmt.Fprintf(&b, "%s read %s rows of customer data from a network or client never seen for it before", who, num(m0.Observed))
	case models.RuleOffHours:
		fmt.Fprintf(&b, "%s read %s rows of customer data at an hour when ", who, num(m0.Observed))
		if a.Basis == "peers" {
			b.WriteString("its peers never work")
		} else {
			fmt.Fprintf(&b, "it has worked in only %s%% of weeks", num(100*d.Measures[1].Observed))
		}
	case models.RuleEnumeration:
		fmt.Fprintf(&b, "%s walked customer record ids in sequence: %s%% of %s ids in the last %s continue a run", who, num(100*m0.Observed), num(d.Measures[1].Observed), horizon)
	}
	if len(a.Objects) > 0 && d.Rule != models.RuleDeniedBurst {
		fmt.Fprintf(&b, " (%s)", strings.Join(a.Objects, ", "))
	}
	if d.Kind != models.KindPrincipal && a.Principal != "" {
		fmt.Fprintf(&b, "; top principal %s", a.Principal)
	}
	b.WriteString(".")
	if d.Warmup {
		b.WriteString(" Raised during warm-up: severity capped.")
	}
	return b.String()
}
