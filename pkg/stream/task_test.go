package stream

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/exfilguard/exfilguard/pkg/replay"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/state"
)

// principalKey keys a native event by its principal, as a shipper
// configured for scale-out does.
var principalKey = kafkatest.PrincipalKey

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
	lines := kafkatest.FanOutWorkload()
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

// TestRestoreSkipsAnInterruptedCheckpoint: records after a task's last
// marker in the changelog are a checkpoint a crash cut short, whose
// positions were never committed. A restore keeps the version of an entity
// written before the marker, and applies a record after it only for an
// entity it knows no older version of (compaction may have removed it): at
// least once, never lost.
func TestRestoreSkipsAnInterruptedCheckpoint(t *testing.T) {
	lines := sampleLines(t)[:40000]
	c := cluster(t, 6, []string{"audit"})
	addrs := c.ListenAddrs()
	kafkatest.ProduceKeyed(t, addrs, "audit", lines, principalKey)
	cfg := scaleOutConfig(addrs, "audit", t.TempDir(), "torn")
	a := start(t, cfg, uint64(len(lines)))
	a.wait(t)
	a.stop(t)

	// What partition 0's task wrote, up to its last marker.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"torn-changelog": {0: kgo.NewOffset().AtStart()}}),
		kgo.DefaultProduceTopic("torn-changelog"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, end, err := newChangelog(cfg, mustDialer(t, cfg)).offsets(ctx, 0)
	if err != nil || first != 0 || end == 0 {
		t.Fatalf("changelog offsets %d..%d: %v", first, end, err)
	}
	latest := map[string][]byte{}
	var marker int64
	for read := int64(0); read < end; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			if r.Key[0] != tagInput {
				return
			}
			if r.Key[1] == clMarker {
				marker, _ = parseMarker(r.Value)
				return
			}
			latest[string(r.Key)] = r.Value
		})
	}
	var known []byte
	for k := range latest {
		if k[1] == clEntity {
			known = []byte(k)
			break
		}
	}
	fresh := clEntityKey(tagInput, 0xfeedface)
	freshValue := append(binary.BigEndian.AppendUint64(nil, 1), "not decoded by a restore"...)
	// The cut checkpoint: a newer version of a known entity and a new one,
	// no marker.
	for _, r := range []*kgo.Record{{Key: known, Value: []byte("torn version")}, {Key: fresh, Value: freshValue}} {
		r.Partition = 0
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// Another replica restores partition 0.
	cfg.State.Dir = t.TempDir()
	store, err := state.Open(state.Options{Dir: cfg.State.Dir, MemTableBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p, err := New(Options{Config: cfg, Store: store, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	p.tasks = newTaskSet(cfg, p.dialer, 6)
	part := state.Partition{Topic: "audit", Partition: 0}
	if err := p.restoreTask(tagInput, part); err != nil {
		t.Fatal(err)
	}
	view := store.Space(state.TaskSpace(tagInput, 0))
	got, ok, err := view.LoadEntity(binary.BigEndian.Uint64(known[2:]), nil)
	if err != nil || !ok || !bytes.Equal(got, latest[string(known)][8:]) {
		t.Errorf("known entity restored as %q (%v, %v), want its version before the marker", got, ok, err)
	}
	got, ok, err = view.LoadEntity(0xfeedface, nil)
	if err != nil || !ok || !bytes.Equal(got, freshValue[8:]) {
		t.Errorf("entity only in the cut checkpoint restored as %q (%v, %v), want it applied", got, ok, err)
	}
	pos, err := store.Positions()
	if err != nil || pos[part] != marker || marker == 0 {
		t.Errorf("position %d (%v), want the marker's %d", pos[part], err, marker)
	}
}

func mustDialer(t testing.TB, cfg *config.Config) *kafka.Dialer {
	d, err := NewDialer(&cfg.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestScaleOutReloadAndMetrics: a reload reaches every task's engine and
// incidents, and /metrics shows the tasks and the repartition topic's
// consumption.
func TestScaleOutReloadAndMetrics(t *testing.T) {
	lines := sampleLines(t)[:20000]
	c := cluster(t, 3, []string{"audit"})
	addrs := c.ListenAddrs()
	kafkatest.ProduceKeyed(t, addrs, "audit", lines, principalKey)
	cfg := scaleOutConfig(addrs, "audit", t.TempDir(), "reload")
	cfg.ScaleOut.Repartition = []string{"source_net"}
	r := start(t, cfg, uint64(len(lines)))
	r.wait(t)
	next := *cfg
	next.Detectors.VolumeSpike.Ratio = cfg.Detectors.VolumeSpike.Ratio * 2
	if err := r.p.Reload(context.Background(), &next); err != nil {
		t.Fatalf("reload: %v", err)
	}
	reg := prometheus.NewRegistry()
	if err := r.p.Register(reg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"exfilguard_tasks 6\n", // three input partitions, three repartition partitions
		"exfilguard_restoring_partitions 0\n",
		`exfilguard_messages_consumed_total{format="exfilguard_internal",topic="reload-repartition-source_net"}`,
		"exfilguard_repartitioned_events_total ",
		"exfilguard_changelog_records_total ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	r.stop(t)
}
