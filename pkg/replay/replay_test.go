package replay

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/sim"
)

var (
	trafficOnce sync.Once
	traffic     []byte
)

// attackTraffic is nine days of a small synthetic company with attacks in
// its last days: enough history for baselines, small enough for -race.
func attackTraffic(t *testing.T) []byte {
	trafficOnce.Do(func() {
		var b bytes.Buffer
		if _, err := sim.WriteJSONL(&b, sim.Options{Seed: 7, Days: 9, Scale: 0.05, Scenarios: sim.ScenarioNames()}); err != nil {
			t.Fatal(err)
		}
		traffic = b.Bytes()
	})
	return traffic
}

func replayBytes(t *testing.T, in []byte, p *alerts.Pseudonymizer) ([]byte, *Summary) {
	t.Helper()
	var out bytes.Buffer
	sum, err := Run(context.Background(), Options{Config: config.Default(), Input: bytes.NewReader(in), Alerts: &out, Pseudonymizer: p})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), sum
}

var (
	baseOnce sync.Once
	baseOut  []byte
	baseSum  *Summary
)

// baseReplay is the default-config replay of attackTraffic, shared by the
// tests that only read it (replays are the slow part under -race).
func baseReplay(t *testing.T) ([]byte, *Summary) {
	baseOnce.Do(func() { baseOut, baseSum = replayBytes(t, attackTraffic(t), nil) })
	return baseOut, baseSum
}

func TestReplayIsByteIdentical(t *testing.T) {
	in := attackTraffic(t)
	a, sa := baseReplay(t)
	b, _ := replayBytes(t, in, nil)
	if len(a) == 0 {
		t.Fatal("no alerts from attack traffic")
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two replays of the same input differ")
	}
	t.Logf("%d events, %d alerts: %v", sa.Events, bytes.Count(a, []byte("\n")), sa.Alerts)
}

// TestAlertContract checks every alert against the required fields and
// types of DESIGN.md, and that detected_at equals event_time in replay.
func TestAlertContract(t *testing.T) {
	out, _ := baseReplay(t)
	sev := map[string]bool{"low": true, "medium": true, "high": true, "critical": true}
	ids := map[string]bool{}
	for i, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var a map[string]any
		if err := json.Unmarshal(line, &a); err != nil {
			t.Fatalf("alert %d: %v", i, err)
		}
		for _, f := range []string{"id", "rule", "severity", "score", "entity", "principal", "event_time", "detected_at", "window", "observed", "expected", "summary", "objects", "mitre_attack"} {
			if _, ok := a[f]; !ok {
				t.Errorf("alert %d lacks %q: %s", i, f, line)
			}
		}
		if !sev[a["severity"].(string)] {
			t.Errorf("alert %d: severity %v", i, a["severity"])
		}
		if s := a["score"].(float64); s < 0 || s > 100 {
			t.Errorf("alert %d: score %v", i, s)
		}
		ent := a["entity"].(map[string]any)
		if ent["kind"] == "" || ent["key"] == "" {
			t.Errorf("alert %d: entity %v", i, ent)
		}
		if ent["kind"] == "principal" && a["principal"] != ent["key"] {
			t.Errorf("alert %d: principal %v is not the entity key %v", i, a["principal"], ent["key"])
		}
		w := a["window"].(map[string]any)
		for _, f := range []string{"start", "end", "horizon"} {
			if _, ok := w[f]; !ok {
				t.Errorf("alert %d: window lacks %s", i, f)
			}
		}
		if a["detected_at"] != a["event_time"] {
			t.Errorf("alert %d: detected_at %v != event_time %v in replay", i, a["detected_at"], a["event_time"])
		}
		if _, err := time.Parse(time.RFC3339, a["event_time"].(string)); err != nil {
			t.Errorf("alert %d: event_time: %v", i, err)
		}
		techs := a["mitre_attack"].([]any)
		if len(techs) == 0 {
			t.Errorf("alert %d: no ATT&CK technique", i)
		}
		for _, x := range techs {
			m := x.(map[string]any)
			if !strings.HasPrefix(m["technique"].(string), "T") || m["tactic"] == "" || m["name"] == "" {
				t.Errorf("alert %d: technique %v", i, m)
			}
		}
		if s := a["summary"].(string); len(s) < 20 || !strings.HasSuffix(s, ".") {
			t.Errorf("alert %d: summary %q", i, s)
		}
		id := a["id"].(string)
		if ids[id] {
			t.Errorf("alert %d: duplicate id %s", i, id)
		}
		ids[id] = true
	}
}

// TestNoCustomerIDsInAlerts: customer accounts appear only as keyed-hash
// pseudonyms, or redacted without a key; record ids never appear.
func TestNoCustomerIDsInAlerts(t *testing.T) {
	redacted, _ := baseReplay(t)
	keyed, _ := replayBytes(t, attackTraffic(t), alerts.NewPseudonymizer([]byte("k3y")))
	for _, out := range [][]byte{redacted, keyed} {
		if i := bytes.Index(out, []byte("cust-")); i >= 0 {
			t.Errorf("customer id in alerts: %s", out[max(0, i-200):min(len(out), i+50)])
		}
	}
}

func TestBadLinesAreCountedNotFatal(t *testing.T) {
	in := strings.Join([]string{
		`{"ts":"2026-01-05T10:00:00Z","principal":"alice","object":"public.customers","rows":3}`,
		`{"ts":"2026-01-05T10:00:01Z","principal":"alice"`,
		`not json at all`,
		"\x00\x01\x02\xff binary",
		`{"ts":"2026-01-05T10:00:02Z"}`,
		`{"principal":"bob"}`,
		`{"ts":"yesterday","principal":"bob"}`,
		`{"ts":"2026-01-05T10:00:03Z","principal":"bob","rows":"-5"}`,
		`[1,2,3]`,
		`{"ts":"2026-01-05T10:00:04Z","principal":"bob","client":"` + strings.Repeat("x", 2<<20) + `"}`,
		``,
		`{"ts":1767607205000,"principal":"carol"}`,
	}, "\n")
	_, sum := replayBytes(t, []byte(in), nil)
	if sum.Events != 2 {
		t.Errorf("events = %d, want 2", sum.Events)
	}
	want := map[string]uint64{"malformed_json": 2, "missing_principal": 1, "missing_time": 1, "bad_time": 1, "bad_value": 1, "not_object": 2, "too_large": 1}
	for k, v := range want {
		if sum.DecodeErrors[k] != v {
			t.Errorf("decode errors %s = %d, want %d (all: %v)", k, sum.DecodeErrors[k], v, sum.DecodeErrors)
		}
	}
	if sum.Lines != 11 {
		t.Errorf("lines = %d, want 11 (blank lines are not counted)", sum.Lines)
	}
}

func TestGzipInput(t *testing.T) {
	in := attackTraffic(t)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(in)
	_ = zw.Close()
	plain, _ := baseReplay(t)
	gz, _ := replayBytes(t, z.Bytes(), nil)
	if !bytes.Equal(plain, gz) {
		t.Error("gzip replay differs from plain replay")
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter()
	var allowed []int
	for i := 1; i <= 1000; i++ {
		if l.allow(1) {
			allowed = append(allowed, i)
		}
	}
	want := []int{1, 2, 3, 4, 5, 10, 100, 1000}
	if len(allowed) != len(want) {
		t.Fatalf("allowed %v, want %v", allowed, want)
	}
	for i := range want {
		if allowed[i] != want[i] {
			t.Fatalf("allowed %v, want %v", allowed, want)
		}
	}
}

// TestOrdinaryWorkPagesNobody: started with no state on days of ordinary
// traffic (shifts, month-end reports, nightly ETL, customers on shared
// mobile networks), the detector raises nothing high or critical.
func TestOrdinaryWorkPagesNobody(t *testing.T) {
	var in bytes.Buffer
	if _, err := sim.WriteJSONL(&in, sim.Options{Seed: 21, Days: 5, Scale: 0.03}); err != nil {
		t.Fatal(err)
	}
	out, sum := replayBytes(t, in.Bytes(), nil)
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var a Alert
		if err := json.Unmarshal(line, &a); err != nil {
			t.Fatal(err)
		}
		if a.Severity == "high" || a.Severity == "critical" {
			t.Errorf("page on ordinary work: %s", a.Summary)
		}
	}
	t.Logf("%d events, %d entities, alerts %v", sum.Events, sum.Entities, sum.Alerts)
}

// Alert is the part of an alert these tests read.
type Alert struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
}
