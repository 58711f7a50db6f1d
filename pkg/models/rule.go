package models

// Rule names a detector. The names are a contract: they appear in alerts,
// metrics and config, and must never change.
type Rule uint8

// Rules, one per detector of DESIGN.md.
const (
	RuleVolumeSpike Rule = iota
	RuleDistinctRecords
	RuleBulkRead
	RuleFirstSensitiveObject
	RuleLowAndSlow
	RuleDormantCredential
	RuleNewSource
	RuleOffHours
	RuleEnumeration
	RuleDeniedBurst
	RuleFanOut
	numRules
)

// Technique is one MITRE ATT&CK technique an alert maps to.
type Technique struct {
	Tactic    string `json:"tactic"`
	Technique string `json:"technique"`
	Name      string `json:"name"`
}

var (
	tDatabases  = Technique{"Collection", "T1213.006", "Data from Information Repositories: Databases"}
	tRepos      = Technique{"Collection", "T1213", "Data from Information Repositories"}
	tAutoCollec = Technique{"Collection", "T1119", "Automated Collection"}
	tSizeLimits = Technique{"Exfiltration", "T1030", "Data Transfer Size Limits"}
	tWebService = Technique{"Exfiltration", "T1567", "Exfiltration Over Web Service"}
	tValid      = Technique{"Defense Evasion", "T1078", "Valid Accounts"}
	tAppToken   = Technique{"Defense Evasion", "T1550.001", "Use Alternate Authentication Material: Application Access Token"}
	tBrute      = Technique{"Credential Access", "T1110", "Brute Force"}
	tStuffing   = Technique{"Credential Access", "T1110.004", "Brute Force: Credential Stuffing"}
	tPermGroups = Technique{"Discovery", "T1069", "Permission Groups Discovery"}
)

// ruleInfo is the static description of a rule: its name, the ATT&CK
// techniques it evidences, and the least severity it is raised with (a
// dormant credential reading customer data is never "low").
type ruleInfo struct {
	name  string
	mitre []Technique
	floor Severity
	// baseline: judged on a window against a learned baseline; such a rule
	// flags the window it judged. The others are about the event itself
	// and flag every bucket it is in (see Engine.finish).
	baseline bool
}

var rules = [numRules]ruleInfo{
	RuleVolumeSpike:          {"volume_spike", []Technique{tDatabases, tWebService}, SeverityLow, true},
	RuleDistinctRecords:      {"distinct_records_spike", []Technique{tRepos, tAutoCollec}, SeverityMedium, true},
	RuleBulkRead:             {"bulk_read", []Technique{tDatabases, tWebService}, SeverityHigh, false},
	RuleFirstSensitiveObject: {"first_sensitive_object", []Technique{tDatabases}, SeverityMedium, false},
	RuleLowAndSlow:           {"low_and_slow", []Technique{tSizeLimits, tDatabases}, SeverityMedium, true},
	RuleDormantCredential:    {"dormant_credential", []Technique{tValid, tDatabases}, SeverityHigh, false},
	RuleNewSource:            {"new_source", []Technique{tValid, tDatabases}, SeverityMedium, false},
	RuleOffHours:             {"off_hours", []Technique{tValid}, SeverityMedium, false},
	RuleEnumeration:          {"enumeration", []Technique{tAutoCollec, tRepos}, SeverityHigh, false},
	RuleDeniedBurst:          {"denied_burst", []Technique{tBrute, tPermGroups}, SeverityLow, true},
	RuleFanOut:               {"fan_out", []Technique{tAppToken, tStuffing, tAutoCollec}, SeverityMedium, true},
}

func (r Rule) String() string {
	if r < numRules {
		return rules[r].name
	}
	return "unknown"
}

// MITRE returns the ATT&CK techniques of the rule. The slice is shared:
// callers must not modify it.
func (r Rule) MITRE() []Technique {
	if r < numRules {
		return rules[r].mitre
	}
	return nil
}

// Family groups rules into what an analyst investigates as one thing.
// Detections about one entity in one family within the quiet period are
// one incident: a crawler trips volume, distinct-record and enumeration
// rules at once, and is one case, not three.
type Family uint8

// Rule families.
const (
	// FamilyExfiltration: reading more customer data than normal.
	FamilyExfiltration Family = iota
	// FamilyAccess: reading from where, when or what it never did, or
	// after a long silence.
	FamilyAccess
	// FamilyDenied: probing what it may not read.
	FamilyDenied
)

var familyNames = [...]string{"exfiltration", "unusual_access", "denied_access"}

func (f Family) String() string {
	if int(f) < len(familyNames) {
		return familyNames[f]
	}
	return "unknown"
}

// Family returns the rule's family.
func (r Rule) Family() Family {
	switch r {
	case RuleFirstSensitiveObject, RuleDormantCredential, RuleNewSource, RuleOffHours:
		return FamilyAccess
	case RuleDeniedBurst:
		return FamilyDenied
	}
	return FamilyExfiltration
}

// Rules lists every rule in a stable order.
func Rules() []Rule {
	out := make([]Rule, numRules)
	for i := range out {
		out[i] = Rule(i)
	}
	return out
}

// Severity is how urgently a human should look.
type Severity uint8

// Severities, ordered.
const (
	SeverityLow Severity = iota
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"low", "medium", "high", "critical"}

func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return "critical"
}
