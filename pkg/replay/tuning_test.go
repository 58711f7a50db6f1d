package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/sim"
)

var (
	etlOnce    sync.Once
	etlTraffic []byte
)

// etlNight is ten days in which the nightly ETL (svc-etl-customers) reads
// ~33k customer rows at about 02:00, and eng-003 makes one huge export on
// the last days: with bulk_read.max_rows at 30000 the ETL's first nights
// are a known false positive and the export is the attack.
func etlNight(t *testing.T) []byte {
	etlOnce.Do(func() {
		var b bytes.Buffer
		if _, err := sim.WriteJSONL(&b, sim.Options{Seed: 11, Days: 10, Scale: 0.05, Scenarios: []string{"huge_export"}}); err != nil {
			t.Fatal(err)
		}
		etlTraffic = b.Bytes()
	})
	return etlTraffic
}

// tightCap is the config with the known false positive.
func tightCap() *config.Config {
	c := config.Default()
	c.Detectors.BulkRead.MaxRows = 30000
	return c
}

// bulkReads replays the ETL traffic under cfg and returns the bulk_read
// alerts by entity key, and the summary.
func bulkReads(t *testing.T, cfg *config.Config) (map[string][]alerts.Alert, *Summary) {
	t.Helper()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("invalid config: %v", errs[0])
	}
	var out bytes.Buffer
	sum, err := Run(context.Background(), Options{Config: cfg, Input: bytes.NewReader(etlNight(t)), Alerts: &out})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]alerts.Alert{}
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var a alerts.Alert
		if err := json.Unmarshal(line, &a); err != nil {
			t.Fatal(err)
		}
		if a.Rule == "bulk_read" && a.Incident.Status != alerts.StatusResolved {
			got[a.Entity.Key] = append(got[a.Entity.Key], a)
		}
	}
	return got, sum
}

func muted(sum *Summary, reason, name string) uint64 {
	for _, m := range sum.Muted {
		if m.Reason == reason && m.Name == name {
			return m.N
		}
	}
	return 0
}

// TestTuningRemovesTheFalsePositiveAndKeepsTheAttack: each way of tuning
// the ETL's known false positive (an override, an allowlist entry, a
// maintenance window, a lighter sensitivity class) removes it and keeps
// the attack; an expired entry or one outside its hours does not apply.
func TestTuningRemovesTheFalsePositiveAndKeepsTheAttack(t *testing.T) {
	const etl, attacker = "svc-etl-customers", "eng-003"
	base, _ := bulkReads(t, tightCap())
	if len(base[etl]) == 0 || len(base[attacker]) == 0 {
		t.Fatalf("the traffic no longer has the ETL false positive and the attack: %d, %d", len(base[etl]), len(base[attacker]))
	}
	if base[etl][0].Override != "" {
		t.Errorf("an alert judged by the top-level settings names override %q", base[etl][0].Override)
	}

	allow := func(mod func(*config.AllowEntry)) *config.Config {
		c := tightCap()
		a := config.AllowEntry{Name: "etl-nightly", Entities: []string{"svc-etl-*"}, Objects: []string{"public.*"}, Rules: []string{"bulk_read"},
			Hours: "01:00-04:00", Owner: "data-platform@example.com", Expires: config.Date{Time: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}}
		mod(&a)
		c.Allowlist = []config.AllowEntry{a}
		return c
	}
	override := tightCap()
	o := config.Override{Name: "etl", Match: config.OverrideMatch{Kinds: []string{"principal"}, Entities: []string{"svc-etl-*"}}, Detectors: override.Detectors}
	o.Detectors.BulkRead.MaxRows = 100000
	override.Overrides = []config.Override{o}
	// An override that matches the attacker too must name itself in its
	// alerts.
	named := tightCap()
	named.Overrides = []config.Override{{Name: "engineers", Match: config.OverrideMatch{Entities: []string{"eng-*"}}, Detectors: named.Detectors}}
	maint := tightCap()
	maint.Maintenance = []config.Maintenance{{Name: "etl-migration", Start: time.Date(2026, 1, 4, 22, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 7, 6, 0, 0, 0, time.UTC)}}
	light := tightCap()
	// Every customer table is light, but the export reads far more than
	// twice the cap.
	light.Sensitive.Classes = []config.SensitiveClass{{Name: "customer-light", Patterns: []string{"etl_", "customers"}, Weight: 0.5}}

	for _, tt := range []struct {
		name      string
		cfg       *config.Config
		etlQuiet  bool
		mutedBy   [2]string
		overrides string // the attacker's alerts' override name
	}{
		{"override raises the ETL's cap", override, true, [2]string{}, ""},
		{"override names itself", named, false, [2]string{}, "engineers"},
		{"allowlist entry in force", allow(func(*config.AllowEntry) {}), true, [2]string{"allowlist", "etl-nightly"}, ""},
		{"allowlist entry expired", allow(func(a *config.AllowEntry) { a.Expires.Time = time.Date(2026, 1, 4, 0, 0, 0, 0, time.UTC) }), false, [2]string{}, ""},
		{"allowlist entry outside its hours", allow(func(a *config.AllowEntry) { a.Hours = "05:00-06:00" }), false, [2]string{}, ""},
		{"allowlist entry for other objects", allow(func(a *config.AllowEntry) { a.Objects = []string{"billing.*"} }), false, [2]string{}, ""},
		{"maintenance window", maint, true, [2]string{"maintenance", "etl-migration"}, ""},
		{"lighter sensitivity class", light, true, [2]string{}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, sum := bulkReads(t, tt.cfg)
			if quiet := len(got[etl]) == 0; quiet != tt.etlQuiet {
				t.Errorf("ETL bulk_read alerts: %d, want quiet=%v", len(got[etl]), tt.etlQuiet)
			}
			if len(got[attacker]) == 0 {
				t.Fatal("the attack is no longer alerted on")
			}
			if tt.mutedBy[0] != "" && muted(sum, tt.mutedBy[0], tt.mutedBy[1]) == 0 {
				t.Errorf("%s %s muted nothing: %+v", tt.mutedBy[0], tt.mutedBy[1], sum.Muted)
			}
			if a := got[attacker][0]; a.Override != tt.overrides {
				t.Errorf("the attack's alert names override %q, want %q", a.Override, tt.overrides)
			}
			if tt.cfg == light {
				a := got[attacker][0]
				if a.Sensitivity != "customer-light" {
					t.Errorf("sensitivity_class = %q", a.Sensitivity)
				}
				// Exposure is in real rows: the same as without weights.
				if b := base[attacker][0]; a.Exposure != b.Exposure {
					t.Errorf("exposure %v under a 0.5 weight, %v without: it must stay in real rows", a.Exposure, b.Exposure)
				}
			}
		})
	}
}
