package event

// The samples in testdata/aws_das follow the AWS documentation of Database
// Activity Streams ("Audit log contents and examples",
// "databaseActivityEventList JSON array"), as stored in
// awsdocs/amazon-aurora-user-guide and awsdocs/amazon-rds-user-guide,
// doc_source/DBActivityStreams.Monitoring.md; testdata/aws_das/SOURCES.md
// says which example each file follows.
//
// This file also holds the fuzz and allocation harness the ocsf and
// azure_sql tests share; the golden harness is in golden_test.go.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// dasSeeds returns every sample message of a testdata directory, for
// seeding fuzz tests and benchmarks.
func dasSeeds(tb testing.TB, dir string) [][]byte {
	tb.Helper()
	var seeds [][]byte
	inputs, _ := filepath.Glob(filepath.Join(dir, "*.input"))
	for _, p := range inputs {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	lines, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	for _, p := range lines {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				seeds = append(seeds, l)
			}
		}
	}
	return seeds
}

// dasCheckError fails unless err is a well-formed *DecodeError for msg.
func dasCheckError(t *testing.T, op string, msg []byte, err error) *DecodeError {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("%s error %v (%T) is not a *DecodeError", op, err, err)
	}
	if de.Reason.String() == "unknown" || de.Offset < -1 || de.Offset > len(msg) {
		t.Fatalf("%s error %+v is malformed", op, de)
	}
	if de.Reason == ReasonMalformedJSON && json.Valid(msg) && !deep(msg) {
		t.Fatalf("%s says malformed_json for valid JSON %q", op, msg)
	}
	return de
}

// dasFuzzCheck is the fuzz body shared by the three formats: Split and
// Decode never panic, fail only with a *DecodeError, accept only valid
// JSON, hand out sub-slices of the message, and every decoded event has a
// time and a principal.
func dasFuzzCheck(t *testing.T, d Decoder, msg []byte) {
	decode := func(rec []byte) {
		var ev Event
		if err := d.Decode(rec, &ev); err != nil {
			dasCheckError(t, "Decode", rec, err)
			return
		}
		if ev.Time == 0 || ev.Principal == "" {
			t.Fatalf("Decode(%q) = %+v without a time or a principal", rec, ev)
		}
		if !json.Valid(rec) {
			t.Fatalf("Decode(%q) accepted invalid JSON", rec)
		}
	}
	decode(msg)
	sp, ok := d.(Splitter)
	if !ok {
		return
	}
	recs, err := sp.Split(nil, msg)
	if err != nil {
		dasCheckError(t, "Split", msg, err)
		return
	}
	for _, rec := range recs {
		if len(rec) > 0 && !dasWithin(rec, msg) {
			t.Fatalf("Split(%q) returned %q, not a part of the message", msg, rec)
		}
		decode(rec)
	}
}

func dasWithin(sub, msg []byte) bool {
	if len(msg) == 0 {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(msg)))
	first := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return first >= base && first+uintptr(len(sub)) <= base+uintptr(len(msg))
}

// dasAllocs checks that decoding (and splitting) a message allocates
// nothing once the decoder is warm.
func dasAllocs(t *testing.T, d Decoder, msg []byte) {
	t.Helper()
	var ev Event
	var recs [][]byte
	sp, split := d.(Splitter)
	// Failures allocate their error; only messages whose records all
	// decode, or are ignored with a shared error, are measured.
	recs = [][]byte{msg}
	if split {
		var err error
		if recs, err = sp.Split(nil, msg); err != nil {
			return
		}
	}
	for _, rec := range recs {
		if err := d.Decode(rec, &ev); err != nil {
			if de, _ := err.(*DecodeError); de == nil || !de.Reason.Ignored() {
				return
			}
		}
	}
	run := func() {
		if split {
			var err error
			if recs, err = sp.Split(recs[:0], msg); err != nil {
				t.Fatal(err)
			}
		} else {
			recs = append(recs[:0], msg)
		}
		for _, rec := range recs {
			if err := d.Decode(rec, &ev); err != nil {
				if de, _ := err.(*DecodeError); de == nil || !de.Reason.Ignored() {
					t.Fatal(err)
				}
			}
		}
	}
	run()
	if n := testing.AllocsPerRun(200, run); n != 0 {
		t.Errorf("split and decode allocate %v times per message", n)
	}
	if split {
		if n := testing.AllocsPerRun(200, func() { recs, _ = sp.Split(recs[:0], msg) }); n != 0 {
			t.Errorf("Split allocates %v times per message", n)
		}
	}
}

// dasBench benchmarks Decode of one record, reporting events per second.
func dasBench(b *testing.B, d Decoder, msg []byte) {
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func TestDASGolden(t *testing.T) {
	goldenDir(t, "aws_das", registeredDecoder("aws_das"))
}

// dasSelect is a realistic Aurora PostgreSQL SELECT event, about 900 bytes.
const dasSelect = `{"startTime":"2024-05-14 08:02:12.001240+00","logTime":"2024-05-14 08:02:12.087311+00","statementId":2,"substatementId":1,"objectType":"TABLE","command":"SELECT","objectName":"public.customers","databaseName":"shop","dbUserName":"svc_billing","remoteHost":"10.20.4.17","remotePort":"51234","sessionId":"66431a93.2f4c","rowCount":250,"commandText":"SELECT id, email, card_last4 FROM customers WHERE region = $1 AND created_at > $2 ORDER BY id LIMIT 250","paramList":["eu-west","2024-01-01"],"pid":12108,"clientApplication":"billing-exporter","exitCode":null,"class":"READ","serverVersion":"15.4","serverType":"PostgreSQL","serviceName":"Amazon Aurora PostgreSQL-Compatible edition","serverHost":"10.20.1.5","netProtocol":"TCP","dbProtocol":"Postgres 3.0","type":"record","errorMessage":null}`

func TestDASDecode(t *testing.T) {
	d := NewDAS(Limits{})
	var ev Event
	if err := d.Decode([]byte(dasSelect), &ev); err != nil {
		t.Fatal(err)
	}
	want := Event{
		Time:      time.Date(2024, 5, 14, 8, 2, 12, 87311000, time.UTC).UnixNano(),
		Principal: "svc_billing",
		SourceIP:  netip.MustParseAddr("10.20.4.17"),
		Client:    "billing-exporter",
		Session:   xxhash.Sum64String("66431a93.2f4c"),
		Database:  "shop",
		Object:    "public.customers",
		Action:    ActionRead,
		Rows:      250,
		HasRows:   true,
	}
	if fmt.Sprint(normalize(ev)) != fmt.Sprint(normalize(want)) {
		t.Errorf("got  %+v\nwant %+v", ev, want)
	}
}

// TestDASDecodeRecord covers Decode given a whole record rather than the
// events Split hands out.
func TestDASDecodeRecord(t *testing.T) {
	wrap := func(events ...string) []byte {
		return []byte(`{"type":"DatabaseActivityMonitoringRecord","clusterId":"c","instanceId":"i","databaseActivityEventList":[` + strings.Join(events, ",") + `]}`)
	}
	hb := `{"type":"heartbeat","logTime":"2024-05-14 08:10:00+00"}`
	tests := []struct {
		name   string
		msg    []byte
		reason Reason // 0: decoded
	}{
		{"one event", wrap(dasSelect), 0},
		{"one event among heartbeats", wrap(hb, dasSelect, hb), 0},
		{"only heartbeats", wrap(hb, hb), ReasonHeartbeat},
		{"empty list", wrap(), ReasonNotAudit},
		{"several events", wrap(dasSelect, dasSelect), ReasonBadValue},
		{"outer record", []byte(`{"type":"DatabaseActivityMonitoringRecords","version":"1.1","databaseActivityEvents":` + string(wrap(dasSelect)) + `,"key":"k"}`), 0},
		{"encrypted", []byte(`{"type":"DatabaseActivityMonitoringRecords","version":"1.1","databaseActivityEvents":"AYAD","key":"k"}`), ReasonUnrecognized},
		{"record without list", []byte(`{"type":"DatabaseActivityMonitoringRecord","clusterId":"c"}`), ReasonNotAudit},
		{"list of records", wrap(string(wrap(dasSelect))), ReasonBadValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev Event
			err := NewDAS(Limits{}).Decode(tt.msg, &ev)
			if tt.reason == 0 {
				if err != nil || ev.Principal != "svc_billing" || ev.Rows != 250 {
					t.Fatalf("Decode = %v, %+v", err, ev)
				}
				return
			}
			if r, _ := ReasonOf(err); r != tt.reason {
				t.Fatalf("Decode error %v, want %v", err, tt.reason)
			}
		})
	}
}

func TestDASTooLarge(t *testing.T) {
	d := NewDAS(Limits{MaxMessageBytes: 64})
	var ev Event
	if r, _ := ReasonOf(d.Decode([]byte(dasSelect), &ev)); r != ReasonTooLarge {
		t.Errorf("Decode: %v", r)
	}
	if _, err := d.Split(nil, []byte(dasSelect)); err == nil {
		t.Error("Split accepted a message over the limit")
	} else if r, _ := ReasonOf(err); r != ReasonTooLarge {
		t.Errorf("Split: %v", r)
	}
}

// TestDASErrorsHoldNoContent checks that errors name fields, never values.
func TestDASErrorsHoldNoContent(t *testing.T) {
	secret := "4111111111111111"
	for _, msg := range []string{
		`{"logTime":"` + secret + `x","dbUserName":"svc"}`,
		`{"logTime":"2024-05-14 08:02:12+00","dbUserName":"svc","rowCount":"` + secret + `x"}`,
		`{"logTime":"2024-05-14 08:02:12+00","dbUserName":"` + secret + ``,
	} {
		var ev Event
		err := NewDAS(Limits{}).Decode([]byte(msg), &ev)
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("Decode(%q) error %v", msg, err)
		}
	}
}

func TestDASTime(t *testing.T) {
	utc := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixNano()
	}
	tests := []struct {
		in       string
		zoneless bool
		want     int64 // 0: rejected
	}{
		{"2019-10-30 00:39:49.990579+00", false, utc("2019-10-30T00:39:49.990579Z")},
		{"2019-10-30 00:39:49.990579-05", false, utc("2019-10-30T05:39:49.990579Z")},
		{"2022-10-06 21:24:59.9422268+00", false, utc("2022-10-06T21:24:59.9422268Z")},
		{"2024-05-14 08:02:12+0200", false, utc("2024-05-14T06:02:12Z")},
		{"2024-05-14 08:02:12 UTC", false, utc("2024-05-14T08:02:12Z")},
		{"2024-05-14T08:02:12.5Z", false, utc("2024-05-14T08:02:12.5Z")},
		{"2021-01-15 00:15:36.233787", true, utc("2021-01-15T00:15:36.233787Z")},
		{"2021-01-15 00:15:36.233787", false, 0},
		{"1715673732087", false, utc("2024-05-14T08:02:12.087Z")},
		{"2024-05-14 08:02:12+0", false, 0},
		{"2024-13-14 08:02:12+00", false, 0},
		{"2024-05-14 08:02:12.0000000000000000000000000+00", false, 0},
	}
	for _, tt := range tests {
		got, ok := dasTime([]byte(tt.in), tt.zoneless)
		if ok != (tt.want != 0) || got != tt.want {
			t.Errorf("dasTime(%q, %v) = %d, %v; want %d", tt.in, tt.zoneless, got, ok, tt.want)
		}
	}
}

func TestDASSQLAction(t *testing.T) {
	tests := map[string]Action{
		"SELECT * FROM t": ActionRead,
		"  select 1":      ActionRead,
		"(SELECT a FROM t) UNION (SELECT a FROM u)":                     ActionRead,
		"/* app=x */ SELECT 1":                                          ActionRead,
		"-- note\nselect 1":                                             ActionRead,
		"# note\nselect 1":                                              ActionRead,
		"SELECT * FROM t INTO OUTFILE '/tmp/x'":                         ActionExport,
		"select a into dumpfile '/tmp/y' from t":                        ActionExport,
		"SELECT 'into outfile' FROM t":                                  ActionRead,
		"SELECT a INTO @v FROM t":                                       ActionRead,
		"WITH x AS (SELECT 1) SELECT * FROM x":                          ActionRead,
		"WITH x AS (SELECT 1) DELETE FROM t":                            ActionDelete,
		"with recursive r as (select 1) update t set a = 1":             ActionWrite,
		"COPY t TO '/tmp/t.csv'":                                        ActionExport,
		"COPY (SELECT * FROM t WHERE a IN (SELECT b FROM u)) TO STDOUT": ActionExport,
		"copy t (a, b) from stdin":                                      ActionWrite,
		"INSERT INTO t VALUES (1)":                                      ActionWrite,
		"REPLACE INTO t VALUES (1)":                                     ActionWrite,
		"UPDATE t SET a = 1":                                            ActionWrite,
		"LOAD DATA INFILE 'x' INTO TABLE t":                             ActionWrite,
		"DELETE FROM t":                                                 ActionDelete,
		"TRUNCATE t":                                                    ActionDelete,
		"CREATE TABLE t (a int)":                                        ActionDDL,
		"GRANT SELECT ON t TO u":                                        ActionDDL,
		"SET NOCOUNT ON; SELECT * FROM t":                               ActionRead,
		"BEGIN; UPDATE t SET a = 1; COMMIT":                             ActionWrite,
		"SET x = 1":                                                     ActionOther,
		"(@P1 nvarchar(4000),@P2 int)SELECT * FROM t WHERE a = @P1":     ActionRead,
		"EXEC sp_who":                                                   ActionOther,
		"SHOW TABLES":                                                   ActionOther,
		"":                                                              ActionOther,
		"((((":                                                          ActionOther,
		"'unterminated":                                                 ActionOther,
		"/* unterminated":                                               ActionOther,
		"UNLOAD ('select * from t') TO 's3://b/p'":                      ActionExport,
		"BACKUP DATABASE sales TO DISK = 'x'":                           ActionExport,
	}
	for q, want := range tests {
		if got := dasSQLAction([]byte(q)); got != want {
			t.Errorf("dasSQLAction(%q) = %v, want %v", q, got, want)
		}
	}
}

func TestDASAllocs(t *testing.T) {
	for _, msg := range dasSeeds(t, filepath.Join("testdata", "aws_das")) {
		dasAllocs(t, NewDAS(Limits{}), msg)
	}
}

func FuzzAWSDAS(f *testing.F) {
	for _, s := range dasSeeds(f, filepath.Join("testdata", "aws_das")) {
		f.Add(s)
	}
	f.Add([]byte(dasSelect))
	f.Fuzz(func(t *testing.T, msg []byte) {
		dasFuzzCheck(t, NewDAS(Limits{MaxMessageBytes: 1 << 16}), msg)
	})
}

func BenchmarkAWSDASDecode(b *testing.B) {
	dasBench(b, NewDAS(Limits{}), []byte(dasSelect))
}
