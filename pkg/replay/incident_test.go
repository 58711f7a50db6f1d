package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/sim"
)

// TestLongExfiltrationIsOneIncident: a crawler forging customer tokens for
// days trips the exfiltration rules on every window it is in, hundreds of
// detections, and the SOC sees per entity one incident: opened once,
// escalated a few times as its exposure grows, resolved once after the
// crawl stops and the quiet period passes.
func TestLongExfiltrationIsOneIncident(t *testing.T) {
	var in bytes.Buffer
	const days = 12
	if _, err := sim.WriteJSONL(&in, sim.Options{Seed: 3, Days: days, Scale: 0.05, Scenarios: []string{"forged_token_crawl"}}); err != nil {
		t.Fatal(err)
	}
	// The crawl runs to the end of the traffic; one ordinary event two
	// days later moves event time past the quiet period.
	end := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days+2)
	fmt.Fprintf(&in, `{"ts":%q,"principal":"svc-storefront","principal_type":"service","action":"read","object":"public.products","rows":1,"status":"ok"}`+"\n", end.Format(time.RFC3339))

	out, sum := replayBytes(t, in.Bytes(), nil)
	type course struct{ opened, escalated, resolved int }
	byEntity := map[string]*course{}
	var crawlerIncident string
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var a alerts.Alert
		if err := json.Unmarshal(line, &a); err != nil {
			t.Fatal(err)
		}
		if a.Entity.Key != "jwt-kid-2024a" || a.Incident.Family != "exfiltration" {
			continue
		}
		if crawlerIncident == "" {
			crawlerIncident = a.Incident.ID
		}
		c := byEntity[a.Incident.ID]
		if c == nil {
			c = &course{}
			byEntity[a.Incident.ID] = c
		}
		switch a.Incident.Status {
		case alerts.StatusOpened:
			c.opened++
		case alerts.StatusEscalated:
			c.escalated++
		case alerts.StatusResolved:
			c.resolved++
			t.Logf("resolution: %s (severity %s, %d detections, exposure %+v)", a.Summary, a.Severity, a.Incident.Detections, a.Incident.Exposure)
			if a.Incident.Detections < 50 {
				t.Errorf("the incident folded only %d detections; the test needs a long exfiltration", a.Incident.Detections)
			}
			if a.Severity != "critical" {
				t.Errorf("resolved at severity %s; tens of thousands of records exposed is critical", a.Severity)
			}
		}
	}
	if len(byEntity) != 1 {
		t.Fatalf("the crawl's signing key has %d exfiltration incidents, want 1: %+v", len(byEntity), byEntity)
	}
	c := byEntity[crawlerIncident]
	if c.opened != 1 || c.resolved != 1 || c.escalated < 1 || c.escalated > 8 {
		t.Errorf("incident course %+v: want one opened, a few escalated, one resolved", *c)
	}
	t.Logf("signing key: %+v; all: alerts %v, %d folded, %d resolved", *c, sum.Alerts, sum.Suppressed, sum.Resolved)
}
