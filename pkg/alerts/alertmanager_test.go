package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models"
)

const amtRunbook = "https://runbooks.example.com/exfilguard/distinct_records"

// amtAlert is an alert of the distinct_records rule about the service
// account svc-reporting, as the builder would make it.
func amtAlert(incident, status string, seq int, severity string, rows, records float64) *Alert {
	return &Alert{
		ID:         fmt.Sprintf("%s-a%d", incident, seq),
		Rule:       "distinct_records",
		Severity:   severity,
		Score:      7.25,
		Entity:     EntityRef{Kind: "principal", Key: "svc-reporting"},
		Principal:  "svc-reporting",
		EventTime:  "2026-02-04T12:30:00.000Z",
		DetectedAt: "2026-02-04T12:30:01.000Z",
		Window:     Window{Start: "2026-02-04T12:00:00.000Z", End: "2026-02-04T12:30:00.000Z", Horizon: "30m"},
		Observed:   map[string]float64{"distinct_records": records, "rows": rows},
		Expected:   map[string]float64{"distinct_records": 120, "rows": 310.5},
		Summary:    fmt.Sprintf("principal svc-reporting read %v distinct customer records in 30m; 120 expected.", records),
		Objects:    []string{"crm.customers"},
		MitreAttack: []models.Technique{
			{Tactic: "Collection", Technique: "T1213.006", Name: "Data from Information Repositories: Databases"},
		},
		Incident: Incident{ID: incident, Status: status, Sequence: seq, OpenedAt: "2026-02-04T12:00:00.000Z",
			Detections: seq + 1, Exposure: Exposure{Rows: rows, Records: records}},
		Exposure: records,
		Basis:    "own",
		Runbook:  amtRunbook,
	}
}

// amtClock is the injected wall clock.
type amtClock struct {
	mu sync.Mutex
	t  time.Time
}

func newAmtClock() *amtClock {
	return &amtClock{t: time.Date(2026, 2, 4, 12, 31, 0, 0, time.UTC)}
}

func (c *amtClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *amtClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// amtPosted is a postable alert as Alertmanager's API reads it; decoding
// refuses unknown fields, so nothing else is sent.
type amtPosted struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

// amtReceiver records what is posted to it and answers the statuses it
// was given in turn, then 200.
type amtReceiver struct {
	t   *testing.T
	srv *httptest.Server
	// hang blocks every request until the client gives up.
	hang    atomic.Bool
	release chan struct{}

	mu       sync.Mutex
	statuses []int
	posts    [][]amtPosted
	paths    []string
}

func newAmtReceiver(t *testing.T, statuses ...int) *amtReceiver {
	r := &amtReceiver{t: t, statuses: statuses, release: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.handle))
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(r.release) }) // runs first: Close waits for handlers
	return r
}

func (r *amtReceiver) handle(w http.ResponseWriter, req *http.Request) {
	if r.hang.Load() {
		// The server notices the client hanging up only once the body
		// has been read.
		_, _ = io.Copy(io.Discard, req.Body)
		select {
		case <-req.Context().Done():
		case <-r.release:
		}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paths = append(r.paths, req.URL.Path)
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("request %s with Content-Type %q, want a JSON POST", req.Method, req.Header.Get("Content-Type"))
	}
	dec := json.NewDecoder(req.Body)
	dec.DisallowUnknownFields()
	var as []amtPosted
	if err := dec.Decode(&as); err != nil {
		r.t.Errorf("decode posted alerts: %v", err)
	}
	r.posts = append(r.posts, as)
	if len(r.statuses) > 0 {
		st := r.statuses[0]
		r.statuses = r.statuses[1:]
		// Echo the path, as proxies' error pages do, to check that
		// errors cut it out.
		http.Error(w, "cannot take alerts at "+req.URL.Path, st)
	}
}

func (r *amtReceiver) requests() [][]amtPosted {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]amtPosted(nil), r.posts...)
}

// last returns the alerts of the last request, which must exist.
func (r *amtReceiver) last() []amtPosted {
	r.t.Helper()
	p := r.requests()
	if len(p) == 0 {
		r.t.Fatal("no request received")
	}
	return p[len(p)-1]
}

func amtSink(t *testing.T, clock func() time.Time, urls ...string) *Alertmanager {
	t.Helper()
	m, err := NewAlertmanager(config.Sink{Name: "am", Type: config.SinkAlertmanager, URLs: urls,
		ResendInterval: config.Duration(time.Minute), Timeout: config.Duration(10 * time.Second)}, Deps{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func amtNotify(t *testing.T, m *Alertmanager, as ...*Alert) {
	t.Helper()
	if retry, err := m.Notify(context.Background(), as...); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
}

func amtIncidents(as []amtPosted) []string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.Labels["incident_id"])
	}
	return ids
}

func TestAlertmanagerAlertShape(t *testing.T) {
	clock := newAmtClock()
	r := newAmtReceiver(t)
	m := amtSink(t, clock.Now, r.srv.URL+"/prefix/")
	amtNotify(t, m, amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400))

	if got := r.paths; len(got) != 1 || got[0] != "/prefix/api/v2/alerts" {
		t.Fatalf("paths %q, want one POST to /prefix/api/v2/alerts", got)
	}
	as := r.last()
	if len(as) != 1 {
		t.Fatalf("%d alerts posted, want 1", len(as))
	}
	a := as[0]
	wantLabels := map[string]string{
		"alertname": "ExfilguardDistinctRecords", "rule": "distinct_records", "severity": "high",
		"entity_kind": "principal", "entity_key": "svc-reporting", "incident_id": "inc1",
	}
	if !maps.Equal(a.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", a.Labels, wantLabels)
	}
	for k, want := range map[string]string{
		"summary":           "principal svc-reporting read 5400 distinct customer records in 30m; 120 expected.",
		"runbook_url":       amtRunbook,
		"incident_id":       "inc1",
		"incident_status":   "opened",
		"incident_sequence": "0",
		"alert_id":          "inc1-a0",
		"current_severity":  "high",
		"mitre_attack":      "T1213.006",
	} {
		if a.Annotations[k] != want {
			t.Errorf("annotation %s = %q, want %q", k, a.Annotations[k], want)
		}
	}
	desc := a.Annotations["description"]
	for _, want := range []string{"distinct_records 5400 vs 120", "rows 8000 vs 310.5", "at least 8000 sensitive rows",
		"5400 distinct customer records", "crm.customers", "T1213.006"} {
		if !strings.Contains(desc, want) {
			t.Errorf("description lacks %q:\n%s", want, desc)
		}
	}
	if !a.StartsAt.Equal(clock.Now()) {
		t.Errorf("startsAt %v, want the first delivery's wall clock %v", a.StartsAt, clock.Now())
	}
	if want := clock.Now().Add(4 * time.Minute); !a.EndsAt.Equal(want) {
		t.Errorf("endsAt %v, want four resend intervals ahead %v", a.EndsAt, want)
	}
	if m.RefreshInterval() != time.Minute {
		t.Errorf("RefreshInterval %v, want resend_interval 1m", m.RefreshInterval())
	}
}

func TestAlertmanagerAlertNames(t *testing.T) {
	for rule, want := range map[string]string{
		"distinct_records":      "ExfilguardDistinctRecords",
		"detector_sink_failing": "ExfilguardDetectorSinkFailing",
		"fan_out":               "ExfilguardFanOut",
		"":                      "ExfilguardDetection",
	} {
		if got := amAlertName(rule); got != want {
			t.Errorf("amAlertName(%q) = %q, want %q", rule, got, want)
		}
	}
}

func TestAlertmanagerEveryURLGetsEveryAlert(t *testing.T) {
	clock := newAmtClock()
	a, b := newAmtReceiver(t), newAmtReceiver(t, http.StatusServiceUnavailable)
	m := amtSink(t, clock.Now, a.srv.URL, b.srv.URL)

	retry, err := m.Notify(context.Background(), amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400))
	if err == nil || !retry {
		t.Fatalf("one Alertmanager of two answered 503: got retry=%v err=%v, want a retryable error", retry, err)
	}
	if len(a.requests()) != 1 || len(b.requests()) != 1 {
		t.Fatalf("requests %d and %d, want one to each Alertmanager", len(a.requests()), len(b.requests()))
	}
	// The outbox retries the batch: both get it again, and it succeeds.
	amtNotify(t, m, amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400))
	for i, rc := range []*amtReceiver{a, b} {
		if got := amtIncidents(rc.last()); len(got) != 1 || got[0] != "inc1" {
			t.Errorf("Alertmanager %d got %v, want inc1", i, got)
		}
	}
}

func TestAlertmanagerEscalationKeepsOneIdentity(t *testing.T) {
	clock := newAmtClock()
	r := newAmtReceiver(t)
	m := amtSink(t, clock.Now, r.srv.URL)
	amtNotify(t, m, amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400))
	opened := r.last()[0]
	clock.Add(10 * time.Second)
	amtNotify(t, m, amtAlert("inc1", StatusEscalated, 1, "critical", 64000, 43000))
	esc := r.last()
	if len(esc) != 1 {
		t.Fatalf("%d alerts posted for the escalation, want 1", len(esc))
	}
	if !maps.Equal(esc[0].Labels, opened.Labels) {
		t.Errorf("escalation labels %v, want the opening's %v: a label change is a second alert in Alertmanager", esc[0].Labels, opened.Labels)
	}
	if !esc[0].StartsAt.Equal(opened.StartsAt) {
		t.Errorf("escalation startsAt %v, want the opening's %v", esc[0].StartsAt, opened.StartsAt)
	}
	if got := esc[0].Annotations["current_severity"]; got != "critical" {
		t.Errorf("current_severity %q, want critical", got)
	}
	if got := esc[0].Annotations["incident_status"]; got != "escalated" {
		t.Errorf("incident_status %q, want escalated", got)
	}
	if d := esc[0].Annotations["description"]; !strings.Contains(d, "64000 sensitive rows") || !strings.Contains(d, "43000 distinct customer records") {
		t.Errorf("description not updated:\n%s", d)
	}
	if want := clock.Now().Add(4 * time.Minute); !esc[0].EndsAt.Equal(want) {
		t.Errorf("endsAt %v, want %v", esc[0].EndsAt, want)
	}
}

func TestAlertmanagerResolvedEndsNow(t *testing.T) {
	clock := newAmtClock()
	r := newAmtReceiver(t)
	m := amtSink(t, clock.Now, r.srv.URL)
	amtNotify(t, m, amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400))
	opened := r.last()[0]
	clock.Add(30 * time.Second)
	// The resolution carries the incident's highest severity; the alert
	// it resolves is still the one opened at high.
	amtNotify(t, m, amtAlert("inc1", StatusResolved, 2, "critical", 64000, 43000))
	res := r.last()
	if len(res) != 1 {
		t.Fatalf("%d alerts posted for the resolution, want 1", len(res))
	}
	if !res[0].EndsAt.Equal(clock.Now()) {
		t.Errorf("endsAt %v, want now %v", res[0].EndsAt, clock.Now())
	}
	if !maps.Equal(res[0].Labels, opened.Labels) || !res[0].StartsAt.Equal(opened.StartsAt) {
		t.Errorf("resolution %v from %v, want the opened alert %v from %v", res[0].Labels, res[0].StartsAt, opened.Labels, opened.StartsAt)
	}
	if got := res[0].Annotations["incident_status"]; got != "resolved" {
		t.Errorf("incident_status %q, want resolved", got)
	}
	n := len(r.requests())
	if _, err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(r.requests()) != n {
		t.Errorf("Refresh posted with nothing firing")
	}
}

func TestAlertmanagerRetriedResolutionKeepsIdentity(t *testing.T) {
	// The outbox repeats a resolution that failed; the repeat must end
	// the alert opened at high, although the resolution says critical.
	clock := newAmtClock()
	r := newAmtReceiver(t)
	m := amtSink(t, clock.Now, r.srv.URL)
	amtNotify(t, m, amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400))
	opened := r.last()[0]
	r.mu.Lock()
	r.statuses = []int{http.StatusServiceUnavailable}
	r.mu.Unlock()
	res := amtAlert("inc1", StatusResolved, 2, "critical", 64000, 43000)
	if retry, err := m.Notify(context.Background(), res); err == nil || !retry {
		t.Fatalf("retry=%v err=%v, want a retryable error", retry, err)
	}
	clock.Add(time.Second)
	amtNotify(t, m, res)
	got := r.last()
	if len(got) != 1 || !maps.Equal(got[0].Labels, opened.Labels) || !got[0].EndsAt.Equal(clock.Now()) {
		t.Fatalf("retried resolution %+v, want %v ending now", got, opened.Labels)
	}
	if len(m.ending) != 0 {
		t.Errorf("%d resolutions still remembered after they were accepted", len(m.ending))
	}
}

func TestAlertmanagerResolvedUnknownIncident(t *testing.T) {
	// A resolution of an incident this sink has no state of (state lost,
	// or the sink was added later) is still posted: Alertmanager may
	// have it firing.
	clock := newAmtClock()
	r := newAmtReceiver(t)
	m := amtSink(t, clock.Now, r.srv.URL)
	amtNotify(t, m, amtAlert("inc9", StatusResolved, 3, "high", 8000, 5400))
	a := r.last()[0]
	if a.Labels["incident_id"] != "inc9" || !a.EndsAt.Equal(clock.Now()) || a.StartsAt.After(a.EndsAt) {
		t.Errorf("posted %v from %v to %v, want inc9 ending now and not starting after", a.Labels, a.StartsAt, a.EndsAt)
	}
}

func TestAlertmanagerRefreshResendsFiringOnly(t *testing.T) {
	clock := newAmtClock()
	r := newAmtReceiver(t)
	m := amtSink(t, clock.Now, r.srv.URL)
	b := amtAlert("inc2", StatusOpened, 0, "medium", 900, 0)
	b.Entity.Key = "svc-etl"
	amtNotify(t, m, amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400), b)
	started := clock.Now()
	amtNotify(t, m, amtAlert("inc1", StatusResolved, 1, "high", 8000, 5400))

	clock.Add(time.Minute)
	if _, err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := r.last()
	if ids := amtIncidents(got); len(ids) != 1 || ids[0] != "inc2" {
		t.Fatalf("Refresh posted %v, want only the firing inc2", ids)
	}
	if want := clock.Now().Add(4 * time.Minute); !got[0].EndsAt.Equal(want) {
		t.Errorf("refreshed endsAt %v, want %v", got[0].EndsAt, want)
	}
	if !got[0].StartsAt.Equal(started) {
		t.Errorf("refreshed startsAt %v, want the first delivery %v", got[0].StartsAt, started)
	}
	if got[0].Labels["severity"] != "medium" || got[0].Annotations["summary"] != b.Summary {
		t.Errorf("refreshed %v %v, want inc2 as last sent", got[0].Labels, got[0].Annotations)
	}
}

func TestAlertmanagerBusySinkStillRefreshes(t *testing.T) {
	// The outbox refreshes only when idle; alerts of other incidents ride
	// along with new ones once a resend interval has passed.
	clock := newAmtClock()
	r := newAmtReceiver(t)
	m := amtSink(t, clock.Now, r.srv.URL)
	amtNotify(t, m, amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400))
	clock.Add(30 * time.Second)
	amtNotify(t, m, amtAlert("inc2", StatusOpened, 0, "high", 8000, 5400))
	if ids := amtIncidents(r.last()); len(ids) != 1 || ids[0] != "inc2" {
		t.Fatalf("posted %v, want inc2 alone: inc1 was posted 30s ago", ids)
	}
	clock.Add(40 * time.Second)
	amtNotify(t, m, amtAlert("inc3", StatusOpened, 0, "high", 8000, 5400))
	if ids := amtIncidents(r.last()); len(ids) != 2 || ids[0] != "inc3" || ids[1] != "inc1" {
		t.Fatalf("posted %v, want inc3 and the 70s-old inc1", ids)
	}
}

func TestAlertmanagerStateRoundTrip(t *testing.T) {
	clock := newAmtClock()
	r := newAmtReceiver(t)
	m := amtSink(t, clock.Now, r.srv.URL)
	b := amtAlert("inc2", StatusOpened, 0, "low", 10, 0)
	amtNotify(t, m, amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400), b)
	clock.Add(time.Second)
	amtNotify(t, m, amtAlert("inc1", StatusEscalated, 1, "critical", 64000, 43000), amtAlert("inc2", StatusResolved, 1, "low", 10, 0))
	firing := r.last()[0]
	saved, err := m.SaveState()
	if err != nil {
		t.Fatal(err)
	}

	// A restarted detector: a new sink, the saved state.
	clock.Add(time.Hour)
	m2 := amtSink(t, clock.Now, r.srv.URL)
	if err := m2.LoadState(saved); err != nil {
		t.Fatal(err)
	}
	again, err := m2.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(saved, again) {
		t.Errorf("state changed in a round trip:\n%s\n%s", saved, again)
	}
	if _, err := m2.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := r.last()
	if len(got) != 1 || !maps.Equal(got[0].Labels, firing.Labels) || !maps.Equal(got[0].Annotations, firing.Annotations) ||
		!got[0].StartsAt.Equal(firing.StartsAt) {
		t.Fatalf("after restart Refresh posted %+v, want inc1 as before %+v", got, firing)
	}
	// The resolution after the restart resolves the same alert.
	amtNotify(t, m2, amtAlert("inc1", StatusResolved, 2, "critical", 64000, 43000))
	if res := r.last()[0]; !maps.Equal(res.Labels, firing.Labels) || !res.EndsAt.Equal(clock.Now()) {
		t.Errorf("resolution %v ending %v, want %v ending now", res.Labels, res.EndsAt, firing.Labels)
	}

	if err := m2.LoadState(nil); err != nil {
		t.Errorf("LoadState(nil): %v", err)
	}
	for _, bad := range []string{`{`, `{"version":2,"firing":{}}`, `{"version":1,"firing":{"x":{"labels":{}}}}`} {
		if err := m2.LoadState([]byte(bad)); err == nil {
			t.Errorf("LoadState(%s) accepted", bad)
		}
	}
}

func TestAlertmanagerRetryClassification(t *testing.T) {
	for _, tc := range []struct {
		status int
		retry  bool
	}{
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
		{http.StatusTooManyRequests, true},
		{http.StatusRequestTimeout, true},
		{http.StatusBadRequest, false},
		{http.StatusNotFound, false},
		{http.StatusFound, false}, // not followed: the GET would "succeed"
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			r := newAmtReceiver(t, tc.status)
			m := amtSink(t, newAmtClock().Now, r.srv.URL+"/t0ken-s3cret/")
			retry, err := m.Notify(context.Background(), amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400))
			if err == nil || retry != tc.retry {
				t.Fatalf("status %d: retry=%v err=%v, want retry=%v and an error", tc.status, retry, err, tc.retry)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tc.status)) || strings.Contains(err.Error(), "t0ken-s3cret") {
				t.Errorf("error %q: want the status and not the URL path", err)
			}
			if len(r.requests()) != 1 {
				t.Errorf("%d requests, want 1", len(r.requests()))
			}
		})
	}
}

func TestAlertmanagerNetworkErrors(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		r := newAmtReceiver(t)
		u := r.srv.URL + "/t0ken-s3cret"
		r.srv.Close()
		m := amtSink(t, newAmtClock().Now, u)
		retry, err := m.Notify(context.Background(), amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400))
		if err == nil || !retry {
			t.Fatalf("retry=%v err=%v, want a retryable error", retry, err)
		}
		if strings.Contains(err.Error(), "t0ken-s3cret") || !strings.Contains(err.Error(), "/<redacted>") {
			t.Errorf("error %q: want the URL redacted", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		r := newAmtReceiver(t)
		r.hang.Store(true)
		m := amtSink(t, newAmtClock().Now, r.srv.URL+"/t0ken-s3cret")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		retry, err := m.Notify(ctx, amtAlert("inc1", StatusOpened, 0, "high", 8000, 5400))
		if err == nil || !retry || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("retry=%v err=%v, want a retryable deadline error", retry, err)
		}
		if strings.Contains(err.Error(), "t0ken-s3cret") {
			t.Errorf("error %q contains the URL path", err)
		}
	})
}

func TestAlertmanagerConfigErrors(t *testing.T) {
	for _, urls := range [][]string{nil, {"ftp://am.example.com/t0ken-s3cret"}, {"http://user:pw@am.example.com/t0ken-s3cret"}} {
		_, err := NewAlertmanager(config.Sink{Name: "am", URLs: urls}, Deps{})
		if err == nil {
			t.Errorf("NewAlertmanager(%q) accepted", urls)
		} else if strings.Contains(err.Error(), "t0ken-s3cret") || strings.Contains(err.Error(), "pw") {
			t.Errorf("error %q shows the URL's secrets", err)
		}
	}
}

// amtAlertmanagerBinary finds the Alertmanager that .ci/alertmanager.sh
// builds.
func amtAlertmanagerBinary(t *testing.T) string {
	bin := os.Getenv("EXFILGUARD_ALERTMANAGER")
	if bin == "" {
		cache := os.Getenv("EXFILGUARD_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "exfilguard")
		}
		bin = filepath.Join(cache, "bin", "alertmanager-v0.35.0")
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("no Alertmanager at %s (%v): build it with `bash .ci/alertmanager.sh` (about two minutes) or set EXFILGUARD_ALERTMANAGER", bin, err)
		if os.Getenv("EXFILGUARD_CI") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// amtLog collects the process's output for a failed test's log.
type amtLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *amtLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *amtLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// amtStartAlertmanager runs Alertmanager on a loopback port and returns
// its base URL once it is ready. The test opens the listening socket and
// hands it over by systemd socket activation (--web.systemd-socket), so
// the port is held from before the process starts: picking a free port,
// closing it and letting the process bind it again could lose it to
// another test in between. LISTEN_PID must be the Alertmanager's own pid,
// which only a shell that then execs it can know.
func amtStartAlertmanager(t *testing.T, bin string) string {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(`route:
  receiver: "null"
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	f, err := ln.(*net.TCPListener).File()
	ln.Close() // f is a duplicate: the socket stays open and listening
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("/bin/sh", "-c",
		`LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web; export LISTEN_PID LISTEN_FDS LISTEN_FDNAMES; exec "$0" "$@"`,
		bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.systemd-socket", "--cluster.listen-address=", "--log.level=debug")
	cmd.ExtraFiles = []*os.File{f} // fd 3, the first systemd passes
	cmd.Dir = dir
	var logs amtLog
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", logs.String())
		}
	})

	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("alertmanager exited before it was ready: %v\n%s", waitErr, logs.String())
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready at %s after 60s (last: %v)\n%s", base, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// amtGettable is Alertmanager's gettableAlert, the parts checked here.
type amtGettable struct {
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// amtGetAlerts lists what Alertmanager holds for incident (GET
// /api/v2/alerts with a label matcher).
func amtGetAlerts(t *testing.T, base, incident string) []amtGettable {
	t.Helper()
	q := url.Values{"filter": {fmt.Sprintf("incident_id=%q", incident)}}
	resp, err := http.Get(base + "/api/v2/alerts?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v2/alerts: status %d", resp.StatusCode)
	}
	var as []amtGettable
	if err := json.NewDecoder(resp.Body).Decode(&as); err != nil {
		t.Fatal(err)
	}
	return as
}

// amtOne returns the single alert Alertmanager holds for incident, once
// it holds exactly one that satisfies ok.
func amtOne(t *testing.T, base, incident string, ok func(amtGettable) bool) amtGettable {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		as := amtGetAlerts(t, base, incident)
		if len(as) == 1 && ok(as[0]) {
			return as[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("incident %s: Alertmanager holds %+v, want exactly one alert as expected", incident, as)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRealAlertmanager runs the sink against Alertmanager itself, whose
// handling of re-posted label sets and of endsAt is what the sink's
// design rests on.
func TestRealAlertmanager(t *testing.T) {
	bin := amtAlertmanagerBinary(t)
	base := amtStartAlertmanager(t, bin)
	// Alertmanager judges endsAt by its own clock.
	m := amtSink(t, time.Now, base)
	ctx := context.Background()

	before := time.Now()
	other := amtAlert("incB", StatusOpened, 0, "medium", 900, 0)
	other.Entity.Key = "svc-etl"
	amtNotify(t, m, amtAlert("incA", StatusOpened, 0, "high", 8000, 5400), other)
	after := time.Now()

	wantLabels := map[string]string{
		"alertname": "ExfilguardDistinctRecords", "rule": "distinct_records", "severity": "high",
		"entity_kind": "principal", "entity_key": "svc-reporting", "incident_id": "incA",
	}
	opened := amtOne(t, base, "incA", func(a amtGettable) bool { return a.Status.State == "active" })
	if !maps.Equal(opened.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", opened.Labels, wantLabels)
	}
	if opened.Annotations["runbook_url"] != amtRunbook || opened.Annotations["incident_status"] != "opened" ||
		!strings.Contains(opened.Annotations["description"], "at least 8000 sensitive rows") ||
		!strings.HasPrefix(opened.Annotations["summary"], "principal svc-reporting read 5400") {
		t.Errorf("annotations %v", opened.Annotations)
	}
	// Alertmanager keeps milliseconds.
	if opened.StartsAt.Before(before.Truncate(time.Millisecond)) || opened.StartsAt.After(after) {
		t.Errorf("startsAt %v, want the time of the first Notify (%v to %v)", opened.StartsAt, before, after)
	}
	if !opened.EndsAt.After(after.Add(3 * time.Minute)) {
		t.Errorf("endsAt %v, want four resend intervals (4m) ahead", opened.EndsAt)
	}

	amtNotify(t, m, amtAlert("incA", StatusEscalated, 1, "critical", 64000, 43000))
	esc := amtOne(t, base, "incA", func(a amtGettable) bool { return a.Annotations["incident_status"] == "escalated" })
	if esc.Fingerprint != opened.Fingerprint || !maps.Equal(esc.Labels, wantLabels) || !esc.StartsAt.Equal(opened.StartsAt) {
		t.Errorf("escalated alert %s %v from %v, want the opened one %s %v from %v",
			esc.Fingerprint, esc.Labels, esc.StartsAt, opened.Fingerprint, opened.Labels, opened.StartsAt)
	}
	if esc.Status.State != "active" || esc.Annotations["current_severity"] != "critical" ||
		!strings.Contains(esc.Annotations["description"], "43000 distinct customer records") {
		t.Errorf("escalated alert %s with annotations %v", esc.Status.State, esc.Annotations)
	}

	// v0.35.0 keeps a resolved alert until its GC, but GET /api/v2/alerts
	// leaves out every alert whose endsAt has passed, whatever the
	// active/silenced/inhibited filters say.
	amtNotify(t, m, amtAlert("incA", StatusResolved, 2, "critical", 64000, 43000))
	deadline := time.Now().Add(30 * time.Second)
	for len(amtGetAlerts(t, base, "incA")) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("incident incA still listed after its resolution: %+v", amtGetAlerts(t, base, "incA"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A refresh re-sends what still fires and does not bring back what
	// was resolved.
	if _, err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if as := amtGetAlerts(t, base, "incA"); len(as) != 0 {
		t.Errorf("incA listed again after a refresh: %+v", as)
	}
	b := amtOne(t, base, "incB", func(a amtGettable) bool { return a.Status.State == "active" })
	if b.Labels["severity"] != "medium" || b.Labels["entity_key"] != "svc-etl" {
		t.Errorf("incB labels %v", b.Labels)
	}
}
