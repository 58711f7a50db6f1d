package alerts

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// pdTestKey looks like an integration key, and is what must never reach
// an error or a log.
const pdTestKey = "R0UT1NGKEYXXXXSECRET0123456789ab"

func pdSink(t *testing.T, url string) *PagerDuty {
	t.Helper()
	p, err := NewPagerDuty(config.Sink{Name: "oncall", Type: config.SinkPagerDuty, URL: url, SecretEnv: "PD_KEY", BatchSize: 1},
		Deps{Getenv: func(k string) string {
			if k == "PD_KEY" {
				return pdTestKey
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pdSent is an Events API v2 event as PagerDuty reads it.
type pdSent struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	DedupKey    string `json:"dedup_key"`
	Payload     *struct {
		Summary       string         `json:"summary"`
		Source        string         `json:"source"`
		Severity      string         `json:"severity"`
		Timestamp     string         `json:"timestamp"`
		Component     string         `json:"component"`
		Group         string         `json:"group"`
		Class         string         `json:"class"`
		CustomDetails map[string]any `json:"custom_details"`
	} `json:"payload"`
	Links []struct {
		Href string `json:"href"`
		Text string `json:"text"`
	} `json:"links"`
}

func pdDecode(t *testing.T, body []byte) pdSent {
	t.Helper()
	var ev pdSent
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("event is not JSON: %v", err)
	}
	return ev
}

// One incident is one PagerDuty alert: opened triggers, escalated
// triggers the same dedup key (an update, not a second page), resolved
// resolves it.
func TestPagerDutyIncidentLifecycle(t *testing.T) {
	rcv := hsServe(t, 202)
	p := pdSink(t, rcv.URL+"/v2/enqueue")
	opened := hsAlert("3f9a1c2b7d4e5f60718293a4", StatusOpened, 0)
	escalated := hsAlert("8b2d7e4f1a6c3095d7e8f1a2", StatusEscalated, 1)
	resolved := hsAlert("c4e6a8b0d2f4e6a8b0d2f4e6", StatusResolved, 2)
	for _, a := range []*Alert{opened, escalated, resolved} {
		if _, err := p.Notify(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	got := rcv.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, want := range []string{"trigger", "trigger", "resolve"} {
		ev := pdDecode(t, got[i].body)
		if ev.EventAction != want || ev.DedupKey != opened.Incident.ID || ev.RoutingKey != pdTestKey {
			t.Errorf("event %d: action %q dedup %q key ok %v; want %s on %s", i, ev.EventAction, ev.DedupKey, ev.RoutingKey == pdTestKey, want, opened.Incident.ID)
		}
	}

	ev := pdDecode(t, got[0].body)
	pl := ev.Payload
	if pl == nil {
		t.Fatal("trigger without payload")
	}
	if pl.Source != "exfilguard/principal" || pl.Severity != "error" || pl.Timestamp != opened.DetectedAt ||
		pl.Component != "principal" || pl.Group != "distinct_records" || pl.Class != "distinct_records" {
		t.Errorf("payload %+v", pl)
	}
	if !strings.Contains(pl.Summary, opened.Summary) || !strings.Contains(pl.Summary, "distinct_records") {
		t.Errorf("summary %q", pl.Summary)
	}
	cd := pl.CustomDetails
	if cd["alert_id"] != opened.ID || cd["principal"] != "svc-reporting" || cd["exposure"] != 48210.0 {
		t.Errorf("custom_details %v", cd)
	}
	inc, _ := cd["incident"].(map[string]any)
	exp, _ := inc["exposure"].(map[string]any)
	if inc["id"] != opened.Incident.ID || exp["rows"] != 61044.0 || exp["records"] != 48210.0 {
		t.Errorf("custom_details.incident %v", inc)
	}
	obs, _ := cd["observed"].(map[string]any)
	want, _ := cd["expected"].(map[string]any)
	if obs["distinct_records"] != 48210.0 || want["distinct_records"] != 312.5 {
		t.Errorf("observed %v expected %v", obs, want)
	}
	if m, _ := cd["mitre"].([]any); len(m) != 2 || !strings.HasPrefix(m[0].(string), "T1213.006") {
		t.Errorf("mitre %v", cd["mitre"])
	}
	if len(ev.Links) != 1 || ev.Links[0].Href != opened.Runbook {
		t.Errorf("links %+v", ev.Links)
	}
	if r := pdDecode(t, got[2].body); r.Payload != nil {
		t.Errorf("resolve carries a payload: %+v", r.Payload)
	}
}

func TestPagerDutySeverityAndSummaryLimit(t *testing.T) {
	rcv := hsServe(t, 202)
	p := pdSink(t, rcv.URL)
	for _, c := range []struct{ ours, theirs string }{
		{"critical", "critical"}, {"high", "error"}, {"medium", "warning"}, {"low", "info"},
	} {
		a := hsAlert("3f9a1c2b7d4e5f60718293a4", StatusOpened, 0)
		a.Severity = c.ours
		a.Summary = strings.Repeat("é", 5000)
		if _, err := p.Notify(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		got := rcv.requests()
		ev := pdDecode(t, got[len(got)-1].body)
		if ev.Payload.Severity != c.theirs {
			t.Errorf("%s maps to %q, want %q", c.ours, ev.Payload.Severity, c.theirs)
		}
		if n := utf8.RuneCountInString(ev.Payload.Summary); n > 1024 || n < 1000 {
			t.Errorf("summary of %d characters; the limit is 1024", n)
		}
	}
}

// PagerDuty's default endpoint applies when the config gives none.
func TestPagerDutyDefaultURL(t *testing.T) {
	p, err := NewPagerDuty(config.Sink{Type: config.SinkPagerDuty, SecretEnv: "K"}, Deps{Getenv: func(string) string { return pdTestKey }})
	if err != nil {
		t.Fatal(err)
	}
	if p.post.url != config.DefaultPagerDutyURL {
		t.Errorf("url %q", p.post.url)
	}
	_, err = NewPagerDuty(config.Sink{Type: config.SinkPagerDuty, SecretEnv: "K"}, Deps{Getenv: func(string) string { return "" }})
	if err == nil {
		t.Error("missing routing key accepted")
	}
}

func TestPagerDutyDelivery(t *testing.T) {
	hsDeliveryCases(t, func(t *testing.T, url string) Sink { return pdSink(t, url) }, 202,
		func(t *testing.T, r hsRequest, a *Alert) {
			ev := pdDecode(t, r.body)
			if ev.DedupKey != a.Incident.ID || ev.EventAction != "trigger" {
				t.Errorf("dedup_key %q action %q; want %q trigger", ev.DedupKey, ev.EventAction, a.Incident.ID)
			}
			if ev.Payload == nil || ev.Payload.CustomDetails["alert_id"] != a.ID {
				t.Errorf("payload does not carry alert %s", a.ID)
			}
		}, pdTestKey)
}
