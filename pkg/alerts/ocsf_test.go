package alerts

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/exfilguard/exfilguard/pkg/models"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata")

// exfilFixture is one incident's course: a service account reading far
// more distinct customer records than its baseline, opened, escalated
// when its exposure grew, and resolved after the quiet period.
func exfilFixture(status string) *Alert {
	a := &Alert{
		ID:         "5b0e2f7c9a14d3e8b6c1f0a2",
		Rule:       "distinct_records_spike",
		Severity:   "high",
		Score:      87.4,
		Entity:     EntityRef{Kind: "principal", Key: "svc-reporting"},
		Principal:  "svc-reporting",
		EventTime:  "2026-02-04T12:30:00.000Z",
		DetectedAt: "2026-02-04T12:30:01.25Z",
		Window:     Window{Start: "2026-02-04T11:30:00.000Z", End: "2026-02-04T12:30:00.000Z", Horizon: "1h"},
		Observed:   map[string]float64{"distinct_records": 48210, "sensitive_rows": 51877.5},
		Expected:   map[string]float64{"distinct_records": 1210.25, "sensitive_rows": 1500},
		Summary: "Principal svc-reporting touched 48,210 distinct customer records in the last 1h, 39.8x the 1,210 expected " +
			"from its own baseline (customers, /api/v1/customers/:id).",
		Objects:     []string{"customers", "/api/v1/customers/:id"},
		MitreAttack: models.RuleDistinctRecords.MITRE(),
		Incident: Incident{ID: "9f8e7d6c5b4a39281706f5e4", Status: StatusOpened, Sequence: 0, OpenedAt: "2026-02-04T12:30:00.000Z",
			Detections: 1, Exposure: Exposure{Rows: 51877.5, Records: 48210}},
		Exposure: 48210,
		Basis:    "own",
		Runbook:  "https://github.com/exfilguard/exfilguard/blob/main/docs/detectors.md#distinct_records_spike",
	}
	if status == StatusOpened {
		return a
	}
	// Escalated: exposure grew past the step and severity rose.
	a.ID = "c47d19a0e3b25f68d1e07b93"
	a.Severity = "critical"
	a.Score = 96
	a.EventTime = "2026-02-04T13:10:00.000Z"
	a.DetectedAt = "2026-02-04T13:10:00.8Z"
	a.Window = Window{Start: "2026-02-04T12:10:00.000Z", End: "2026-02-04T13:10:00.000Z", Horizon: "1h"}
	a.Observed = map[string]float64{"distinct_records": 201544, "sensitive_rows": 230112}
	a.Summary = "Principal svc-reporting touched 201,544 distinct customer records in the last 1h, 166.4x the 1,210 expected " +
		"from its own baseline (customers, /api/v1/customers/:id)."
	a.Incident.Status, a.Incident.Sequence, a.Incident.Detections = StatusEscalated, 1, 9
	a.Incident.Exposure = Exposure{Rows: 412903, Records: 249754}
	a.Exposure = 201544
	a.Samples = []string{"rec_3fa1c2", "rec_98d0e4"}
	if status == StatusEscalated {
		return a
	}
	// Resolved: the last alert's subject and numbers, the incident's
	// course as its window, noticed after the quiet period.
	a.ID = "e81f0c6d2a9b47305ce1d8f2"
	a.EventTime = "2026-02-05T13:25:00.000Z"
	a.DetectedAt = "2026-02-05T13:25:02Z"
	a.Window = Window{Start: "2026-02-04T12:30:00.000Z", End: "2026-02-04T13:25:00.000Z", Horizon: "55m"}
	a.Summary = "Resolved: no distinct_records_spike detection for principal svc-reporting in 24h. 11 detections " +
		"exposed at least 440,118 rows and 261,020 distinct customer records; the highest severity was critical."
	a.Incident.Status, a.Incident.Sequence, a.Incident.Detections = StatusResolved, 2, 11
	a.Incident.Exposure = Exposure{Rows: 440118, Records: 261020}
	a.Samples = nil
	return a
}

// renderOCSF is what an ocsf sink writes for a, decoded generically, as a
// consumer that knows only the OCSF schema would see it.
func renderOCSF(t *testing.T, a *Alert) map[string]any {
	t.Helper()
	b, err := Render("ocsf", a)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("ocsf line is not JSON: %v\n%s", err, b)
	}
	return m
}

// Attributes of OCSF 1.5.0 objects, from the schema, to catch a misspelt
// or invented attribute that a consumer would silently drop.
var ocsf150Attrs = map[string][]string{
	"detection_finding": {"activity_id", "activity_name", "category_name", "category_uid", "class_name", "class_uid", "count",
		"duration", "end_time", "enrichments", "message", "metadata", "observables", "raw_data", "raw_data_size", "severity",
		"severity_id", "start_time", "status", "status_code", "status_detail", "status_id", "time", "timezone_offset",
		"type_name", "type_uid", "unmapped", "comment", "confidence", "confidence_id", "confidence_score", "device",
		"finding_info", "vendor_attributes", "anomaly_analyses", "evidences", "impact", "impact_id", "impact_score",
		"is_alert", "malware", "malware_scan_info", "remediation", "resources", "risk_details", "risk_level",
		"risk_level_id", "risk_score", "vulnerabilities"},
	"finding_info": {"analytic", "attacks", "created_time", "data_sources", "desc", "first_seen_time", "kill_chain",
		"last_seen_time", "modified_time", "product", "product_uid", "related_analytics", "related_events",
		"related_events_count", "src_url", "tags", "title", "traits", "types", "uid", "uid_alt"},
	"metadata": {"correlation_uid", "debug", "event_code", "extension", "extensions", "labels", "log_level", "log_name",
		"log_provider", "log_version", "logged_time", "loggers", "modified_time", "original_time", "processed_time",
		"product", "profiles", "sequence", "tags", "tenant_uid", "transformation_info_list", "uid", "version"},
	"product":          {"name", "uid", "cpe_name", "feature", "lang", "path", "url_string", "vendor_name", "version"},
	"analytic":         {"name", "uid", "algorithm", "category", "desc", "related_analytics", "type", "type_id", "version"},
	"attack":           {"mitigation", "sub_technique", "tactic", "tactics", "technique", "version"},
	"anomaly_analysis": {"analysis_targets", "anomalies", "baselines"},
	"anomaly":          {"observation_parameter", "observation_type", "observations", "observed_pattern"},
	"observation":      {"value", "count", "timespan"},
	"evidences": {"actor", "api", "connection_info", "container", "data", "database", "databucket", "device",
		"dst_endpoint", "email", "file", "http_request", "http_response", "ja4_fingerprint_list", "job", "name",
		"process", "query", "resources", "script", "src_endpoint", "tls", "uid", "url", "user", "verdict", "verdict_id"},
	"actor":       {"app_name", "app_uid", "authorizations", "idp", "invoked_by", "process", "session", "user"},
	"remediation": {"cis_controls", "desc", "kb_article_list", "kb_articles", "references"},
	"observable":  {"name", "reputation", "type", "type_id", "value"},
}

func checkAttrs(t *testing.T, object string, v any) {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is %T, want an object", object, v)
	}
	for k := range m {
		if !slices.Contains(ocsf150Attrs[object], k) {
			t.Errorf("%s has %q, which OCSF 1.5.0 does not define", object, k)
		}
	}
}

func TestOCSFDetectionFinding(t *testing.T) {
	tests := []struct {
		name           string
		status         string
		wantActivity   float64
		wantStatus     float64
		wantStatusName string
		wantSeverity   float64
		wantAlert      bool
		wantAnomalies  bool
		wantCreated    bool
		wantLastSeen   string
	}{
		{name: "opened", status: StatusOpened, wantActivity: 1, wantStatus: 1, wantStatusName: "New", wantSeverity: 4,
			wantAlert: true, wantAnomalies: true, wantCreated: true, wantLastSeen: "2026-02-04T12:30:00Z"},
		{name: "escalated", status: StatusEscalated, wantActivity: 2, wantStatus: 1, wantStatusName: "New", wantSeverity: 5,
			wantAlert: true, wantAnomalies: true, wantLastSeen: "2026-02-04T13:10:00Z"},
		{name: "resolved", status: StatusResolved, wantActivity: 3, wantStatus: 4, wantStatusName: "Resolved", wantSeverity: 5,
			wantLastSeen: "2026-02-04T13:25:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := exfilFixture(tt.status)
			m := renderOCSF(t, a)
			checkAttrs(t, "detection_finding", m)

			num := func(obj map[string]any, k string) float64 {
				t.Helper()
				f, ok := obj[k].(float64)
				if !ok {
					t.Fatalf("%s is %T (%v), want a number", k, obj[k], obj[k])
				}
				if f != float64(int64(f)) {
					t.Fatalf("%s is %v, want an integer", k, f)
				}
				return f
			}
			str := func(obj map[string]any, k string) string {
				t.Helper()
				s, ok := obj[k].(string)
				if !ok || s == "" {
					t.Fatalf("%s is %T (%v), want a non-empty string", k, obj[k], obj[k])
				}
				return s
			}
			obj := func(obj map[string]any, k string) map[string]any {
				t.Helper()
				o, ok := obj[k].(map[string]any)
				if !ok {
					t.Fatalf("%s is %T, want an object", k, obj[k])
				}
				return o
			}
			ms := func(ts string) float64 { return float64(ocsfTime(ts)) }

			// Required by the class and its base event.
			if got := num(m, "class_uid"); got != 2004 {
				t.Errorf("class_uid = %v", got)
			}
			if got := num(m, "category_uid"); got != 2 {
				t.Errorf("category_uid = %v", got)
			}
			if got := num(m, "activity_id"); got != tt.wantActivity {
				t.Errorf("activity_id = %v, want %v", got, tt.wantActivity)
			}
			if got := num(m, "type_uid"); got != 200400+tt.wantActivity {
				t.Errorf("type_uid = %v, want %v", got, 200400+tt.wantActivity)
			}
			if got := num(m, "time"); got != ms(a.DetectedAt) {
				t.Errorf("time = %v, want detected_at %v", got, ms(a.DetectedAt))
			}
			if got := num(m, "severity_id"); got != tt.wantSeverity {
				t.Errorf("severity_id = %v, want %v", got, tt.wantSeverity)
			}
			if got := num(m, "status_id"); got != tt.wantStatus {
				t.Errorf("status_id = %v, want %v", got, tt.wantStatus)
			}
			if got := str(m, "status"); got != tt.wantStatusName {
				t.Errorf("status = %q, want %q", got, tt.wantStatusName)
			}
			if got, _ := m["is_alert"].(bool); got != tt.wantAlert {
				t.Errorf("is_alert = %v, want %v", got, tt.wantAlert)
			}
			if got := num(m, "risk_score"); got != float64(ocsfScore(a.Score)) {
				t.Errorf("risk_score = %v", got)
			}

			md := obj(m, "metadata")
			checkAttrs(t, "metadata", md)
			if got := str(md, "version"); got != "1.5.0" {
				t.Errorf("metadata.version = %q", got)
			}
			if got := str(md, "uid"); got != a.ID {
				t.Errorf("metadata.uid = %q, want the alert id %q", got, a.ID)
			}
			if got := str(md, "correlation_uid"); got != a.Incident.ID {
				t.Errorf("metadata.correlation_uid = %q, want the incident id", got)
			}
			p := obj(md, "product")
			checkAttrs(t, "product", p)
			str(p, "name")
			str(p, "vendor_name")

			fi := obj(m, "finding_info")
			checkAttrs(t, "finding_info", fi)
			if got := str(fi, "uid"); got != a.Incident.ID {
				t.Errorf("finding_info.uid = %q, want the incident id, the same for every activity", got)
			}
			if got := str(fi, "title"); !strings.Contains(got, "svc-reporting") {
				t.Errorf("finding_info.title = %q, want the entity in it", got)
			}
			if got := str(fi, "desc"); got != a.Summary {
				t.Errorf("finding_info.desc = %q, want the summary", got)
			}
			if got := num(fi, "first_seen_time"); got != ms(a.Incident.OpenedAt) {
				t.Errorf("first_seen_time = %v, want the incident's opening", got)
			}
			if got := num(fi, "last_seen_time"); got != ms(tt.wantLastSeen) {
				t.Errorf("last_seen_time = %v, want %s", got, tt.wantLastSeen)
			}
			if _, ok := fi["created_time"]; ok != tt.wantCreated {
				t.Errorf("created_time present = %v, want %v", ok, tt.wantCreated)
			}
			if _, ok := fi["modified_time"]; ok == tt.wantCreated {
				t.Errorf("modified_time present = %v, want %v", ok, !tt.wantCreated)
			}
			an := obj(fi, "analytic")
			checkAttrs(t, "analytic", an)
			if got := num(an, "type_id"); got != 3 {
				t.Errorf("analytic.type_id = %v, want 3 (Statistical)", got)
			}
			if got := str(an, "name"); got != a.Rule {
				t.Errorf("analytic.name = %q", got)
			}
			attacks, _ := fi["attacks"].([]any)
			if len(attacks) != len(a.MitreAttack) {
				t.Fatalf("%d attacks, want %d", len(attacks), len(a.MitreAttack))
			}
			for i, at := range attacks {
				checkAttrs(t, "attack", at)
				at := at.(map[string]any)
				if got := str(obj(at, "tactic"), "uid"); got != "TA0009" {
					t.Errorf("attacks[%d].tactic.uid = %q, want TA0009 (Collection)", i, got)
				}
				if got := str(obj(at, "technique"), "uid"); got != a.MitreAttack[i].Technique {
					t.Errorf("attacks[%d].technique.uid = %q", i, got)
				}
			}

			aas, ok := m["anomaly_analyses"].([]any)
			if ok != tt.wantAnomalies {
				t.Fatalf("anomaly_analyses present = %v, want %v", ok, tt.wantAnomalies)
			}
			if ok {
				checkAttrs(t, "anomaly_analysis", aas[0])
				aa := aas[0].(map[string]any)
				anomalies := aa["anomalies"].([]any)
				if len(anomalies) != len(a.Observed) {
					t.Fatalf("%d anomalies, want one per observed measure", len(anomalies))
				}
				first := anomalies[0].(map[string]any)
				checkAttrs(t, "anomaly", first)
				if got := str(first, "observation_parameter"); got != "distinct_records" {
					t.Errorf("first anomaly is %q, want measures in name order", got)
				}
				o := first["observations"].([]any)[0]
				checkAttrs(t, "observation", o)
				want := ocsfNumber(a.Observed["distinct_records"])
				if got := str(o.(map[string]any), "value"); got != want {
					t.Errorf("observed value = %q, want %q", got, want)
				}
				base := aa["baselines"].([]any)[0].(map[string]any)["observations"].([]any)[0].(map[string]any)
				if got := str(base, "value"); got != "1210.25" {
					t.Errorf("baseline value = %q, want the expected 1210.25", got)
				}
			}

			ev, _ := m["evidences"].([]any)
			if len(ev) != 1 {
				t.Fatalf("evidences = %v, want one", m["evidences"])
			}
			checkAttrs(t, "evidences", ev[0])
			actor := obj(ev[0].(map[string]any), "actor")
			checkAttrs(t, "actor", actor)
			if got := str(obj(actor, "user"), "name"); got != "svc-reporting" {
				t.Errorf("evidences[0].actor.user.name = %q", got)
			}
			for _, o := range m["observables"].([]any) {
				checkAttrs(t, "observable", o)
			}
			checkAttrs(t, "remediation", m["remediation"])

			um := obj(m, "unmapped")
			if got := str(obj(um, "incident"), "status"); got != tt.status {
				t.Errorf("unmapped.incident.status = %q, want %q", got, tt.status)
			}
		})
	}
}

// TestOCSFAttacks checks every technique the engine's rules name: each
// tactic gets its ATT&CK id, and sub-techniques are split from their
// parent technique.
func TestOCSFAttacks(t *testing.T) {
	for _, r := range models.Rules() {
		for _, at := range ocsfAttacks(&Alert{MitreAttack: r.MITRE()}) {
			if at.Tactic == nil || !strings.HasPrefix(at.Tactic.UID, "TA") {
				t.Errorf("%s: tactic %+v has no ATT&CK id", r, at.Tactic)
			}
			if at.Technique == nil || strings.Contains(at.Technique.UID, ".") || at.Technique.Name == "" {
				t.Errorf("%s: technique %+v is not a parent technique", r, at.Technique)
			}
			if at.SubTechnique != nil && (!strings.HasPrefix(at.SubTechnique.UID, at.Technique.UID+".") || at.SubTechnique.Name == "") {
				t.Errorf("%s: sub-technique %+v is not under %+v", r, at.SubTechnique, at.Technique)
			}
		}
	}
	got := ocsfAttacks(&Alert{MitreAttack: []models.Technique{{Tactic: "Collection", Technique: "T1213.006", Name: "Data from Information Repositories: Databases"}}})
	want := ocsfAttack{
		Tactic:       &ocsfAttackRef{UID: "TA0009", Name: "Collection"},
		Technique:    &ocsfAttackRef{UID: "T1213", Name: "Data from Information Repositories"},
		SubTechnique: &ocsfAttackRef{UID: "T1213.006", Name: "Databases"},
	}
	if len(got) != 1 || *got[0].Tactic != *want.Tactic || *got[0].Technique != *want.Technique || *got[0].SubTechnique != *want.SubTechnique {
		t.Errorf("T1213.006 = %+v %+v %+v", *got[0].Tactic, *got[0].Technique, got[0].SubTechnique)
	}
}

// TestOCSFEntities checks where each entity kind lands: the evidence's
// actor or source endpoint, and an observable to pivot on.
func TestOCSFEntities(t *testing.T) {
	tests := []struct {
		kind, key      string
		wantEvidence   string
		wantObservable string
	}{
		{"principal", "svc-reporting", `{"actor":{"user":{"name":"svc-reporting"}}}`, "User Name=svc-reporting"},
		{"credential", "AKIAEXAMPLE", `{"actor":{"user":{"name":"alice","credential_uid":"AKIAEXAMPLE"}}}`, "User Credential ID=AKIAEXAMPLE"},
		{"client", "reporting-cron/2.1", `{"actor":{"app_name":"reporting-cron/2.1","user":{"name":"alice"}}}`, "User Name=alice"},
		{"source_ip", "203.0.113.7", `{"actor":{"user":{"name":"alice"}},"src_endpoint":{"ip":"203.0.113.7"}}`, "IP Address=203.0.113.7"},
		{"source_net", "203.0.113.0/24", `{"actor":{"user":{"name":"alice"}}}`, "Subnet=203.0.113.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			a := exfilFixture(StatusOpened)
			a.Entity = EntityRef{Kind: tt.kind, Key: tt.key}
			if tt.kind != "principal" {
				a.Principal = "alice"
			}
			f := OCSF(a).(*ocsfFinding)
			ev, err := json.Marshal(f.Evidences[0])
			if err != nil {
				t.Fatal(err)
			}
			if string(ev) != tt.wantEvidence {
				t.Errorf("evidence = %s, want %s", ev, tt.wantEvidence)
			}
			var obs []string
			for _, o := range f.Observables {
				obs = append(obs, o.Type+"="+o.Value)
			}
			if !slices.Contains(obs, tt.wantObservable) {
				t.Errorf("observables = %v, want %s among them", obs, tt.wantObservable)
			}
		})
	}
}

// TestOCSFGolden pins the whole rendering of an incident's course, so that
// a change to the format is a reviewed change to the golden file
// (go test ./pkg/alerts -run OCSFGolden -update rewrites it).
func TestOCSFGolden(t *testing.T) {
	var course []json.RawMessage
	for _, s := range []string{StatusOpened, StatusEscalated, StatusResolved} {
		b, err := Render("ocsf", exfilFixture(s))
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Render("ocsf", exfilFixture(s))
		if !bytes.Equal(b, again) {
			t.Fatalf("%s: two renderings differ:\n%s\n%s", s, b, again)
		}
		course = append(course, b)
	}
	got, err := json.MarshalIndent(course, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "ocsf.golden.json")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("OCSF rendering differs from %s (run with -update if the change is intended):\n%s", path, got)
	}
}
