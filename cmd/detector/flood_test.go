package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
)

// floodEvents returns n events, each from a principal never seen before,
// spread over 4096 source networks: what a feed of forged principals, or
// one that puts a request id in the user field, looks like.
func floodEvents(n int) [][]byte {
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range n {
		ts := start.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
		out[i] = fmt.Appendf(nil, `{"ts":%q,"principal":"flood-%09d","principal_type":"customer","source_ip":"10.%d.%d.7","object":"public.customers","action":"read","rows":1,"record_ids":["cust-%010d"],"status":"ok"}`,
			ts, i, (i/256)%16, i%256, i)
	}
	return out
}

// TestFloodKeepsMemoryBounded floods `detector run` with never-seen
// principals, ten times its entity cap. The process must keep its RSS
// under the bound the operations guide gives for that cap, hold no more
// than the cap in memory, and raise an alert about its own degraded
// state. EXFILGUARD_FLOOD sets the flood size (default 200000; the
// operations guide's numbers are for 1000000).
func TestFloodKeepsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	n := 200_000
	if v := os.Getenv("EXFILGUARD_FLOOD"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	entCap := n / 10
	dir := t.TempDir()
	bin := buildDetector(t, dir)
	c := kafkatest.Cluster(t, 2, []string{"audit"})
	addrs := c.ListenAddrs()
	events := floodEvents(n)
	kafkatest.Produce(t, addrs, "audit", events)
	events = nil

	cfgPath := filepath.Join(dir, "config.yml")
	yml := fmt.Sprintf(`http:
  listen: ""
  pprof: true
engine:
  max_entities: %d
kafka:
  brokers: [%q]
  group_id: flood
  topics: [{name: audit, format: native}]
  fetch_max_wait: 100ms
  session_timeout: 6s
  rebalance_timeout: 6s
state:
  dir: %q
  checkpoint_interval: 1s
  memtable_bytes: 8388608
`, entCap, addrs[0], filepath.Join(dir, "state"))
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := os.Getenv("EXFILGUARD_FLOOD_LISTEN") // to take profiles while it runs
	if listen == "" {
		listen = "none"
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath, "--listen", listen, "--log-level", "warn")
	// The memory limit an operator (or the Helm chart) sets, as a soft
	// limit for the Go heap.
	limit := memoryBound(entCap)
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMEMLIMIT=%dMiB", limit-128))
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// Until everything is committed, sample the anonymous RSS (the Go
	// heap and runtime: what the memory limit is about) and the
	// file-backed RSS (Badger's memory-mapped tables and logs: page cache
	// the kernel reclaims under pressure). VmHWM is the peak of both.
	deadline := time.Now().Add(10 * time.Minute)
	var peak, peakFile int
	for kafkatest.CommittedTotal(t, addrs, "flood", "audit", 2) < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("flood not consumed: committed %d of %d", kafkatest.CommittedTotal(t, addrs, "flood", "audit", 2), n)
		}
		peak = max(peak, procStatusMiB(t, cmd.Process.Pid, "RssAnon"))
		peakFile = max(peakFile, procStatusMiB(t, cmd.Process.Pid, "RssFile"))
		time.Sleep(50 * time.Millisecond)
	}
	hwm := procStatusMiB(t, cmd.Process.Pid, "VmHWM")
	if listen != "none" {
		_ = exec.Command("curl", "-s", "-o", filepath.Join(os.TempDir(), "exfilguard-flood-heap.pb.gz"), "http://"+listen+"/debug/pprof/heap").Run()
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	t.Logf("flood of %d new principals, cap %d: peak anonymous RSS %d MiB (bound %d MiB), file-backed %d MiB, VmHWM %d MiB",
		n, entCap, peak, limit, peakFile, hwm)
	if peak > limit {
		t.Errorf("peak anonymous RSS %d MiB over the bound of %d MiB for a cap of %d", peak, limit, entCap)
	}
	if !strings.Contains(stdout.String(), `"rule":"detector_degraded"`) {
		t.Error("no detector_degraded alert raised during the flood")
	}
}

// memoryBound is the memory limit docs/operations.md gives for an entity
// cap, in MiB: a base for the runtime, Kafka buffers, interners and
// Badger's memtables, caches and table builders at their defaults, plus
// twice the ~3 KiB an entity holds, so that the Go heap has room to
// collect without thrashing. With GOMEMLIMIT 128 MiB below it (room for
// memory outside the Go heap and pages not yet returned), RSS stays under
// it.
func memoryBound(entCap int) int {
	const baseMiB = 320
	const bytesPerEntity = 6 << 10
	return baseMiB + entCap*bytesPerEntity>>20
}

func procStatusMiB(t *testing.T, pid int, field string) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb >> 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
