package event

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Golden tests of the pgaudit decoders. Inputs:
//
//   - testdata/pgaudit/real/: genuine PostgreSQL 15.18 + pgaudit 1.7 logs
//     written by another helper (see its README.md); never edited here.
//   - testdata/pgaudit/local/: genuine logs of a second run (README.md
//     there), with log_line_prefix escapes, time zones, verbose and terse
//     error verbosity, an application-name forgery and odd identifiers.
//   - testdata/pgaudit/denial/: genuine logs of refused logins and refused
//     statements, genuine and forged with RAISE EXCEPTION ... USING ERRCODE,
//     once with %e in log_line_prefix and once without (README.md there).
//
// Each input file is one message for the shared golden harness
// (golden_test.go); testdata/pgaudit/golden/<dir>-<input>.<format>.golden
// holds its records. Regenerate with go test ./pkg/event/ -run Pgaudit
// -update.

// pgauditInputs lists the golden inputs of one format: files of the given
// extension under testdata/pgaudit/real, local and denial.
func pgauditInputs(t *testing.T, ext string) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"real", "local", "denial"} {
		m, err := filepath.Glob(filepath.Join("testdata", "pgaudit", dir, "*."+ext))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) == 0 {
		t.Fatalf("no testdata/pgaudit/*/*.%s inputs", ext)
	}
	return out
}

func goldenPath(input, format string) string {
	dir := filepath.Base(filepath.Dir(input))
	base := strings.TrimSuffix(filepath.Base(input), filepath.Ext(input))
	return filepath.Join("testdata", "pgaudit", "golden", dir+"-"+base+"."+format+".golden")
}

// readPrefix returns the log_line_prefix a stderr input was written with:
// <input>.prefix, or for real/real.log the one its README names.
func readPrefix(t *testing.T, input string) string {
	t.Helper()
	b, err := os.ReadFile(strings.TrimSuffix(input, ".log") + ".prefix")
	if errors.Is(err, os.ErrNotExist) && filepath.Base(input) == "real.log" {
		return "%m [%p] %q%u@%d "
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPgauditGoldenJSONLog(t *testing.T) {
	for _, in := range pgauditInputs(t, "json") {
		t.Run(in, func(t *testing.T) {
			goldenFile(t, in, goldenPath(in, "jsonlog"), false, newPgauditJSONLog(Limits{}))
		})
	}
}

func TestPgauditGoldenCSVLog(t *testing.T) {
	for _, in := range pgauditInputs(t, "csv") {
		t.Run(in, func(t *testing.T) {
			goldenFile(t, in, goldenPath(in, "csvlog"), false, newPgauditCSVLog(Limits{}))
		})
	}
}

func TestPgauditGoldenStderr(t *testing.T) {
	for _, in := range pgauditInputs(t, "log") {
		t.Run(in, func(t *testing.T) {
			d, err := newPgauditStderr(Limits{}, Options{LogLinePrefix: readPrefix(t, in)})
			if err != nil {
				t.Fatal(err)
			}
			goldenFile(t, in, goldenPath(in, "stderr"), false, d)
		})
	}
}

// TestPgauditFormatsAgree decodes the three destinations of one server run
// and checks that they yield the same audit events: the formats differ, the
// records do not. The stderr prefix of the real run names neither the
// session, the application nor the host, so those are compared between
// jsonlog and csvlog only.
func TestPgauditFormatsAgree(t *testing.T) {
	for _, run := range []string{"real/real", "local/rds", "local/pgbadger", "local/kolkata", "local/allescapes", "denial/sqlstate", "denial/english"} {
		t.Run(run, func(t *testing.T) {
			base := filepath.Join("testdata", "pgaudit", run)
			read := func(ext string) []byte {
				b, err := os.ReadFile(base + "." + ext)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			events := func(recs []goldenRecord) []goldenRecord {
				var out []goldenRecord
				for _, r := range recs {
					if r.Error == "" || r.Error == "untrusted" {
						r.Line, r.Record = 0, 0
						out = append(out, r)
					}
				}
				return out
			}
			js := events(decodeSample(t, newPgauditJSONLog(Limits{}), read("json"), false))
			cs := events(decodeSample(t, newPgauditCSVLog(Limits{}), read("csv"), false))
			d, err := newPgauditStderr(Limits{}, Options{LogLinePrefix: readPrefix(t, base+".log")})
			if err != nil {
				t.Fatal(err)
			}
			se := events(decodeSample(t, d, read("log"), false))
			if len(js) == 0 {
				t.Fatal("no audit events")
			}
			if len(js) != len(cs) || len(js) != len(se) {
				t.Fatalf("event counts differ: jsonlog %d, csvlog %d, stderr %d", len(js), len(cs), len(se))
			}
			// The one event stderr cannot reject: a RAISE EXCEPTION ...
			// USING ERRCODE = '42501' in a session with
			// log_error_verbosity = terse, which writes no CONTEXT: line
			// (see pgaudit_denial.go); jsonlog and csvlog have the context.
			terse, hasTerse := map[string]int{"denial/sqlstate": 39, "denial/english": 19}[run]
			for i := range js {
				if hasTerse && i == terse {
					if js[i].Error != "untrusted" || cs[i].Error != "untrusted" || se[i].Status != "denied" || se[i].Principal != "postgres" {
						t.Errorf("event %d, the terse RAISE: jsonlog %+v\ncsvlog %+v\nstderr %+v", i, js[i], cs[i], se[i])
					}
					continue
				}
				if !sameRecord(js[i], cs[i]) {
					t.Errorf("event %d: jsonlog %+v\ncsvlog %+v", i, js[i], cs[i])
				}
				a, b := js[i], se[i]
				if b.Session == "" {
					a.Session = ""
				}
				if b.Client == "" {
					a.Client = ""
				}
				if b.SourceIP == "" {
					a.SourceIP = ""
				}
				if a.Time != "" && !strings.Contains(b.Time, ".") {
					// %t has no fraction of a second.
					tm, err := time.Parse(time.RFC3339Nano, a.Time)
					if err != nil {
						t.Fatal(err)
					}
					a.Time = tm.Truncate(time.Second).Format(time.RFC3339Nano)
				}
				if !sameRecord(a, b) {
					t.Errorf("event %d: jsonlog %+v\nstderr %+v", i, a, b)
				}
			}
		})
	}
}

type pgauditCase struct {
	name       string
	input      string
	want       func(e *Event) // edits the base event; nil when wantReason is set
	wantReason Reason
}

func runPgauditCases(t *testing.T, d Decoder, base func() Event, cases []pgauditCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			err := d.Decode([]byte(tc.input), &ev)
			if tc.wantReason != 0 {
				var de *DecodeError
				if !errors.As(err, &de) || de.Reason != tc.wantReason {
					t.Fatalf("err = %v, want reason %v", err, tc.wantReason)
				}
				if strings.Contains(de.Error(), "customers") || strings.Contains(de.Error(), "AUDIT") {
					t.Fatalf("error %q quotes the message", de.Error())
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			want := base()
			tc.want(&want)
			if !reflect.DeepEqual(normalize(ev), normalize(want)) {
				t.Fatalf("got  %+v\nwant %+v", ev, want)
			}
		})
	}
}

func pgauditSeeds(f *testing.F, path string, split Splitter) {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	recs, err := split.Split(nil, b)
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range recs {
		f.Add(r)
	}
}

// checkFuzzDecode is the property every pgaudit fuzz target checks.
func checkFuzzDecode(t *testing.T, d Decoder, msg []byte) {
	recs := [][]byte{msg}
	if s, ok := d.(Splitter); ok {
		var err error
		if recs, err = s.Split(nil, msg); err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("split error %v is not a *DecodeError", err)
			}
			return
		}
	}
	recs = append(recs, msg)
	var ev Event
	for _, r := range recs {
		err := d.Decode(r, &ev)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			continue
		}
		if ev.Time == 0 || ev.Principal == "" {
			t.Fatalf("decoded without time or principal: %+v", ev)
		}
	}
}

func benchPgaudit(b *testing.B, d Decoder, msg []byte) {
	var ev Event
	_ = d.Decode(msg, &ev)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		_ = d.Decode(msg, &ev)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestPgauditZeroAllocs checks that Decode and Split allocate nothing in
// steady state, for records and for the ignored lines that outnumber them.
func TestPgauditZeroAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Decoder
		msgs []string
	}{
		{"jsonlog", newPgauditJSONLog(Limits{}), []string{jsonAudit,
			withMessage(`AUDIT: SESSION,4,1,READ,COPY,,,\"copy \"\"Odd, Name\"\" to stdout;\",<not logged>,0`),
			withMessage(`connection authorized: user=etl database=shop`),
			jsonDenied, jsonLoginDenied, strings.Replace(strings.Replace(jsonLoginDenied, `"user":"analyst",`, ``, 1), `permission denied for database \"hr\"`, `password authentication failed for user \"analyst\"`, 1),
			strings.Replace(jsonDenied, `"statement"`, `"context":"PL/pgSQL function inline_code_block line 1 at RAISE","statement"`, 1)}},
		{"csvlog", newPgauditCSVLog(Limits{}), []string{csvAudit, csvMultiLine, csvImpostor, csvDenied,
			strings.Replace(csvDenied, `"permission denied for table customers"`, `"permission denied for column ""email"" of relation ""customers"""`, 1)}},
		{"stderr", stderrDecoder(t, realPrefix), []string{stderrAudit, stderrMultiLine, stderrImpostor,
			"2026-11-30 02:49:26.592 UTC [10676] etl@shop LOG:  connection authorized: user=etl database=shop",
			strings.ReplaceAll(stderrDenied, " 42501 ", " "), strings.ReplaceAll(stderrRaise, " 42501 ", " "),
			"2026-11-30 03:08:53.478 UTC [8677] mallory@shop FATAL:  pg_hba.conf rejects connection for host \"127.0.0.1\", user \"mallory\", database \"shop\", no encryption"}},
		{"stderr %e", stderrDecoder(t, sqlstatePrefix), []string{stderrDenied, stderrRaise,
			"2026-11-30 03:08:52.644 UTC [8617] [unknown]@[unknown] 28000 FATAL:  no pg_hba.conf entry for host \"127.0.0.1\", user \"analyst\", database \"postgres\", no encryption"}},
		{"stderr all escapes", stderrDecoder(t, allEscapesPrefix), []string{stderrAllEscapes}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			var recs [][]byte
			chunk := []byte(strings.Join(tc.msgs, "\n") + "\n")
			for _, m := range tc.msgs {
				msg := []byte(m)
				_ = tc.d.Decode(msg, &ev)
				if n := testing.AllocsPerRun(100, func() { _ = tc.d.Decode(msg, &ev) }); n != 0 {
					t.Errorf("Decode(%.40q...) allocates %v times", m, n)
				}
			}
			recs, _ = tc.d.(Splitter).Split(recs, chunk)
			if len(recs) != len(tc.msgs) {
				t.Fatalf("split %d records, want %d", len(recs), len(tc.msgs))
			}
			if n := testing.AllocsPerRun(100, func() { recs, _ = tc.d.(Splitter).Split(recs[:0], chunk) }); n != 0 {
				t.Errorf("Split allocates %v times", n)
			}
		})
	}
}
