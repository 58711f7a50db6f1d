package main

// The PostgreSQL source end to end, with nothing of ours between the
// database and the detector: a real PostgreSQL (15 or later, for jsonlog)
// with pgaudit writes its log, a real shipper (tail -F | kcat, librdkafka)
// carries each line to Kafka as it is written, and the built `detector run`
// consumes the topic in the pgaudit_jsonlog format. The log lines are what
// the server wrote (pkg/event/testdata/pgaudit/real/README.md shows the
// same settings and what they produce).

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/internal/pgtest"
	"github.com/exfilguard/exfilguard/pkg/event"
)

// pgE2E sizes the run: the dump must be far above every read of the
// ordinary workload and above bulk_read's cap, which is set between the
// two.
const (
	pgE2ECustomers = 20000
	pgE2EMaxRows   = 10000
	pgE2EDumper    = "support"
	pgE2ETopic     = "pg-audit"
	// pgE2EWarmup is engine.warmup: short, and over before the dump, as
	// it is in production, so that the dump is judged like any day's.
	pgE2EWarmup = time.Second
)

// pgE2ESettings are the server settings of the run: pgaudit's session
// log of reads, writes, DDL and role changes, with row counts and one
// record per relation, written by the logging collector as jsonlog.
var pgE2ESettings = []string{
	"shared_preload_libraries = 'pgaudit'",
	"pgaudit.log = 'read, write, ddl, role'",
	"pgaudit.log_rows = on",
	"pgaudit.log_relation = on",
	"logging_collector = on",
	"log_destination = 'jsonlog'",
	"log_line_prefix = '%m [%p] %q%u@%d '",
	"log_connections = on",
}

// TestPgauditEndToEnd: roles of a shop work normally against a customers
// table, then one of them dumps it; the detector, fed the server's own
// jsonlog through kcat, raises bulk_read on exactly that role and nothing
// on the others, counts the server's ordinary lines as ignored (not
// failed), and rejects as untrusted the one line written by a user
// imitating a pgaudit record.
func TestPgauditEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL, kcat and the built detector")
	}
	began := time.Now()
	pg := pgtest.Require(t, 15, "pgaudit")
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("EXFILGUARD_CI") != "" {
			t.Fatal("kcat is not installed; .ci/run installs it")
		}
		t.Skip("kcat not installed (apt-get install kcat)")
	}
	if _, err := exec.LookPath("tail"); err != nil {
		t.Skip("no tail(1) to follow the log with")
	}
	if !slices.Contains(event.Formats(), "pgaudit_jsonlog") {
		if os.Getenv("EXFILGUARD_CI") != "" {
			t.Fatal("the pgaudit_jsonlog input format is not registered")
		}
		t.Skip("the pgaudit_jsonlog input format is not registered yet")
	}

	dir := t.TempDir()
	bin := buildDetector(t, dir)
	kc := kafkatest.Cluster(t, 1, []string{pgE2ETopic})
	addrs := kc.ListenAddrs()

	// The detector first, as in production: it is waiting on the topic
	// when the first line arrives.
	alertsPath := filepath.Join(dir, "alerts.jsonl")
	cfgPath := filepath.Join(dir, "config.yml")
	yml := fmt.Sprintf(`alerts:
  sinks:
    - {name: file, type: file, path: %q}
engine:
  warmup: %s
detectors:
  bulk_read: {max_rows: %d}
kafka:
  brokers: [%q]
  group_id: pgaudit-e2e
  topics: [{name: %s, format: pgaudit_jsonlog}]
  fetch_max_wait: 100ms
  backoff_min: 20ms
  backoff_max: 500ms
state:
  dir: %q
  checkpoint_interval: 200ms
`, alertsPath, pgE2EWarmup, pgE2EMaxRows, addrs[0], pgE2ETopic, filepath.Join(dir, "state"))
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"config", "check", cfgPath}, &out, &errOut); code != exitOK {
		t.Fatalf("config check: exit %d: %s%s", code, out.String(), errOut.String())
	}
	listen := freeAddr(t)
	logFile := filepath.Join(dir, "detector.log")
	det, _ := startDetector(t, bin, cfgPath, logFile, listen)
	waitLog(t, logFile, `"msg":"partitions assigned","generation":`, `"partitions":1}`)

	// The database, and the shipper following its jsonlog by name from
	// the first line until the server exits.
	pgDir := filepath.Join(dir, "pg")
	if err := os.Mkdir(pgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	db := pgtest.Start(t, pg, pgDir, pgtest.Options{Settings: pgE2ESettings})
	ship := pgE2EShip(t, kcat, db.LogFile("jsonlog"), db.PID(t), addrs[0])

	workStart := time.Now()
	pgE2EWorkload(t, db)
	workDur := time.Since(workStart)
	// The server's shutdown is logged too: more ordinary lines. Its end
	// also ends tail, and so kcat's input: kcat 1.7 reads its input 128
	// bytes at a time and sends a line only once the next read returns,
	// so from a live pipe the last lines wait for more log (or the end).
	db.Stop(t)
	logged, err := os.ReadFile(db.LogFile("jsonlog"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Count(logged, []byte("\n"))
	genuine, impostors := pgE2ECount(t, logged)
	if impostors != 1 {
		t.Fatalf("the log holds %d impostor AUDIT lines, want the 1 injected", impostors)
	}

	// Every line reaches the detector and is accounted for: an event, an
	// ignored line or a failure.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(3 * time.Minute)
	for {
		fams = pgE2EScrape(t, listen)
		consumed := pgE2ESum(fams, "exfilguard_messages_consumed_total", "topic", pgE2ETopic)
		done := pgE2ESum(fams, "exfilguard_events_processed_total") + pgE2ESum(fams, "exfilguard_messages_ignored_total") + pgE2ESum(fams, "exfilguard_decode_failures_total")
		if consumed >= float64(lines) && done >= consumed {
			if consumed != float64(lines) {
				t.Fatalf("the detector consumed %v messages, the server wrote %d lines", consumed, lines)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the detector consumed %v of %d lines and accounted for %v (shipper stderr: %s)", consumed, lines, done, ship.stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	shipDur := time.Since(workStart)
	ship.wait(t)

	processed := pgE2ESum(fams, "exfilguard_events_processed_total")
	notAudit := pgE2ESum(fams, "exfilguard_messages_ignored_total", "reason", "not_audit")
	untrusted := pgE2ESum(fams, "exfilguard_decode_failures_total", "reason", "untrusted")
	failures := pgE2ESum(fams, "exfilguard_decode_failures_total")
	if notAudit <= 0 {
		t.Errorf("exfilguard_messages_ignored_total{reason=\"not_audit\"} = %v, want > 0 (the server's ordinary lines)", notAudit)
	}
	if untrusted != 1 || failures != 1 {
		t.Errorf("decode failures: %v untrusted of %v in all, want exactly the 1 injected impostor (untrusted)\n%s",
			untrusted, failures, pgE2EFamily(fams, "exfilguard_decode_failures_total"))
	}
	if processed < float64(genuine) {
		t.Errorf("%v events processed, fewer than the %d pgaudit records", processed, genuine)
	}

	// The dump's alert reaches the file sink; stop cleanly so that every
	// alert raised is delivered, then judge them all.
	pgE2EWaitFile(t, alertsPath, `"rule":"bulk_read"`)
	if err := det.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := det.Wait(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	b, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var bulk []map[string]any
	for _, a := range parseAlerts(t, b) {
		if a["rule"] == "detector_degraded" {
			continue // about the detector, not the data
		}
		ent, _ := a["entity"].(map[string]any)
		kind, key := ent["kind"], ent["key"]
		if a["principal"] != pgE2EDumper || (kind == "principal" && key != pgE2EDumper) {
			t.Errorf("alert %s on %v/%v (principal %v): only %s dumped the table", a["rule"], kind, key, a["principal"], pgE2EDumper)
		}
		if a["rule"] == "bulk_read" && kind == "principal" && key == pgE2EDumper {
			bulk = append(bulk, a)
		}
		t.Logf("alert: rule %v, entity %v/%v, severity %v, score %v, observed %v, exposure %v",
			a["rule"], kind, key, a["severity"], a["score"], a["observed"], a["exposure"])
	}
	if len(bulk) == 0 {
		t.Fatalf("no bulk_read alert on principal/%s\n%s", pgE2EDumper, b)
	}
	if rows, _ := bulk[0]["observed"].(map[string]any)["sensitive_rows_in_request"].(float64); rows < pgE2ECustomers {
		t.Errorf("bulk_read saw %v rows in the request, want the whole table (%d)", rows, pgE2ECustomers)
	}
	t.Logf("%d log lines: %d pgaudit records, 1 impostor; detector: %v events, %v ignored as not_audit, %v failures (%v untrusted)",
		lines, genuine, processed, notAudit, failures, untrusted)
	t.Logf("workload %v; last line consumed %v after the workload began; whole test %v", workDur.Round(time.Millisecond), shipDur.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// pgE2EWorkload is a day of the shop compressed: the table loaded with
// COPY (as a restore or an ETL load does; pgaudit reports no rows for it,
// whereas an INSERT ... SELECT of the same rows would be reported and
// judged by bulk_read like a read of them: the engine does not tell rows
// written from rows read), four roles
// working at once over TCP and the socket, a failed login, a denied read,
// the impostor, and then the dump.
func pgE2EWorkload(t *testing.T, db *pgtest.Cluster) {
	su := pgtest.Conn{User: pgtest.Superuser, App: "migrate"}
	db.MustRun(t, su, "CREATE DATABASE shop;")
	first := time.Now() // the first audit record, the engine's first event
	su.Database = "shop"
	db.MustRun(t, su, `
CREATE ROLE app_svc LOGIN PASSWORD 'app_svc-secret';
CREATE ROLE analyst LOGIN PASSWORD 'analyst-secret';
CREATE ROLE support LOGIN PASSWORD 'support-secret';
CREATE ROLE etl LOGIN PASSWORD 'etl-secret';
CREATE TABLE public.customers (
    id         bigint PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL,
    card_last4 char(4),
    created_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE ON public.customers TO app_svc;
GRANT SELECT (id, name, created_at) ON public.customers TO analyst;
GRANT SELECT, UPDATE, DELETE ON public.customers TO support;
GRANT SELECT ON public.customers TO etl;
`)
	var load strings.Builder
	load.WriteString("COPY public.customers (id, name, email, card_last4) FROM STDIN WITH (FORMAT csv);\n")
	for i := 1; i <= pgE2ECustomers; i++ {
		fmt.Fprintf(&load, "%d,Customer %d,customer%d@example.com,%04d\n", i, i, i, i*7919%10000)
	}
	load.WriteString("\\.\n")
	db.MustRun(t, su, load.String())

	conn := func(role, app string, tcp bool) pgtest.Conn {
		return pgtest.Conn{User: role, Password: role + "-secret", App: app, Database: "shop", TCP: tcp}
	}
	var app, support, analyst, etl strings.Builder
	for i := 0; i < 300; i++ {
		id := 1 + i*61%pgE2ECustomers
		fmt.Fprintf(&app, "SELECT id, name, email FROM public.customers WHERE id = %d;\n", id)
		if i%5 == 0 {
			fmt.Fprintf(&app, "UPDATE public.customers SET email = 'c%d.new@example.com' WHERE id = %d;\n", id, id)
		}
		if i%20 == 0 {
			n := pgE2ECustomers + 1 + i/20
			fmt.Fprintf(&app, "INSERT INTO public.customers (id, name, email, card_last4) VALUES (%d, 'New %d', 'new%d@example.com', '4242');\n", n, n, n)
		}
	}
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&support, "SELECT name, email, card_last4 FROM public.customers WHERE email = 'customer%d@example.com';\n", 1+i*331%pgE2ECustomers)
		if i%10 == 0 {
			support.WriteString("SELECT id, name, email FROM public.customers ORDER BY created_at DESC, id DESC LIMIT 20;\n")
		}
	}
	support.WriteString("DELETE FROM public.customers WHERE id = 19999;\n")
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&analyst, `SELECT date_trunc('day', created_at) AS day,
       count(*) AS customers
  FROM public.customers
 WHERE id BETWEEN %d AND %d
 GROUP BY 1
 ORDER BY 1;
`, 1+i*1000, 5000+i*1000)
	}
	for i := 0; i < 5; i++ {
		fmt.Fprintf(&etl, "SELECT * FROM public.customers WHERE id > %d ORDER BY id LIMIT 100;\n", i*4000)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, w := range []struct {
		conn pgtest.Conn
		sql  string
	}{
		{conn("app_svc", "billing-api", true), app.String()},
		{conn("support", "support-console", true), support.String()},
		{conn("analyst", "metabase", true), analyst.String()},
		{conn("etl", "nightly-etl", false), etl.String()},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.Run(w.conn, w.sql); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// What must not alert: a wrong password, a read the server denies
	// (no audit record, only an ERROR line), and the impostor, a user's
	// RAISE LOG claiming a million rows for app_svc.
	bad := conn("etl", "nightly-etl", true)
	bad.Password = "wrong"
	if _, err := db.Run(bad, "SELECT 1;"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if _, err := db.Run(conn("analyst", "metabase", true), "SELECT * FROM public.customers WHERE id < 10;"); err == nil {
		t.Fatal("analyst read columns it has no privilege on")
	}
	db.MustRun(t, conn("app_svc", "psql", false),
		`DO $$ BEGIN RAISE LOG 'AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,"select * from customers",1000000'; END $$;`)

	// The dump, once the engine's warm-up (in event time, from the first
	// record) is surely over: a fast machine runs the workload in less.
	if wait := pgE2EWarmup + 500*time.Millisecond - time.Since(first); wait > 0 {
		time.Sleep(wait)
	}
	out := db.MustRun(t, conn(pgE2EDumper, "psql", true), "SELECT * FROM public.customers;")
	if n := strings.Count(out, "\n"); n < pgE2ECustomers {
		t.Fatalf("the dump returned %d rows", n)
	}
}

// pgE2ECount counts the log's pgaudit records: LOG lines whose message
// starts "AUDIT: ", the genuine ones without the statement and context
// that pgaudit always hides.
func pgE2ECount(t *testing.T, log []byte) (genuine, impostors int) {
	t.Helper()
	for _, line := range bytes.Split(log, []byte("\n")) {
		if !bytes.Contains(line, []byte(`"message":"AUDIT: `)) {
			continue
		}
		if bytes.Contains(line, []byte(`"statement":`)) || bytes.Contains(line, []byte(`"context":`)) {
			impostors++
		} else {
			genuine++
		}
	}
	return genuine, impostors
}

// pgE2EShipper is tail -F | kcat -P: the shipper a team without a log
// pipeline would start with, one Kafka message per log line.
type pgE2EShipper struct {
	tail, kcat *exec.Cmd
	errBuf     *pgE2EBuffer
}

// pgE2EShip follows file from its first line until process pid exits.
func pgE2EShip(t *testing.T, kcat, file string, pid int, broker string) *pgE2EShipper {
	t.Helper()
	s := &pgE2EShipper{errBuf: &pgE2EBuffer{}}
	s.tail = exec.Command("tail", "-n", "+1", "-F", "--pid", strconv.Itoa(pid), file)
	s.kcat = exec.Command(kcat, "-P", "-b", broker, "-t", pgE2ETopic)
	pipe, err := s.tail.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.kcat.Stdin = pipe
	s.tail.Stderr, s.kcat.Stdout, s.kcat.Stderr = s.errBuf, s.errBuf, s.errBuf
	if err := s.tail.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.tail.Process.Kill(); _ = s.tail.Wait() })
	if err := s.kcat.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.kcat.Process.Kill(); _ = s.kcat.Wait() })
	return s
}

// wait waits for tail to end with the server and for kcat, at the end
// of its input, to flush and exit.
func (s *pgE2EShipper) wait(t *testing.T) {
	t.Helper()
	for _, c := range []*exec.Cmd{s.tail, s.kcat} {
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v: %s", filepath.Base(c.Path), err, s.stderr())
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s did not exit after the server: %s", filepath.Base(c.Path), s.stderr())
		}
	}
}

func (s *pgE2EShipper) stderr() string { return s.errBuf.String() }

type pgE2EBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *pgE2EBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *pgE2EBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// pgE2EScrape GETs /metrics and parses it.
func pgE2EScrape(t *testing.T, listen string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape /metrics: %d %v", resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// pgE2ESum adds the samples of a counter whose labels include the given
// name, value pairs.
func pgE2ESum(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			if !slices.ContainsFunc(m.Label, func(lp *dto.LabelPair) bool {
				return lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
			}) {
				continue next
			}
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// pgE2EFamily renders a family's samples for an error message.
func pgE2EFamily(fams map[string]*dto.MetricFamily, name string) string {
	var b strings.Builder
	if f := fams[name]; f != nil {
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				fmt.Fprintf(&b, "%s=%q ", lp.GetName(), lp.GetValue())
			}
			fmt.Fprintf(&b, "%v\n", m.GetCounter().GetValue())
		}
	}
	return b.String()
}

// pgE2EWaitFile waits until the file holds substr.
func pgE2EWaitFile(t *testing.T, path, substr string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(substr)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %s", filepath.Base(path), substr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
