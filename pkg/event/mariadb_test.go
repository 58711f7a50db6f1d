package event

import (
	"errors"
	"testing"
	"time"
)

// mariadbTestClock is the clock that dates the BSD syslog times of the
// samples.
var mariadbTestClock = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

func newMariaDBTest(l Limits) *MariaDBAudit {
	d := NewMariaDBAudit(l)
	d.now = func() time.Time { return mariadbTestClock }
	return d
}

func TestMariaDBAuditGolden(t *testing.T) {
	goldenDir(t, "mariadb_audit", func(*testing.T) Decoder { return newMariaDBTest(Limits{}) })
}

func TestMariaDBAuditRegistered(t *testing.T) {
	d, err := NewDecoder("mariadb_audit", Limits{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*MariaDBAudit); !ok || FormatDoc("mariadb_audit") == "" {
		t.Fatalf("mariadb_audit is %T with doc %q", d, FormatDoc("mariadb_audit"))
	}
}

func TestMariaDBAuditTooLarge(t *testing.T) {
	d := newMariaDBTest(Limits{MaxMessageBytes: 32})
	var ev Event
	err := d.Decode([]byte("20240102 10:11:12,db-prod-1,jdoe,10.20.7.19,42,1077,READ,shop,customers,"), &ev)
	if r, _ := ReasonOf(err); r != ReasonTooLarge {
		t.Fatalf("reason %v, want too_large", r)
	}
}

func TestMariaDBSyslogYear(t *testing.T) {
	for _, tc := range []struct {
		now  time.Time
		line string
		want time.Time
	}{
		// A December line read in January is from last year.
		{time.Date(2025, 1, 1, 0, 5, 0, 0, time.UTC), "Dec 31 23:59:59", time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC)},
		// A little ahead of the clock (skew) stays in this year.
		{time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), "Jun  3 08:00:00", time.Date(2024, 6, 3, 8, 0, 0, 0, time.UTC)},
		{time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), "Jun 30 08:00:00", time.Date(2023, 6, 30, 8, 0, 0, 0, time.UTC)},
		// Feb 29 in a year that has none is last leap year's only if
		// that is the year before.
		{time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC), "Feb 29 12:00:00", time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)},
	} {
		d := NewMariaDBAudit(Limits{})
		d.now = func() time.Time { return tc.now }
		var ev Event
		line := tc.line + " db1 mysql-server_auditing:  db1,u,10.0.0.1,1,2,READ,shop,t,"
		if err := d.Decode([]byte(line), &ev); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if got := time.Unix(0, ev.Time).UTC(); !got.Equal(tc.want) {
			t.Errorf("%q at %v: %v, want %v", tc.line, tc.now, got, tc.want)
		}
	}
}

func TestMariaDBAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":              "10.0.0.1",
		"10.0.0.1:54312":        "10.0.0.1",
		"localhost":             "invalid IP",
		"localhost:unavailable": "invalid IP",
		"db-1.internal:3306":    "invalid IP",
		"2001:db8::7":           "2001:db8::7",
		"2001:db8::7:58812":     "2001:db8::7",
		"[2001:db8::7]:58812":   "2001:db8::7",
		"::ffff:10.1.2.3":       "10.1.2.3",
		"":                      "invalid IP",
	} {
		if got := mariadbAddr([]byte(in)).String(); got != want {
			t.Errorf("mariadbAddr(%q) = %s, want %s", in, got, want)
		}
	}
}

func FuzzMariaDBAudit(f *testing.F) {
	for _, s := range mysqlSamples(f, "mariadb_audit") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		d := newMariaDBTest(Limits{MaxMessageBytes: 1 << 16})
		var ev Event
		err := d.Decode(msg, &ev)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error %v (%T) is not a *DecodeError", err, err)
			}
			if de.Reason.String() == "unknown" || de.Offset < -1 || de.Offset > len(msg) {
				t.Fatalf("Decode error %+v is malformed", de)
			}
			return
		}
		mysqlCheckEvent(t, &ev, msg)
		if ev.HasRows {
			t.Fatalf("Decode(%q) reported rows, which MariaDB's audit has not", msg)
		}
	})
}

// mariadbBenchLine is a QUERY record of about 250 bytes, with commas and
// escaped quotes in the statement.
const mariadbBenchLine = `20240102 10:11:12,db-prod-1,jdoe,10.20.7.19,42,1077,QUERY,shop,'SELECT id, email, phone FROM customers WHERE name = \'O\\\'Brien, Pat\' AND city IN (\'Cork\',\'Dublin\') ORDER BY created_at DESC LIMIT 500',0`

func BenchmarkMariaDBAuditDecode(b *testing.B) {
	for _, bc := range []struct{ name, msg string }{
		{"query", mariadbBenchLine},
		{"table", `20240102 10:11:12,db-prod-1,jdoe,10.20.7.19,42,1077,READ,shop,customers,`},
		{"syslog", `Jan  2 10:11:12 db-prod-1 mysql-server_auditing:  db-prod-1,jdoe,10.20.7.19,42,1077,READ,shop,customers,`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := []byte(bc.msg)
			d := newMariaDBTest(Limits{})
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

func TestMariaDBAuditAllocs(t *testing.T) {
	d := newMariaDBTest(Limits{})
	var ev Event
	var good [][]byte
	for _, msg := range mysqlSamples(t, "mariadb_audit") {
		if d.Decode(msg, &ev) == nil {
			good = append(good, msg)
		}
	}
	if len(good) < 30 {
		t.Fatalf("only %d good lines in the samples", len(good))
	}
	if a := testing.AllocsPerRun(50, func() {
		for _, msg := range good {
			_ = d.Decode(msg, &ev)
		}
	}); a != 0 {
		t.Fatalf("Decode allocates %v per %d lines", a, len(good))
	}
}
