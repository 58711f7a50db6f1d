package alerts

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// Suppression by the allowlist and by maintenance windows happens here,
// where detections become alerts, and not in the engine: the engine has
// already kept the window out of the baselines and counted the detection,
// so a muted behaviour is neither alerted nor learned, and it alerts again
// once its entry expires or its window ends. Everything is judged in event
// time, so a backtest applies the entries that were in force then.

// Suppression counts detections that an allowlist entry or a maintenance
// window kept from alerting.
type Suppression struct {
	// Reason is "allowlist" or "maintenance"; Name the entry's or window's.
	Reason, Name string
	N            uint64
}

type allowRule struct {
	name              string
	kinds, rules      []string
	entities, objects []string // objects lower-cased
	hours             bool
	from, to          int // minutes of the day, [from, to), may wrap
	loc               *time.Location
	until             int64 // Unix ns: the end of the expiry day
	n                 uint64
}

type maintRule struct {
	name                   string
	start, end             int64
	kinds, entities, rules []string
	n                      uint64
}

type suppressor struct {
	allow []allowRule
	maint []maintRule
}

func newSuppressor(cfg *config.Config) *suppressor {
	s := &suppressor{}
	for i := range cfg.Allowlist {
		a := &cfg.Allowlist[i]
		name := a.Name
		if name == "" {
			name = "allowlist[" + strconv.Itoa(i) + "]"
		}
		loc := a.Location()
		r := allowRule{name: name, kinds: a.Kinds, rules: a.Rules, entities: a.Entities, loc: loc, until: a.Expires.Until(loc).UnixNano()}
		for _, o := range a.Objects {
			r.objects = append(r.objects, strings.ToLower(o))
		}
		r.from, r.to, r.hours, _ = a.HoursRange()
		s.allow = append(s.allow, r)
	}
	for _, m := range cfg.Maintenance {
		s.maint = append(s.maint, maintRule{name: m.Name, start: m.Start.UnixNano(), end: m.End.UnixNano(), kinds: m.Kinds, entities: m.Entities, rules: m.Rules})
	}
	return s
}

// carryCounts keeps the counts of entries and windows that survive a
// reload under the same name.
func (s *suppressor) carryCounts(old *suppressor) {
	for i := range s.allow {
		for _, o := range old.allow {
			if o.name == s.allow[i].name {
				s.allow[i].n = o.n
			}
		}
	}
	for i := range s.maint {
		for _, o := range old.maint {
			if o.name == s.maint[i].name {
				s.maint[i].n = o.n
			}
		}
	}
}

// suppressed reports whether d is kept from alerting, and counts it.
func (s *suppressor) suppressed(d *models.Detection) bool {
	if len(s.allow) == 0 && len(s.maint) == 0 {
		return false
	}
	kind, rule := d.Kind.String(), d.Rule.String()
	for i := range s.maint {
		m := &s.maint[i]
		if d.Time >= m.start && d.Time < m.end && in(m.kinds, kind) && in(m.rules, rule) &&
			(len(m.entities) == 0 || config.GlobAny(m.entities, d.Key)) {
			m.n++
			return true
		}
	}
	for i := range s.allow {
		a := &s.allow[i]
		if d.Time >= a.until || !in(a.kinds, kind) || !in(a.rules, rule) || !config.GlobAny(a.entities, d.Key) {
			continue
		}
		if a.hours {
			t := time.Unix(0, d.Time).In(a.loc)
			m := t.Hour()*60 + t.Minute()
			if a.from < a.to && (m < a.from || m >= a.to) || a.from > a.to && m < a.from && m >= a.to {
				continue
			}
		}
		if len(a.objects) > 0 && !objectsMatch(a.objects, d.Objects[:d.NObjects]) {
			continue
		}
		a.n++
		return true
	}
	return false
}

// objectsMatch: every object the detection names must match; a detection
// naming none cannot be shown to be about the allowed objects.
func objectsMatch(patterns, objects []string) bool {
	if len(objects) == 0 {
		return false
	}
	for _, o := range objects {
		if !config.GlobAny(patterns, strings.ToLower(o)) {
			return false
		}
	}
	return true
}

func in(list []string, s string) bool { return len(list) == 0 || slices.Contains(list, s) }

// counts returns the suppression counts, entries and windows in config
// order.
func (s *suppressor) counts() []Suppression {
	out := make([]Suppression, 0, len(s.allow)+len(s.maint))
	for _, a := range s.allow {
		out = append(out, Suppression{Reason: "allowlist", Name: a.name, N: a.n})
	}
	for _, m := range s.maint {
		out = append(out, Suppression{Reason: "maintenance", Name: m.name, N: m.n})
	}
	return out
}
