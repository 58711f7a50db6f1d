package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// CompareOptions configure a backtest of a candidate config against the
// current one.
type CompareOptions struct {
	Current, Candidate *config.Config
	Input              io.Reader
	Logger             *slog.Logger
}

// Diff is what a candidate config changes on recorded logs: alerts per
// rule per day under each config, and the entities that gain or lose
// alerts. Resolutions are not counted: they page nobody.
type Diff struct {
	Events uint64 `json:"events"`
	// Days lists, per day (UTC date) and rule, the alerts under the
	// current and the candidate config.
	Days []DayRule `json:"days"`
	// Entities lists every entity whose alert count differs.
	Entities []EntityDiff `json:"entities"`
	// Totals are the alerts under each config, by severity.
	Current   map[string]int `json:"current_by_severity"`
	Candidate map[string]int `json:"candidate_by_severity"`
}

// DayRule is one day's alerts of one rule under both configs.
type DayRule struct {
	Day       string `json:"day"`
	Rule      string `json:"rule"`
	Current   int    `json:"current"`
	Candidate int    `json:"candidate"`
}

// EntityDiff is an entity whose alerts differ.
type EntityDiff struct {
	Kind      string   `json:"kind"`
	Key       string   `json:"key"`
	Current   int      `json:"current"`
	Candidate int      `json:"candidate"`
	Rules     []string `json:"rules"` // rules of the alerts under either config
}

// tally counts one config's alerts.
type tally struct {
	byDayRule map[[2]string]int
	byEntity  map[[2]string]int
	rules     map[[2]string][]string
	bySev     map[string]int
}

func newTally() *tally {
	return &tally{byDayRule: map[[2]string]int{}, byEntity: map[[2]string]int{}, rules: map[[2]string][]string{}, bySev: map[string]int{}}
}

func (t *tally) add(as []*alerts.Alert) {
	for _, a := range as {
		if a.Incident.Status == alerts.StatusResolved {
			continue
		}
		day := a.EventTime[:min(10, len(a.EventTime))]
		t.byDayRule[[2]string{day, a.Rule}]++
		e := [2]string{a.Entity.Kind, a.Entity.Key}
		t.byEntity[e]++
		if !slices.Contains(t.rules[e], a.Rule) {
			t.rules[e] = append(t.rules[e], a.Rule)
		}
		t.bySev[a.Severity]++
	}
}

// Compare replays the input once through two engines, one per config:
// the same events, decoded once with the current config's input limits,
// so that every difference in the report is the detection config's.
func Compare(ctx context.Context, o CompareOptions) (*Diff, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	in, err := maybeGunzip(o.Input)
	if err != nil {
		return nil, err
	}
	type side struct {
		b     *alerts.Builder
		e     *models.Engine
		tally *tally
	}
	var sides [2]*side
	for i, cfg := range []*config.Config{o.Current, o.Candidate} {
		s := &side{b: alerts.NewBuilder(cfg, nil, nil), tally: newTally()}
		s.e, err = models.New(cfg, func(d *models.Detection) { s.tally.add(s.b.Build(d)) })
		if err != nil {
			return nil, fmt.Errorf("compare: config %d: %w", i+1, err)
		}
		sides[i] = s
	}
	sum := &Summary{DecodeErrors: map[string]uint64{}}
	// Each event goes through both engines before the next: the two
	// sides see exactly the same stream.
	readErr := decodeAndProcess(ctx, in, o.Current, log, sum, func(ev *event.Event) {
		for _, s := range sides {
			s.e.Process(ev)
			s.tally.add(s.b.Resolve(s.e.Watermark(), nil))
		}
	})
	if readErr != nil {
		return nil, readErr
	}
	return diff(sum.Events, sides[0].tally, sides[1].tally), nil
}

func diff(events uint64, cur, cand *tally) *Diff {
	d := &Diff{Events: events, Current: cur.bySev, Candidate: cand.bySev}
	keys := map[[2]string]bool{}
	for k := range cur.byDayRule {
		keys[k] = true
	}
	for k := range cand.byDayRule {
		keys[k] = true
	}
	for k := range keys {
		d.Days = append(d.Days, DayRule{Day: k[0], Rule: k[1], Current: cur.byDayRule[k], Candidate: cand.byDayRule[k]})
	}
	slices.SortFunc(d.Days, func(a, b DayRule) int {
		return strings.Compare(a.Day+"\x00"+a.Rule, b.Day+"\x00"+b.Rule)
	})
	ents := map[[2]string]bool{}
	for k := range cur.byEntity {
		ents[k] = true
	}
	for k := range cand.byEntity {
		ents[k] = true
	}
	for k := range ents {
		c, n := cur.byEntity[k], cand.byEntity[k]
		if c == n {
			continue
		}
		rules := slices.Clone(cur.rules[k])
		for _, r := range cand.rules[k] {
			if !slices.Contains(rules, r) {
				rules = append(rules, r)
			}
		}
		slices.Sort(rules)
		d.Entities = append(d.Entities, EntityDiff{Kind: k[0], Key: k[1], Current: c, Candidate: n, Rules: rules})
	}
	slices.SortFunc(d.Entities, func(a, b EntityDiff) int {
		// Biggest change first, then by name.
		if x, y := abs(a.Candidate-a.Current), abs(b.Candidate-b.Current); x != y {
			return y - x
		}
		return strings.Compare(a.Kind+"/"+a.Key, b.Kind+"/"+b.Key)
	})
	return d
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Gained are the entities alerted on under the candidate config only.
func (d *Diff) Gained() []EntityDiff {
	return d.only(func(e EntityDiff) bool { return e.Current == 0 })
}

// Lost are the entities alerted on under the current config only.
func (d *Diff) Lost() []EntityDiff {
	return d.only(func(e EntityDiff) bool { return e.Candidate == 0 })
}

func (d *Diff) only(keep func(EntityDiff) bool) []EntityDiff {
	var out []EntityDiff
	for _, e := range d.Entities {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// WriteJSON writes the diff as one JSON document.
func (d *Diff) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(d)
}

// WriteText writes the diff as tables for people.
func (d *Diff) WriteText(w io.Writer) {
	total := func(m map[string]int) int {
		n := 0
		for _, v := range m {
			n += v
		}
		return n
	}
	fmt.Fprintf(w, "%d events; alerts: current %d %v, candidate %d %v\n\n", d.Events, total(d.Current), sevs(d.Current), total(d.Candidate), sevs(d.Candidate))
	fmt.Fprintf(w, "%-10s  %-24s %8s %10s %7s\n", "day", "rule", "current", "candidate", "change")
	for _, r := range d.Days {
		mark := ""
		if r.Candidate != r.Current {
			mark = fmt.Sprintf("%+d", r.Candidate-r.Current)
		}
		fmt.Fprintf(w, "%-10s  %-24s %8d %10d %7s\n", r.Day, r.Rule, r.Current, r.Candidate, mark)
	}
	lost, gained := d.Lost(), d.Gained()
	fmt.Fprintf(w, "\nentities no longer alerted on (%d):\n", len(lost))
	for _, e := range lost {
		fmt.Fprintf(w, "  %s %s: %d alerts (%s)\n", e.Kind, e.Key, e.Current, strings.Join(e.Rules, ", "))
	}
	fmt.Fprintf(w, "entities newly alerted on (%d):\n", len(gained))
	for _, e := range gained {
		fmt.Fprintf(w, "  %s %s: %d alerts (%s)\n", e.Kind, e.Key, e.Candidate, strings.Join(e.Rules, ", "))
	}
	changed := len(d.Entities) - len(lost) - len(gained)
	fmt.Fprintf(w, "entities alerted on under both, with a different count: %d\n", changed)
}

func sevs(m map[string]int) string {
	var parts []string
	for _, s := range config.Severities {
		if m[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", s, m[s]))
		}
	}
	return "(" + strings.Join(parts, " ") + ")"
}
