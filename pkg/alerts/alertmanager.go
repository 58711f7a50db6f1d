package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// Alertmanager sends incidents to Prometheus Alertmanager (API v2) as
// alerts that fire while the incident is open and resolve when it does.
//
// Alertmanager identifies an alert by its label set alone: two posts with
// the same labels are one alert (annotations are simply the latest), and
// any label that changes makes a second alert. So the labels are chosen
// to be fixed for the life of an incident, and everything that changes as
// it escalates (numbers, text, current severity) is in annotations.
//
// Labels:
//
//   - alertname: "Exfilguard" + the rule in CamelCase
//     (ExfilguardDistinctRecords), not one name for everything: default
//     notification titles, the UI and the usual group_by: [alertname] all
//     treat alertname as "what is wrong", and a single name would put every
//     rule in one group. The prefix keeps them apart from infrastructure
//     alerts (alertname=~"Exfilguard.+" matches all of ours).
//   - rule: the rule as the detector's config spells it, so a matcher can
//     be copied from an exfilguard routing rule.
//   - entity_kind, entity_key: whom it is about (customer keys are
//     already pseudonyms), for routing and for silencing one entity.
//   - incident_id: one incident is one alert. Without it, an entity's next
//     incident after a resolution would reuse the same alert, and a silence
//     could not acknowledge this incident without muting the entity's
//     future ones. Its cardinality is that of incidents, which Alertmanager
//     forgets once they resolve.
//   - severity: the severity of the first alert this sink delivered for the
//     incident, frozen. A SOC routes on severity, and Alertmanager routes
//     on labels only, so it has to be a label; but a label that followed
//     escalations would turn each into a new alert and force the old one to
//     be resolved, so receivers would see "resolved" for an incident that
//     just got worse. The current severity is the annotation
//     current_severity. The cost: an escalation updates the alert in
//     place, is not re-routed, and is notified again only at the route's
//     repeat_interval (Alertmanager notifies when a group's set of alerts
//     changes, not its annotations). Where an escalation to critical must
//     page, add a second alertmanager sink with min_severity: critical: the
//     first alert it sees of such an incident is critical, so it raises a
//     distinct severity="critical" alert for the paging route (an
//     inhibit_rule with equal: [incident_id] can mute the lower one).
//
// startsAt is the wall-clock time this sink first handled the incident,
// not its event time: a replay or a lagging stream would otherwise show
// incidents as having started hours before anyone could see them. endsAt
// of a firing alert is four resend intervals ahead, as Prometheus does,
// so that Alertmanager resolves it on its own only after three refreshes
// in a row were lost (the detector died with its state); a resolution
// sets endsAt to now.
type Alertmanager struct {
	endpoints []*httpPoster // one per Alertmanager of the HA group
	now       func() time.Time
	resend    time.Duration
	timeout   time.Duration

	// send makes Notify and Refresh take turns: a refresh that read the
	// firing set before a resolution and posted after it would make the
	// resolved alert fire again until its endsAt.
	send sync.Mutex
	mu   sync.Mutex
	// firing is every open incident, keyed by incident id, as last sent.
	firing map[string]*amFiring
	// ending holds the incidents whose resolution is not yet accepted, so
	// that the outbox's retry of it resolves the same alert: the
	// resolution carries the incident's highest severity, not the
	// severity label the alert was opened with. An entry goes when its
	// resolution was answered for good, or after four resend intervals,
	// when Alertmanager has ended the alert by its endsAt anyway.
	ending map[string]*amFiring
}

// amFiring is an open incident as last sent; posted is when Alertmanager
// last accepted it, kept in memory only (after a restart everything is
// due at once).
type amFiring struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"starts_at"`
	posted      time.Time
	resolved    time.Time // in ending: when the resolution was first posted
}

// amPostable is Alertmanager's postableAlert.
type amPostable struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`

	incident string // not sent: which firing entry this is
}

// amState is what SaveState writes. Version says how to read it, so a
// detector downgraded or upgraded across a format change fails loudly
// rather than forgetting its firing alerts.
type amState struct {
	Version int                  `json:"version"`
	Firing  map[string]*amFiring `json:"firing"`
}

const amStateVersion = 1

// amMaxPerRequest bounds one request body (about 1.5 KB an alert), so
// that refreshing a large firing set is not one request a proxy in front
// of Alertmanager would refuse for its size.
const amMaxPerRequest = 256

// amMaxObjects bounds the objects listed in a description.
const amMaxObjects = 10

// NewAlertmanager returns a sink posting to every URL of cfg: the members
// of an HA group do not share alerts among themselves (gossip only
// shares silences and what was notified), so each needs every alert.
func NewAlertmanager(cfg config.Sink, d Deps) (*Alertmanager, error) {
	d.defaults()
	if len(cfg.URLs) == 0 {
		return nil, fmt.Errorf("alertmanager sink %s: no urls", cfg.Name)
	}
	m := &Alertmanager{
		now:     d.Now,
		resend:  cfg.ResendInterval.D(),
		timeout: cfg.Timeout.D(),
		firing:  make(map[string]*amFiring),
		ending:  make(map[string]*amFiring),
	}
	if m.resend <= 0 {
		m.resend = time.Minute // the config default, for configs built in code
	}
	for i, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alertmanager sink %s: urls[%d] is not an http or https URL (%s)", cfg.Name, i, config.Redact(raw))
		}
		if u.User != nil {
			return nil, fmt.Errorf("alertmanager sink %s: urls[%d] must not carry credentials (%s)", cfg.Name, i, config.Redact(raw))
		}
		// JoinPath keeps a path prefix (an Alertmanager behind a proxy
		// at /alertmanager/) and the query, and copes with a final "/".
		post := u.JoinPath("api", "v2", "alerts")
		// The poster does not follow redirects (one would turn the POST
		// into a GET of the alert list, which answers 200) and cuts the
		// paths out of errors: paths are where URLs keep tokens.
		m.endpoints = append(m.endpoints, newHTTPPoster("alertmanager", post.String(), d.HTTP, raw, u.String(), u.EscapedPath(), u.Path))
	}
	return m, nil
}

// RefreshInterval is the resend interval: Alertmanager must hear of a
// firing alert again before its endsAt.
func (m *Alertmanager) RefreshInterval() time.Duration { return m.resend }

// Notify posts alerts to every Alertmanager. The firing set is updated
// before the post, whatever its outcome: it is what the detector holds
// true, which Refresh keeps telling Alertmanager, so an opening the
// outbox gave up on still fires at the next refresh, and a resolution it
// gave up on still ends, at the alert's endsAt. Alerts of incidents not
// posted for a resend interval ride along, because the outbox refreshes
// only when it has nothing else to send and a busy detector would
// otherwise let them expire.
func (m *Alertmanager) Notify(ctx context.Context, alerts ...*Alert) (retry bool, err error) {
	m.send.Lock()
	defer m.send.Unlock()
	now := m.now()
	m.mu.Lock()
	var out []amPostable
	at := make(map[string]int, len(alerts))
	for _, a := range alerts {
		if a == nil {
			continue
		}
		p := m.apply(a, now)
		// One request holds one version of each alert; the last wins,
		// as it would in Alertmanager.
		if i, ok := at[p.incident]; ok {
			out[i] = p
			continue
		}
		at[p.incident] = len(out)
		out = append(out, p)
	}
	for _, id := range m.sortedFiring() {
		f := m.firing[id]
		if _, ok := at[id]; !ok && now.Sub(f.posted) >= m.resend {
			out = append(out, m.postable(id, f, now))
		}
	}
	for id, f := range m.ending {
		if now.Sub(f.resolved) > 4*m.resend {
			delete(m.ending, id)
		}
	}
	m.mu.Unlock()
	if len(out) == 0 {
		return false, nil
	}
	retry, err = m.post(ctx, out)
	if err == nil {
		m.posted(out, now)
	}
	if err == nil || !retry {
		m.mu.Lock()
		for id := range at {
			delete(m.ending, id)
		}
		m.mu.Unlock()
	}
	return retry, err
}

// Refresh re-posts every firing alert with a new endsAt.
func (m *Alertmanager) Refresh(ctx context.Context) (retry bool, err error) {
	m.send.Lock()
	defer m.send.Unlock()
	now := m.now()
	m.mu.Lock()
	out := make([]amPostable, 0, len(m.firing))
	for _, id := range m.sortedFiring() {
		out = append(out, m.postable(id, m.firing[id], now))
	}
	m.mu.Unlock()
	if len(out) == 0 {
		return false, nil
	}
	retry, err = m.post(ctx, out)
	if err == nil {
		m.posted(out, now)
	}
	return retry, err
}

// SaveState returns the firing set, so that a restarted detector goes on
// refreshing (and can resolve) the alerts it had open.
func (m *Alertmanager) SaveState() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := json.Marshal(amState{Version: amStateVersion, Firing: m.firing})
	if err != nil {
		return nil, fmt.Errorf("encode alertmanager state: %w", err)
	}
	return b, nil
}

// LoadState replaces the firing set with one SaveState returned; empty
// means none.
func (m *Alertmanager) LoadState(b []byte) error {
	firing := make(map[string]*amFiring)
	if len(bytes.TrimSpace(b)) > 0 {
		var st amState
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("decode alertmanager state: %w", err)
		}
		if st.Version != amStateVersion {
			return fmt.Errorf("decode alertmanager state: version %d, this detector reads %d", st.Version, amStateVersion)
		}
		for id, f := range st.Firing {
			if f == nil || f.Labels["alertname"] == "" || f.StartsAt.IsZero() {
				return fmt.Errorf("decode alertmanager state: incident %s has no labels or start", id)
			}
			if f.Annotations == nil {
				f.Annotations = map[string]string{}
			}
			firing[id] = f
		}
	}
	m.mu.Lock()
	m.firing = firing
	m.mu.Unlock()
	return nil
}

// apply folds a into the firing set and returns what to post for it. The
// labels (severity included) are those of the incident's first alert;
// the annotations are a's.
func (m *Alertmanager) apply(a *Alert, now time.Time) amPostable {
	id := a.Incident.ID
	if id == "" {
		id = a.ID
	}
	f := m.firing[id]
	if f == nil {
		f = m.ending[id]
	}
	var labels map[string]string
	start := now
	if f != nil {
		labels, start = f.Labels, f.StartsAt
	} else {
		labels = amLabels(a, id)
	}
	ann := amAnnotations(a)
	if a.Incident.Status == StatusResolved {
		delete(m.firing, id)
		if m.ending[id] == nil {
			m.ending[id] = &amFiring{Labels: labels, StartsAt: start, resolved: now}
		}
		// startsAt after endsAt is refused: a state saved by a host
		// whose clock ran ahead must still resolve.
		return amPostable{Labels: labels, Annotations: ann, StartsAt: amMinTime(start, now), EndsAt: now, incident: id}
	}
	nf := &amFiring{Labels: labels, Annotations: ann, StartsAt: start}
	if f != nil {
		nf.posted = f.posted
	}
	m.firing[id] = nf
	return m.postable(id, nf, now)
}

func (m *Alertmanager) postable(id string, f *amFiring, now time.Time) amPostable {
	return amPostable{Labels: f.Labels, Annotations: f.Annotations, StartsAt: amMinTime(f.StartsAt, now),
		EndsAt: now.Add(4 * m.resend), incident: id}
}

// sortedFiring returns the firing incident ids in order, so that requests
// are the same from run to run. m.mu is held.
func (m *Alertmanager) sortedFiring() []string {
	ids := make([]string, 0, len(m.firing))
	for id := range m.firing {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// posted records that every Alertmanager accepted out at now.
func (m *Alertmanager) posted(out []amPostable, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range out {
		if f := m.firing[p.incident]; f != nil {
			f.posted = now
		}
	}
}

// post sends out to every endpoint, in chunks. It succeeds only if every
// Alertmanager accepted every chunk, and asks for a retry if any failure
// may pass; re-posting to those that did accept is harmless, since an
// alert posted twice is one alert.
func (m *Alertmanager) post(ctx context.Context, out []amPostable) (retry bool, err error) {
	if _, ok := ctx.Deadline(); !ok && m.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.timeout)
		defer cancel()
	}
	for chunk := range slices.Chunk(out, amMaxPerRequest) {
		body, err := json.Marshal(chunk)
		if err != nil {
			return false, fmt.Errorf("encode %s for alertmanager: %w", amCount(len(chunk), "alert"), err)
		}
		type result struct {
			retry bool
			err   error
		}
		res := make([]result, len(m.endpoints))
		var wg sync.WaitGroup
		for i := range m.endpoints {
			wg.Go(func() {
				r, err := m.endpoints[i].post(ctx, body, nil)
				res[i] = result{r, err}
			})
		}
		wg.Wait()
		var errs []error
		for _, r := range res {
			if r.err != nil {
				retry = retry || r.retry
				errs = append(errs, r.err)
			}
		}
		if len(errs) > 0 {
			return retry, errors.Join(errs...)
		}
	}
	return false, nil
}

// amLabels is the identity of the incident's alert; see Alertmanager.
func amLabels(a *Alert, incident string) map[string]string {
	return map[string]string{
		"alertname":   amAlertName(a.Rule),
		"rule":        a.Rule,
		"severity":    a.Severity,
		"entity_kind": a.Entity.Kind,
		"entity_key":  a.Entity.Key,
		"incident_id": incident,
	}
}

// amAlertName is "Exfilguard" and the rule in CamelCase:
// distinct_records → ExfilguardDistinctRecords.
func amAlertName(rule string) string {
	var b strings.Builder
	b.WriteString("Exfilguard")
	upper := true
	for _, r := range rule {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			upper = true
			continue
		}
		if upper {
			r = unicode.ToUpper(r)
			upper = false
		}
		b.WriteRune(r)
	}
	if b.Len() == len("Exfilguard") {
		b.WriteString("Detection")
	}
	return b.String()
}

// amAnnotations is what a receiver shows of a: the summary sentence, a
// description with the numbers an analyst triages on, and links and ids
// to find the rest.
func amAnnotations(a *Alert) map[string]string {
	ann := map[string]string{
		"summary":           a.Summary,
		"description":       amDescription(a),
		"current_severity":  a.Severity,
		"incident_id":       a.Incident.ID,
		"incident_status":   a.Incident.Status,
		"incident_sequence": strconv.Itoa(a.Incident.Sequence),
		"alert_id":          a.ID,
	}
	if a.Runbook != "" {
		ann["runbook_url"] = a.Runbook
	}
	if len(a.MitreAttack) > 0 {
		ids := make([]string, len(a.MitreAttack))
		for i, t := range a.MitreAttack {
			ids[i] = t.Technique
		}
		ann["mitre_attack"] = strings.Join(ids, ", ")
	}
	return ann
}

func amDescription(a *Alert) string {
	var b strings.Builder
	subject := a.Entity.Kind + " " + a.Entity.Key
	fmt.Fprintf(&b, "%s on %s", a.Rule, subject)
	if a.Principal != "" && a.Principal != a.Entity.Key {
		fmt.Fprintf(&b, " (principal %s)", a.Principal)
	}
	fmt.Fprintf(&b, ": severity %s, score %s. Incident %s (sequence %d", a.Severity, amNum(a.Score), a.Incident.Status, a.Incident.Sequence)
	if a.Incident.Detections > 0 {
		fmt.Fprintf(&b, ", %s", amCount(a.Incident.Detections, "detection"))
	}
	if a.Incident.OpenedAt != "" {
		fmt.Fprintf(&b, " since %s", a.Incident.OpenedAt)
	}
	b.WriteString(").\n")
	if len(a.Observed) > 0 {
		names := make([]string, 0, len(a.Observed))
		for k := range a.Observed {
			names = append(names, k)
		}
		slices.Sort(names)
		b.WriteString("Observed vs expected:")
		for i, k := range names {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s %s", k, amNum(a.Observed[k]))
			if e, ok := a.Expected[k]; ok {
				fmt.Fprintf(&b, " vs %s", amNum(e))
			}
		}
		b.WriteString(".\n")
	}
	ex := a.Incident.Exposure
	fmt.Fprintf(&b, "Exposure: %s records in this window; the incident so far at least %s sensitive rows", amNum(a.Exposure), amNum(ex.Rows))
	if ex.Records > 0 {
		fmt.Fprintf(&b, " and %s distinct customer records", amNum(ex.Records))
	}
	b.WriteString(".\n")
	if a.Window.Start != "" {
		fmt.Fprintf(&b, "Window: %s to %s", a.Window.Start, a.Window.End)
		if a.Window.Horizon != "" {
			fmt.Fprintf(&b, " (%s)", a.Window.Horizon)
		}
		b.WriteString(".\n")
	}
	if len(a.Objects) > 0 {
		objs := a.Objects
		more := ""
		if len(objs) > amMaxObjects {
			more = fmt.Sprintf(" and %d more", len(objs)-amMaxObjects)
			objs = objs[:amMaxObjects]
		}
		fmt.Fprintf(&b, "Objects: %s%s.\n", strings.Join(objs, ", "), more)
	}
	if a.Basis != "" {
		fmt.Fprintf(&b, "Baseline: %s", a.Basis)
		if a.Learning {
			b.WriteString(" (still learning this entity)")
		}
		b.WriteString(".\n")
	}
	for _, t := range a.MitreAttack {
		fmt.Fprintf(&b, "ATT&CK %s: %s (%s).\n", t.Technique, t.Name, t.Tactic)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func amCount(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// amNum prints a number as it was rounded, without exponent.
func amNum(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func amMinTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
