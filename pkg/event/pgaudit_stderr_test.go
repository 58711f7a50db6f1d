package event

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Genuine stderr entries from testdata/pgaudit/real/real.log (PostgreSQL
// 15.18, pgaudit 1.7, log_line_prefix = '%m [%p] %q%u@%d '): line 81
// (stderrAudit), lines 65-70 (a six-line statement: continuation lines
// start with a tab) and lines 95-97 (the RAISE LOG impostor with its
// CONTEXT: and STATEMENT: lines). stderrAllEscapes is line 31 of
// testdata/pgaudit/local/allescapes.log, written with every escape.
const (
	realPrefix      = "%m [%p] %q%u@%d "
	stderrAudit     = `2026-11-30 02:49:26.645 UTC [10694] etl@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM public.customers,<not logged>,5000`
	stderrMultiLine = "2026-11-30 02:49:26.517 UTC [10672] analyst@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,\"SELECT date_trunc('day', created_at) AS day,\n" +
		"\t       count(*) AS signups\n" +
		"\t  FROM public.customers\n" +
		"\t WHERE id BETWEEN 100 AND 4000\n" +
		"\t GROUP BY 1\n" +
		"\t ORDER BY 1;\",<not logged>,1"
	stderrImpostor = "2026-11-30 02:49:26.829 UTC [10702] app_svc@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,\"select * from customers\",1000000\n" +
		"2026-11-30 02:49:26.829 UTC [10702] app_svc@shop CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE\n" +
		"2026-11-30 02:49:26.829 UTC [10702] app_svc@shop STATEMENT:  DO $$ BEGIN RAISE LOG 'AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,\"select * from customers\",1000000'; END $$;"

	allEscapesPrefix = `%m|%t|%n|%p|%u|%d|%a|%h|%r|%c|%l|%s|%v|%x|%e|%q|%i|%b|%P|%Q|%% [%-8p] %10u: `
	stderrAllEscapes = `2026-11-30 02:51:38.463 UTC|2026-11-30 02:51:38 UTC|1796007098.463|13727|postgres|postgres|PostgreSQL JDBC Driver|127.0.0.1|127.0.0.1(56952)|6b0ce4ba.359f|3|2026-11-30 02:51:38 UTC|3/13|0|00000||SELECT|client backend||0|% [13727   ]   postgres: LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,select id from customers limit 2,<not logged>,2`
)

func stderrDecoder(t testing.TB, prefix string) *pgauditStderr {
	t.Helper()
	d, err := newPgauditStderr(Limits{}, Options{LogLinePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPgauditStderrDecode(t *testing.T) {
	same := func(*Event) {}
	noSession := func() Event {
		e := jsonAuditEvent()
		e.Client, e.Session = "", 0
		return e
	}
	const (
		raiseContext   = "\n2026-11-30 02:49:26.645 UTC [10694] etl@shop CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE"
		raiseStatement = "\n2026-11-30 02:49:26.645 UTC [10694] etl@shop STATEMENT:  DO $$ BEGIN RAISE LOG 'AUDIT: ...'; END $$;"
	)
	runPgauditCases(t, stderrDecoder(t, realPrefix), noSession, []pgauditCase{
		{name: "genuine", input: stderrAudit, want: same},
		{name: "line break after", input: stderrAudit + "\r\n", want: same},
		{name: "multi-line statement", input: stderrMultiLine, want: func(e *Event) {
			e.Time -= 128e6
			e.Principal, e.Rows = "analyst", 1
		}},
		{name: "verbose", input: strings.Replace(stderrAudit, "LOG:  AUDIT", "LOG:  00000: AUDIT", 1) +
			"\n2026-11-30 02:49:26.645 UTC [10694] etl@shop LOCATION:  log_audit_event, pgaudit.c:783", want: same},
		// A RAISE whose CONTEXT: and STATEMENT: lines were shipped apart
		// from it cannot be told from pgaudit (see pgaudit_stderr.go).
		{name: "raise line alone is indistinguishable", input: strings.SplitN(stderrImpostor, "\n", 2)[0], want: func(e *Event) {
			e.Time = time.Date(2026, 11, 30, 2, 49, 26, 829e6, time.UTC).UnixNano()
			e.Principal, e.Rows, e.HasRows = "app_svc", 0, false
		}},

		{name: "raise impostor", wantReason: ReasonUntrusted, input: stderrImpostor},
		{name: "raise with terse verbosity", wantReason: ReasonUntrusted, input: stderrAudit + raiseStatement},
		{name: "raise with context only", wantReason: ReasonUntrusted, input: stderrAudit + raiseContext},
		{name: "verbose location of a raise", wantReason: ReasonUntrusted, input: stderrAudit + raiseContext +
			"\n2026-11-30 02:49:26.645 UTC [10694] etl@shop LOCATION:  exec_stmt_raise, pl_exec.c:3891"},
		{name: "raise exception", wantReason: ReasonUntrusted, input: strings.Replace(stderrAudit, "LOG:", "ERROR:", 1)},
		{name: "a further line alone", wantReason: ReasonNotAudit, input: strings.TrimPrefix(raiseContext, "\n")},
		{name: "connection line", wantReason: ReasonNotAudit, input: "2026-11-30 02:49:26.592 UTC [10676] etl@shop LOG:  connection authorized: user=etl database=shop application_name=nightly-etl"},
		{name: "postmaster line", wantReason: ReasonNotAudit, input: "2026-11-30 02:49:26.833 UTC [10628] LOG:  received fast shutdown request"},
		{name: "error line", wantReason: ReasonNotAudit, input: "2026-11-30 02:49:26.464 UTC [10670] support@shop ERROR:  division by zero\n" +
			"2026-11-30 02:49:26.464 UTC [10670] support@shop STATEMENT:  SELECT id / (id - 42) FROM public.customers WHERE id BETWEEN 40 AND 44"},
		{name: "continuation line alone", wantReason: ReasonUnrecognized, input: "\t  FROM public.customers"},
		{name: "two entries", wantReason: ReasonUnrecognized, input: stderrAudit + "\n" + stderrAudit},
		{name: "another prefix", wantReason: ReasonUnrecognized, input: strings.Replace(stderrAudit, "[10694]", "10694", 1)},
		{name: "a json line", wantReason: ReasonUnrecognized, input: jsonAudit},
		{name: "truncated statement", wantReason: ReasonBadValue, input: strings.SplitN(stderrMultiLine, "\n", 2)[0]},
		{name: "zone by name", wantReason: ReasonBadTime, input: strings.Replace(stderrAudit, "UTC", "CET", 1)},
	})
}

// TestPgauditStderrEscapes checks the values each escape gives.
func TestPgauditStderrEscapes(t *testing.T) {
	ms := time.Date(2026, 11, 30, 2, 51, 38, 463e6, time.UTC).UnixNano()
	base := Event{Time: ms, Principal: "postgres", Database: "postgres", Client: "PostgreSQL JDBC Driver",
		SourceIP: netip.MustParseAddr("127.0.0.1"), Session: sessionHash([]byte("6b0ce4ba.359f")),
		Object: "public.customers", Action: ActionRead, Status: StatusOK, Rows: 2, HasRows: true}
	for _, tc := range []struct {
		name, prefix, line string
		want               func(e *Event)
	}{
		{"all escapes", allEscapesPrefix, stderrAllEscapes, func(*Event) {}},
		{"rds", "%t:%r:%u@%d:[%p]:",
			"2026-11-30 02:51:38 UTC:127.0.0.1(56952):postgres@postgres:[13727]:LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,select id from customers limit 2,<not logged>,2",
			func(e *Event) { e.Time, e.Client, e.Session = ms-463e6, "", 0 }},
		{"epoch, ipv6 host with port, session from start and pid", "%n [%p] %r %s %u@%d ",
			"1796007098.463 [13727] ::1(56952) 2026-11-30 04:51:38 +02 postgres@postgres LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,select id from customers limit 2,<not logged>,2",
			func(e *Event) { e.Client, e.SourceIP = "", netip.MustParseAddr("::1") }},
		{"unix socket", "%m %h %u ",
			"2026-11-30 02:51:38.463 UTC [local] postgres LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,select id from customers limit 2,<not logged>,2",
			func(e *Event) { e.Client, e.SourceIP, e.Session, e.Database = "", netip.Addr{}, 0, "" }},
		{"user last, no space before the severity", "%m [%p] %u",
			"2026-11-30 02:51:38.463 UTC [13727] postgresLOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,select id from customers limit 2,<not logged>,2",
			func(e *Event) { e.Client, e.SourceIP, e.Session, e.Database = "", netip.Addr{}, 0, "" }},
		{"application name with spaces before the user", "%m [%p] %a %u@%d ",
			"2026-11-30 02:51:38.463 UTC [13727] PostgreSQL JDBC Driver postgres@postgres LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,select id from customers limit 2,<not logged>,2",
			func(e *Event) { e.SourceIP, e.Session = netip.Addr{}, 0 }},
		{"statement text that looks like a prefix", "%m [%p] %a %u@%d ",
			"2026-11-30 02:51:38.463 UTC [13727] PostgreSQL JDBC Driver postgres@postgres LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,select id from customers -- x a@b LOG:  y,<not logged>,2",
			func(e *Event) { e.SourceIP, e.Session = netip.Addr{}, 0 }},
		{"padding", "%m [%-8p] %10u@%-12d|",
			"2026-11-30 02:51:38.463 UTC [13727   ]   postgres@postgres    |LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,select id from customers limit 2,<not logged>,2",
			func(e *Event) { e.Client, e.SourceIP, e.Session = "", netip.Addr{}, 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			if err := stderrDecoder(t, tc.prefix).Decode([]byte(tc.line), &ev); err != nil {
				t.Fatal(err)
			}
			want := base
			tc.want(&want)
			if !reflect.DeepEqual(normalize(ev), normalize(want)) {
				t.Fatalf("got  %+v\nwant %+v", ev, want)
			}
		})
	}
}

// TestPgauditStderrForgedPrefix: a client may choose its application_name,
// and with %a before %u a name that holds the rest of a prefix and an AUDIT
// message makes any line of its session read two ways. Neither reading may
// be trusted: the forged record must not come out attributed to alice.
func TestPgauditStderrForgedPrefix(t *testing.T) {
	d := stderrDecoder(t, "%m [%p] %a %u@%d ")
	for _, line := range []string{
		// A non-audit line of mallory's session.
		"2026-11-30 02:51:38.463 UTC [13727] x alice@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,t,s, mallory@shop LOG:  disconnection: session time: 0:00:00.010 user=mallory database=shop host=[local]",
		// Her own audit record (from testdata/pgaudit/local/appfirst.log).
		"2026-11-30 02:57:11.181 UTC [23350] x postgres@postgres LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE, postgres@postgres LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,select 1 from customers limit 1,<not logged>,1",
	} {
		var ev Event
		err := d.Decode([]byte(line), &ev)
		if r, _ := ReasonOf(err); r != ReasonUntrusted {
			t.Fatalf("err = %v, event %+v; want untrusted", err, ev)
		}
	}
	// A line built to make the matcher backtrack stops at the budget.
	d = stderrDecoder(t, "%m [%p] %a,%a,%a,%a,%a,%a %u ")
	line := "2026-11-30 02:51:38.463 UTC [1] " + strings.Repeat(",", 60) + " u LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,s,p,1"
	var ev Event
	if r, _ := ReasonOf(d.Decode([]byte(line), &ev)); r != ReasonUntrusted {
		t.Fatalf("want untrusted after the step budget")
	}
}

// TestPgauditStderrLineBreakInRoleName documents what the stderr format
// cannot tell: PostgreSQL writes a role name with a line break as it is
// (seen with PostgreSQL 15.18: role "a\nb" logs "... [3589] a" and
// "b@postgres LOG:  AUDIT: ..." on two lines), so a role named after a
// forged prefix has its genuine records read as another user's. jsonlog
// escapes the name ("user":"a\nb").
func TestPgauditStderrLineBreakInRoleName(t *testing.T) {
	d := stderrDecoder(t, realPrefix)
	chunk := "2026-11-30 02:49:26.645 UTC [3589] x\n" +
		"2026-11-30 02:49:26.645 UTC [3589] alice@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM public.customers,<not logged>,5000\n"
	recs, _ := d.Split(nil, []byte(chunk))
	var ev Event
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	if r, _ := ReasonOf(d.Decode(recs[0], &ev)); r != ReasonUnrecognized {
		t.Fatalf("first line: %v", r)
	}
	if err := d.Decode(recs[1], &ev); err != nil || ev.Principal != "alice" {
		t.Fatalf("second line: %v %+v", err, ev)
	}
}

func TestPgauditStderrSplit(t *testing.T) {
	d := stderrDecoder(t, realPrefix)
	chunk := "\t ORDER BY 1;\",<not logged>,1\n" + // the end of an entry cut by the shipper
		stderrAudit + "\n" +
		stderrMultiLine + "\r\n" +
		"\n" +
		stderrImpostor + "\n" +
		"2026-11-30 02:49:26.464 UTC [10670] support@shop ERROR:  division by zero\n" +
		"2026-11-30 02:49:26.464 UTC [10670] support@shop STATEMENT:  SELECT id / (id - 42)\n" +
		"\t FROM public.customers\n" +
		"2026-11-30 02:49:26.833 UTC [10628] LOG:  received fast shutdown request\n"
	recs, err := d.Split(nil, []byte(chunk))
	if err != nil {
		t.Fatal(err)
	}
	want := []Reason{ReasonUnrecognized, 0, 0, ReasonUntrusted, ReasonNotAudit, ReasonNotAudit}
	if len(recs) != len(want) {
		t.Fatalf("got %d records, want %d: %q", len(recs), len(want), recs)
	}
	var ev Event
	for i, r := range recs {
		got, _ := ReasonOf(d.Decode(r, &ev))
		if got != want[i] {
			t.Errorf("record %d %q: reason %v, want %v", i, r, got, want[i])
		}
	}
}

func FuzzPgauditStderr(f *testing.F) {
	d := stderrDecoder(f, realPrefix)
	pgauditSeeds(f, "testdata/pgaudit/real/real.log", d)
	all := stderrDecoder(f, allEscapesPrefix)
	f.Add([]byte(stderrAllEscapes))
	f.Fuzz(func(t *testing.T, msg []byte) {
		checkFuzzDecode(t, d, msg)
		checkFuzzDecode(t, all, msg)
	})
}

func BenchmarkPgauditStderrDecode(b *testing.B) {
	for _, bc := range []struct{ name, prefix, msg string }{
		{"audit", realPrefix, stderrAudit},
		{"multi_line", realPrefix, stderrMultiLine},
		{"not_audit", realPrefix, "2026-11-30 02:49:26.592 UTC [10676] etl@shop LOG:  connection authorized: user=etl database=shop application_name=nightly-etl"},
		{"all_escapes", allEscapesPrefix, stderrAllEscapes},
		{"denied", sqlstatePrefix, stderrDenied},
		{"denied_english", realPrefix, strings.ReplaceAll(stderrDenied, " 42501 ", " ")},
	} {
		b.Run(bc.name, func(b *testing.B) { benchPgaudit(b, stderrDecoder(b, bc.prefix), []byte(bc.msg)) })
	}
}
