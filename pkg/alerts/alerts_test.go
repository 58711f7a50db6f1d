package alerts

import (
	"strings"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
)

var t0 = time.Date(2026, 2, 4, 12, 0, 0, 0, time.UTC).UnixNano()

func det(minutes int, sev models.Severity, exposure float64) *models.Detection {
	d := &models.Detection{
		Rule: models.RuleFanOut, Kind: models.KindSourceNet, Key: "203.0.113.0/24", Hash: 42,
		Severity: sev, Score: 80, Principal: "cust-0000000042", PrincipalType: event.PrincipalCustomer,
		Time: t0 + int64(minutes)*int64(time.Minute), Horizon: time.Hour, Exposure: exposure, Basis: models.BasisPopulation,
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
	b := NewBuilder(cfg, nil, nil)
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
		a, ok := b.Build(s.d)
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
	a1, _ := NewBuilder(cfg, nil, nil).Build(det(0, models.SeverityHigh, 500))
	a2, _ := NewBuilder(cfg, nil, nil).Build(det(0, models.SeverityHigh, 500))
	if a1.ID != a2.ID || a1.Incident.ID != a2.Incident.ID {
		t.Errorf("ids differ across builders: %s/%s", a1.ID, a2.ID)
	}
	d := det(0, models.SeverityHigh, 500)
	d.Rule = models.RuleDistinctRecords
	a3, _ := NewBuilder(cfg, nil, nil).Build(d)
	if a3.ID == a1.ID {
		t.Error("different rules share an id")
	}
}

func TestReplayDetectedAtIsEventTime(t *testing.T) {
	a, _ := NewBuilder(config.Default().Alerts, nil, nil).Build(det(0, models.SeverityHigh, 500))
	if a.DetectedAt != a.EventTime || a.EventTime != "2026-02-04T12:00:00.000Z" {
		t.Errorf("event_time %s detected_at %s", a.EventTime, a.DetectedAt)
	}
	clock := func() time.Time { return time.Date(2026, 2, 4, 12, 0, 3, 0, time.UTC) }
	live, _ := NewBuilder(config.Default().Alerts, nil, clock).Build(det(0, models.SeverityHigh, 500))
	if live.DetectedAt != "2026-02-04T12:00:03Z" {
		t.Errorf("live detected_at %s", live.DetectedAt)
	}
}

func TestCustomerPseudonyms(t *testing.T) {
	d := det(0, models.SeverityHigh, 500)
	redacted, _ := NewBuilder(config.Default().Alerts, nil, nil).Build(d)
	if redacted.Principal != Redacted || strings.Contains(redacted.Summary, "cust-") {
		t.Errorf("without a key: principal %q summary %q", redacted.Principal, redacted.Summary)
	}
	p := NewPseudonymizer([]byte("secret"))
	a, _ := NewBuilder(config.Default().Alerts, p, nil).Build(d)
	b, _ := NewBuilder(config.Default().Alerts, NewPseudonymizer([]byte("secret")), nil).Build(d)
	c, _ := NewBuilder(config.Default().Alerts, NewPseudonymizer([]byte("other")), nil).Build(d)
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
	s, _ := NewBuilder(config.Default().Alerts, nil, nil).Build(staff)
	if s.Principal != "cs-0042" || s.Entity.Key != "cs-0042" {
		t.Errorf("staff principal rewritten: %q %q", s.Principal, s.Entity.Key)
	}
}

func TestSummarySaysObservedAndExpected(t *testing.T) {
	a, _ := NewBuilder(config.Default().Alerts, nil, nil).Build(det(0, models.SeverityHigh, 1234))
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
	a, _ := NewBuilder(config.Default().Alerts, nil, nil).Build(d)
	if strings.Contains(a.Summary, "8812345") || a.Objects[0] != "/api/v1/customers/:id" {
		t.Errorf("id in alert: objects %v summary %q", a.Objects, a.Summary)
	}
}
