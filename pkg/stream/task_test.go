package stream

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"encoding/json"
	"github.com/exfilguard/exfilguard/pkg/replay"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/pkg/config"
)

// principalKey keys a native event by its principal, as a shipper
// configured for scale-out does.
func principalKey(v []byte) []byte {
	var e struct {
		Principal string `json:"principal"`
	}
	_ = json.Unmarshal(v, &e)
	return []byte(e.Principal)
}

func scaleOutConfig(addrs []string, topic, dir, group string) *config.Config {
	cfg := testConfig(addrs, topic, dir)
	cfg.Kafka.GroupID = group
	cfg.ScaleOut.Enabled = true
	return cfg
}

func sortedByID(t testing.TB, b []byte) []map[string]any {
	as := alertLines(t, b)
	slices.SortFunc(as, func(a, b map[string]any) int { return strings.Compare(a["id"].(string), b["id"].(string)) })
	return as
}

// TestTaskStateMovesThroughTheChangelog: a replica processes the first
// half of the sample and stops; another, with an empty state dir (another
// pod, another disk), is given the partitions, restores every task from
// the changelog and processes the second half. Together they raise
// exactly the alerts of one replica that saw everything: baselines moved
// intact (a cold start would alert on every moved entity, or miss what
// needs a baseline), and ids are the same.
func TestTaskStateMovesThroughTheChangelog(t *testing.T) {
	lines := sampleLines(t)
	half := len(lines) / 2
	c := cluster(t, 6, []string{"audit", "audit-ref"})
	addrs := c.ListenAddrs()
	kafkatest.ProduceKeyed(t, addrs, "audit-ref", lines, principalKey)
	kafkatest.ProduceKeyed(t, addrs, "audit", lines[:half], principalKey)

	// One replica over everything.
	ref := start(t, scaleOutConfig(addrs, "audit-ref", t.TempDir(), "ref"), uint64(len(lines)))
	ref.wait(t)
	refSt := ref.stop(t)
	want := sortedByID(t, ref.alerts.Bytes())
	if len(want) == 0 || refSt.Late != 0 {
		t.Fatalf("reference run: %d alerts, %d late", len(want), refSt.Late)
	}

	// Replica A: the first half, then gone.
	a := start(t, scaleOutConfig(addrs, "audit", t.TempDir(), "moved"), uint64(half))
	a.wait(t)
	a.stop(t)
	// Replica B: a fresh disk, the rest.
	kafkatest.ProduceKeyed(t, addrs, "audit", lines[half:], principalKey)
	b := start(t, scaleOutConfig(addrs, "audit", t.TempDir(), "moved"), uint64(len(lines)-half))
	b.wait(t)
	bSt := b.stop(t)
	if bSt.Events != uint64(len(lines)-half) {
		t.Errorf("replica B processed %d events, want %d (the restored positions)", bSt.Events, len(lines)-half)
	}
	got := sortedByID(t, append(a.alerts.Bytes(), b.alerts.Bytes()...))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("moved run gave %d alerts, one replica %d; first difference:\n%s", len(got), len(want), firstDiff(got, want))
	}
}

// fanOutEvents is four days of 200 principals, each reading a row every
// ten minutes from its own network, and at noon of the fourth day 120 of
// them reading from one network (198.51.100.0/24) within ten minutes: a
// token-forging crawl spread over principals, so over partitions.
func fanOutEvents() [][]byte {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	type ev struct {
		at   time.Time
		line []byte
	}
	var evs []ev
	line := func(t time.Time, i int, ip string, id int) []byte {
		return fmt.Appendf(nil, `{"ts":%q,"principal":"u%03d","principal_type":"user","role":"support","source_ip":%q,"object":"public.customers","action":"read","rows":1,"record_ids":["c-%d"],"status":"ok"}`,
			t.Format(time.RFC3339Nano), i, ip, id)
	}
	attack := start.Add(3*24*time.Hour + 12*time.Hour)
	for step := range 4 * 144 {
		at := start.Add(time.Duration(step) * 10 * time.Minute)
		for i := range 200 {
			t := at.Add(time.Duration(i) * time.Second)
			evs = append(evs, ev{t, line(t, i, fmt.Sprintf("10.1.%d.5", i), step*1000+i)})
		}
		if at.Equal(attack) {
			for i := range 120 {
				t := at.Add(time.Duration(i)*3*time.Second + time.Millisecond)
				evs = append(evs, ev{t, line(t, i, "198.51.100.7", 900000+i)})
			}
		}
	}
	slices.SortStableFunc(evs, func(a, b ev) int { return a.at.Compare(b.at) })
	out := make([][]byte, len(evs))
	for i, e := range evs {
		out[i] = e.line
	}
	return out
}

// fanOutAlerts returns the fan_out alerts on the attack's network.
func fanOutAlerts(t testing.TB, b []byte) int {
	n := 0
	for _, a := range alertLines(t, b) {
		e := a["entity"].(map[string]any)
		if a["rule"] == "fan_out" && e["kind"] == "source_net" && e["key"] == "198.51.100.0/24" {
			n++
		}
	}
	return n
}

// TestRepartitionCatchesFanOutAcrossPartitions: kept per partition, the
// attack's network is seen by each task with a sixth of the principals,
// under fan_out's minimum of 50; routed through the repartition topic, one
// task sees all 120 and raises fan_out, as a single engine does.
func TestRepartitionCatchesFanOutAcrossPartitions(t *testing.T) {
	lines := fanOutEvents()
	c := cluster(t, 6, []string{"audit"})
	addrs := c.ListenAddrs()
	kafkatest.ProduceKeyed(t, addrs, "audit", lines, principalKey)

	if n := fanOutAlerts(t, replayBytes(t, testConfig(addrs, "audit", t.TempDir()), lines)); n == 0 {
		t.Fatal("a single engine does not see the attack: the workload is wrong")
	}
	perPartition := start(t, scaleOutConfig(addrs, "audit", t.TempDir(), "per-partition"), uint64(len(lines)))
	perPartition.wait(t)
	perPartition.stop(t)
	if n := fanOutAlerts(t, perPartition.alerts.Bytes()); n != 0 {
		t.Errorf("kept per partition, the network raised %d fan_out alerts; want none (no task sees 50 principals)", n)
	}

	cfg := scaleOutConfig(addrs, "audit", t.TempDir(), "repartitioned")
	cfg.ScaleOut.Repartition = []string{"source_net", "credential"}
	routed := start(t, cfg, uint64(len(lines))+uint64(len(lines)))
	routed.wait(t)
	st := routed.stop(t)
	if n := fanOutAlerts(t, routed.alerts.Bytes()); n == 0 {
		t.Errorf("through the repartition topic, the network raised no fan_out alert")
	}
	if st.Late != 0 {
		t.Errorf("%d late events", st.Late)
	}
}

func replayBytes(t testing.TB, cfg *config.Config, lines [][]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if _, err := replay.Run(context.Background(), replay.Options{Config: cfg, Input: bytes.NewReader(bytes.Join(lines, []byte("\n"))), Alerts: &out}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
