package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/sim"
)

// TestCompareShowsAThresholdChange: with a bulk-read cap low enough that
// the nightly ETL trips it on its first night (a known false positive),
// raising the cap back removes that alert and keeps the attack (one huge
// export, caught by the same rule), in one pass over the logs.
func TestCompareShowsAThresholdChange(t *testing.T) {
	var in bytes.Buffer
	if _, err := sim.WriteJSONL(&in, sim.Options{Seed: 11, Days: 10, Scale: 0.05, Scenarios: []string{"huge_export"}}); err != nil {
		t.Fatal(err)
	}
	cur, cand := config.Default(), config.Default()
	cur.Detectors.BulkRead.MaxRows = 30000 // the ETL reads ~33k rows a night
	d, err := Compare(context.Background(), CompareOptions{Current: cur, Candidate: cand, Input: bytes.NewReader(in.Bytes())})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	d.WriteText(&text)
	t.Log("\n" + text.String())
	rows := map[string]DayRule{}
	for _, r := range d.Days {
		rows[r.Day+" "+r.Rule] = r
	}
	if fp := rows["2026-01-05 bulk_read"]; fp.Current != 1 || fp.Candidate != 0 {
		t.Errorf("the ETL's first-night bulk_read: %+v, want 1 under the current cap and 0 under the candidate", fp)
	}
	attack := 0
	for _, r := range d.Days {
		if r.Rule == "bulk_read" && r.Day != "2026-01-05" {
			attack += r.Candidate
			if r.Candidate != r.Current {
				t.Errorf("the attack's bulk_read changed: %+v", r)
			}
		}
	}
	if attack == 0 {
		t.Error("the huge export raises no bulk_read under the candidate")
	}
	for _, e := range d.Lost() {
		if e.Key == "eng-003" {
			t.Errorf("the attacker is no longer alerted on: %+v", e)
		}
	}
	var js bytes.Buffer
	if err := d.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Diff
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Days) != len(d.Days) {
		t.Errorf("JSON report does not round-trip: %v", err)
	}
	if !strings.Contains(text.String(), "2026-01-05  bulk_read") {
		t.Error("text report lacks the changed row")
	}
}
