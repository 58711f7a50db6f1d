package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Override changes how the entities it matches are judged: detector
// thresholds and switches, the horizons the spike detectors judge, and the
// learning period. The first entry that matches an entity applies, as the
// first matching rule of a firewall does, so that which settings judge an
// entity is one lookup an engineer can do by reading the file top down,
// not a merge to reason about. Put specific entries before broad ones.
type Override struct {
	// Name identifies the override in alerts (detection.override) and
	// metrics; unique.
	Name  string        `yaml:"name"`
	Match OverrideMatch `yaml:"match"`
	// Horizons, when set, are the only horizons the spike detectors judge
	// for the matched entities (a subset of engine.horizons): a batch job
	// that is bursty by the minute is judged by the hour and the day. The
	// windows are still kept and learned for every horizon.
	Horizons []Duration `yaml:"horizons"`
	// LearningPeriod replaces engine.learning_period for the matched
	// entities; 0 keeps it.
	LearningPeriod Duration `yaml:"learning_period"`
	// Detectors is written like the top-level detectors section, and only
	// what is written changes: Parse decodes it over a copy of the
	// top-level section, so after Parse it is complete. A Config built in
	// Go must fill it completely.
	Detectors Detectors `yaml:"detectors"`
}

// OverrideMatch selects entities. Every list given must match (and);
// within a list any entry may (or); an empty match selects every entity.
type OverrideMatch struct {
	// Kinds are entity kinds: principal, source_net, credential,
	// source_ip, client.
	Kinds []string `yaml:"kinds"`
	// Roles are glob patterns on a principal's role (its peer group, from
	// the event's role field). Only principals have a role: an override
	// with roles matches no other kind.
	Roles []string `yaml:"roles"`
	// Entities are glob patterns on the entity's key: the principal's
	// name, the credential id, the client, the network ("10.1.2.0/24") or
	// address.
	Entities []string `yaml:"entities"`
}

// AllowEntry accepts a known, reviewed behaviour: detections of the
// entities and objects it names are not alerted while it is in force. It
// must say who owns it and when it ends, because a permanent exception
// nobody owns is how a real leak hides: an expired entry stops applying
// and is reported.
//
// An allowed detection is still counted (exfilguard_detections_suppressed_total)
// and its window is still kept out of the baseline, so that when the entry
// expires the behaviour alerts again instead of having been learned.
type AllowEntry struct {
	// Name identifies the entry in metrics and logs; default
	// "allowlist[i]".
	Name  string   `yaml:"name"`
	Kinds []string `yaml:"kinds"`
	// Entities are glob patterns on the entity key; at least one.
	Entities []string `yaml:"entities"`
	// Objects are glob patterns on the object (case-insensitive); empty
	// means any. A detection about a window names its heaviest sensitive
	// objects: every one named must match.
	Objects []string `yaml:"objects"`
	// Rules limits the entry to these rules; empty means all.
	Rules []string `yaml:"rules"`
	// Hours is an optional time-of-day window, "HH:MM-HH:MM" in Timezone
	// (it may wrap past midnight: "22:00-04:00").
	Hours    string `yaml:"hours"`
	Timezone string `yaml:"timezone"`
	// Owner is who answers for the exception (a team or a person);
	// required.
	Owner string `yaml:"owner"`
	// Expires is the last day the entry applies (YYYY-MM-DD, through the
	// end of that day in Timezone); required. Judged in event time, so a
	// backtest applies the entries that were in force then.
	Expires Date `yaml:"expires"`
	// Reason says why the behaviour is acceptable (a ticket, a change).
	Reason string `yaml:"reason"`
}

// Maintenance mutes alerts during planned work (a migration, a re-index, a
// restore test) while the detector keeps learning and counting: the
// detections are counted as suppressed and their windows kept out of the
// baseline, so the work does not become "normal".
type Maintenance struct {
	// Name identifies the window in metrics and logs; required, unique.
	Name string `yaml:"name"`
	// Start and End are RFC 3339 times; the window is [start, end),
	// judged in event time.
	Start time.Time `yaml:"start"`
	End   time.Time `yaml:"end"`
	// Kinds and Entities (glob patterns on the key) limit the window to
	// some entities; empty means all.
	Kinds    []string `yaml:"kinds"`
	Entities []string `yaml:"entities"`
	// Rules limits the window to these rules; empty means all.
	Rules  []string `yaml:"rules"`
	Reason string   `yaml:"reason"`
}

// SensitiveClass is a class of sensitive objects with a weight: rows read
// from it count weight times in the sensitive-rows measure, so that a
// thousand card numbers weigh more than a thousand e-mail addresses
// against the same absolute floors (detectors' min, bulk_read.max_rows,
// first_sensitive_object.min_rows). Exposure figures stay in real rows.
type SensitiveClass struct {
	Name string `yaml:"name"`
	// Patterns are substrings of the lower-cased object name, like
	// sensitive.patterns. The first class with a matching pattern wins;
	// sensitive.exclude applies first.
	Patterns []string `yaml:"patterns"`
	// Weight in (0, 100]; sensitive.patterns are weight 1.
	Weight float64 `yaml:"weight"`
}

// Date is a calendar day, "2026-12-31".
type Date struct {
	time.Time
	// bad is what was written when it is not a day, for validation to
	// report with every other problem rather than stop the decode.
	bad string
}

// UnmarshalYAML reads a YYYY-MM-DD day; yaml.v3 would take a timestamp
// too, but an expiry is a day.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		*d = Date{bad: s}
		return nil
	}
	*d = Date{Time: t}
	return nil
}

// MarshalYAML writes the day back as YYYY-MM-DD.
func (d Date) MarshalYAML() (any, error) {
	if d.IsZero() {
		return "", nil
	}
	return d.Format(time.DateOnly), nil
}

// Until is the instant the entry stops applying: the end of the day in loc.
func (d Date) Until(loc *time.Location) time.Time {
	return time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc)
}

// Location returns the entry's time zone (UTC when not set).
func (a *AllowEntry) Location() *time.Location {
	if a.Timezone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(a.Timezone)
	if err != nil {
		return time.UTC // validated; unreachable for a loaded config
	}
	return loc
}

// HoursRange parses Hours into minutes of the day [from, to); ok is false
// when Hours is empty (all day).
func (a *AllowEntry) HoursRange() (from, to int, ok bool, err error) {
	if a.Hours == "" {
		return 0, 0, false, nil
	}
	f, t, found := strings.Cut(a.Hours, "-")
	if !found {
		return 0, 0, false, fmt.Errorf("%q is not HH:MM-HH:MM", a.Hours)
	}
	minutes := func(s string) (int, error) {
		tm, err := time.Parse("15:04", strings.TrimSpace(s))
		if err != nil {
			return 0, fmt.Errorf("%q is not HH:MM-HH:MM", a.Hours)
		}
		return tm.Hour()*60 + tm.Minute(), nil
	}
	if from, err = minutes(f); err != nil {
		return 0, 0, false, err
	}
	if to, err = minutes(t); err != nil {
		return 0, 0, false, err
	}
	if from == to {
		return 0, 0, false, fmt.Errorf("%q is an empty window", a.Hours)
	}
	return from, to, true, nil
}

// Expired lists the allowlist entries no longer in force at now, for
// reporting: they do not apply, and whoever owns them should renew or
// remove them.
func (c *Config) Expired(now time.Time) []*AllowEntry {
	var out []*AllowEntry
	for i := range c.Allowlist {
		a := &c.Allowlist[i]
		if !now.Before(a.Expires.Until(a.Location())) {
			out = append(out, a)
		}
	}
	return out
}

// entityKinds are the kinds an override, allowlist entry or maintenance
// window may name (not "detector": the detector's own alerts are never
// muted).
var entityKinds = kindNames[:len(kindNames)-1]

func (v *validator) globs(path string, pats []string) {
	for i, p := range pats {
		if p == "" {
			v.add(fmt.Sprintf("%s[%d]", path, i), "must not be empty")
		}
	}
}

func (v *validator) kinds(path string, kinds []string) {
	for i, k := range kinds {
		if !slices.Contains(entityKinds, k) {
			v.add(fmt.Sprintf("%s[%d]", path, i), "unknown entity kind %q (known: %s)", k, strings.Join(entityKinds, ", "))
		}
	}
}

func (v *validator) rules(path string, rules []string) {
	for i, r := range rules {
		if !slices.Contains(ruleNames, r) || strings.HasPrefix(r, "detector_") {
			v.add(fmt.Sprintf("%s[%d]", path, i), "unknown rule %q", r)
		}
	}
}

// validateTuning checks sensitivity classes, overrides, the allowlist and
// maintenance windows.
func (c *Config) validateTuning(v *validator) {
	classes := map[string]bool{}
	for i, cl := range c.Sensitive.Classes {
		p := fmt.Sprintf("sensitive.classes[%d]", i)
		switch {
		case cl.Name == "":
			v.add(p+".name", "must not be empty")
		case classes[cl.Name]:
			v.add(p+".name", "class %q defined twice", cl.Name)
		}
		classes[cl.Name] = true
		if len(cl.Patterns) == 0 {
			v.add(p+".patterns", "must list at least one pattern")
		}
		for j, pat := range cl.Patterns {
			if pat == "" {
				v.add(fmt.Sprintf("%s.patterns[%d]", p, j), "must not be empty (it would match every object)")
			}
		}
		if !(cl.Weight > 0 && cl.Weight <= 100) {
			v.add(p+".weight", "must be in (0, 100], got %v", cl.Weight)
		}
	}

	names := map[string]bool{}
	for i := range c.Overrides {
		o := &c.Overrides[i]
		p := fmt.Sprintf("overrides[%d]", i)
		switch {
		case o.Name == "":
			v.add(p+".name", "must not be empty")
		case names[o.Name]:
			v.add(p+".name", "override %q defined twice", o.Name)
		}
		names[o.Name] = true
		v.kinds(p+".match.kinds", o.Match.Kinds)
		v.globs(p+".match.roles", o.Match.Roles)
		v.globs(p+".match.entities", o.Match.Entities)
		if len(o.Match.Roles) > 0 && len(o.Match.Kinds) > 0 && !slices.Contains(o.Match.Kinds, "principal") {
			v.add(p+".match.roles", "only principals have a role, but match.kinds does not include principal: the override matches nothing")
		}
		for j, h := range o.Horizons {
			if !slices.Contains(c.Engine.Horizons, h) {
				v.add(fmt.Sprintf("%s.horizons[%d]", p, j), "%q is not one of engine.horizons", h)
			}
		}
		if o.LearningPeriod < 0 {
			v.add(p+".learning_period", "must not be negative, got %q", o.LearningPeriod)
		}
		o.Detectors.validate(v, p+".detectors")
	}

	names = map[string]bool{}
	for i := range c.Allowlist {
		a := &c.Allowlist[i]
		p := fmt.Sprintf("allowlist[%d]", i)
		if a.Name != "" {
			if names[a.Name] {
				v.add(p+".name", "entry %q defined twice", a.Name)
			}
			names[a.Name] = true
		}
		if len(a.Entities) == 0 {
			v.add(p+".entities", "must name at least one entity pattern: an exception for everyone is not an exception")
		}
		v.globs(p+".entities", a.Entities)
		v.globs(p+".objects", a.Objects)
		v.kinds(p+".kinds", a.Kinds)
		v.rules(p+".rules", a.Rules)
		if strings.TrimSpace(a.Owner) == "" {
			v.add(p+".owner", "is required: someone must answer for the exception")
		}
		switch {
		case a.Expires.bad != "":
			v.add(p+".expires", "%q is not a date (YYYY-MM-DD)", a.Expires.bad)
		case a.Expires.IsZero():
			v.add(p+".expires", "is required (YYYY-MM-DD): exceptions end")
		}
		if a.Timezone != "" {
			if _, err := time.LoadLocation(a.Timezone); err != nil {
				v.add(p+".timezone", "unknown time zone %q", a.Timezone)
			}
		}
		if _, _, _, err := a.HoursRange(); err != nil {
			v.add(p+".hours", "%v", err)
		}
	}

	names = map[string]bool{}
	for i := range c.Maintenance {
		m := &c.Maintenance[i]
		p := fmt.Sprintf("maintenance[%d]", i)
		switch {
		case m.Name == "":
			v.add(p+".name", "must not be empty")
		case names[m.Name]:
			v.add(p+".name", "window %q defined twice", m.Name)
		}
		names[m.Name] = true
		if m.Start.IsZero() || m.End.IsZero() {
			v.add(p+".end", "start and end are both required (RFC 3339)")
		} else if !m.End.After(m.Start) {
			v.add(p+".end", "%q is not after start %q", m.End.Format(time.RFC3339), m.Start.Format(time.RFC3339))
		} else if m.End.Sub(m.Start) > 31*24*time.Hour {
			v.add(p+".end", "the window is %s long; more than 31 days of muted alerts is not maintenance (use an allowlist entry with an owner)", m.End.Sub(m.Start))
		}
		v.kinds(p+".kinds", m.Kinds)
		v.globs(p+".entities", m.Entities)
		v.rules(p+".rules", m.Rules)
	}
}

// resolveOverrides decodes each override's detectors node over a copy of
// the top-level detectors section, so that an override holds only what it
// changes in the file and is complete in memory. The first decode (strict,
// into the zero value) has already reported unknown keys with their lines.
func (c *Config) resolveOverrides(root *yaml.Node) error {
	seq := mapValue(root, "overrides")
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil
	}
	for i, item := range seq.Content {
		if i >= len(c.Overrides) {
			break
		}
		d := c.Detectors
		if n := mapValue(item, "detectors"); n != nil {
			if err := n.Decode(&d); err != nil {
				return err
			}
		}
		c.Overrides[i].Detectors = d
	}
	return nil
}

// mapValue returns the value node of key in the mapping n (or in the
// document n holds), or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// Glob reports whether s matches pattern, where * matches any run of
// characters (slashes and dots included: object and API paths are names
// here, not file paths) and ? any one character.
func Glob(pattern, s string) bool {
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == s[sx]):
			px++
			sx++
		case px < len(pattern) && pattern[px] == '*':
			star, mark = px, sx
			px++
		case star >= 0:
			px = star + 1
			mark++
			sx = mark
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// GlobAny reports whether s matches any of the patterns.
func GlobAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if Glob(p, s) {
			return true
		}
	}
	return false
}
