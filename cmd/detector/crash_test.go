package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models"
	"github.com/exfilguard/exfilguard/pkg/replay"
	"github.com/exfilguard/exfilguard/pkg/state"
)

// TestKillNineLosesNothing runs `detector run` as a subprocess over the
// sample (six days, four attacks) and kills it with SIGKILL at random
// points, restarting it each time, then lets it finish. With a tiny entity
// cap, entities are evicted to Badger and reloaded all along, and two
// engine shards meet at every checkpoint. At the end:
// state reflects every event exactly once, every alert of a replay of the
// same events was emitted with the same id, and an alert emitted again
// after a crash is identical to its first emission.
func TestKillNineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildDetector(t, dir)
	lines := kafkatest.Lines(t, "../../testdata/sample/events.jsonl.gz")
	c := kafkatest.Cluster(t, 1, []string{"audit"})
	addrs := c.ListenAddrs()
	kafkatest.Produce(t, addrs, "audit", lines)

	// A webhook sink whose receiver refuses everything until the last run:
	// alerts wait in the outbox across four kill -9s, and the last run
	// must deliver every one of them.
	hook := &hookReceiver{}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)
	secretPath := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(secretPath, []byte("whsec_"+base64.StdEncoding.EncodeToString([]byte("crash-test-signing-key-32-bytes!"))), 0o600); err != nil {
		t.Fatal(err)
	}

	cfgPath := filepath.Join(dir, "config.yml")
	stateDir := filepath.Join(dir, "state")
	yml := fmt.Sprintf(`alerts:
  sinks:
    - {name: stdout, type: stdout}
    - {name: hook, type: webhook, url: %q, secret_file: %q, backoff_min: 50ms, backoff_max: 200ms}
engine:
  max_entities: 1000
  shards: 2
kafka:
  brokers: [%q]
  group_id: crash-test
  topics: [{name: audit, format: native}]
  fetch_max_wait: 100ms
  session_timeout: 6s
  rebalance_timeout: 6s
  backoff_min: 20ms
  backoff_max: 500ms
state:
  dir: %q
  checkpoint_events: 15000
  checkpoint_interval: 500ms
  memtable_bytes: 8388608
  shutdown_timeout: 60s
`, hookSrv.URL, secretPath, addrs[0], stateDir)
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	total := int64(len(lines))
	var outputs [][]byte
	kills := 0
	for ; kills < 4; kills++ {
		// Kill somewhere past a random point ahead of where it is: the
		// offsets it committed say how far it got; a random extra delay
		// puts the kill anywhere between checkpoints, including inside
		// one.
		target := kafkatest.CommittedTotal(t, addrs, "crash-test", "audit", 1) + total/16 + rng.Int64N(total/8)
		target = min(target, total*9/10)
		logFile := filepath.Join(dir, fmt.Sprintf("run-%d.log", kills))
		cmd, stdout := startDetector(t, bin, cfgPath, logFile, "")
		// Kill only a member that has its partition. kfake (unlike Kafka)
		// never expires a member that dies while its JoinGroup is pending:
		// the reply fails, so its session timer never starts, and the
		// partition stays assigned to the dead member for good.
		waitLog(t, logFile, `"msg":"partitions assigned","generation":`, `"partitions":1}`)
		waitCommitted(t, addrs, "crash-test", target)
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		outputs = append(outputs, stdout.Bytes())
		t.Logf("kill %d after committed offset %d", kills+1, kafkatest.CommittedTotal(t, addrs, "crash-test", "audit", 1))
	}
	// The last run finishes and stops cleanly.
	// The last run also serves its probes: /healthz at once, /readyz once
	// it holds its partition.
	hook.up.Store(true)
	listen := freeAddr(t)
	cmd, stdout := startDetector(t, bin, cfgPath, filepath.Join(dir, "run-last.log"), listen)
	waitHTTP(t, "http://"+listen+"/healthz", http.StatusOK)
	waitHTTP(t, "http://"+listen+"/readyz", http.StatusOK)
	waitCommitted(t, addrs, "crash-test", total)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	outputs = append(outputs, stdout.Bytes())

	// State reflects every event exactly once.
	s, err := state.Open(state.Options{Dir: stateDir, MemTableBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := s.Blob("engine/0") // every shard sees every event
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := models.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Restore(blob); err != nil {
		t.Fatal(err)
	}
	if got := eng.Stats().Events; got != uint64(total) {
		t.Errorf("state reflects %d events, want exactly %d", got, total)
	}

	// state inspect reads one entity back readably.
	var out, errOut bytes.Buffer
	if code := run([]string{"state", "inspect", "--config", cfgPath, "--entity", "principal/svc-storefront"}, &out, &errOut); code != exitOK {
		t.Fatalf("state inspect: exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"entity      principal/svc-storefront", "role        app", "1d       sensitive_rows"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("state inspect output lacks %q:\n%s", want, out.String())
		}
	}

	// Customer accounts among a network's top principals are redacted, as
	// in alerts.
	out.Reset()
	if code := run([]string{"state", "inspect", "--config", cfgPath, "--entity", "source_net/198.19.251.0/24"}, &out, &errOut); code != exitOK {
		t.Fatalf("state inspect: exit %d: %s", code, errOut.String())
	}
	if strings.Contains(out.String(), "cust-") || !strings.Contains(out.String(), "top principals: customer:redacted") {
		t.Errorf("state inspect of the crawler's network does not redact customers:\n%s", out.String())
	}

	// Every alert of the replay, with its id; repeats identical.
	var want bytes.Buffer
	if _, err := replay.Run(context.Background(), replay.Options{Config: cfg, Input: bytes.NewReader(bytes.Join(lines, []byte("\n"))), Alerts: &want}); err != nil {
		t.Fatal(err)
	}
	wantByID := map[string]map[string]any{}
	for _, a := range parseAlerts(t, want.Bytes()) {
		wantByID[a["id"].(string)] = a
	}
	gotByID, repeats := alertsByID(t, outputs)
	for id, a := range wantByID {
		g, ok := gotByID[id]
		if !ok {
			t.Errorf("alert %s (%s on %v) of the replay never emitted", id, a["rule"], a["entity"])
			continue
		}
		if !reflect.DeepEqual(g, a) {
			t.Errorf("alert %s differs from the replay's:\nlive   %v\nreplay %v", id, g, a)
		}
	}
	for id, a := range gotByID {
		if _, ok := wantByID[id]; !ok {
			t.Errorf("alert %s (%s) not in the replay", id, a["rule"])
		}
	}
	t.Logf("%d kills, %d alerts, %d re-emitted after a crash", kills, len(gotByID), repeats)

	// The webhook refused every alert of the killed runs; the last run
	// delivered them all from the outbox, each with its id.
	hooked := hook.ids()
	for id := range wantByID {
		if hooked[id] == 0 {
			t.Errorf("alert %s never reached the webhook", id)
		}
	}
	t.Logf("webhook: %d refused attempts, %d alerts delivered, %d delivered twice", hook.refused.Load(), len(hooked), hook.twice())
}

// hookReceiver is a webhook receiver that answers 503 until up.
type hookReceiver struct {
	up      atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	got     map[string]int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !h.up.Load() {
		h.refused.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var a struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &a); err != nil || a.ID == "" || r.Header.Get("webhook-id") != a.ID {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	if h.got == nil {
		h.got = map[string]int{}
	}
	h.got[a.ID]++
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) ids() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.got)
}

func (h *hookReceiver) twice() int {
	n := 0
	for _, c := range h.ids() {
		if c > 1 {
			n++
		}
	}
	return n
}

// buildDetector builds the detector binary into dir.
func buildDetector(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "detector")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// alertsByID collects the alerts of several runs' outputs by id, leaving
// out the detector's own; an alert emitted again (after a crash) must be
// identical to its first emission, and is counted in repeats.
func alertsByID(t *testing.T, outputs [][]byte) (map[string]map[string]any, int) {
	t.Helper()
	byID := map[string]map[string]any{}
	repeats := 0
	for _, out := range outputs {
		for _, a := range parseAlerts(t, out) {
			if a["rule"] == "detector_degraded" {
				continue // about the live detector, not the data
			}
			id := a["id"].(string)
			if prev, ok := byID[id]; ok {
				repeats++
				if !reflect.DeepEqual(prev, a) {
					t.Errorf("alert %s emitted again with different content:\nfirst %v\nagain %v", id, prev, a)
				}
				continue
			}
			byID[id] = a
		}
	}
	return byID, repeats
}

// startDetector starts `detector run`, its logs going to logFile; if the
// test fails, the tail of that log is printed.
func startDetector(t *testing.T, bin, cfgPath, logFile, listen string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	if listen == "" {
		listen = "none"
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath, "--listen", listen, "--log-level", "info")
	stdout := &bytes.Buffer{}
	cmd.Stdout = stdout
	lf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = lf
	t.Cleanup(func() {
		lf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("tail of %s:\n%s", filepath.Base(logFile), b)
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, stdout
}

// freeAddr returns a loopback address no one listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP waits until url answers with status.
func waitHTTP(t *testing.T, url string, status int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d (last: %v)", url, status, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits until a line of the detector's log file contains both
// parts.
func waitLog(t *testing.T, file, part1, part2 string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(file)
		for _, line := range bytes.Split(b, []byte("\n")) {
			if bytes.Contains(line, []byte(part1)) && bytes.Contains(line, []byte(part2)) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %s…%s", filepath.Base(file), part1, part2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCommitted waits until the group committed at least off, failing on
// a generous bound (a hang, not a timing assumption).
func waitCommitted(t *testing.T, addrs []string, group string, off int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for kafkatest.CommittedTotal(t, addrs, group, "audit", 1) < off {
		if time.Now().After(deadline) {
			t.Fatalf("committed offset stuck at %d, waiting for %d", kafkatest.CommittedTotal(t, addrs, group, "audit", 1), off)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func parseAlerts(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var a map[string]any
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			// A kill can cut the last line short; a cut line is not an
			// alert anyone received whole.
			continue
		}
		delete(a, "detected_at")
		out = append(out, a)
	}
	return out
}
