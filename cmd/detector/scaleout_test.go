package main

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
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
	"github.com/exfilguard/exfilguard/pkg/state"
)

// replica is one `detector run` process of a scale-out group.
type replica struct {
	name, cfg, listen string
	cmd               *exec.Cmd
	stdout            *bytes.Buffer
	runs              int
}

// TestScaleOutThreeReplicas runs three `detector run` processes in one
// group over a six-partition topic keyed by principal, with the sample fed
// in phases:
//
//  1. 40% of the events with all three replicas;
//  2. one replica is killed with -9; 30% more: the survivors take its
//     partitions over and restore their state from the changelog;
//  3. the killed one comes back (its own disk is stale: it catches up
//     from the changelog), then every replica in turn is stopped and
//     started again (a rolling restart) while the rest is fed.
//
// The alerts of all processes together equal those of one replica that
// read everything without interruption, ids included: no moved entity
// started cold (that would alert on normal traffic, or miss what needs a
// baseline), nothing was lost, and what was raised twice (replayed after
// the kill) is identical.
func TestScaleOutThreeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildDetector(t, dir)
	lines := kafkatest.Lines(t, "../../testdata/sample/events.jsonl.gz")
	c := kafkatest.Cluster(t, 6, []string{"audit"})
	addrs := c.ListenAddrs()
	key := kafkatest.PrincipalKey
	config := func(name, group string) string {
		p := filepath.Join(dir, name+".yml")
		yml := fmt.Sprintf(`kafka:
  brokers: [%q]
  group_id: %s
  topics: [{name: audit, format: native}]
  fetch_max_wait: 100ms
  session_timeout: 6s
  rebalance_timeout: 10s
  backoff_min: 20ms
  backoff_max: 500ms
state:
  dir: %q
  checkpoint_events: 10000
  checkpoint_interval: 500ms
  memtable_bytes: 8388608
  shutdown_timeout: 60s
scale_out:
  enabled: true
`, addrs[0], group, filepath.Join(dir, name))
		if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	reps := make([]*replica, 3)
	for i := range reps {
		reps[i] = &replica{name: fmt.Sprintf("r%d", i+1), cfg: config(fmt.Sprintf("r%d", i+1), "trio"), listen: freeAddr(t)}
	}
	var outputs [][]byte
	startRep := func(r *replica) {
		r.runs++
		r.cmd, r.stdout = startDetector(t, bin, r.cfg, filepath.Join(dir, fmt.Sprintf("%s-%d.log", r.name, r.runs)), r.listen)
	}
	stopRep := func(r *replica, sig syscall.Signal) {
		if err := r.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		err := r.cmd.Wait()
		if sig == syscall.SIGTERM && err != nil {
			t.Fatalf("%s: clean stop: %v", r.name, err)
		}
		outputs = append(outputs, r.stdout.Bytes())
	}
	// stable waits until the live replicas hold all six partitions
	// between them in one generation, each some: kfake never expires a
	// member killed while its join is pending, so kills and feeds wait
	// for a settled group.
	stable := func(live ...*replica) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			gens := map[int]int{}
			ok := true
			for _, r := range live {
				gen, parts := lastAssignment(t, filepath.Join(dir, fmt.Sprintf("%s-%d.log", r.name, r.runs)))
				if parts == 0 {
					ok = false
				}
				gens[gen] += parts
			}
			if ok && len(gens) == 1 {
				for _, n := range gens {
					if n == 6 {
						return
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("group never settled: %v", gens)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	committed := func(off int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for kafkatest.CommittedTotal(t, addrs, "trio", "audit", 6) < int64(off) {
			if time.Now().After(deadline) {
				t.Fatalf("committed %d of %d", kafkatest.CommittedTotal(t, addrs, "trio", "audit", 6), off)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	fed := 0
	feed := func(upTo int) {
		kafkatest.ProduceKeyed(t, addrs, "audit", lines[fed:upTo], key)
		fed = upTo
		committed(fed)
	}
	n := len(lines)

	// 1. Three replicas, 40%.
	for _, r := range reps {
		startRep(r)
	}
	stable(reps...)
	feed(n * 4 / 10)

	// 2. 30% more, and one replica killed with -9 while the three are
	// busy with it; the survivors take its partitions over.
	kafkatest.ProduceKeyed(t, addrs, "audit", lines[fed:n*7/10], key)
	fed = n * 7 / 10
	committed(n * 45 / 100)
	time.Sleep(time.Duration(time.Now().UnixNano()%300) * time.Millisecond)
	stopRep(reps[1], syscall.SIGKILL)
	t.Logf("killed %s at committed offset %d of %d", reps[1].name, kafkatest.CommittedTotal(t, addrs, "trio", "audit", 6), fed)
	committed(fed)
	stable(reps[0], reps[2])
	restored := scrape(t, reps[0].listen, "exfilguard_restored_records_total") + scrape(t, reps[2].listen, "exfilguard_restored_records_total")
	if restored == 0 {
		t.Errorf("the survivors restored no changelog record")
	}
	waitHTTP(t, "http://"+reps[0].listen+"/readyz", http.StatusOK)

	// 3. The killed one returns; then a rolling restart of all three.
	startRep(reps[1])
	stable(reps...)
	feed(n * 8 / 10)
	for i, r := range reps {
		stopRep(r, syscall.SIGTERM)
		startRep(r)
		stable(reps...)
		feed(n * (8 + i + 1) / 11)
	}
	feed(n)
	for _, r := range reps {
		stopRep(r, syscall.SIGTERM)
	}

	// One replica over the same events, uninterrupted.
	ref := &replica{name: "ref", cfg: config("ref", "ref"), listen: freeAddr(t)}
	startRep(ref)
	deadline := time.Now().Add(5 * time.Minute)
	for kafkatest.CommittedTotal(t, addrs, "ref", "audit", 6) < int64(n) {
		if time.Now().After(deadline) {
			t.Fatal("reference run stuck")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := ref.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := ref.cmd.Wait(); err != nil {
		t.Fatalf("reference run: %v", err)
	}
	want := map[string]map[string]any{}
	for _, a := range parseAlerts(t, ref.stdout.Bytes()) {
		want[a["id"].(string)] = a
	}
	got, repeats := alertsByID(t, outputs)
	for id, a := range want {
		if g, ok := got[id]; !ok {
			t.Errorf("alert %s (%s on %v) of the single replica never raised by the three", id, a["rule"], a["entity"])
		} else if !reflect.DeepEqual(g, a) {
			t.Errorf("alert %s differs:\nthree %v\none   %v", id, g, a)
		}
	}
	for id, a := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("alert %s (%s on %v) raised by the three, not by the single replica", id, a["rule"], a["entity"])
		}
	}
	if len(want) == 0 {
		t.Fatal("the single replica raised no alert")
	}
	t.Logf("%d alerts, equal; %d raised again after the kill; %d changelog records restored by the survivors", len(want), repeats, int(restored))

	// state inspect finds a principal in the task of its partition, on
	// whichever replica last held it.
	inspected := 0
	for _, r := range reps {
		var out, errOut bytes.Buffer
		if run([]string{"state", "inspect", "--config", r.cfg, "--entity", "principal/svc-storefront"}, &out, &errOut) == exitOK {
			inspected++
			if !regexp.MustCompile(`── task audit/\d\n`).Match(out.Bytes()) || !bytes.Contains(out.Bytes(), []byte("role        app")) {
				t.Errorf("state inspect on %s:\n%s", r.name, out.String())
			}
		}
	}
	if inspected == 0 {
		t.Error("state inspect found svc-storefront on no replica")
	}
}

var assignedRe = regexp.MustCompile(`"msg":"partitions assigned","generation":(\d+),"partitions":(\d+)`)

// lastAssignment returns the generation and partition count of the last
// assignment a replica logged.
func lastAssignment(t *testing.T, logFile string) (gen, parts int) {
	b, _ := os.ReadFile(logFile)
	released := bytes.LastIndex(b, []byte(`"msg":"partitions released"`))
	ms := assignedRe.FindAllSubmatchIndex(b, -1)
	if len(ms) == 0 {
		return 0, 0
	}
	m := ms[len(ms)-1]
	if released > m[0] {
		return 0, 0 // between generations
	}
	gen, _ = strconv.Atoi(string(b[m[2]:m[3]]))
	parts, _ = strconv.Atoi(string(b[m[4]:m[5]]))
	return gen, parts
}

// scrape returns the value of an unlabelled metric from /metrics.
func scrape(t *testing.T, listen, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("/metrics of %s has no %s", listen, name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestScaleOutFanOutThroughRepartition: three `detector run` processes
// share the group, the source network routed through its repartition
// topic. After three days of ordinary traffic, 120 principals (so all six
// partitions, so all three replicas) read from one network within 50
// seconds: the replica holding that network's repartition partition raises
// fan_out, which no input task could (each sees about 20 of the
// principals, under the rule's minimum of 50).
//
// The crawl spans less than the allowed lateness: the three replicas
// forward it concurrently, each in its own order, and whatever the
// interleaving none of it is late (see docs/scaling.md, "Ordering").
func TestScaleOutFanOutThroughRepartition(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildDetector(t, dir)
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	line := func(at time.Time, i int, ip string, id int) []byte {
		return fmt.Appendf(nil, `{"ts":%q,"principal":"u%03d","principal_type":"user","role":"support","source_ip":%q,"object":"public.customers","action":"read","rows":1,"record_ids":["c-%d"],"status":"ok"}`,
			at.Format(time.RFC3339Nano), i, ip, id)
	}
	var background, crawl [][]byte
	for step := range 3 * 144 {
		at := start.Add(time.Duration(step) * 10 * time.Minute)
		for i := range 200 {
			background = append(background, line(at.Add(time.Duration(i)*time.Second), i, fmt.Sprintf("10.1.%d.5", i), step*1000+i))
		}
	}
	for i := range 120 {
		crawl = append(crawl, line(start.Add(72*time.Hour+time.Duration(i)*400*time.Millisecond), i, "198.51.100.7", 900000+i))
	}
	c := kafkatest.Cluster(t, 6, []string{"audit"})
	addrs := c.ListenAddrs()
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	var logs []string
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("r%d.yml", i))
		yml := fmt.Sprintf(`kafka:
  brokers: [%q]
  group_id: fanout
  topics: [{name: audit, format: native}]
  fetch_max_wait: 100ms
  session_timeout: 6s
  rebalance_timeout: 10s
state:
  dir: %q
  checkpoint_interval: 500ms
  memtable_bytes: 8388608
scale_out:
  enabled: true
  repartition: [source_net]
`, addrs[0], filepath.Join(dir, fmt.Sprintf("r%d", i)))
		if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		logs = append(logs, filepath.Join(dir, fmt.Sprintf("r%d.log", i)))
		cmd, out := startDetector(t, bin, p, logs[i], "")
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	// All three hold tasks of one generation before anything is fed.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		gens, held := map[int]bool{}, 0
		for _, l := range logs {
			gen, parts := lastAssignment(t, l)
			if parts > 0 {
				gens[gen] = true
				held += parts
			}
		}
		if len(gens) == 1 && held == 12 { // six input and six repartition partitions
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group never settled: %v %d", gens, held)
		}
		time.Sleep(50 * time.Millisecond)
	}
	key := kafkatest.PrincipalKey
	fed := 0
	for _, part := range [][][]byte{background, crawl} {
		kafkatest.ProduceKeyed(t, addrs, "audit", part, key)
		fed += len(part)
		for kafkatest.CommittedTotal(t, addrs, "fanout", "audit", 6) < int64(fed) || kafkatest.CommittedTotal(t, addrs, "fanout", "fanout-repartition-source_net", 6) < int64(fed) {
			if time.Now().After(deadline.Add(5 * time.Minute)) {
				t.Fatal("input or repartition topic not consumed")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	raised := 0
	for i, cmd := range cmds {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("r%d: clean stop: %v", i, err)
		}
		for _, a := range parseAlerts(t, outs[i].Bytes()) {
			e, _ := a["entity"].(map[string]any)
			if a["rule"] == "fan_out" && e["kind"] == "source_net" && e["key"] == "198.51.100.0/24" {
				raised++
			}
		}
	}
	if raised == 0 {
		t.Error("no replica raised fan_out on the crawl's network")
	}
	t.Logf("fan_out on 198.51.100.0/24: %d alerts", raised)
}

// TestScaleOutKillNineCountsRoutedEventsOnce: one `detector run` with the
// source network and the credential routed through repartition topics,
// killed with -9 three times while it works, restarted each time, then
// let finish. Every kill loses the work since the last checkpoint, and
// the restart produces those events to the repartition topics again; the
// repartition tasks skip the copies by their origin. At the end the state
// of every task counts each event exactly once: the input tasks every
// event, each repartition task every event of its kind.
func TestScaleOutKillNineCountsRoutedEventsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildDetector(t, dir)
	lines := kafkatest.Lines(t, "../../testdata/sample/events.jsonl.gz")
	var nets, creds uint64
	dec := event.NewNative(event.Limits{})
	var ev event.Event
	for _, l := range lines {
		if dec.Decode(l, &ev) != nil {
			t.Fatal("sample line does not decode")
		}
		if ev.SourceIP.IsValid() {
			nets++
		}
		if ev.Credential != "" {
			creds++
		}
	}
	c := kafkatest.Cluster(t, 6, []string{"audit"})
	addrs := c.ListenAddrs()
	kafkatest.ProduceKeyed(t, addrs, "audit", lines, kafkatest.PrincipalKey)
	cfgPath := filepath.Join(dir, "config.yml")
	stateDir := filepath.Join(dir, "state")
	yml := fmt.Sprintf(`kafka:
  brokers: [%q]
  group_id: routed
  topics: [{name: audit, format: native}]
  fetch_max_wait: 100ms
  session_timeout: 6s
  rebalance_timeout: 6s
state:
  dir: %q
  checkpoint_events: 15000
  checkpoint_interval: 300ms
  memtable_bytes: 8388608
  shutdown_timeout: 60s
scale_out:
  enabled: true
  repartition: [source_net, credential]
`, addrs[0], stateDir)
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	total := int64(len(lines))
	for kill := range 3 {
		logFile := filepath.Join(dir, fmt.Sprintf("run-%d.log", kill))
		cmd, _ := startDetector(t, bin, cfgPath, logFile, "")
		// Kill only a member that holds its partitions (see
		// TestKillNineLosesNothing on kfake and pending joins).
		waitLog(t, logFile, `"msg":"partitions assigned","generation":`, `"partitions":18}`)
		target := min(kafkatest.CommittedTotal(t, addrs, "routed", "audit", 6)+total/8, total*9/10)
		for kafkatest.CommittedTotal(t, addrs, "routed", "audit", 6) < target {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(time.Now().UnixNano()%200) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("kill %d after committed offset %d", kill+1, kafkatest.CommittedTotal(t, addrs, "routed", "audit", 6))
	}
	listen := freeAddr(t)
	cmd, _ := startDetector(t, bin, cfgPath, filepath.Join(dir, "run-last.log"), listen)
	deadline := time.Now().Add(5 * time.Minute)
	for kafkatest.CommittedTotal(t, addrs, "routed", "audit", 6) < total {
		if time.Now().After(deadline) {
			t.Fatal("input not consumed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The repartition topics are consumed to their ends too.
	for _, topic := range []string{"routed-repartition-source_net", "routed-repartition-credential"} {
		end := topicEnd(t, addrs, topic)
		for kafkatest.CommittedTotal(t, addrs, "routed", topic, 6) < end {
			if time.Now().After(deadline) {
				t.Fatalf("%s not consumed", topic)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	dups := scrape(t, listen, "exfilguard_repartition_duplicates_total")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}

	s, err := state.Open(state.Options{Dir: stateDir, MemTableBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var counted [3]uint64
	for tag := range 3 {
		for part := range 6 {
			blob, err := s.Space(state.TaskSpace(byte(tag), part)).Blob("engine")
			if err != nil || blob == nil {
				t.Fatalf("task %d/%d: no engine state (%v)", tag, part, err)
			}
			e, err := models.New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Restore(blob); err != nil {
				t.Fatal(err)
			}
			counted[tag] += e.Stats().Events
		}
	}
	if want := [3]uint64{uint64(total), nets, creds}; counted != want {
		t.Errorf("tasks counted %v events (input, source_net, credential), want exactly %v", counted, want)
	}
	t.Logf("counted %v; %d routed copies skipped in the last run", counted, int(dups))
}

// topicEnd is the sum of a topic's partitions' end offsets.
func topicEnd(t *testing.T, addrs []string, topic string) int64 {
	t.Helper()
	conn, err := kafka.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	for _, p := range parts {
		pc, err := kafka.DialLeader(context.Background(), "tcp", addrs[0], topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		last, err := pc.ReadLastOffset()
		pc.Close()
		if err != nil {
			t.Fatal(err)
		}
		end += last
	}
	return end
}
