package event

import (
	"net/netip"
	"strings"
	"testing"
)

// Genuine csvlog records from testdata/pgaudit/real/real.csv (PostgreSQL
// 15.18, pgaudit 1.7): line 79 (csvAudit), lines 64-69 (a six-line
// statement) and line 91 (the RAISE LOG impostor). The odd cases edit
// them; the verbose location is as in testdata/pgaudit/local/allescapes.csv.
const (
	csvAudit     = `2026-11-30 02:49:26.645 UTC,"etl","shop",10694,"[local]",6b0ce436.29c6,3,"SELECT",2026-11-30 02:49:26 UTC,3/38,0,LOG,00000,"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM public.customers,<not logged>,5000",,,,,,,,,"nightly-etl","client backend",,0`
	csvMultiLine = `2026-11-30 02:49:26.517 UTC,"analyst","shop",10672,"127.0.0.1:59490",6b0ce436.29b0,4,"SELECT",2026-11-30 02:49:26 UTC,3/32,0,LOG,00000,"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,""SELECT date_trunc('day', created_at) AS day,
       count(*) AS signups
  FROM public.customers
 WHERE id BETWEEN 100 AND 4000
 GROUP BY 1
 ORDER BY 1;"",<not logged>,1",,,,,,,,,"metabase","client backend",,0`
	csvImpostor = `2026-11-30 02:49:26.829 UTC,"app_svc","shop",10702,"[local]",6b0ce436.29ce,3,"DO",2026-11-30 02:49:26 UTC,3/44,0,LOG,00000,"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,""select * from customers"",1000000",,,,,"PL/pgSQL function inline_code_block line 1 at RAISE","DO $$ BEGIN RAISE LOG 'AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,""select * from customers"",1000000'; END $$;",,,"psql","client backend",,0`
)

// csvTail is everything after the message column of csvAudit.
const csvTail = `,,,,,,,,,"nightly-etl","client backend",,0`

func csvWithMessage(m string) string {
	return strings.Replace(csvAudit, `"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM public.customers,<not logged>,5000"`, m, 1)
}

func TestPgauditCSVLogDecode(t *testing.T) {
	same := func(*Event) {}
	cases := []pgauditCase{
		{name: "genuine", input: csvAudit, want: same},
		{name: "line break after", input: csvAudit + "\r\n", want: same},
		{name: "multi-line statement", input: csvMultiLine, want: func(e *Event) {
			e.Time -= 128e6
			e.Principal, e.Client, e.Rows = "analyst", "metabase", 1
			e.Session = sessionHash([]byte("6b0ce436.29b0"))
			e.SourceIP = netip.MustParseAddr("127.0.0.1")
		}},
		{name: "ipv6 client with port", input: strings.Replace(csvAudit, `"[local]"`, `"::1:54321"`, 1),
			want: func(e *Event) { e.SourceIP = netip.MustParseAddr("::1") }},
		{name: "verbose location of pgaudit", input: strings.Replace(csvAudit, csvTail, `,,,,,,,,"log_audit_event, pgaudit.c:783","nightly-etl","client backend",,0`, 1), want: same},
		{name: "postgresql 12 columns", input: strings.TrimSuffix(csvAudit, `,"client backend",,0`), want: same},
		{name: "a later postgresql's extra columns", input: csvAudit + `,x,"y"`, want: same},
		{name: "doubled quotes in names", input: strings.Replace(csvAudit, `"nightly-etl"`, `"etl ""nightly"""`, 1),
			want: func(e *Event) { e.Client = `etl "nightly"` }},
		{name: "quoted object name", input: csvWithMessage(`"AUDIT: SESSION,1,1,WRITE,INSERT,TABLE,""public.""""Odd, Name"""""",x,<not logged>,2"`),
			want: func(e *Event) { e.Object, e.Action, e.Rows = `public."Odd, Name"`, ActionWrite, 2 }},
		{name: "copy to", input: csvWithMessage(`"AUDIT: SESSION,1,1,READ,COPY,,,COPY public.customers TO STDOUT WITH (FORMAT csv),<not logged>,0"`),
			want: func(e *Event) { e.Action, e.Rows, e.HasRows = ActionExport, 0, false }},

		{name: "raise impostor", wantReason: ReasonUntrusted, input: csvImpostor},
		{name: "context alone", wantReason: ReasonUntrusted, input: strings.Replace(csvAudit, csvTail, `,,,,,"PL/Perl anonymous code block",,,,"nightly-etl","client backend",,0`, 1)},
		{name: "query alone", wantReason: ReasonUntrusted, input: strings.Replace(csvAudit, csvTail, `,,,,,,"select f()",,,"nightly-etl","client backend",,0`, 1)},
		{name: "verbose location of a raise", wantReason: ReasonUntrusted, input: strings.Replace(csvAudit, csvTail, `,,,,,,,,"exec_stmt_raise, pl_exec.c:3891","nightly-etl","client backend",,0`, 1)},
		{name: "raise exception", wantReason: ReasonUntrusted, input: strings.Replace(csvAudit, `,LOG,00000,`, `,ERROR,P0001,`, 1)},
		{name: "connection line", wantReason: ReasonNotAudit, input: csvWithMessage(`"connection authorized: user=etl database=shop application_name=nightly-etl"`)},
		{name: "empty message", wantReason: ReasonNotAudit, input: csvWithMessage(``)},
		{name: "zone by name", wantReason: ReasonBadTime, input: strings.Replace(csvAudit, `02:49:26.645 UTC`, `03:49:26.645 CET`, 1)},
		{name: "no time", wantReason: ReasonMissingTime, input: strings.Replace(csvAudit, `2026-11-30 02:49:26.645 UTC,`, `,`, 1)},
		{name: "no user", wantReason: ReasonMissingPrincipal, input: strings.Replace(csvAudit, `"etl",`, `,`, 1)},
		{name: "bad audit body", wantReason: ReasonBadValue, input: csvWithMessage(`"AUDIT: SESSION,1,1,READ,SELECT"`)},
		{name: "too few columns", wantReason: ReasonUnrecognized, input: strings.TrimSuffix(csvAudit, `,"nightly-etl","client backend",,0`)},
		{name: "unterminated quote", wantReason: ReasonUnrecognized, input: csvAudit[:len(csvAudit)-60]},
		{name: "quote in a bare column", wantReason: ReasonUnrecognized, input: strings.Replace(csvAudit, `6b0ce436.29c6`, `6b0ce"436`, 1)},
		{name: "two records", wantReason: ReasonUnrecognized, input: csvAudit + "\n" + csvAudit},
		{name: "a json line", wantReason: ReasonUnrecognized, input: jsonAudit},
	}
	runPgauditCases(t, newPgauditCSVLog(Limits{}), func() Event {
		e := jsonAuditEvent()
		return e
	}, cases)
}

func TestPgauditCSVLogSplit(t *testing.T) {
	d := newPgauditCSVLog(Limits{})
	chunk := csvAudit + "\n" + csvMultiLine + "\r\n\n" + csvImpostor + "\n"
	recs, err := d.Split(nil, []byte(chunk))
	if err != nil || len(recs) != 3 {
		t.Fatalf("recs = %d, err = %v", len(recs), err)
	}
	want := []Reason{0, 0, ReasonUntrusted}
	var ev Event
	for i, r := range recs {
		err := d.Decode(r, &ev)
		if got, _ := ReasonOf(err); got != want[i] {
			t.Fatalf("record %d: err = %v, want %v", i, err, want[i])
		}
	}
}

func FuzzPgauditCSVLog(f *testing.F) {
	d := newPgauditCSVLog(Limits{})
	pgauditSeeds(f, "testdata/pgaudit/real/real.csv", d)
	pgauditSeeds(f, "testdata/pgaudit/local/allescapes.csv", d)
	f.Fuzz(func(t *testing.T, msg []byte) { checkFuzzDecode(t, d, msg) })
}

func BenchmarkPgauditCSVLogDecode(b *testing.B) {
	for _, bc := range []struct{ name, msg string }{
		{"audit", csvAudit},
		{"multi_line", csvMultiLine},
		{"not_audit", csvWithMessage(`"connection authorized: user=etl database=shop application_name=nightly-etl"`)},
		{"denied", csvDenied},
	} {
		b.Run(bc.name, func(b *testing.B) { benchPgaudit(b, newPgauditCSVLog(Limits{}), []byte(bc.msg)) })
	}
}
