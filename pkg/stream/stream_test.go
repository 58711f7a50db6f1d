package stream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/replay"
	"github.com/exfilguard/exfilguard/pkg/state"
	"github.com/exfilguard/exfilguard/pkg/telemetry"
)

// replayAlerts is the reference: what `detector replay` says of lines.
func replayAlerts(t *testing.T, cfg *config.Config, lines [][]byte) []map[string]any {
	t.Helper()
	var out bytes.Buffer
	in := bytes.Join(lines, []byte("\n"))
	if _, err := replay.Run(context.Background(), replay.Options{Config: cfg, Input: bytes.NewReader(in), Alerts: &out}); err != nil {
		t.Fatal(err)
	}
	return alertLines(t, out.Bytes())
}

// TestLiveEqualsReplay: events consumed from Kafka give the same alerts,
// with the same ids, as a replay of the same events. One partition, so
// that the live run sees the replay's order. Alerts are compared in id
// order: shards interleave their alerts, and the live pipeline resolves
// quiet incidents after each batch where the replay does after each event.
// Within an incident the order must be the replay's: opened, escalated,
// resolved.
func TestLiveEqualsReplay(t *testing.T) {
	lines := sampleLines(t)
	c := cluster(t, 1, []string{"audit"})
	produce(t, c.ListenAddrs(), "audit", lines)
	for _, shards := range []int{1, 2} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			cfg := testConfig(c.ListenAddrs(), "audit", t.TempDir())
			cfg.Kafka.GroupID = fmt.Sprintf("live-%d", shards)
			cfg.Engine.Shards = shards
			r := start(t, cfg, uint64(len(lines)))
			r.wait(t)
			st := r.stop(t)
			if st.Events != uint64(len(lines)) {
				t.Errorf("processed %d events, want %d", st.Events, len(lines))
			}
			live := alertLines(t, r.alerts.Bytes())
			want := replayAlerts(t, cfg, lines)
			if len(want) == 0 {
				t.Fatal("the sample raises no alert in replay; the comparison would be empty")
			}
			seq := map[string]float64{}
			for _, a := range live {
				inc := a["incident"].(map[string]any)
				id, n := inc["id"].(string), inc["sequence"].(float64)
				if last, ok := seq[id]; ok && n <= last {
					t.Errorf("incident %s: sequence %v after %v", id, n, last)
				}
				seq[id] = n
			}
			byID := func(a, b map[string]any) int { return strings.Compare(a["id"].(string), b["id"].(string)) }
			slices.SortFunc(live, byID)
			slices.SortFunc(want, byID)
			if !reflect.DeepEqual(live, want) {
				t.Errorf("live run gave %d alerts, replay %d; first difference:\n%s", len(live), len(want), firstDiff(live, want))
			}
		})
	}
}

func firstDiff(a, b []map[string]any) string {
	for i := range max(len(a), len(b)) {
		switch {
		case i >= len(a):
			return fmt.Sprintf("live lacks %v", b[i])
		case i >= len(b):
			return fmt.Sprintf("live has extra %v", a[i])
		case !reflect.DeepEqual(a[i], b[i]):
			return fmt.Sprintf("live   %v\nreplay %v", a[i], b[i])
		}
	}
	return ""
}

// TestCleanStopResumesExactly: a clean stop checkpoints and commits what it
// processed; a restart processes only what came after, and its alerts
// continue the same incidents: the two runs together equal one replay.
func TestCleanStopResumesExactly(t *testing.T) {
	lines := sampleLines(t)
	half := len(lines) / 2
	c := cluster(t, 3, []string{"audit"})
	addrs := c.ListenAddrs()
	produce(t, addrs, "audit", lines[:half])
	cfg := testConfig(addrs, "audit", t.TempDir())

	r := start(t, cfg, uint64(half))
	r.wait(t)
	st := r.stop(t)
	if st.Events != uint64(half) {
		t.Fatalf("first run processed %d, want %d", st.Events, half)
	}

	// What the store and the group say must agree: everything, per
	// partition.
	s, err := state.Open(state.Options{Dir: cfg.State.Dir, MemTableBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	pos, err := s.Positions()
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	committed := kafkatest.Committed(t, addrs, cfg.Kafka.GroupID, "audit", 3)
	var sum int64
	for part := 0; part < 3; part++ {
		p := state.Partition{Topic: "audit", Partition: part}
		if committed[part] != pos[p] {
			t.Errorf("partition %d: committed %d, checkpointed %d", part, committed[part], pos[p])
		}
		sum += pos[p]
	}
	if sum != int64(half) {
		t.Errorf("checkpointed positions cover %d messages, want %d", sum, half)
	}

	produce(t, addrs, "audit", lines[half:])
	r2 := start(t, cfg, uint64(len(lines)-half))
	r2.wait(t)
	st2 := r2.stop(t)
	if st2.Events != uint64(len(lines)-half) {
		t.Errorf("second run processed %d, want exactly %d (nothing twice)", st2.Events, len(lines)-half)
	}

	// State written by one engine is not read by two shards, which would
	// each restore the wrong part: the start fails and says what to do.
	s, err = state.Open(state.Options{Dir: cfg.State.Dir, MemTableBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg.Engine.Shards = 2
	if _, err := New(Options{Config: cfg, Store: s}); err == nil || !strings.Contains(err.Error(), "engine.shards is 2") {
		t.Errorf("restoring one engine's state into 2 shards: err = %v", err)
	}
}

// TestPoisonMessagesAreDeadLettered: invalid JSON, binary garbage and a 2
// MB message reach the dead-letter topic with their bytes, reason and
// source position, and the partition goes on past them.
func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	lines := sampleLines(t)[:5000]
	huge := append([]byte(`{"ts":"2026-01-05T00:00:00Z","principal":"x","pad":"`), bytes.Repeat([]byte("a"), 2<<20)...)
	huge = append(huge, `"}`...)
	poison := []struct {
		reason string
		value  []byte
	}{
		{"malformed_json", []byte(`{"ts":"2026-01-05T00:00:00Z","principal":`)},
		{"malformed_json", []byte{0x00, 0xff, 0xfe, 0x13, 0x37, 0x80}}, // binary garbage
		{"too_large", huge},
	}
	var values [][]byte
	for i, p := range poison {
		values = append(values, lines[i*1000:(i+1)*1000]...)
		values = append(values, p.value)
	}
	values = append(values, lines[3000:]...)

	c := cluster(t, 1, []string{"audit", "audit-dead"})
	addrs := c.ListenAddrs()
	produce(t, addrs, "audit", values)
	cfg := testConfig(addrs, "audit", t.TempDir())
	cfg.Kafka.DeadLetterTopic = "audit-dead"
	r := start(t, cfg, uint64(len(lines)))
	r.wait(t)
	st := r.stop(t)
	if st.Events != uint64(len(lines)) || st.Messages != uint64(len(values)) {
		t.Errorf("events %d messages %d, want %d and %d", st.Events, st.Messages, len(lines), len(values))
	}
	if st.DeadLettered != 3 {
		t.Errorf("dead-lettered %d, want 3; rejected %v", st.DeadLettered, st.Rejected)
	}

	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: addrs, Topic: "audit-dead", Partition: 0, MaxBytes: 8 << 20})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := map[int]string{}
	for range 3 {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read dead letter: %v", err)
		}
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		if h[HeaderTopic] != "audit" || h[HeaderPartition] != "0" || h[HeaderOffset] == "" {
			t.Errorf("dead letter headers %v", h)
		}
		off, _ := strconv.Atoi(h[HeaderOffset])
		if !bytes.Equal(values[off], m.Value) {
			t.Errorf("dead letter at offset %d does not carry the original bytes", off)
		}
		got[off] = h[HeaderReason]
	}
	for i, p := range poison {
		off := (i+1)*1000 + i
		if got[off] != p.reason {
			t.Errorf("message at offset %d: dead letter reason %q, want %q (dead letters: %v)", off, got[off], p.reason, got)
		}
	}
}

// TestBrokerLossLosesNothing: the cluster goes away mid-stream and comes
// back on the same port with its data; the detector reports not ready,
// reconnects, and processes every event exactly once.
func TestBrokerLossLosesNothing(t *testing.T) {
	lines := sampleLines(t)[:60000]
	half := len(lines) / 2
	data := t.TempDir()
	c := cluster(t, 2, []string{"audit"}, kfake.DataDir(data), kfake.SyncWrites())
	addrs := c.ListenAddrs()
	port := addrs[0][strings.LastIndexByte(addrs[0], ':')+1:]
	produce(t, addrs, "audit", lines[:half])
	cfg := testConfig(addrs, "audit", t.TempDir())
	cfg.State.CheckpointEvents = 5000

	r := start(t, cfg, uint64(half))
	srv, addr, err := telemetry.Serve("127.0.0.1:0", telemetry.Endpoints{Ready: r.p.Ready})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r.wait(t)
	waitReadyz(t, addr.String(), http.StatusOK)
	c.Close()

	// While the cluster is down the pipeline says so, over HTTP.
	waitReadyz(t, addr.String(), http.StatusServiceUnavailable)

	p, _ := strconv.Atoi(port)
	c2 := cluster(t, 2, []string{"audit"}, kfake.DataDir(data), kfake.SyncWrites(), kfake.Ports(p))
	produce(t, c2.ListenAddrs(), "audit", lines[half:])
	// reached fired at half; wait for the rest through Stats.
	deadline := time.Now().Add(3 * time.Minute)
	for r.p.Stats().Events < uint64(len(lines)) {
		if time.Now().After(deadline) {
			t.Fatalf("stuck after the broker came back: %+v", r.p.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitReadyz(t, addr.String(), http.StatusOK)
	st := r.stop(t)
	if st.Events != uint64(len(lines)) {
		t.Errorf("processed %d events, want exactly %d", st.Events, len(lines))
	}
	// Whether a reader's fetch fails before the group's generation ends
	// (which stops the readers without an error) depends on timing: the
	// outage is asserted by /readyz above, not by the fetch error count.
	t.Logf("fetch errors across the outage: %d", st.FetchErrors)
}

// waitReadyz polls /readyz until it answers want, failing after a
// generous bound (a hang, not a timing assumption).
func waitReadyz(t *testing.T, addr string, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz still %d (%s), want %d", resp.StatusCode, body, want)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKcatProducer: input produced by kcat (librdkafka), a client we did
// not write, is consumed like any other.
func TestKcatProducer(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("EXFILGUARD_CI") != "" {
			t.Fatal("kcat is not installed; .ci/run installs it")
		}
		t.Skip("kcat not installed (apt-get install kcat)")
	}
	lines := sampleLines(t)[:20000]
	c := cluster(t, 2, []string{"audit"})
	file := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(file, append(bytes.Join(lines, []byte("\n")), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kcat, "-P", "-b", strings.Join(c.ListenAddrs(), ","), "-t", "audit", "-l", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	cfg := testConfig(c.ListenAddrs(), "audit", t.TempDir())
	r := start(t, cfg, uint64(len(lines)))
	r.wait(t)
	st := r.stop(t)
	if st.Events != uint64(len(lines)) || len(st.Rejected) != 0 {
		t.Errorf("events %d (want %d), rejected %v", st.Events, len(lines), st.Rejected)
	}
}

// TestRebalanceHandsOverExactly: a second detector joins the group
// mid-stream; the first, on revocation, stops fetching, drains,
// checkpoints and commits before the partitions move, so between them
// every event is processed exactly once. (Entity state does not follow
// the partitions yet: that is the scale-out work.)
func TestRebalanceHandsOverExactly(t *testing.T) {
	lines := sampleLines(t)
	half := len(lines) / 2
	c := cluster(t, 4, []string{"audit"})
	addrs := c.ListenAddrs()
	produce(t, addrs, "audit", lines[:half])

	cfgA := testConfig(addrs, "audit", t.TempDir())
	cfgA.State.CheckpointInterval = config.Duration(200 * time.Millisecond) // commits keep up, so the end is visible
	a := start(t, cfgA, uint64(half))
	a.wait(t)
	cfgB := testConfig(addrs, "audit", t.TempDir())
	cfgB.State.CheckpointInterval = cfgA.State.CheckpointInterval
	b := start(t, cfgB, 1)
	// Once B holds partitions (the group rebalanced, A revoked and
	// committed), the rest arrives for both.
	deadline := time.Now().Add(time.Minute)
	for ok, _ := b.p.Ready(); !ok; ok, _ = b.p.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("B never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	produce(t, addrs, "audit", lines[half:])
	b.wait(t)

	deadline = time.Now().Add(3 * time.Minute)
	for kafkatest.CommittedTotal(t, addrs, cfgA.Kafka.GroupID, "audit", 4) < int64(len(lines)) {
		if time.Now().After(deadline) {
			t.Fatalf("stuck: A %+v, B %+v", a.p.Stats(), b.p.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	sa, sb := a.stop(t), b.stop(t)
	if sa.Events+sb.Events != uint64(len(lines)) {
		t.Errorf("A processed %d and B %d: %d in all, want exactly %d", sa.Events, sb.Events, sa.Events+sb.Events, len(lines))
	}
	if sb.Events == 0 || sa.Events == uint64(len(lines)) {
		t.Errorf("no handover happened: A %d, B %d", sa.Events, sb.Events)
	}
}

// TestCatchUpMergesPartitionsByEventTime: the sample spread over six
// partitions (round robin: every entity's events on every partition) and
// read from the start, as after downtime or at a first start, is merged by
// event time: no event is late, and the alerts are the replay's. Read
// partition by partition, as before the merge, most events of the slower
// partitions arrived behind the engine's clock and were dropped as late.
func TestCatchUpMergesPartitionsByEventTime(t *testing.T) {
	lines := sampleLines(t)
	c := cluster(t, 6, []string{"audit"})
	produce(t, c.ListenAddrs(), "audit", lines)
	cfg := testConfig(c.ListenAddrs(), "audit", t.TempDir())
	cfg.Kafka.GroupID = "catch-up"
	r := start(t, cfg, uint64(len(lines)))
	r.wait(t)
	st := r.stop(t)
	if st.Events != uint64(len(lines)) || st.Late != 0 {
		t.Errorf("processed %d events, %d late; want %d and none late", st.Events, st.Late, len(lines))
	}
	live := alertLines(t, r.alerts.Bytes())
	want := replayAlerts(t, cfg, lines)
	byID := func(a, b map[string]any) int { return strings.Compare(a["id"].(string), b["id"].(string)) }
	slices.SortFunc(live, byID)
	slices.SortFunc(want, byID)
	if !reflect.DeepEqual(live, want) {
		t.Errorf("live run gave %d alerts, replay %d; first difference:\n%s", len(live), len(want), firstDiff(live, want))
	}
}
