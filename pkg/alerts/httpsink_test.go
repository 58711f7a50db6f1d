package alerts

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// hsSecretPath looks like a Slack webhook path: the part of a URL that is
// the credential and must never reach an error.
const hsSecretPath = "/services/T000/B000/XXXXSECRET"

// hsAlert is an alert as the builder makes them: a reporting service
// account reading far more distinct customer records than it ever has.
func hsAlert(id, status string, seq int) *Alert {
	return &Alert{
		ID:         id,
		Rule:       "distinct_records",
		Severity:   "high",
		Score:      91.37,
		Entity:     EntityRef{Kind: "principal", Key: "svc-reporting"},
		Principal:  "svc-reporting",
		EventTime:  "2026-02-04T12:00:00.000Z",
		DetectedAt: "2026-02-04T12:00:02.418Z",
		Window:     Window{Start: "2026-02-04T11:00:00.000Z", End: "2026-02-04T12:00:00.000Z", Horizon: "1h"},
		Observed:   map[string]float64{"distinct_records": 48210, "rows": 61044},
		Expected:   map[string]float64{"distinct_records": 312.5, "rows": 2210},
		Summary:    "svc-reporting read 48,210 distinct customer records in 1h, 154x its own baseline of 313",
		Objects:    []string{"customers", "/api/v1/customers/:id"},
		MitreAttack: []models.Technique{
			{Tactic: "Collection", Technique: "T1213.006", Name: "Data from Information Repositories: Databases"},
			{Tactic: "Exfiltration", Technique: "T1030", Name: "Data Transfer Size Limits"},
		},
		Incident: Incident{
			ID: "7c1e5a9d0b3f42e8a6d19c05", Status: status, Sequence: seq,
			OpenedAt: "2026-02-04T11:42:10.000Z", Detections: 3,
			Exposure: Exposure{Rows: 61044, Records: 48210},
		},
		Exposure: 48210,
		Basis:    "own",
		Runbook:  "https://github.com/exfilguard/exfilguard/blob/main/docs/detectors.md#distinct_records",
	}
}

// hsRequest is what a receiver got.
type hsRequest struct {
	path   string
	header http.Header
	body   []byte
}

// hsReceiver is a real HTTP server that records every request and answers
// with the statuses given, in order, repeating the last. Error answers
// echo the path and the body, as careless receivers do, so that tests see
// whether the sink keeps them out of its errors.
type hsReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []hsRequest
}

func hsServe(t *testing.T, statuses ...int) *hsReceiver {
	t.Helper()
	r := &hsReceiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(r.handle))
	t.Cleanup(r.Close)
	return r
}

func (r *hsReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, hsRequest{path: req.URL.Path, header: req.Header.Clone(), body: body})
	status := r.statuses[min(len(r.got), len(r.statuses))-1]
	r.mu.Unlock()
	w.WriteHeader(status)
	if status >= 300 {
		_, _ = io.WriteString(w, "rejected "+req.URL.Path+" "+string(body))
	}
}

func (r *hsReceiver) requests() []hsRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hsRequest(nil), r.got...)
}

// hsHangingReceiver accepts requests and never answers them until the
// test ends, so the only way an attempt ends is its context.
func hsHangingReceiver(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	// Cleanups run last first: release the handlers, then close.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL
}

// hsDownThenUp returns the URL of a receiver that is not listening, and a
// function that starts it on that same address.
func hsDownThenUp(t *testing.T, statuses ...int) (base string, up func() *hsReceiver) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr, func() *hsReceiver {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen again on %s: %v", addr, err)
		}
		r := &hsReceiver{statuses: statuses}
		r.Server = httptest.NewUnstartedServer(http.HandlerFunc(r.handle))
		r.Listener.Close()
		r.Listener = ln
		r.Start()
		t.Cleanup(r.Close)
		return r
	}
}

// hsNoSecrets fails when err's text holds any of the secrets or any
// piece of the secret path.
func hsNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range append([]string{hsSecretPath, "XXXXSECRET", "/services/"}, secrets...) {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error %q contains secret %q", msg, s)
		}
	}
}

// hsDeliveryCases runs a sink against the receivers every HTTP sink must
// cope with. newSink builds the sink posting to a URL (ending in the
// secret path); okStatus is what the real service answers on
// success; check asserts that the delivered request carries the alert.
func hsDeliveryCases(t *testing.T, newSink func(t *testing.T, url string) Sink, okStatus int,
	check func(t *testing.T, r hsRequest, a *Alert), secrets ...string) {
	a := hsAlert("3f9a1c2b7d4e5f60718293a4", StatusOpened, 0)

	for _, c := range []struct {
		status int
		retry  bool
	}{
		{500, true}, {502, true}, {503, true}, {429, true}, {408, true},
		{400, false}, {401, false}, {403, false}, {404, false}, {413, false}, {301, false},
	} {
		t.Run(strconv.Itoa(c.status), func(t *testing.T) {
			rcv := hsServe(t, c.status)
			retry, err := newSink(t, rcv.URL+hsSecretPath).Notify(context.Background(), a)
			if err == nil {
				t.Fatalf("status %d: no error", c.status)
			}
			if retry != c.retry {
				t.Errorf("status %d: retry = %v, want %v (%v)", c.status, retry, c.retry, err)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(c.status)) {
				t.Errorf("error %q does not name status %d", err, c.status)
			}
			if !strings.Contains(err.Error(), rcv.Listener.Addr().String()) {
				t.Errorf("error %q does not name the receiver's host", err)
			}
			if len(err.Error()) > 600 {
				t.Errorf("error is %d bytes; the response body should be cut to ~200: %q", len(err.Error()), err)
			}
			hsNoSecrets(t, err, secrets...)
			if n := len(rcv.requests()); n != 1 {
				t.Errorf("receiver got %d requests, want 1", n)
			}
		})
	}

	t.Run("hang", func(t *testing.T) {
		base := hsHangingReceiver(t)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		retry, err := newSink(t, base+hsSecretPath).Notify(ctx, a)
		if err == nil || !retry {
			t.Fatalf("hanging receiver: retry %v, err %v; want a retryable error", retry, err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %q does not unwrap to context.DeadlineExceeded", err)
		}
		hsNoSecrets(t, err, secrets...)
	})

	t.Run("down then up", func(t *testing.T) {
		base, up := hsDownThenUp(t, okStatus)
		s := newSink(t, base+hsSecretPath)
		retry, err := s.Notify(context.Background(), a)
		if err == nil || !retry {
			t.Fatalf("closed listener: retry %v, err %v; want a retryable error", retry, err)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			t.Errorf("error still wraps a URL-carrying error: %T", ue)
		}
		hsNoSecrets(t, err, secrets...)

		rcv := up()
		retry, err = s.Notify(context.Background(), a)
		if err != nil {
			t.Fatalf("receiver up: retry %v, err %v", retry, err)
		}
		got := rcv.requests()
		if len(got) != 1 {
			t.Fatalf("receiver got %d requests, want 1", len(got))
		}
		if got[0].path != hsSecretPath {
			t.Errorf("posted to %q, want %q", got[0].path, hsSecretPath)
		}
		check(t, got[0], a)
	})
}

func TestHTTPPosterClassifiesStatus(t *testing.T) {
	for _, c := range []struct {
		status int
		ok     bool
		retry  bool
	}{
		{200, true, false}, {202, true, false}, {204, true, false},
		{301, false, false}, {302, false, false}, {307, false, false},
		{400, false, false}, {401, false, false}, {403, false, false}, {404, false, false},
		{409, false, false}, {410, false, false}, {413, false, false}, {422, false, false},
		{408, false, true}, {429, false, true},
		{500, false, true}, {502, false, true}, {503, false, true}, {504, false, true},
	} {
		rcv := hsServe(t, c.status)
		p := newHTTPPoster("webhook", rcv.URL+hsSecretPath, &http.Client{})
		retry, err := p.post(context.Background(), []byte(`{}`), nil)
		if (err == nil) != c.ok || retry != c.retry {
			t.Errorf("status %d: retry %v, err %v; want ok %v retry %v", c.status, retry, err, c.ok, c.retry)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "post webhook to http://"+rcv.Listener.Addr().String()+"/<redacted>: status "+strconv.Itoa(c.status)) {
			t.Errorf("status %d: error %q", c.status, err)
		}
		hsNoSecrets(t, err)
	}
}

func TestHTTPPosterRedirectIsNotFollowed(t *testing.T) {
	target := hsServe(t, 200)
	var hops int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hops++
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	p := newHTTPPoster("webhook", srv.URL+hsSecretPath, &http.Client{})
	retry, err := p.post(context.Background(), []byte(`{}`), nil)
	if err == nil || retry {
		t.Fatalf("redirect: retry %v err %v; want a permanent error", retry, err)
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("redirect target got %d requests", n)
	}
	hsNoSecrets(t, err)
}

func TestHTTPErrorBodyIsCutAndScrubbed(t *testing.T) {
	secret := "whsec_c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NTY3ODk="
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "bad key "+secret+" on "+r.URL.Path+"?"+r.URL.RawQuery+" "+strings.Repeat("x", 100_000))
	}))
	t.Cleanup(srv.Close)
	p := newHTTPPoster("webhook", srv.URL+hsSecretPath+"?token=QUERYSECRET", &http.Client{}, secret)
	_, err := p.post(context.Background(), []byte(`{}`), nil)
	if err == nil {
		t.Fatal("no error")
	}
	hsNoSecrets(t, err, secret, "QUERYSECRET")
	if !strings.Contains(err.Error(), "bad key <redacted> on <redacted>") {
		t.Errorf("error %q: want the body's start with secrets replaced", err)
	}
	if n := strings.Count(err.Error(), "x"); n > maxErrorBody {
		t.Errorf("error carries %d bytes of body, want at most %d", n, maxErrorBody)
	}
}

// Responses are read and discarded, so a sink that posts every few
// seconds keeps one connection rather than opening one per alert.
func TestHTTPConnectionsAreReused(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	n := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		status := []int{200, 500, 429, 400, 202}[n%5]
		mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, strings.Repeat("r", 10_000))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p := newHTTPPoster("webhook", srv.URL, &http.Client{})
	for range 10 {
		_, _ = p.post(context.Background(), []byte(`{}`), nil)
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("10 posts opened %d connections, want 1", conns)
	}
}

func TestHTTPResolveSinkURL(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "url")
	secretURL := "https://hooks.slack.com" + hsSecretPath
	if err := os.WriteFile(file, []byte(secretURL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLACK_URL": secretURL, "NOT_A_URL": "hooks.slack.com" + hsSecretPath, "FTP": "ftp://x.example" + hsSecretPath}
	getenv := func(k string) string { return env[k] }

	for _, c := range []struct {
		name string
		cfg  config.Sink
		want string
	}{
		{"url", config.Sink{Type: "webhook", URL: "https://receiver.example/hook"}, "https://receiver.example/hook"},
		{"url_file", config.Sink{Type: "slack", URLFile: file}, secretURL},
		{"url_env", config.Sink{Type: "slack", URLEnv: "SLACK_URL"}, secretURL},
	} {
		got, err := resolveSinkURL(c.cfg, getenv)
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	for _, c := range []struct {
		name string
		cfg  config.Sink
	}{
		{"unset env", config.Sink{Type: "slack", URLEnv: "UNSET"}},
		{"no scheme", config.Sink{Type: "slack", URLEnv: "NOT_A_URL"}},
		{"ftp", config.Sink{Type: "slack", URLEnv: "FTP"}},
		{"missing file", config.Sink{Type: "slack", URLFile: filepath.Join(dir, "none")}},
		{"nothing", config.Sink{Type: "slack"}},
	} {
		_, err := resolveSinkURL(c.cfg, getenv)
		if err == nil {
			t.Errorf("%s: no error", c.name)
		}
		hsNoSecrets(t, err)
	}
}
