package eval

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/sim"
)

// TestTargetsMet: with the default config, every attack scenario is
// detected, the median records exposed before the first alert is within
// the target (huge_export caught on the export), false high and critical
// alerts are within the target, and the static baseline at the same noise
// does worse.
func TestTargetsMet(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("replays two weeks of traffic; .ci/run runs detector eval itself, without -race")
	}
	rep, err := Run(context.Background(), Options{Config: config.Default(),
		Sim: sim.Options{Seed: 11, Days: 12, Scale: 0.1, Scenarios: sim.ScenarioNames()}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	if miss := DefaultTargets.Check(rep.Detector); len(miss) > 0 {
		t.Errorf("targets missed: %s", strings.Join(miss, "; "))
	}
	if len(rep.Detector.Attacks) != len(sim.ScenarioNames()) {
		t.Errorf("%d attacks scored, want every scenario", len(rep.Detector.Attacks))
	}
	detected := 0
	for _, a := range rep.Static.Attacks {
		if a.Detected {
			detected++
		}
	}
	if detected >= len(rep.Detector.Attacks) {
		t.Errorf("the static baseline detects every attack too; the comparison shows nothing")
	}
}

// TestScorerCountsExposureBeforeTheFirstAlert: the exposure before an
// alert counts the attack's distinct records strictly before the alert's
// event time; an alert on an unlabelled entity is false.
func TestScorerCountsExposureBeforeTheFirstAlert(t *testing.T) {
	g, err := sim.New(sim.Options{Seed: 1, Days: 7, Scale: 0.02, Scenarios: []string{"scraper_key"}})
	if err != nil {
		t.Fatal(err)
	}
	labels := g.Labels()
	s := NewScorer(labels)
	var buf []byte
	for {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			break
		}
		s.Observe(buf, g.Scenario())
	}
	a := s.attacks["scraper_key"]
	if a == nil || a.total == 0 || labels[0].Unit != "records" {
		t.Fatalf("scraper exposure not followed: %+v", labels)
	}
	mid := a.times[len(a.times)/2]
	alert := `{"rule":"enumeration","severity":"high","event_time":"` + timeString(mid) + `","entity":{"kind":"` + labels[0].EntityKind + `","key":"` + labels[0].Entity + `"},"incident":{"status":"opened"}}`
	if err := s.Alert([]byte(alert)); err != nil {
		t.Fatal(err)
	}
	if err := s.Alert([]byte(`{"rule":"fan_out","severity":"critical","event_time":"` + timeString(mid) + `","entity":{"kind":"principal","key":"nobody"},"incident":{"status":"opened"}}`)); err != nil {
		t.Fatal(err)
	}
	r := s.Result(1000)
	got := r.Attacks[0]
	if !got.Detected || got.ExposedBefore != a.exposedBefore(mid) || got.ExposedBefore <= 0 || got.ExposedBefore >= got.Exposed {
		t.Errorf("result %+v", got)
	}
	if r.FalseBySeverity["critical"] != 1 {
		t.Errorf("false alerts %v", r.FalseBySeverity)
	}
}
