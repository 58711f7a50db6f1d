package stream

import (
	"encoding/json"
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
