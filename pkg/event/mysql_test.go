package event

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"
)

// mysqlCheckEvent holds every decoded event to what the MySQL-family
// formats can and cannot say.
func mysqlCheckEvent(t testing.TB, ev *Event, msg []byte) {
	t.Helper()
	if ev.Time == 0 || ev.Principal == "" {
		t.Fatalf("decoded %q without a time or principal: %+v", msg, ev)
	}
	if ev.Role != "" || ev.Credential != "" || len(ev.RecordIDs) > 0 || len(ev.RecordNums) > 0 || ev.RecordCount != 0 {
		t.Fatalf("decoded %q with fields the format does not have: %+v", msg, ev)
	}
	if ev.HasRows == false && ev.Rows != 0 {
		t.Fatalf("decoded %q with rows but HasRows false: %+v", msg, ev)
	}
}

func TestMySQLAuditGolden(t *testing.T) {
	goldenDir(t, "mysql_audit", func(*testing.T) Decoder { return NewMySQLAudit(Limits{}) })
}

func TestMySQLAuditRegistered(t *testing.T) {
	d, err := NewDecoder("mysql_audit", Limits{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(Splitter); !ok {
		t.Fatal("mysql_audit does not split arrays")
	}
	if FormatDoc("mysql_audit") == "" {
		t.Fatal("mysql_audit has no doc")
	}
}

func TestMySQLAuditTooLarge(t *testing.T) {
	d := NewMySQLAudit(Limits{MaxMessageBytes: 16})
	msg := []byte(`{"timestamp":"2024-03-14 09:00:00"}`)
	var ev Event
	if r, _ := ReasonOf(d.Decode(msg, &ev)); r != ReasonTooLarge {
		t.Fatalf("Decode: reason %v, want too_large", r)
	}
	if _, err := d.Split(nil, msg); err == nil {
		t.Fatal("Split accepted a message over the limit")
	}
}

func TestMySQLAuditSplit(t *testing.T) {
	d := NewMySQLAudit(Limits{})
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`{"a":1},`, []string{`{"a":1},`}},
		{`  {"a":1}`, []string{`  {"a":1}`}},
		{"[\n  {\"a\":1},\n  {\"b\":[1,{\"c\":\"]\"}]}\n]\n", []string{`{"a":1}`, `{"b":[1,{"c":"]"}]}`}},
		{`[{"a":1},`, []string{`{"a":1}`}},
		{`[`, []string{`[`}},
		{` [ ] `, []string{` [ ] `}},
		{`[{"a":1},{"b":`, []string{`{"a":1}`, `{"b":`}},
		{`[{"a":1}] x`, []string{`{"a":1}`, `x`}},
		{`[{"a":1}],`, []string{`{"a":1}`}},
		{`[1,"s",[2]]`, []string{`1`, `"s"`, `[2]`}},
		{``, []string{``}},
	} {
		got, err := d.Split(nil, []byte(tc.in))
		if err != nil {
			t.Fatalf("Split(%q): %v", tc.in, err)
		}
		var gs []string
		for _, g := range got {
			gs = append(gs, string(g))
		}
		if fmt.Sprint(gs) != fmt.Sprint(tc.want) {
			t.Errorf("Split(%q) = %q, want %q", tc.in, gs, tc.want)
		}
	}
}

func TestMySQLUserHost(t *testing.T) {
	for _, tc := range []struct{ in, user, priv, host, ip string }{
		{"root", "root", "", "", ""},
		{"root[root] @ localhost []", "root", "root", "localhost", ""},
		{"app[app] @  [10.9.8.7]", "app", "app", "", "10.9.8.7"},
		{"employees[ldap_kim] @ web-1.internal [10.0.0.3]", "ldap_kim", "employees", "web-1.internal", "10.0.0.3"},
		{"[bob] @ localhost [127.0.0.1]", "bob", "", "localhost", "127.0.0.1"},
		{"odd[name", "odd[name", "", "", ""},
		{"x[y] @", "y", "x", "", ""},
		{"x[y]", "y", "x", "", ""},
	} {
		u, p, h, ip := mysqlUserHost([]byte(tc.in))
		if string(u) != tc.user || string(p) != tc.priv || string(h) != tc.host || string(ip) != tc.ip {
			t.Errorf("mysqlUserHost(%q) = %q %q %q %q, want %q %q %q %q", tc.in, u, p, h, ip, tc.user, tc.priv, tc.host, tc.ip)
		}
	}
}

func TestMySQLTime(t *testing.T) {
	want := time.Date(2019, 10, 3, 13, 50, 1, 0, time.UTC).UnixNano()
	for _, in := range []string{"2019-10-03 13:50:01", "2019-10-03T13:50:01 UTC", "2019-10-03T13:50:01Z", "2019-10-03T15:50:01+02:00", "2019-10-03 13:50:01 GMT"} {
		if got, ok := mysqlTime([]byte(in)); !ok || got != want {
			t.Errorf("mysqlTime(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	if got, ok := mysqlTime([]byte("2019-10-03 13:50:01.25")); !ok || got != want+250_000_000 {
		t.Errorf("fraction: %d %v", got, ok)
	}
	for _, in := range []string{"2019-10-03 13:50", "2019-10-03 13:50:01 CET", "2019-13-03 13:50:01", "03/10/2019 13:50:01", "2019-10-03 13:50:01+0200"} {
		if _, ok := mysqlTime([]byte(in)); ok {
			t.Errorf("mysqlTime(%q) accepted", in)
		}
	}
}

func TestMySQLKeywordAction(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want Action
	}{
		{"SELECT 1", ActionRead},
		{"  ( select a from t) union (select b from u)", ActionRead},
		{"/* hint */ /*+ MAX_EXECUTION_TIME(1) */ select 1", ActionRead},
		{"/*!40101 SET NAMES utf8 */", ActionOther},
		{"/*!50001 CREATE ALGORITHM=UNDEFINED VIEW v AS SELECT 1 */", ActionDDL},
		{"-- note\nDELETE FROM t", ActionDelete},
		{"# note\ninsert into t values (1)", ActionWrite},
		{"--nospace", ActionOther},
		{"Update t set a=1", ActionWrite},
		{"LOAD DATA INFILE 'x' INTO TABLE t", ActionWrite},
		{"truncate t", ActionDelete},
		{"GRANT ALL ON *.* TO x", ActionDDL},
		{"SHOW TABLES", ActionOther},
		{"SELECTED", ActionOther},
		{"TABLE customers", ActionRead},
		{"/* unterminated", ActionOther},
		{"", ActionOther},
		{"   ", ActionOther},
	} {
		if got := mysqlKeywordAction([]byte(tc.q)); got != tc.want {
			t.Errorf("mysqlKeywordAction(%q) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

func TestMySQLExports(t *testing.T) {
	for _, q := range []string{"select * from t into outfile '/tmp/x'", "SELECT a INTO\n\tDUMPFILE 'x' FROM t", "select 1 Into   OutFile 'y'"} {
		if !mysqlExports([]byte(q)) {
			t.Errorf("mysqlExports(%q) = false", q)
		}
	}
	for _, q := range []string{"select * from t", "select a into @v from t", "select * from into_outfile", "select 1 intooutfile", "select x_into outfile", "into"} {
		if mysqlExports([]byte(q)) {
			t.Errorf("mysqlExports(%q) = true", q)
		}
	}
}

func TestMySQLCommandAction(t *testing.T) {
	for cmd, want := range map[string]Action{
		"select": ActionRead, "insert_select": ActionWrite, "update_multi": ActionWrite, "load": ActionWrite,
		"delete_multi": ActionDelete, "truncate": ActionDelete, "create_table": ActionDDL, "drop_db": ActionDDL,
		"alter_user": ActionDDL, "rename_table": ActionDDL, "revoke_all": ActionDDL, "show_tables": ActionOther,
		"execute_sql": ActionOther, "create_": ActionOther, "": ActionOther,
	} {
		if got := mysqlCommandAction([]byte(cmd)); got != want {
			t.Errorf("mysqlCommandAction(%q) = %v, want %v", cmd, got, want)
		}
	}
}

// mysqlSamples returns the messages of the sample files of a format: each
// line of a .log, each .input whole.
func mysqlSamples(tb testing.TB, dir string) [][]byte {
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		switch filepath.Ext(path) {
		case ".log":
			out = append(out, bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))...)
		case ".input":
			out = append(out, data)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("no samples in testdata/%s", dir)
	}
	return out
}

func FuzzMySQLAudit(f *testing.F) {
	for _, s := range mysqlSamples(f, "mysql_audit") {
		f.Add(s)
	}
	// Whole statements in one message, for Split to hand to one decoder.
	if whole, err := os.ReadFile(filepath.Join("testdata", "mysql_audit", "merge.log")); err == nil {
		f.Add(whole)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		d := NewMySQLAudit(Limits{MaxMessageBytes: 1 << 16})
		recs, err := d.Split(nil, msg)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Split error %v (%T) is not a *DecodeError", err, err)
			}
			return
		}
		if len(recs) == 0 {
			t.Fatalf("Split(%q) returned no record", msg)
		}
		for _, rec := range recs {
			if !mysqlWithin(rec, msg) {
				t.Fatalf("Split(%q) returned %q, which is not part of the message", msg, rec)
			}
			var ev Event
			err := d.Decode(rec, &ev)
			if err != nil {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("Decode error %v (%T) is not a *DecodeError", err, err)
				}
				if de.Reason.String() == "unknown" || de.Offset < -1 || de.Offset > len(rec) {
					t.Fatalf("Decode error %+v is malformed", de)
				}
				continue
			}
			mysqlCheckEvent(t, &ev, rec)
		}
	})
}

// mysqlWithin reports whether sub is a part of msg in memory, as Split
// promises.
func mysqlWithin(sub, msg []byte) bool {
	if len(sub) == 0 {
		return true
	}
	s, m := uintptr(unsafe.Pointer(unsafe.SliceData(sub))), uintptr(unsafe.Pointer(unsafe.SliceData(msg)))
	return len(msg) > 0 && s >= m && s+uintptr(len(sub)) <= m+uintptr(len(msg))
}

func BenchmarkMySQLAuditDecode(b *testing.B) {
	for _, bc := range []struct{ name, msg string }{
		// One line of an Enterprise audit file: a statement with its
		// statistics, about 600 bytes.
		{"general", `{ "timestamp": "2024-03-14 09:26:53", "id": 1, "class": "general", "event": "status", "connection_id": 4711, "account": { "user": "jdoe", "host": "%" }, "login": { "user": "jdoe", "os": "", "ip": "10.20.7.19", "proxy": "" }, "general_data": { "command": "Query", "sql_command": "select", "query": "SELECT id, email, phone FROM customers WHERE created_at > '2024-01-01'", "status": 0 }, "query_statistics": { "query_time": 1.734512, "rows_sent": 48213, "rows_examined": 120977, "bytes_received": 71, "bytes_sent": 3921170 } },`},
		{"table_access", `{ "timestamp": "2024-03-14 09:26:51", "id": 0, "class": "table_access", "event": "read", "connection_id": 4711, "account": { "user": "jdoe", "host": "%" }, "login": { "user": "jdoe", "os": "", "ip": "10.20.7.19", "proxy": "" }, "table_access_data": { "db": "shop", "table": "customers", "query": "SELECT id, email, phone FROM customers WHERE created_at > '2024-01-01'", "sql_command": "select" } },`},
		{"percona_legacy", `{"audit_record":{"name":"Query","record":"3_2024-01-02T10:00:00","timestamp":"2024-01-02T10:11:12 UTC","command_class":"select","connection_id":"8","status":0,"sqltext":"SELECT name, email FROM customers WHERE name LIKE 'O\\'Brien%'","user":"root[root] @ localhost []","host":"localhost","os_user":"","ip":"","db":"shop"}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := []byte(bc.msg)
			d := NewMySQLAudit(Limits{})
			var ev Event
			if err := d.Decode(msg, &ev); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if err := d.Decode(msg, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMySQLAuditStatement decodes a statement as the server writes it
// when it logs both classes: a table_access record, held, and the status
// record it is joined to. One op is one event.
func BenchmarkMySQLAuditStatement(b *testing.B) {
	const q = "SELECT id, email, phone FROM customers WHERE created_at > '2024-01-01'"
	ta := []byte(mysqlTARec("09:26:51", 4711, "jdoe", "read", "shop", "customers", q))
	st := []byte(mysqlStatusRec("09:26:53", 4711, "jdoe", "select", q, 48213))
	d := NewMySQLAudit(Limits{})
	var ev Event
	_ = d.Decode(st, &ev)
	b.ReportAllocs()
	b.SetBytes(int64(len(ta) + len(st)))
	for b.Loop() {
		// The held answer is shared; ReasonOf would allocate here.
		if err := d.Decode(ta, &ev); err != mysqlErrHeld {
			b.Fatalf("table_access record not held: %v", err)
		}
		if err := d.Decode(st, &ev); err != nil || ev.Object == "" {
			b.Fatalf("status record not joined: %v %+v", err, ev)
		}
	}
}

func TestMySQLAuditAllocs(t *testing.T) {
	d := NewMySQLAudit(Limits{})
	var ev Event
	var recs [][]byte
	samples := mysqlSamples(t, "mysql_audit")
	decodeAll := func() {
		for _, msg := range samples {
			recs, _ = d.Split(recs[:0], msg)
			for _, rec := range recs {
				_ = d.Decode(rec, &ev)
			}
		}
	}
	decodeAll() // fill the interners and grow the buffers
	// Error paths allocate their *DecodeError; count only good records,
	// and only messages whose records Split could all delimit.
	var good, whole [][]byte
	for _, msg := range samples {
		recs, _ = d.Split(recs[:0], msg)
		delimited := true
		for _, rec := range recs {
			err := d.Decode(rec, &ev)
			if err == nil {
				good = append(good, rec)
			}
			if r, _ := ReasonOf(err); r == ReasonMalformedJSON {
				delimited = false
			}
		}
		if delimited {
			whole = append(whole, msg)
		}
	}
	if len(good) < 30 {
		t.Fatalf("only %d good records in the samples", len(good))
	}
	if a := testing.AllocsPerRun(50, func() {
		for _, rec := range good {
			_ = d.Decode(rec, &ev)
		}
	}); a != 0 {
		t.Fatalf("Decode allocates %v per %d records", a, len(good))
	}
	if a := testing.AllocsPerRun(50, func() {
		for _, msg := range whole {
			recs, _ = d.Split(recs[:0], msg)
		}
	}); a != 0 {
		t.Fatalf("Split allocates %v per %d messages", a, len(whole))
	}
}

// The statement sequences below have the shapes of the MySQL Reference
// Manual's "Audit Log File Formats" (JSON): a table_access record per table
// the statement opens (mysql_audit_table_access_notify in sql/sql_audit.cc
// writes them in the order of the statement's table list, all with the
// statement text), then one general status record with query_statistics.

func mysqlTARec(ts string, conn int, user, event, db, table, query string) string {
	return fmt.Sprintf(`{ "timestamp": "2024-05-02 %s", "id": 0, "class": "table_access", "event": %q, "connection_id": %d, "account": { "user": %q, "host": "%%" }, "login": { "user": %q, "os": "", "ip": "10.30.1.5", "proxy": "" }, "table_access_data": { "db": %q, "table": %q, "query": %q, "sql_command": "select" } },`,
		ts, event, conn, user, user, db, table, query)
}

func mysqlStatusRec(ts string, conn int, user, cmd, query string, rowsSent int) string {
	return fmt.Sprintf(`{ "timestamp": "2024-05-02 %s", "id": 1, "class": "general", "event": "status", "connection_id": %d, "account": { "user": %q, "host": "%%" }, "login": { "user": %q, "os": "", "ip": "10.30.1.5", "proxy": "" }, "general_data": { "command": "Query", "sql_command": %q, "query": %q, "status": 0 }, "query_statistics": { "query_time": 0.01, "rows_sent": %d, "rows_examined": %d, "bytes_received": 40, "bytes_sent": 4000 } },`,
		ts, conn, user, user, cmd, query, rowsSent, rowsSent)
}

func mysqlConnRecord(ts string, conn int, user, event string, status int) string {
	acct := user
	if status != 0 {
		acct = ""
	}
	return fmt.Sprintf(`{ "timestamp": "2024-05-02 %s", "id": 0, "class": "connection", "event": %q, "connection_id": %d, "account": { "user": %q, "host": "%%" }, "login": { "user": %q, "os": "", "ip": "10.30.1.5", "proxy": "" }, "connection_data": { "connection_type": "ssl", "status": %d, "db": "shop" } },`,
		ts, event, conn, acct, user, status)
}

// mysqlDecodeAll decodes recs in order with d and returns the events, and
// fails on any error but not_audit.
func mysqlDecodeAll(t *testing.T, d *MySQLAudit, recs ...string) []Event {
	t.Helper()
	var out []Event
	for _, rec := range recs {
		var ev Event
		err := d.Decode([]byte(rec), &ev)
		if r, _ := ReasonOf(err); err != nil && r != ReasonNotAudit {
			t.Fatalf("Decode(%s): %v", rec, err)
		}
		if err == nil {
			mysqlCheckEvent(t, &ev, []byte(rec))
			out = append(out, ev)
		}
	}
	return out
}

func mysqlWant(t *testing.T, ev Event, principal, object string, action Action, rows int64, hasRows bool) {
	t.Helper()
	if ev.Principal != principal || ev.Object != object || ev.Action != action || ev.Rows != rows || ev.HasRows != hasRows {
		t.Errorf("event %+v, want principal %q object %q action %v rows %d (has %v)", ev, principal, object, action, rows, hasRows)
	}
}

func TestMySQLAuditMergeStatement(t *testing.T) {
	d := NewMySQLAudit(Limits{})
	const q = "SELECT * FROM customers"
	evs := mysqlDecodeAll(t, d,
		mysqlConnRecord("10:00:00", 7001, "report", "connect", 0),
		// What the mysql client sends after connecting.
		mysqlStatusRec("10:00:00", 7001, "report", "select", "select @@version_comment limit 1", 1),
		mysqlTARec("10:00:05", 7001, "report", "read", "shop", "customers", q),
		mysqlStatusRec("10:00:07", 7001, "report", "select", q, 5000),
	)
	if len(evs) != 3 {
		t.Fatalf("%d events, want login, version query, one read: %+v", len(evs), evs)
	}
	mysqlWant(t, evs[0], "report", "", ActionLogin, 0, false)
	mysqlWant(t, evs[1], "report", "", ActionRead, 1, true)
	mysqlWant(t, evs[2], "report", "shop.customers", ActionRead, 5000, true)
	if evs[2].Database != "shop" || evs[2].Time != time.Date(2024, 5, 2, 10, 0, 7, 0, time.UTC).UnixNano() {
		t.Errorf("merged event %+v: want database shop and the status record's time", evs[2])
	}
	if len(d.held) != 0 || d.MergesLost() != 0 {
		t.Errorf("after the statement: %d held, %d lost", len(d.held), d.MergesLost())
	}
}

func TestMySQLAuditMergeJoin(t *testing.T) {
	d := NewMySQLAudit(Limits{})
	const q = "SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id"
	evs := mysqlDecodeAll(t, d,
		mysqlStatusRec("10:00:00", 7001, "report", "set_option", "SET NAMES utf8mb4", 0),
		mysqlTARec("10:01:00", 7001, "report", "read", "shop", "orders", q),
		mysqlTARec("10:01:00", 7001, "report", "read", "shop", "customers", q),
		mysqlStatusRec("10:01:02", 7001, "report", "select", q, 1200),
	)
	if len(evs) != 2 {
		t.Fatalf("%d events, want the SET and one read: %+v", len(evs), evs)
	}
	mysqlWant(t, evs[1], "report", "shop.orders", ActionRead, 1200, true)
}

// A filter that logs table_access alone: every table is an event, without
// rows, as soon as it is read.
func TestMySQLAuditTableAccessOnly(t *testing.T) {
	d := NewMySQLAudit(Limits{})
	evs := mysqlDecodeAll(t, d,
		mysqlTARec("10:00:01", 7001, "report", "read", "shop", "customers", "SELECT * FROM customers"),
		mysqlTARec("10:00:02", 7002, "etl", "read", "billing", "cards", "SELECT pan FROM cards"),
		mysqlTARec("10:00:03", 7001, "report", "read", "shop", "customers", "SELECT * FROM customers"),
		mysqlTARec("10:00:04", 7001, "report", "delete", "shop", "sessions", "DELETE FROM sessions"),
	)
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4: %+v", len(evs), evs)
	}
	mysqlWant(t, evs[0], "report", "shop.customers", ActionRead, 0, false)
	mysqlWant(t, evs[1], "etl", "billing.cards", ActionRead, 0, false)
	mysqlWant(t, evs[2], "report", "shop.customers", ActionRead, 0, false)
	mysqlWant(t, evs[3], "report", "shop.sessions", ActionDelete, 0, false)
	if len(d.held) != 0 {
		t.Errorf("%d statements held without any status record", len(d.held))
	}
}

// Until the first status record, the decoder cannot know one will come: the
// statement in progress then is emitted as its table and as its status.
func TestMySQLAuditMergeColdStart(t *testing.T) {
	d := NewMySQLAudit(Limits{})
	const q = "SELECT * FROM customers"
	evs := mysqlDecodeAll(t, d,
		mysqlTARec("10:00:05", 7001, "report", "read", "shop", "customers", q),
		mysqlStatusRec("10:00:07", 7001, "report", "select", q, 5000),
		mysqlTARec("10:00:08", 7001, "report", "read", "shop", "customers", q),
		mysqlStatusRec("10:00:09", 7001, "report", "select", q, 5000),
	)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(evs), evs)
	}
	mysqlWant(t, evs[0], "report", "shop.customers", ActionRead, 0, false)
	mysqlWant(t, evs[1], "report", "", ActionRead, 5000, true)
	mysqlWant(t, evs[2], "report", "shop.customers", ActionRead, 5000, true)
}

func TestMySQLAuditMergeInterleaved(t *testing.T) {
	d := NewMySQLAudit(Limits{})
	const qa, qb = "SELECT email FROM customers WHERE id > 100", "SELECT * FROM payments"
	evs := mysqlDecodeAll(t, d,
		mysqlStatusRec("10:00:00", 7001, "report", "select", "SELECT 1", 1),
		mysqlTARec("10:02:01", 7001, "report", "read", "shop", "customers", qa),
		mysqlTARec("10:02:01", 7002, "etl", "read", "billing", "payments", qb),
		mysqlStatusRec("10:02:02", 7002, "etl", "select", qb, 10),
		mysqlStatusRec("10:02:03", 7001, "report", "select", qa, 20),
		// The same connection id on another server, for another user.
		mysqlTARec("10:03:00", 7003, "alice", "read", "shop", "customers", qa),
		mysqlStatusRec("10:03:00", 7003, "bob", "select", "SELECT 1", 1),
		mysqlStatusRec("10:03:01", 7003, "alice", "select", qa, 7),
	)
	if len(evs) != 5 {
		t.Fatalf("%d events, want 5: %+v", len(evs), evs)
	}
	mysqlWant(t, evs[1], "etl", "billing.payments", ActionRead, 10, true)
	mysqlWant(t, evs[2], "report", "shop.customers", ActionRead, 20, true)
	mysqlWant(t, evs[3], "bob", "", ActionRead, 1, true)
	mysqlWant(t, evs[4], "alice", "shop.customers", ActionRead, 7, true)
	if evs[1].Session == evs[2].Session {
		t.Error("two connections share a session")
	}
}

// A table whose statement gets no status record is emitted on its own, at
// the connection's next statement or at its end; a login stays a login.
func TestMySQLAuditMergeOrphans(t *testing.T) {
	d := NewMySQLAudit(Limits{})
	evs := mysqlDecodeAll(t, d,
		mysqlStatusRec("10:00:00", 7001, "report", "select", "SELECT 1", 1),
		// Next statement of another text: the held one takes its place.
		mysqlTARec("10:01:00", 7001, "report", "insert", "shop", "audit_log", "INSERT INTO audit_log VALUES (1)"),
		mysqlTARec("10:01:01", 7001, "report", "read", "shop", "customers", "SELECT id FROM customers"),
		mysqlStatusRec("10:01:02", 7001, "report", "select", "SELECT id FROM customers", 3),
		// A stored program: its statement's table, then the CALL's status.
		mysqlTARec("10:02:00", 7001, "report", "read", "billing", "cards", "SELECT pan FROM cards"),
		mysqlStatusRec("10:02:01", 7001, "report", "call_procedure", "CALL billing.export_cards()", 0),
		// The end of the connection emits what it held.
		mysqlConnRecord("10:03:00", 7001, "report", "disconnect", 0),
		// A login stays a login; what the connection held is lost.
		mysqlTARec("10:04:00", 7002, "etl", "read", "shop", "customers", "SELECT * FROM customers"),
		mysqlConnRecord("10:04:01", 7002, "etl", "connect", 0),
		mysqlConnRecord("10:04:02", 7003, "root", "connect", 1045),
	)
	if len(evs) != 7 {
		t.Fatalf("%d events, want 7: %+v", len(evs), evs)
	}
	mysqlWant(t, evs[1], "report", "shop.audit_log", ActionWrite, 0, false)
	mysqlWant(t, evs[2], "report", "shop.customers", ActionRead, 3, true)
	mysqlWant(t, evs[3], "report", "", ActionOther, 0, false)
	mysqlWant(t, evs[4], "report", "billing.cards", ActionRead, 0, false)
	mysqlWant(t, evs[5], "etl", "", ActionLogin, 0, false)
	mysqlWant(t, evs[6], "root", "", ActionLogin, 0, false)
	if evs[6].Status != StatusDenied {
		t.Errorf("failed connect: status %v, want denied", evs[6].Status)
	}
	if evs[4].Time != time.Date(2024, 5, 2, 10, 2, 0, 0, time.UTC).UnixNano() {
		t.Errorf("held table emitted at the disconnect with time %d, want its own", evs[4].Time)
	}
	if len(d.held) != 0 || d.MergesLost() != 1 {
		t.Errorf("%d held, %d lost; want 0 and 1", len(d.held), d.MergesLost())
	}
}

func TestMySQLAuditMergeBound(t *testing.T) {
	d := NewMySQLAudit(Limits{})
	d.maxHeld = 4
	recs := []string{mysqlStatusRec("10:00:00", 1, "u", "select", "SELECT 1", 1)}
	for c := 10; c < 15; c++ {
		recs = append(recs, mysqlTARec("10:00:01", c, "u", "read", "shop", "customers", "SELECT * FROM customers"))
	}
	recs = append(recs, mysqlStatusRec("10:00:02", 10, "u", "select", "SELECT * FROM customers", 5),
		mysqlStatusRec("10:00:02", 14, "u", "select", "SELECT * FROM customers", 6))
	evs := mysqlDecodeAll(t, d, recs...)
	if d.MergesLost() != 4 || len(d.held) != 0 {
		t.Fatalf("%d lost, %d held; want 4 and 0", d.MergesLost(), len(d.held))
	}
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(evs), evs)
	}
	mysqlWant(t, evs[1], "u", "", ActionRead, 5, true)
	mysqlWant(t, evs[2], "u", "shop.customers", ActionRead, 6, true)
}

func TestMySQLAuditMergeAllocs(t *testing.T) {
	d := NewMySQLAudit(Limits{})
	var recs [][]byte
	for _, r := range []string{
		mysqlStatusRec("10:00:00", 7001, "report", "select", "SELECT 1", 1),
		mysqlTARec("10:00:05", 7001, "report", "read", "shop", "customers", "SELECT * FROM customers"),
		mysqlTARec("10:00:05", 7002, "etl", "read", "shop", "orders", "SELECT * FROM orders o JOIN items i"),
		mysqlTARec("10:00:05", 7002, "etl", "read", "shop", "items", "SELECT * FROM orders o JOIN items i"),
		mysqlStatusRec("10:00:07", 7001, "report", "select", "SELECT * FROM customers", 5000),
		mysqlStatusRec("10:00:07", 7002, "etl", "select", "SELECT * FROM orders o JOIN items i", 50),
		mysqlTARec("10:00:08", 7003, "x", "read", "shop", "t", "SELECT * FROM t"),
		mysqlConnRecord("10:00:09", 7003, "x", "disconnect", 0),
	} {
		recs = append(recs, []byte(r))
	}
	var ev Event
	run := func() {
		for _, rec := range recs {
			_ = d.Decode(rec, &ev)
		}
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("merging allocates %v per %d records", a, len(recs))
	}
}
