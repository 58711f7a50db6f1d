package alerts

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// Builder makes alerts from detections. It is owned by one goroutine at a
// time, like the engine that feeds it.
type Builder struct {
	inc   *incidents
	pseud *Pseudonymizer
	// now is the wall clock for detected_at; nil in replay, where
	// detected_at equals event_time so that replays are reproducible.
	now     func() time.Time
	runbook string
	samples int

	// Suppressed counts detections folded into an open incident.
	Suppressed uint64
	// mute is the allowlist and the maintenance windows (suppress.go).
	mute *suppressor
}

// NewBuilder returns a Builder; now may be nil (replay).
func NewBuilder(cfg *config.Config, p *Pseudonymizer, now func() time.Time) *Builder {
	a := cfg.Alerts
	return &Builder{
		inc:   newIncidents(int64(a.QuietPeriod), int64(cfg.Engine.AllowedLateness), a.EscalationStep),
		pseud: p, now: now, runbook: a.RunbookURL, samples: a.Samples,
		mute: newSuppressor(cfg),
	}
}

// Muted returns how many detections each allowlist entry and maintenance
// window kept from alerting.
func (b *Builder) Muted() []Suppression { return b.mute.counts() }

// Build returns the alerts d causes: nothing when it only continues an
// open incident; its incident's opening or escalation otherwise, preceded
// by the resolution of the previous incident about the same entity and
// rule when that one had gone quiet.
func (b *Builder) Build(d *models.Detection) []*Alert {
	if b.mute.suppressed(d) {
		return nil
	}
	in, tr, stale := b.inc.observe(d)
	var out []*Alert
	if stale != nil {
		if r := b.resolution(incidentKey{d.Hash, d.Rule.Family()}, stale); r != nil {
			out = append(out, r)
		}
	}
	if tr == suppressed {
		b.Suppressed++
		return out
	}
	a := b.alert(d, in, tr)
	in.lastAlert = a
	return append(out, a)
}

// Resolve returns the resolutions of the incidents of the kinds owns
// accepts (nil: all) that have been quiet for the quiet period as of
// watermark, the newest event time processed. It is cheap until one is
// due, so it may be called after every event.
func (b *Builder) Resolve(watermark int64, owns func(models.Kind) bool) []*Alert {
	var out []*Alert
	for _, q := range b.inc.expired(watermark, owns) {
		if r := b.resolution(q.key, q.incident); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// resolution is the alert that closes in: the last alert's subject and
// numbers, with the incident's totals and a summary of its whole course.
// Its event time is the end of the quiet period, whenever it is noticed.
func (b *Builder) resolution(k incidentKey, in *incident) *Alert {
	last := in.lastAlert
	if last == nil {
		return nil
	}
	seq := in.seq + 1
	incID, id := ids(k.entity, k.family, in.opened, seq)
	r := *last
	r.ID = id
	r.Severity = in.severity.String()
	r.EventTime = formatTime(in.last + b.inc.quiet)
	r.DetectedAt = r.EventTime
	if b.now != nil {
		r.DetectedAt = b.now().UTC().Format(time.RFC3339Nano)
	}
	r.Window = Window{Start: formatTime(in.opened), End: formatTime(in.last), Horizon: formatHorizon(time.Duration(in.last - in.opened))}
	r.Incident = Incident{ID: incID, Status: StatusResolved, Sequence: seq, OpenedAt: formatTime(in.opened), Family: last.Incident.Family,
		Rules: slices.Clone(in.rules), Detections: in.detections, Exposure: Exposure{Rows: round2(in.rows()), Records: round2(in.records())}}
	r.Samples = nil
	var s strings.Builder
	fmt.Fprintf(&s, "Resolved: no %s detection (%s) for %s in %s. ", strings.ReplaceAll(r.Incident.Family, "_", " "), strings.Join(in.rules, ", "), subject(&r), formatHorizon(time.Duration(b.inc.quiet)))
	fmt.Fprintf(&s, "%d detections from %s to %s exposed at least %s rows", in.detections, formatTime(in.opened), formatTime(in.last), num(in.rows()))
	if in.records() > 0 {
		fmt.Fprintf(&s, " and %s distinct customer records", num(in.records()))
	}
	fmt.Fprintf(&s, "; the highest severity was %s. Last: %s", r.Severity, last.Summary)
	r.Summary = s.String()
	return &r
}

func subject(a *Alert) string {
	if a.Entity.Kind == "principal" {
		return "principal " + a.Entity.Key
	}
	return a.Entity.Kind + " " + a.Entity.Key
}

// alert builds the opening or escalation of in for d.
func (b *Builder) alert(d *models.Detection, in *incident, tr transition) *Alert {
	if !slices.Contains(in.rules, d.Rule.String()) {
		in.rules = append(in.rules, d.Rule.String())
	}
	incID, id := ids(d.Hash, d.Rule.Family(), in.opened, in.seq)
	status := StatusOpened
	if tr == escalated {
		status = StatusEscalated
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
	// The incident's accumulated exposure grades it too: a leak slow
	// enough to look small in every window still pages once it adds up.
	// Warm-up and prior-only detections stay capped, as in the engine.
	sev := max(d.Severity, in.severity)
	if acc := models.ExposureSeverity(in.total()); acc > sev && !d.Warmup && d.Basis != models.BasisPrior {
		sev = acc
	}
	in.severity = sev
	a := &Alert{
		ID:          id,
		Rule:        d.Rule.String(),
		Severity:    sev.String(),
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
		Incident: Incident{ID: incID, Status: status, Sequence: in.seq, OpenedAt: formatTime(in.opened), Family: d.Rule.Family().String(),
			Rules: slices.Clone(in.rules), Detections: in.detections, Exposure: Exposure{Rows: round2(in.rows()), Records: round2(in.records())}},
		Exposure:    round2(d.Exposure),
		Basis:       d.Basis.String(),
		Learning:    d.Learning,
		Override:    d.Override,
		Sensitivity: d.Class,
		RowsUnknown: d.RowsUnknown,
	}
	a.Runbook = runbook(b.runbook, a.Rule)
	for _, m := range d.Measures[:d.NMeasures] {
		a.Observed[m.Name] = round2(m.Observed)
		a.Expected[m.Name] = round2(m.Expected)
	}
	for _, o := range d.Objects[:d.NObjects] {
		a.Objects = append(a.Objects, redactObject(o))
	}
	if b.samples > 0 && b.pseud.Keyed() {
		for _, h := range d.Samples[:min(d.NSamples, b.samples)] {
			a.Samples = append(a.Samples, b.pseud.Record(h))
		}
	}
	a.Summary = summary(d, a)
	return a
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
	if d.RowsUnknown {
		b.WriteString(" A source of this entity reports no row counts: requests were counted as rows, so the figures are a floor.")
	}
	return b.String()
}

// OpenIncidents counts the open incidents by family and severity, for the
// metrics.
func (b *Builder) OpenIncidents() map[[2]string]int {
	out := map[[2]string]int{}
	for k, in := range b.inc.open {
		out[[2]string{k.family.String(), in.severity.String()}]++
	}
	return out
}

// Reconfigure takes a reloaded config's incident settings; open incidents
// stay open and resolve by the new quiet period.
func (b *Builder) Reconfigure(cfg *config.Config) {
	a := cfg.Alerts
	b.inc.quiet, b.inc.grace, b.inc.step = int64(a.QuietPeriod), int64(cfg.Engine.AllowedLateness), a.EscalationStep
	b.inc.resetDue()
	b.runbook, b.samples = a.RunbookURL, a.Samples
	mute := newSuppressor(cfg)
	mute.carryCounts(b.mute)
	b.mute = mute
}
