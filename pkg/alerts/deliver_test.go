package alerts

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// dtAlert is an alert as the builder makes them, with a given id.
func dtAlert(id, severity string) *Alert {
	return &Alert{
		ID: id, Rule: "distinct_records_spike", Severity: severity, Score: 91,
		Entity: EntityRef{Kind: "principal", Key: "svc-reporting"}, Principal: "svc-reporting",
		EventTime: "2026-02-04T12:00:00.000Z", DetectedAt: "2026-02-04T12:00:01Z",
		Window:   Window{Start: "2026-02-04T11:00:00.000Z", End: "2026-02-04T12:00:00.000Z", Horizon: "1h"},
		Observed: map[string]float64{"distinct_records": 48210}, Expected: map[string]float64{"distinct_records": 1210},
		Summary: "Principal svc-reporting touched 48,210 distinct customer records in the last 1h.",
		Objects: []string{"customers"},
		Incident: Incident{ID: "inc-" + id, Status: StatusOpened, OpenedAt: "2026-02-04T12:00:00.000Z", Family: "exfiltration",
			Rules: []string{"distinct_records_spike"}, Detections: 1, Exposure: Exposure{Rows: 48210, Records: 48210}},
		Basis: "own",
	}
}

// flakyReceiver is an HTTP receiver on a fixed loopback port whose
// answers follow a script, one entry per request: a status, "hang" (block
// until the client gives up) or, between requests, being down (no
// listener). The delivery's backoff sleeps drive the script, so no test
// waits on a clock.
type flakyReceiver struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	srv  *http.Server
	n    atomic.Int32
	// script[i] answers request i; past the end, ok.
	script []int
	ok     int
	bodies []string // bodies of the requests answered ok
}

const hang = -1

func newFlakyReceiver(t *testing.T, ok int, script ...int) *flakyReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &flakyReceiver{t: t, addr: ln.Addr().String(), script: script, ok: ok}
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

func (r *flakyReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(ln)
}

func (r *flakyReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	i := int(r.n.Add(1)) - 1
	if i < len(r.script) {
		if r.script[i] == hang {
			<-req.Context().Done()
			return
		}
		w.WriteHeader(r.script[i])
		return
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, string(body))
	r.mu.Unlock()
	w.WriteHeader(r.ok)
}

func (r *flakyReceiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (r *flakyReceiver) up() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Errorf("receiver back up on %s: %v", r.addr, err)
		return
	}
	r.serve(ln)
}

func (r *flakyReceiver) delivered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// TestHTTPSinksDeliverOnceThroughFaults: every HTTP sink, through a 500,
// a 429, a receiver that hangs past the timeout and one that is down then
// up, delivers the alert with its id exactly once; after the
// acknowledgement nothing is sent again, not even by a restarted
// deliverer on the same outbox.
func TestHTTPSinksDeliverOnceThroughFaults(t *testing.T) {
	env := map[string]string{}
	cases := []struct {
		typ  string
		ok   int
		sink func(url string) config.Sink
		// carries reports whether a delivered body carries the alert's
		// identity the way the sink promises.
		carries func(body string, a *Alert) bool
	}{
		{config.SinkWebhook, http.StatusNoContent, func(url string) config.Sink {
			return config.Sink{URL: url + "/hook", SecretEnv: "HOOK_SECRET"}
		}, func(b string, a *Alert) bool { return strings.Contains(b, `"id":"`+a.ID+`"`) }},
		{config.SinkSlack, http.StatusOK, func(url string) config.Sink {
			env["SLACK_URL"] = url + "/services/T000/B000/XXXXSECRET"
			return config.Sink{URLEnv: "SLACK_URL"}
		}, func(b string, a *Alert) bool { return strings.Contains(b, a.Incident.ID) }},
		{config.SinkPagerDuty, http.StatusAccepted, func(url string) config.Sink {
			return config.Sink{URL: url + "/v2/enqueue", SecretEnv: "PD_KEY"}
		}, func(b string, a *Alert) bool { return strings.Contains(b, `"dedup_key":"`+a.Incident.ID+`"`) }},
		{config.SinkAlertmanager, http.StatusOK, func(url string) config.Sink {
			return config.Sink{URLs: []string{url}}
		}, func(b string, a *Alert) bool { return strings.Contains(b, a.ID) && strings.Contains(b, a.Incident.ID) }},
	}
	env["HOOK_SECRET"] = whTestSecret
	env["PD_KEY"] = "R0UTINGKEYXXXXSECRET000000000000"
	for _, c := range cases {
		t.Run(c.typ, func(t *testing.T) {
			rcv := newFlakyReceiver(t, c.ok, http.StatusInternalServerError, http.StatusTooManyRequests, hang)
			sc := c.sink("http://" + rcv.addr)
			sc.Name, sc.Type, sc.Timeout = "s", c.typ, config.Duration(300*time.Millisecond)
			cfg := config.Default()
			cfg.Alerts.Sinks = []config.Sink{sc}
			cfg.Alerts.FillDefaults()
			if errs := cfg.Validate(); len(errs) > 0 {
				t.Fatal(errs[0])
			}
			// Failures: 500, 429, hang; then the receiver goes down and
			// one attempt is refused; then it comes back.
			var waits []time.Duration
			sleep := func(ctx context.Context, d time.Duration) error {
				waits = append(waits, d)
				switch len(waits) {
				case 3:
					rcv.down()
				case 4:
					rcv.up()
				}
				return ctx.Err()
			}
			dir := t.TempDir()
			opts := DelivererOptions{Config: cfg.Alerts, Dir: dir, Detector: "test", Sleep: sleep,
				Deps: Deps{Getenv: func(k string) string { return env[k] }}}
			d, err := NewDeliverer(opts)
			if err != nil {
				t.Fatal(err)
			}
			d.Start()
			a := dtAlert("a1-"+c.typ, "high")
			d.Submit(a)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := d.Close(ctx); err != nil {
				t.Fatal(err)
			}
			got := rcv.delivered()
			if len(got) != 1 || !c.carries(got[0], a) {
				t.Fatalf("delivered %d times: %q", len(got), got)
			}
			if len(waits) != 4 || rcv.n.Load() != 4 {
				t.Errorf("%d backoffs, %d requests; want 4 failures then one delivery", len(waits), rcv.n.Load())
			}
			st := d.Stats()[0]
			if st.Delivered != 1 || st.Retries != 4 || st.Failing || d.Pending() != 0 {
				t.Errorf("stats %+v, outbox %d", st, d.Pending())
			}

			// A restart on the same outbox sends nothing, and a replayed
			// alert with the same id is known as delivered.
			opts.Sleep = func(context.Context, time.Duration) error { t.Error("retry after restart"); return nil }
			d2, err := NewDeliverer(opts)
			if err != nil {
				t.Fatal(err)
			}
			d2.Start()
			d2.Submit(a)
			if err := d2.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(rcv.delivered()); n != 1 {
				t.Errorf("after restart: delivered %d times", n)
			}
		})
	}
}

// copyDir copies a directory as a crash would leave it: whatever is in
// the files now.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashBetweenPersistAndDeliver: alerts persisted while the sink is
// failing are in a crash image of the outbox (the files as they are, the
// deliverer still running); a deliverer started on that image delivers
// them, with their ids.
func TestCrashBetweenPersistAndDeliver(t *testing.T) {
	down := newFlakyReceiver(t, http.StatusServiceUnavailable)
	cfg := config.Default()
	cfg.Alerts.Sinks = []config.Sink{{Name: "hook", Type: config.SinkWebhook, URL: "http://" + down.addr + "/hook", SecretEnv: "S"}}
	cfg.Alerts.FillDefaults()
	getenv := func(string) string { return whTestSecret }
	blocked := make(chan struct{})
	dir := t.TempDir()
	d, err := NewDeliverer(DelivererOptions{Config: cfg.Alerts, Dir: dir, Deps: Deps{Getenv: getenv},
		Sleep: func(ctx context.Context, _ time.Duration) error { <-ctx.Done(); return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	defer func() { close(blocked); ctx, c := context.WithCancel(context.Background()); c(); d.Close(ctx) }()
	want := []*Alert{dtAlert("c1", "high"), dtAlert("c2", "critical"), dtAlert("c3", "medium")}
	d.Submit(want...)
	if err := d.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	image := t.TempDir()
	copyDir(t, dir, image)

	up := newFlakyReceiver(t, http.StatusNoContent)
	cfg.Alerts.Sinks[0].URL = "http://" + up.addr + "/hook"
	d2, err := NewDeliverer(DelivererOptions{Config: cfg.Alerts, Dir: image, Deps: Deps{Getenv: getenv}})
	if err != nil {
		t.Fatal(err)
	}
	if d2.Pending() != len(want) {
		t.Fatalf("crash image holds %d alerts, want %d", d2.Pending(), len(want))
	}
	d2.Start()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := up.delivered()
	if len(got) != len(want) {
		t.Fatalf("restart delivered %d alerts, want %d", len(got), len(want))
	}
	for i, a := range want {
		if !strings.Contains(got[i], `"id":"`+a.ID+`"`) {
			t.Errorf("delivery %d is not alert %s (in order): %s", i, a.ID, got[i])
		}
	}
}

// scriptSink is a sink whose Notify answers from a function: the
// delivery logic's own tests need failures on demand (the real sinks are
// tested against real receivers above and in their own files).
type scriptSink struct {
	mu     sync.Mutex
	notify func(as []*Alert) (bool, error)
	got    []*Alert
}

func (s *scriptSink) Notify(_ context.Context, as ...*Alert) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	retry, err := s.notify(as)
	if err == nil {
		s.got = append(s.got, as...)
	}
	return retry, err
}

func (s *scriptSink) alerts() []*Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Alert(nil), s.got...)
}

// TestRoutingAndRefusal: each sink gets what its route takes; a refusal
// for good (a 4xx) drops the alert for that sink only and is not
// retried.
func TestRoutingAndRefusal(t *testing.T) {
	cfg := config.Default()
	cfg.Alerts.Sinks = []config.Sink{
		{Name: "all", Type: config.SinkStdout},
		{Name: "pager", Type: config.SinkStdout, MinSeverity: "critical"},
		{Name: "bulk", Type: config.SinkStdout, Rules: []string{"bulk_read"}, EntityKinds: []string{"principal"}},
		{Name: "broken", Type: config.SinkStdout},
	}
	cfg.Alerts.FillDefaults()
	sinks := map[string]*scriptSink{}
	ok := func([]*Alert) (bool, error) { return false, nil }
	newSink := func(c config.Sink, _ Deps) (Sink, error) {
		s := &scriptSink{notify: ok}
		if c.Name == "broken" {
			s.notify = func([]*Alert) (bool, error) { return false, errors.New("400 bad request") }
		}
		sinks[c.Name] = s
		return s, nil
	}
	d, err := NewDeliverer(DelivererOptions{Config: cfg.Alerts, Dir: t.TempDir(), NewSink: newSink,
		Sleep: func(context.Context, time.Duration) error { t.Error("a refusal for good was retried"); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	high, crit, bulk := dtAlert("h", "high"), dtAlert("c", "critical"), dtAlert("b", "medium")
	bulk.Rule = "bulk_read"
	d.Submit(high, crit, bulk)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := func(name string) (out []string) {
		for _, a := range sinks[name].alerts() {
			out = append(out, a.ID)
		}
		return out
	}
	for name, want := range map[string]string{"all": "h,c,b", "pager": "c", "bulk": "b", "broken": ""} {
		if got := strings.Join(ids(name), ","); got != want {
			t.Errorf("sink %s got %q, want %q", name, got, want)
		}
	}
	if st := d.Stats()[3]; st.Dropped != 3 || st.Retries != 0 {
		t.Errorf("broken sink stats %+v", st)
	}
	if d.Pending() != 0 {
		t.Errorf("outbox holds %d after every sink took or refused", d.Pending())
	}
}

// TestSinkFailingRaisesSelfAlert: a sink failing past sink_failing_after
// raises detector_sink_failing, which the healthy sink delivers at once
// and the failing one after it recovers, followed by the resolution.
func TestSinkFailingRaisesSelfAlert(t *testing.T) {
	cfg := config.Default()
	cfg.Alerts.Outbox.SinkFailingAfter = config.Duration(time.Minute)
	cfg.Alerts.Sinks = []config.Sink{{Name: "ok", Type: config.SinkStdout}, {Name: "down", Type: config.SinkStdout}}
	cfg.Alerts.FillDefaults()
	var mu sync.Mutex
	now := time.Date(2026, 2, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	failures := 0
	sinks := map[string]*scriptSink{}
	newSink := func(c config.Sink, _ Deps) (Sink, error) {
		s := &scriptSink{notify: func([]*Alert) (bool, error) { return false, nil }}
		if c.Name == "down" {
			s.notify = func([]*Alert) (bool, error) {
				if failures < 5 {
					return true, errors.New("connection refused")
				}
				return false, nil
			}
		}
		sinks[c.Name] = s
		return s, nil
	}
	// Each backoff advances the clock by 20s: the third failure is past
	// the minute.
	sleep := func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		now = now.Add(20 * time.Second)
		failures++
		mu.Unlock()
		return ctx.Err()
	}
	d, err := NewDeliverer(DelivererOptions{Config: cfg.Alerts, Dir: t.TempDir(), NewSink: newSink, Sleep: sleep, Detector: "grp",
		Deps: Deps{Now: clock}})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	d.Submit(dtAlert("x", "high"))
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, a := range sinks["down"].alerts() {
		rules = append(rules, a.Rule+"/"+a.Incident.Status)
	}
	want := "distinct_records_spike/opened,detector_sink_failing/opened,detector_sink_failing/resolved"
	if got := strings.Join(rules, ","); got != want {
		t.Errorf("failing sink finally got %s, want %s", got, want)
	}
	okGot := sinks["ok"].alerts()
	if len(okGot) != 3 || okGot[1].Rule != RuleSinkFailing || okGot[1].Entity.Kind != "detector" || !strings.Contains(okGot[1].Summary, "down") {
		t.Errorf("healthy sink got %d alerts; the self-alert: %+v", len(okGot), okGot[min(1, len(okGot)-1)])
	}
}

// TestOutboxBound: a full outbox drops its oldest alert, counted, and
// keeps the newest.
func TestOutboxBound(t *testing.T) {
	o, err := OpenOutbox(t.TempDir(), 3, []string{"s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var as []*Alert
	for _, id := range []string{"1", "2", "3", "4", "5"} {
		as = append(as, dtAlert(id, "low"))
	}
	if _, err := o.Add(as, []uint64{1, 1, 1, 1, 1}, []string{"s"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range o.Pending(0, 10) {
		ids = append(ids, a.ID)
	}
	if strings.Join(ids, ",") != "3,4,5" || o.Dropped() != 2 {
		t.Errorf("outbox holds %v, dropped %d; want 3,4,5 and 2", ids, o.Dropped())
	}
}
