package alerts

import (
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// OCSFVersion is the OCSF schema the "ocsf" format follows. 1.5.0 is the
// first release whose Detection Finding has anomaly_analyses, the one
// place OCSF gives to what an anomaly detector measured against what it
// expected; without it the numbers that justify an alert would have to go
// into unmapped, where SIEMs do not look. is_alert (1.4.0) is in it too.
const OCSFVersion = "1.5.0"

// OCSF identifiers of the Detection Finding class.
const (
	ocsfClassUID      = 2004
	ocsfClassName     = "Detection Finding"
	ocsfCategoryUID   = 2
	ocsfCategoryName  = "Findings"
	ocsfProductName   = "Exfilguard"
	ocsfProductVendor = "Exfilguard"
	ocsfProductURL    = "https://github.com/exfilguard/exfilguard"
)

// OCSF renders a as an OCSF Detection Finding (class_uid 2004) of schema
// OCSFVersion, for SIEMs and data lakes that ingest OCSF.
//
// The finding is the incident, not the alert: OCSF findings are mutable
// and move through Create, Update and Close activities that must name the
// same finding, so finding_info.uid is the incident id (stable across the
// opening, escalations and resolution) and metadata.uid is the alert id
// (unique per event, the key to drop replayed duplicates by). Whatever has
// no OCSF attribute (exposure, basis, the incident's course, the window's
// horizon) is kept in unmapped with the native contract's names.
func OCSF(a *Alert) any {
	activity, activityName := 1, "Create"
	status, statusName := 1, "New"
	switch a.Incident.Status {
	case StatusEscalated:
		// Still New: the detector knows nothing of triage, and "In
		// Progress" would tell a SIEM that someone is already on it.
		activity, activityName = 2, "Update"
	case StatusResolved:
		activity, activityName = 3, "Close"
		status, statusName = 4, "Resolved"
	}
	sev, sevName := ocsfSeverity(a.Severity)
	detected := ocsfTime(a.DetectedAt)
	if detected == 0 {
		detected = ocsfTime(a.EventTime)
	}

	f := &ocsfFinding{
		ClassUID:       ocsfClassUID,
		ClassName:      ocsfClassName,
		CategoryUID:    ocsfCategoryUID,
		CategoryName:   ocsfCategoryName,
		ActivityID:     activity,
		ActivityName:   activityName,
		TypeUID:        ocsfClassUID*100 + activity,
		TypeName:       ocsfClassName + ": " + activityName,
		Time:           detected,
		TimezoneOffset: 0, // every time the detector writes is UTC
		SeverityID:     sev,
		Severity:       sevName,
		StatusID:       status,
		Status:         statusName,
		// A resolution is news, not a page: OCSF leaves is_alert out of
		// Close activities.
		IsAlert:   activity != 3,
		Message:   a.Summary,
		RiskScore: ocsfScore(a.Score),
		Metadata: ocsfMetadata{
			Version:        OCSFVersion,
			Product:        ocsfProduct{Name: ocsfProductName, VendorName: ocsfProductVendor, URLString: ocsfProductURL},
			UID:            a.ID,
			CorrelationUID: a.Incident.ID,
		},
		FindingInfo: ocsfFindingInfo{
			UID:                a.Incident.ID,
			Title:              ocsfTitle(a),
			Desc:               a.Summary,
			Types:              []string{a.Rule},
			Analytic:           ocsfAnalyticOf(a.Rule),
			Attacks:            ocsfAttacks(a),
			FirstSeenTime:      ocsfTime(a.Incident.OpenedAt),
			LastSeenTime:       ocsfTime(a.EventTime),
			RelatedEventsCount: a.Incident.Detections,
		},
		Evidences: ocsfEvidences(a),
		Resources: ocsfResources(a.Objects),
		Unmapped: ocsfUnmapped{
			Entity:   a.Entity,
			Window:   a.Window,
			Exposure: a.Exposure,
			Basis:    a.Basis,
			Learning: a.Learning,
			Incident: a.Incident,
			Samples:  a.Samples,
		},
	}
	if f.FindingInfo.UID == "" {
		// An alert outside any incident (the detector's own) is a finding
		// of its own.
		f.FindingInfo.UID = a.ID
	}
	switch activity {
	case 1:
		f.FindingInfo.CreatedTime = detected
	default:
		f.FindingInfo.ModifiedTime = detected
	}
	if activity == 3 {
		// A resolution's event time is the end of the quiet period; the
		// incident was last seen at the end of its window.
		f.FindingInfo.LastSeenTime = ocsfTime(a.Window.End)
	} else {
		// A resolution repeats the last alert's measures, which no longer
		// describe its window (the incident's whole course), so only live
		// alerts carry them.
		f.AnomalyAnalyses = ocsfAnomalies(a)
	}
	f.Observables = ocsfObservables(a, f.Evidences, f.AnomalyAnalyses != nil)
	if a.Runbook != "" {
		f.Remediation = &ocsfRemediation{
			Desc:       "Follow the runbook of the " + a.Rule + " rule: what it means and the first steps to take.",
			References: []string{a.Runbook},
		}
	}
	return f
}

// ocsfFinding is the Detection Finding. Attributes are declared in a fixed
// order and maps are only used where encoding/json sorts their keys, so a
// replay renders byte-identical findings.
type ocsfFinding struct {
	ClassUID        int                   `json:"class_uid"`
	ClassName       string                `json:"class_name"`
	CategoryUID     int                   `json:"category_uid"`
	CategoryName    string                `json:"category_name"`
	ActivityID      int                   `json:"activity_id"`
	ActivityName    string                `json:"activity_name"`
	TypeUID         int                   `json:"type_uid"`
	TypeName        string                `json:"type_name"`
	Time            int64                 `json:"time"`
	TimezoneOffset  int                   `json:"timezone_offset"`
	SeverityID      int                   `json:"severity_id"`
	Severity        string                `json:"severity"`
	StatusID        int                   `json:"status_id"`
	Status          string                `json:"status"`
	IsAlert         bool                  `json:"is_alert,omitempty"`
	Message         string                `json:"message,omitempty"`
	RiskScore       int                   `json:"risk_score"`
	Metadata        ocsfMetadata          `json:"metadata"`
	FindingInfo     ocsfFindingInfo       `json:"finding_info"`
	AnomalyAnalyses []ocsfAnomalyAnalysis `json:"anomaly_analyses,omitempty"`
	Evidences       []ocsfEvidence        `json:"evidences,omitempty"`
	Resources       []ocsfResource        `json:"resources,omitempty"`
	Observables     []ocsfObservable      `json:"observables,omitempty"`
	Remediation     *ocsfRemediation      `json:"remediation,omitempty"`
	Unmapped        ocsfUnmapped          `json:"unmapped"`
}

type ocsfMetadata struct {
	Version        string      `json:"version"`
	Product        ocsfProduct `json:"product"`
	UID            string      `json:"uid,omitempty"`
	CorrelationUID string      `json:"correlation_uid,omitempty"`
}

type ocsfProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	URLString  string `json:"url_string,omitempty"`
}

type ocsfFindingInfo struct {
	UID                string       `json:"uid"`
	Title              string       `json:"title"`
	Desc               string       `json:"desc,omitempty"`
	Types              []string     `json:"types,omitempty"`
	Analytic           ocsfAnalytic `json:"analytic"`
	Attacks            []ocsfAttack `json:"attacks,omitempty"`
	CreatedTime        int64        `json:"created_time,omitempty"`
	ModifiedTime       int64        `json:"modified_time,omitempty"`
	FirstSeenTime      int64        `json:"first_seen_time,omitempty"`
	LastSeenTime       int64        `json:"last_seen_time,omitempty"`
	RelatedEventsCount int          `json:"related_events_count,omitempty"`
}

type ocsfAnalytic struct {
	UID    string `json:"uid"`
	Name   string `json:"name"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type"`
}

type ocsfAttack struct {
	Tactic       *ocsfAttackRef `json:"tactic,omitempty"`
	Technique    *ocsfAttackRef `json:"technique,omitempty"`
	SubTechnique *ocsfAttackRef `json:"sub_technique,omitempty"`
}

type ocsfAttackRef struct {
	UID  string `json:"uid,omitempty"`
	Name string `json:"name,omitempty"`
}

type ocsfAnomalyAnalysis struct {
	AnalysisTargets []ocsfAnalysisTarget `json:"analysis_targets"`
	Anomalies       []ocsfAnomaly        `json:"anomalies"`
	Baselines       []ocsfAnomaly        `json:"baselines,omitempty"`
}

type ocsfAnalysisTarget struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
}

// ocsfAnomaly is an OCSF anomaly or baseline, which have the same shape.
type ocsfAnomaly struct {
	ObservationParameter string            `json:"observation_parameter"`
	ObservationType      string            `json:"observation_type,omitempty"`
	Observations         []ocsfObservation `json:"observations"`
}

type ocsfObservation struct {
	// Value is a string in OCSF, whatever it measures.
	Value    string        `json:"value"`
	Timespan *ocsfTimespan `json:"timespan,omitempty"`
}

type ocsfTimespan struct {
	StartTime int64  `json:"start_time"`
	EndTime   int64  `json:"end_time"`
	Duration  int64  `json:"duration"`
	TypeID    int    `json:"type_id"`
	Type      string `json:"type"`
}

type ocsfEvidence struct {
	Actor       *ocsfActor    `json:"actor,omitempty"`
	SrcEndpoint *ocsfEndpoint `json:"src_endpoint,omitempty"`
}

type ocsfActor struct {
	AppName string    `json:"app_name,omitempty"`
	User    *ocsfUser `json:"user,omitempty"`
}

type ocsfUser struct {
	Name          string `json:"name,omitempty"`
	CredentialUID string `json:"credential_uid,omitempty"`
}

type ocsfEndpoint struct {
	IP string `json:"ip"`
}

type ocsfResource struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type ocsfObservable struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	TypeID int    `json:"type_id"`
	Value  string `json:"value"`
}

type ocsfRemediation struct {
	Desc       string   `json:"desc"`
	References []string `json:"references,omitempty"`
}

// ocsfUnmapped keeps, under the native alert's names, what OCSF has no
// attribute for, so that nothing of the alert is lost in this format.
type ocsfUnmapped struct {
	Entity   EntityRef `json:"entity"`
	Window   Window    `json:"window"`
	Exposure float64   `json:"exposure"`
	Basis    string    `json:"basis,omitempty"`
	Learning bool      `json:"learning,omitempty"`
	Incident Incident  `json:"incident"`
	Samples  []string  `json:"samples,omitempty"`
}

// ocsfSeverity maps the contract's severities onto severity_id; anything
// else is Unknown rather than a guess.
func ocsfSeverity(s string) (int, string) {
	switch s {
	case "low":
		return 2, "Low"
	case "medium":
		return 3, "Medium"
	case "high":
		return 4, "High"
	case "critical":
		return 5, "Critical"
	}
	return 0, "Unknown"
}

// ocsfTime turns a contract timestamp into OCSF's epoch milliseconds; 0
// (left out where optional) when it is missing or malformed.
func ocsfTime(s string) int64 {
	if s == "" {
		return 0
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0
	}
	return t.UnixMilli()
}

// ocsfScore makes the 0–100 score the integer risk_score is.
func ocsfScore(x float64) int {
	if math.IsNaN(x) {
		return 0
	}
	return int(math.Round(min(max(x, 0), 100)))
}

// ocsfTitle is the phrase a SIEM lists the finding by: the rule in words
// and whom it is about.
func ocsfTitle(a *Alert) string {
	r := strings.ReplaceAll(a.Rule, "_", " ")
	if c, n := utf8.DecodeRuneInString(r); c != utf8.RuneError {
		r = string(unicode.ToUpper(c)) + r[n:]
	}
	return r + ": " + a.Entity.Kind + " " + a.Entity.Key
}

// ocsfRuleKind says how each rule judges, for analytic.type_id and the
// anomaly's observation_type. Rules judged on a window against a learned
// baseline are Statistical; rules about an event against what the entity
// has done before are Behavioral; the detector's own are plain rules.
// distinct_records is the config's name of the rule the engine names
// distinct_records_spike; both are listed until the two agree.
var ocsfRuleKind = map[string]struct {
	analytic    int
	observation string
}{
	"volume_spike":           {3, "Volume Analysis"},
	"distinct_records":       {3, "Volume Analysis"},
	"distinct_records_spike": {3, "Volume Analysis"},
	"low_and_slow":           {3, "Volume Analysis"},
	"fan_out":                {3, "Association Analysis"},
	"denied_burst":           {3, "Frequency Analysis"},
	"bulk_read":              {2, "Volume Analysis"},
	"first_sensitive_object": {2, "Frequency Analysis"},
	"dormant_credential":     {2, "Frequency Analysis"},
	"new_source":             {2, "Frequency Analysis"},
	"off_hours":              {2, "Time Pattern Analysis"},
	"enumeration":            {2, "Sequence Analysis"},
	"detector_degraded":      {1, ""},
	"detector_sink_failing":  {1, ""},
}

var ocsfAnalyticTypes = map[int]string{0: "Unknown", 1: "Rule", 2: "Behavioral", 3: "Statistical"}

func ocsfAnalyticOf(rule string) ocsfAnalytic {
	k := ocsfRuleKind[rule].analytic
	return ocsfAnalytic{UID: rule, Name: rule, TypeID: k, Type: ocsfAnalyticTypes[k]}
}

// ocsfTactics are the ids of the ATT&CK Enterprise tactics, which the
// alert names only by name.
var ocsfTactics = map[string]string{
	"Reconnaissance":       "TA0043",
	"Resource Development": "TA0042",
	"Initial Access":       "TA0001",
	"Execution":            "TA0002",
	"Persistence":          "TA0003",
	"Privilege Escalation": "TA0004",
	"Defense Evasion":      "TA0005",
	"Credential Access":    "TA0006",
	"Discovery":            "TA0007",
	"Lateral Movement":     "TA0008",
	"Collection":           "TA0009",
	"Command and Control":  "TA0011",
	"Exfiltration":         "TA0010",
	"Impact":               "TA0040",
}

// ocsfAttacks splits sub-techniques ("T1213.006", named "Data from
// Information Repositories: Databases") into OCSF's technique and
// sub_technique, since SIEMs aggregate on the parent technique.
func ocsfAttacks(a *Alert) []ocsfAttack {
	out := make([]ocsfAttack, 0, len(a.MitreAttack))
	for _, t := range a.MitreAttack {
		var at ocsfAttack
		if t.Tactic != "" {
			at.Tactic = &ocsfAttackRef{UID: ocsfTactics[t.Tactic], Name: t.Tactic}
		}
		parent, _, isSub := strings.Cut(t.Technique, ".")
		if isSub {
			name, subName, ok := strings.Cut(t.Name, ": ")
			if !ok {
				subName = t.Name
			}
			at.Technique = &ocsfAttackRef{UID: parent, Name: name}
			at.SubTechnique = &ocsfAttackRef{UID: t.Technique, Name: subName}
		} else if t.Technique != "" || t.Name != "" {
			at.Technique = &ocsfAttackRef{UID: t.Technique, Name: t.Name}
		}
		if at.Tactic == nil && at.Technique == nil {
			continue // OCSF wants at least one of them
		}
		out = append(out, at)
	}
	return out
}

// ocsfAnomalies puts each measure's observed value (over the judged
// window) against its expected one, in measure name order.
func ocsfAnomalies(a *Alert) []ocsfAnomalyAnalysis {
	if len(a.Observed) == 0 {
		return nil
	}
	kind := ocsfRuleKind[a.Rule].observation
	var span *ocsfTimespan
	if start, end := ocsfTime(a.Window.Start), ocsfTime(a.Window.End); start != 0 && end >= start {
		span = &ocsfTimespan{StartTime: start, EndTime: end, Duration: end - start, TypeID: 9, Type: "Time Interval"}
	}
	aa := ocsfAnomalyAnalysis{AnalysisTargets: []ocsfAnalysisTarget{{Name: a.Entity.Key, Type: a.Entity.Kind}}}
	for _, m := range slices.Sorted(maps.Keys(a.Observed)) {
		aa.Anomalies = append(aa.Anomalies, ocsfAnomaly{
			ObservationParameter: m,
			ObservationType:      kind,
			Observations:         []ocsfObservation{{Value: ocsfNumber(a.Observed[m]), Timespan: span}},
		})
		if e, ok := a.Expected[m]; ok {
			aa.Baselines = append(aa.Baselines, ocsfAnomaly{
				ObservationParameter: m,
				ObservationType:      kind,
				Observations:         []ocsfObservation{{Value: ocsfNumber(e)}},
			})
		}
	}
	return []ocsfAnomalyAnalysis{aa}
}

func ocsfNumber(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// ocsfEvidences says who or what acted, in the OCSF object each entity
// kind is: the principal as the actor's user, a credential as its
// credential_uid, a client as the actor's application, a source address
// as the source endpoint. The top principal of a non-principal entity is
// the actor's user too. A network (/24, /64) has no endpoint attribute and
// is only in the analysis target and observables.
func ocsfEvidences(a *Alert) []ocsfEvidence {
	var ev ocsfEvidence
	var user ocsfUser
	app := ""
	switch a.Entity.Kind {
	case "principal":
		user.Name = a.Entity.Key
	case "credential":
		user.CredentialUID = a.Entity.Key
	case "client":
		app = a.Entity.Key
	case "source_ip":
		if ip, err := netip.ParseAddr(a.Entity.Key); err == nil {
			ev.SrcEndpoint = &ocsfEndpoint{IP: ip.String()}
		}
	}
	if user.Name == "" && a.Entity.Kind != "detector" {
		user.Name = a.Principal
	}
	if user != (ocsfUser{}) || app != "" {
		ev.Actor = &ocsfActor{AppName: app}
		if user != (ocsfUser{}) {
			ev.Actor.User = &user
		}
	}
	if ev.Actor == nil && ev.SrcEndpoint == nil {
		return nil
	}
	return []ocsfEvidence{ev}
}

// ocsfResources are the objects the entity read: database tables, or API
// paths (with ids already redacted by the builder).
func ocsfResources(objects []string) []ocsfResource {
	var out []ocsfResource
	for _, o := range objects {
		t := "table"
		if strings.Contains(o, "/") {
			t = "api_path"
		}
		out = append(out, ocsfResource{Name: o, Type: t})
	}
	return out
}

// ocsfObservables are the pivots a SIEM indexes: the user, credential,
// address or network the finding is about. A network is named where the
// finding holds it, in the anomaly analysis target, when there is one.
func ocsfObservables(a *Alert, ev []ocsfEvidence, withTargets bool) []ocsfObservable {
	var out []ocsfObservable
	if len(ev) == 1 && ev[0].Actor != nil && ev[0].Actor.User != nil {
		u := ev[0].Actor.User
		if u.Name != "" {
			out = append(out, ocsfObservable{Name: "evidences.actor.user.name", Type: "User Name", TypeID: 4, Value: u.Name})
		}
		if u.CredentialUID != "" {
			out = append(out, ocsfObservable{Name: "evidences.actor.user.credential_uid", Type: "User Credential ID", TypeID: 19, Value: u.CredentialUID})
		}
	}
	if len(ev) == 1 && ev[0].SrcEndpoint != nil {
		out = append(out, ocsfObservable{Name: "evidences.src_endpoint.ip", Type: "IP Address", TypeID: 2, Value: ev[0].SrcEndpoint.IP})
	}
	if a.Entity.Kind == "source_net" && withTargets {
		if p, err := netip.ParsePrefix(a.Entity.Key); err == nil {
			out = append(out, ocsfObservable{Name: "anomaly_analyses.analysis_targets.name", Type: "Subnet", TypeID: 12, Value: p.String()})
		}
	}
	return out
}
