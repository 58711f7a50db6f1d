package alerts

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// newB is a builder with the default config but for the alerts section.
func newB(a config.Alerts, p *Pseudonymizer, now func() time.Time) *Builder {
	c := config.Default()
	c.Alerts = a
	return NewBuilder(c, p, now)
}

// build returns the opening or escalation d causes, if any, ignoring the
// resolution of a stale incident.
func build(b *Builder, d *models.Detection) (*Alert, bool) {
	as := b.Build(d)
	if len(as) == 0 || as[len(as)-1].Incident.Status == StatusResolved {
		return nil, false
	}
	return as[len(as)-1], true
}

var t0 = time.Date(2026, 2, 4, 12, 0, 0, 0, time.UTC).UnixNano()

func det(minutes int, sev models.Severity, exposure float64) *models.Detection {
	d := &models.Detection{
		Rule: models.RuleFanOut, Kind: models.KindSourceNet, Key: "203.0.113.0/24", Hash: 42,
		Severity: sev, Score: 80, Principal: "cust-0000000042", PrincipalType: event.PrincipalCustomer,
		Time: t0 + int64(minutes)*int64(time.Minute), Horizon: time.Hour, Exposure: exposure, Rows: exposure, Basis: models.BasisPopulation,
	}
	d.WindowStart, d.WindowEnd = d.Time-int64(time.Hour), d.Time
	d.Measures[0] = models.Measure{Name: "distinct_principals", Observed: exposure, Expected: 1.3}
	d.NMeasures = 1
	d.Objects[0], d.NObjects = "/api/v1/me/addresses", 1
	return d
}

func TestIncidentLifecycle(t *testing.T) {
	cfg := config.Default().Alerts // quiet 24h
	cfg.EscalationStep = 2
	b := newB(cfg, nil, nil)
	steps := []struct {
		name       string
		d          *models.Detection
		wantEmit   bool
		wantStatus string
		wantSeq    int
	}{
		{name: "first detection opens", d: det(0, models.SeverityMedium, 50), wantEmit: true, wantStatus: "opened"},
		{name: "same exposure folds", d: det(5, models.SeverityMedium, 60), wantEmit: false},
		{name: "exposure doubled escalates", d: det(10, models.SeverityMedium, 100), wantEmit: true, wantStatus: "escalated", wantSeq: 1},
		{name: "below the next step folds", d: det(20, models.SeverityMedium, 150), wantEmit: false},
		{name: "severity rose escalates", d: det(30, models.SeverityHigh, 160), wantEmit: true, wantStatus: "escalated", wantSeq: 2},
		{name: "lower severity never shown lower", d: det(40, models.SeverityLow, 400), wantEmit: true, wantStatus: "escalated", wantSeq: 3},
		{name: "after the quiet period a new incident opens", d: det(40+25*60, models.SeverityMedium, 50), wantEmit: true, wantStatus: "opened"},
	}
	var firstIncident string
	for _, s := range steps {
		a, ok := build(b, s.d)
		if ok != s.wantEmit {
			t.Fatalf("%s: emitted %v, want %v", s.name, ok, s.wantEmit)
		}
		if !ok {
			continue
		}
		if a.Incident.Status != s.wantStatus || a.Incident.Sequence != s.wantSeq {
			t.Errorf("%s: incident %+v, want %s/%d", s.name, a.Incident, s.wantStatus, s.wantSeq)
		}
		if s.name == "lower severity never shown lower" && a.Severity != "high" {
			t.Errorf("%s: severity %s, want high (the incident's)", s.name, a.Severity)
		}
		if firstIncident == "" {
			firstIncident = a.Incident.ID
		} else if s.wantStatus == "escalated" && a.Incident.ID != firstIncident {
			t.Errorf("%s: incident id changed", s.name)
		} else if s.wantStatus == "opened" && a.Incident.ID == firstIncident {
			t.Errorf("%s: reopened incident reuses the old id", s.name)
		}
	}
	if b.Suppressed != 2 {
		t.Errorf("suppressed = %d, want 2", b.Suppressed)
	}
}

func TestIDsAreDeterministic(t *testing.T) {
	cfg := config.Default().Alerts
	a1, _ := build(newB(cfg, nil, nil), det(0, models.SeverityHigh, 500))
	a2, _ := build(newB(cfg, nil, nil), det(0, models.SeverityHigh, 500))
	if a1.ID != a2.ID || a1.Incident.ID != a2.Incident.ID {
		t.Errorf("ids differ across builders: %s/%s", a1.ID, a2.ID)
	}
	d := det(0, models.SeverityHigh, 500)
	d.Rule = models.RuleOffHours
	a3, _ := build(newB(cfg, nil, nil), d)
	if a3.ID == a1.ID || a3.Incident.ID == a1.Incident.ID {
		t.Error("different rule families share an id")
	}
}

// TestOneIncidentPerFamily: rules of one family about one entity are one
// incident whose alerts list its rules; another family is another one.
func TestOneIncidentPerFamily(t *testing.T) {
	b := newB(config.Default().Alerts, nil, nil)
	fan, _ := build(b, det(0, models.SeverityMedium, 500))
	d := det(1, models.SeverityHigh, 600)
	d.Rule = models.RuleDistinctRecords
	rec, ok := build(b, d)
	if !ok || rec.Incident.ID != fan.Incident.ID || rec.Incident.Status != StatusEscalated {
		t.Fatalf("distinct_records after fan_out: %+v, want an escalation of %s", rec.Incident, fan.Incident.ID)
	}
	if !reflect.DeepEqual(rec.Incident.Rules, []string{"fan_out", "distinct_records_spike"}) || rec.Incident.Family != "exfiltration" {
		t.Errorf("incident rules %v family %s", rec.Incident.Rules, rec.Incident.Family)
	}
	d = det(2, models.SeverityMedium, 10)
	d.Rule = models.RuleNewSource
	src, _ := build(b, d)
	if src.Incident.ID == fan.Incident.ID || src.Incident.Family != "unusual_access" {
		t.Errorf("new_source joined the exfiltration incident: %+v", src.Incident)
	}
}

// TestResolution: an incident quiet for the quiet period (plus the
// allowed lateness) resolves once, with its totals; the next detection
// opens a new incident. A route that takes any of its rules takes the
// resolution.
func TestResolution(t *testing.T) {
	b := newB(config.Default().Alerts, nil, nil) // quiet 1d, lateness 1m
	open, _ := build(b, det(0, models.SeverityHigh, 500))
	d := det(90, models.SeverityHigh, 400) // a later, non-overlapping hour
	d.WindowStart = d.Time - int64(time.Hour)
	if as := b.Build(d); len(as) != 0 {
		t.Fatalf("folded detection emitted %d alerts", len(as))
	}
	last := t0 + 90*int64(time.Minute)
	if as := b.Resolve(last+int64(24*time.Hour)+int64(time.Minute), nil); len(as) != 0 {
		t.Fatalf("resolved within the grace: %+v", as[0].Incident)
	}
	as := b.Resolve(last+int64(24*time.Hour)+int64(time.Minute)+1, nil)
	if len(as) != 1 {
		t.Fatalf("%d resolutions, want 1", len(as))
	}
	r := as[0]
	if r.Incident.ID != open.Incident.ID || r.Incident.Status != StatusResolved || r.Incident.Sequence != 1 || r.Incident.Detections != 2 {
		t.Errorf("resolution incident %+v", r.Incident)
	}
	if r.Incident.Exposure.Rows != 900 {
		t.Errorf("exposure so far %v rows, want 500+400 from two disjoint windows", r.Incident.Exposure.Rows)
	}
	if r.EventTime != formatTime(last+int64(24*time.Hour)) || !strings.HasPrefix(r.Summary, "Resolved: ") {
		t.Errorf("resolution at %s: %s", r.EventTime, r.Summary)
	}
	if as := b.Resolve(last+int64(48*time.Hour), nil); len(as) != 0 {
		t.Error("resolved twice")
	}
	route := NewRoute(config.Sink{MinSeverity: "high", Rules: []string{"fan_out"}})
	if !route.Match(r) {
		t.Error("a route taking the incident's rule refuses its resolution")
	}
	reopen, _ := build(b, det(60*50, models.SeverityHigh, 500))
	if reopen.Incident.ID == open.Incident.ID || reopen.Incident.Status != StatusOpened {
		t.Errorf("after resolution: %+v", reopen.Incident)
	}
}

func TestReplayDetectedAtIsEventTime(t *testing.T) {
	a, _ := build(newB(config.Default().Alerts, nil, nil), det(0, models.SeverityHigh, 500))
	if a.DetectedAt != a.EventTime || a.EventTime != "2026-02-04T12:00:00.000Z" {
		t.Errorf("event_time %s detected_at %s", a.EventTime, a.DetectedAt)
	}
	clock := func() time.Time { return time.Date(2026, 2, 4, 12, 0, 3, 0, time.UTC) }
	live, _ := build(newB(config.Default().Alerts, nil, clock), det(0, models.SeverityHigh, 500))
	if live.DetectedAt != "2026-02-04T12:00:03Z" {
		t.Errorf("live detected_at %s", live.DetectedAt)
	}
}

func TestCustomerPseudonyms(t *testing.T) {
	d := det(0, models.SeverityHigh, 500)
	redacted, _ := build(newB(config.Default().Alerts, nil, nil), d)
	if redacted.Principal != Redacted || strings.Contains(redacted.Summary, "cust-") {
		t.Errorf("without a key: principal %q summary %q", redacted.Principal, redacted.Summary)
	}
	p := NewPseudonymizer([]byte("secret"))
	a, _ := build(newB(config.Default().Alerts, p, nil), d)
	b, _ := build(newB(config.Default().Alerts, NewPseudonymizer([]byte("secret")), nil), d)
	c, _ := build(newB(config.Default().Alerts, NewPseudonymizer([]byte("other")), nil), d)
	if !strings.HasPrefix(a.Principal, "customer:") || a.Principal == Redacted {
		t.Errorf("pseudonym %q", a.Principal)
	}
	if a.Principal != b.Principal {
		t.Error("same key, different pseudonyms")
	}
	if a.Principal == c.Principal {
		t.Error("different keys, same pseudonym")
	}
	staff := det(0, models.SeverityHigh, 500)
	staff.Kind, staff.Key, staff.Principal, staff.PrincipalType = models.KindPrincipal, "cs-0042", "cs-0042", event.PrincipalUser
	s, _ := build(newB(config.Default().Alerts, nil, nil), staff)
	if s.Principal != "cs-0042" || s.Entity.Key != "cs-0042" {
		t.Errorf("staff principal rewritten: %q %q", s.Principal, s.Entity.Key)
	}
}

func TestSummarySaysObservedAndExpected(t *testing.T) {
	a, _ := build(newB(config.Default().Alerts, nil, nil), det(0, models.SeverityHigh, 1234))
	for _, want := range []string{"Source_net 203.0.113.0/24", "1,234 distinct principals", "last 1h", "1.3 expected", "all entities of its kind", "/api/v1/me/addresses"} {
		if !strings.Contains(a.Summary, want) {
			t.Errorf("summary %q lacks %q", a.Summary, want)
		}
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 7: "7", 1.34: "1.3", 999: "999", 1000: "1,000", 1234567: "1,234,567", 12.6: "13"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestObjectIDsAreRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"public.customers":                    "public.customers",
		"billing.t_2024":                      "billing.t_2024",
		"/api/v1/me/addresses":                "/api/v1/me/addresses",
		"/api/v1/customers/8812345":           "/api/v1/customers/:id",
		"/api/v2/customers/cust-0001/orders":  "/api/v2/customers/:id/orders",
		"/accounts/9f1c2e4a-77aa-4b1e/export": "/accounts/:id/export",
	} {
		if got := redactObject(in); got != want {
			t.Errorf("redactObject(%q) = %q, want %q", in, got, want)
		}
	}
	d := det(0, models.SeverityHigh, 500)
	d.Objects[0] = "/api/v1/customers/8812345"
	a, _ := build(newB(config.Default().Alerts, nil, nil), d)
	if strings.Contains(a.Summary, "8812345") || a.Objects[0] != "/api/v1/customers/:id" {
		t.Errorf("id in alert: objects %v summary %q", a.Objects, a.Summary)
	}
}

// TestExposureSoFarNeverCountsTwice: windows of different horizons that
// overlap add only what lies beyond what was counted; disjoint ones add
// up.
func TestExposureSoFarNeverCountsTwice(t *testing.T) {
	b := newB(config.Default().Alerts, nil, nil)
	h := int64(time.Hour)
	at := func(start, end int64, rows float64) *models.Detection {
		d := det(0, models.SeverityMedium, rows)
		d.Time, d.WindowStart, d.WindowEnd = t0+end, t0+start, t0+end
		return d
	}
	steps := []struct {
		d    *models.Detection
		want float64
	}{
		{at(0, h, 100), 100},       // the first hour
		{at(-24*h, h, 150), 150},   // a day ending at the same time covers it: not 250
		{at(h, 2*h, 80), 230},      // the next hour, disjoint: adds
		{at(-22*h, 2*h, 200), 230}, // a day covering both: less than counted
		{at(90*60e9, 2*h, 10), 230},
		{at(2*h, 3*h, 70), 300},
	}
	for i, s := range steps {
		b.Build(s.d)
		in := b.inc.open[incidentKey{42, models.FamilyExfiltration}]
		if got := in.rows(); got != s.want {
			t.Errorf("step %d: exposure so far %v rows, want %v", i, got, s.want)
		}
	}
}

// TestSamplesAreOptInPseudonyms: record samples appear only when
// alerts.samples asks and a key is set, as keyed pseudonyms an analyst
// can reproduce from a suspected id with the same key.
func TestSamplesAreOptInPseudonyms(t *testing.T) {
	d := det(0, models.SeverityHigh, 500)
	d.Samples[0], d.Samples[1], d.Samples[2], d.NSamples = xxhash.Sum64String("cust-0000000042"), xxhash.Sum64String("cust-0000000043"), 7, 3
	key := NewPseudonymizer([]byte("k"))
	off, _ := build(newB(config.Default().Alerts, key, nil), d)
	cfg := config.Default().Alerts
	cfg.Samples = 2
	unkeyed, _ := build(newB(cfg, nil, nil), d)
	on, _ := build(newB(cfg, key, nil), d)
	if off.Samples != nil || unkeyed.Samples != nil {
		t.Errorf("samples without opt-in or key: %v %v", off.Samples, unkeyed.Samples)
	}
	if len(on.Samples) != 2 || on.Samples[0] != key.RecordID("cust-0000000042") || on.Samples[1] != key.RecordID("cust-0000000043") {
		t.Errorf("samples %v", on.Samples)
	}
	js, _ := json.Marshal(on)
	if strings.Contains(string(js), "cust-") {
		t.Errorf("a sample leaks the id: %s", js)
	}
}
