package event

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// jsonAudit is a genuine jsonlog line of a pgaudit record, from
// testdata/pgaudit/real/real.json (line 66; PostgreSQL 15.18, pgaudit 1.7).
// The cases below edit it: the shapes of the odd ones (verbose location,
// time zones, RAISE impostors) are from testdata/pgaudit/local, a second
// run of the same server with other settings.
const jsonAudit = `{"timestamp":"2026-11-30 02:49:26.645 UTC","user":"etl","dbname":"shop","pid":10694,"remote_host":"[local]","session_id":"6b0ce436.29c6","line_num":3,"ps":"SELECT","session_start":"2026-11-30 02:49:26 UTC","vxid":"3/38","txid":0,"error_severity":"LOG","message":"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM public.customers,<not logged>,5000","application_name":"nightly-etl","backend_type":"client backend","query_id":0}`

var jsonAuditTime = time.Date(2026, 11, 30, 2, 49, 26, 645e6, time.UTC).UnixNano()

func jsonAuditEvent() Event {
	return Event{
		Time: jsonAuditTime, Principal: "etl", Database: "shop", Client: "nightly-etl",
		Session: sessionHash([]byte("6b0ce436.29c6")), Object: "public.customers",
		Action: ActionRead, Status: StatusOK, Rows: 5000, HasRows: true,
	}
}

// withMessage replaces the message of jsonAudit; m is JSON string content.
func withMessage(m string) string {
	return strings.Replace(jsonAudit,
		`"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM public.customers,<not logged>,5000"`,
		`"`+m+`"`, 1)
}

func TestPgauditJSONLogDecode(t *testing.T) {
	same := func(*Event) {}
	cases := []pgauditCase{
		{name: "genuine", input: jsonAudit, want: same},
		{name: "verbose location of pgaudit", input: strings.Replace(jsonAudit, `"application_name"`,
			`"func_name":"log_audit_event","file_name":"pgaudit.c","file_line_num":783,"application_name"`, 1), want: same},
		{name: "keys in another order", input: `{"message":"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM public.customers,<not logged>,5000",` +
			`"application_name":"nightly-etl","session_id":"6b0ce436.29c6","dbname":"shop","user":"etl","timestamp":"2026-11-30 02:49:26.645 UTC"}`, want: same},
		{name: "tcp client", input: strings.Replace(jsonAudit, `"remote_host":"[local]"`, `"remote_host":"10.1.2.3","remote_port":59510`, 1),
			want: func(e *Event) { e.SourceIP = netip.MustParseAddr("10.1.2.3") }},
		{name: "ipv6 client", input: strings.Replace(jsonAudit, `"remote_host":"[local]"`, `"remote_host":"::ffff:10.1.2.3"`, 1),
			want: func(e *Event) { e.SourceIP = netip.MustParseAddr("10.1.2.3") }},
		{name: "log_rows off", input: withMessage(`AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM public.customers,<not logged>`),
			want: func(e *Event) { e.Rows, e.HasRows = 0, false }},
		{name: "log_statement off", input: withMessage(`AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,<not logged>,<not logged>,5000`), want: same},
		{name: "object audit", input: withMessage(`AUDIT: OBJECT,3,2,READ,SELECT,TABLE,public.customers,<previously logged>,<previously logged>,7`),
			want: func(e *Event) { e.Rows = 7 }},
		{name: "parameters logged", input: withMessage(`AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM public.customers WHERE id = $1,\"42,\"\"x\"\"\",1`),
			want: func(e *Event) { e.Rows = 1 }},
		{name: "zero rows are a count", input: withMessage(`AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,x,<not logged>,0`),
			want: func(e *Event) { e.Rows = 0 }},
		{name: "quoted object name", input: withMessage(`AUDIT: SESSION,1,1,WRITE,INSERT,TABLE,\"public.\"\"Odd, Name\"\"\",x,<not logged>,2`),
			want: func(e *Event) { e.Object, e.Action, e.Rows = `public."Odd, Name"`, ActionWrite, 2 }},
		{name: "update", input: withMessage(`AUDIT: SESSION,1,1,WRITE,UPDATE,TABLE,public.customers,x,<not logged>,3`),
			want: func(e *Event) { e.Action, e.Rows = ActionWrite, 3 }},
		{name: "delete", input: withMessage(`AUDIT: SESSION,1,1,WRITE,DELETE,TABLE,public.customers,x,<not logged>,3`),
			want: func(e *Event) { e.Action, e.Rows = ActionDelete, 3 }},
		{name: "truncate has no count", input: withMessage(`AUDIT: SESSION,1,1,WRITE,TRUNCATE TABLE,,,truncate customers,<not logged>,0`),
			want: func(e *Event) { e.Action, e.Object, e.Rows, e.HasRows = ActionDelete, "", 0, false }},
		{name: "copy to is an export of the named table", input: withMessage(`AUDIT: SESSION,1,1,READ,COPY,,,COPY public.customers TO STDOUT WITH (FORMAT csv),<not logged>,0`),
			want: func(e *Event) { e.Action, e.Rows, e.HasRows = ActionExport, 0, false }},
		{name: "copy after a comment, unqualified, upper case", input: withMessage(`AUDIT: SESSION,1,1,READ,COPY,,,/* nightly */ copy Customers(id) to stdout,<not logged>,0`),
			want: func(e *Event) { e.Action, e.Object, e.Rows, e.HasRows = ActionExport, "customers", 0, false }},
		{name: "copy of a quoted name", input: withMessage(`AUDIT: SESSION,4,1,READ,COPY,,,\"copy \"\"Odd, Name\"\" to stdout;\",<not logged>,0`),
			want: func(e *Event) { e.Action, e.Object, e.Rows, e.HasRows = ActionExport, "Odd, Name", 0, false }},
		{name: "copy of a query names no table", input: withMessage(`AUDIT: SESSION,6,2,READ,COPY,,,copy (select * from customers where id<3) to stdout;,<not logged>,0`),
			want: func(e *Event) { e.Action, e.Object, e.Rows, e.HasRows = ActionExport, "", 0, false }},
		{name: "copy not first in the query string", input: withMessage(`AUDIT: SESSION,6,2,READ,COPY,,,select 'copy x'; copy customers to stdout,<not logged>,0`),
			want: func(e *Event) { e.Action, e.Object, e.Rows, e.HasRows = ActionExport, "", 0, false }},
		{name: "copy from is a write", input: withMessage(`AUDIT: SESSION,8,1,WRITE,COPY,,,copy secret from stdin,<not logged>,0`),
			want: func(e *Event) { e.Action, e.Object, e.Rows, e.HasRows = ActionWrite, "secret", 0, false }},
		{name: "ddl", input: withMessage(`AUDIT: SESSION,1,1,DDL,CREATE TABLE,,,\"CREATE TABLE t (a int, b int)\",<not logged>,0`),
			want: func(e *Event) { e.Action, e.Object, e.Rows, e.HasRows = ActionDDL, "", 0, false }},
		{name: "role", input: withMessage(`AUDIT: SESSION,1,1,ROLE,GRANT,,,GRANT SELECT ON public.customers TO etl;,<not logged>,0`),
			want: func(e *Event) { e.Action, e.Object, e.Rows, e.HasRows = ActionDDL, "", 0, false }},
		{name: "misc set", input: withMessage(`AUDIT: SESSION,7,1,MISC,SET,,,set log_error_verbosity = verbose;,<not logged>,0`),
			want: func(e *Event) { e.Action, e.Object, e.Rows, e.HasRows = ActionOther, "", 0, false }},
		{name: "function", input: withMessage(`AUDIT: SESSION,1,1,FUNCTION,DO,,,DO $$ BEGIN NULL; END $$;,<not logged>,0`),
			want: func(e *Event) { e.Action, e.Object, e.Rows, e.HasRows = ActionOther, "", 0, false }},
		{name: "cursor", input: withMessage(`AUDIT: SESSION,2,1,READ,DECLARE CURSOR,,,declare c cursor for select * from customers,<not logged>,0`),
			want: func(e *Event) { e.Action, e.Object, e.Rows, e.HasRows = ActionRead, "", 0, false }},
		{name: "zone +02", input: strings.Replace(jsonAudit, `02:49:26.645 UTC`, `04:49:26.645 +02`, 1), want: same},
		{name: "zone -0330", input: strings.Replace(jsonAudit, `2026-11-30 02:49:26.645 UTC`, `2026-11-29 23:19:26.645 -0330`, 1), want: same},
		{name: "zone +05:45", input: strings.Replace(jsonAudit, `2026-11-30 02:49:26.645 UTC`, `2026-11-30 08:34:26.645 +05:45`, 1), want: same},

		{name: "raise impostor", wantReason: ReasonUntrusted, input: strings.Replace(jsonAudit, `"application_name"`,
			`"context":"PL/pgSQL function inline_code_block line 1 at RAISE","statement":"DO $$ BEGIN RAISE LOG 'AUDIT: ...'; END $$;","application_name"`, 1)},
		{name: "context alone", wantReason: ReasonUntrusted, input: strings.Replace(jsonAudit, `"application_name"`,
			`"context":"PL/Python anonymous code block","application_name"`, 1)},
		{name: "statement alone", wantReason: ReasonUntrusted, input: strings.Replace(jsonAudit, `"application_name"`,
			`"statement":"select f()","application_name"`, 1)},
		{name: "context before the message", wantReason: ReasonUntrusted, input: strings.Replace(jsonAudit, `"user"`,
			`"context":"PL/pgSQL function f() line 1 at RAISE","user"`, 1)},
		{name: "verbose location of a raise", wantReason: ReasonUntrusted, input: strings.Replace(jsonAudit, `"application_name"`,
			`"func_name":"exec_stmt_raise","file_name":"pl_exec.c","file_line_num":3891,"application_name"`, 1)},
		{name: "raise exception", wantReason: ReasonUntrusted, input: strings.Replace(jsonAudit, `"error_severity":"LOG"`, `"error_severity":"ERROR"`, 1)},
		{name: "connection line", wantReason: ReasonNotAudit, input: withMessage(`connection authorized: user=etl database=shop application_name=nightly-etl`)},
		{name: "error line", wantReason: ReasonNotAudit, input: strings.Replace(withMessage(`permission denied for table customers`), `"application_name"`, `"statement":"SELECT * FROM public.customers","application_name"`, 1)},
		{name: "no message", wantReason: ReasonNotAudit, input: `{"timestamp":"2026-11-30 02:49:26.645 UTC","user":"etl"}`},
		{name: "null message", wantReason: ReasonNotAudit, input: strings.Replace(jsonAudit,
			`"message":"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM public.customers,<not logged>,5000"`, `"message":null`, 1)},
		{name: "zone by name", wantReason: ReasonBadTime, input: strings.Replace(jsonAudit, `02:49:26.645 UTC`, `03:49:26.645 CET`, 1)},
		{name: "no timestamp", wantReason: ReasonMissingTime, input: strings.Replace(jsonAudit, `"timestamp":"2026-11-30 02:49:26.645 UTC",`, ``, 1)},
		{name: "no user", wantReason: ReasonMissingPrincipal, input: strings.Replace(jsonAudit, `"user":"etl",`, ``, 1)},
		{name: "eight fields", wantReason: ReasonBadValue, input: withMessage(`AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,x`)},
		{name: "eleven fields", wantReason: ReasonBadValue, input: withMessage(`AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,x,y,1,2`)},
		{name: "unknown audit type", wantReason: ReasonBadValue, input: withMessage(`AUDIT: SESSIONS,1,1,READ,SELECT,TABLE,public.customers,x,y,1`)},
		{name: "unknown class", wantReason: ReasonBadValue, input: withMessage(`AUDIT: SESSION,1,1,EXFIL,SELECT,TABLE,public.customers,x,y,1`)},
		{name: "rows not a number", wantReason: ReasonBadValue, input: withMessage(`AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,x,y,1e6`)},
		{name: "quote inside a bare field", wantReason: ReasonBadValue, input: withMessage(`AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,x\"y,z,1`)},
		{name: "unterminated quote", wantReason: ReasonBadValue, input: withMessage(`AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,\"select 1,<not logged>,1`)},
		{name: "malformed", wantReason: ReasonMalformedJSON, input: jsonAudit[:len(jsonAudit)-1]},
		{name: "trailing garbage", wantReason: ReasonMalformedJSON, input: jsonAudit + "x"},
		{name: "not an object", wantReason: ReasonNotObject, input: `["AUDIT: SESSION"]`},
		{name: "user not a string", wantReason: ReasonBadValue, input: strings.Replace(jsonAudit, `"user":"etl"`, `"user":{"a":1}`, 1)},
	}
	runPgauditCases(t, newPgauditJSONLog(Limits{}), jsonAuditEvent, cases)

	t.Run("too large", func(t *testing.T) {
		var ev Event
		err := newPgauditJSONLog(Limits{MaxMessageBytes: 100}).Decode([]byte(jsonAudit), &ev)
		if r, _ := ReasonOf(err); r != ReasonTooLarge {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestPgauditForgedInsideStatement checks the argument for strict CSV: a
// user who writes a whole AUDIT record inside the text of a statement gets
// it logged inside pgaudit's quoted statement field, with every quote
// doubled, and no reading of the message yields the forged record.
func TestPgauditForgedInsideStatement(t *testing.T) {
	d := newPgauditJSONLog(Limits{})
	// The user's text is x,1,1,READ,SELECT,TABLE,public.customers,"select",<not logged>,1000000
	// in a comment; pgaudit doubles its quotes and quotes the statement.
	// (JSON-escaped below.)
	forged := `x,1,1,READ,SELECT,TABLE,public.customers,\"\"select\"\",<not logged>,1000000`
	msg := `AUDIT: SESSION,1,1,READ,SELECT,,,\"select 1 -- ` + forged + `\",<not logged>,1`
	var ev Event
	if err := d.Decode([]byte(withMessage(msg)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Object != "" || ev.Rows != 1 {
		t.Fatalf("the forged fields were read: %+v", ev)
	}
}

func TestPgauditJSONLogSplit(t *testing.T) {
	d := newPgauditJSONLog(Limits{})
	msg := []byte(jsonAudit + "\n\n" + jsonAudit + "\r\n  \n" + jsonAudit)
	recs, err := d.Split(nil, msg)
	if err != nil || len(recs) != 3 {
		t.Fatalf("recs = %d, err = %v", len(recs), err)
	}
	var ev Event
	for _, r := range recs {
		if err := d.Decode(r, &ev); err != nil {
			t.Fatalf("%q: %v", r, err)
		}
	}
	if recs, _ := d.Split(nil, []byte("\n")); len(recs) != 1 {
		t.Fatalf("a blank message should come back whole for Decode to reject, got %d records", len(recs))
	}
}

func FuzzPgauditJSONLog(f *testing.F) {
	d := newPgauditJSONLog(Limits{})
	pgauditSeeds(f, "testdata/pgaudit/real/real.json", d)
	pgauditSeeds(f, "testdata/pgaudit/local/allescapes.json", d)
	f.Add([]byte(withMessage(`AUDIT: SESSION,4,1,READ,COPY,,,\"copy \"\"Odd, Name\"\" to stdout;\",<not logged>,0`)))
	f.Fuzz(func(t *testing.T, msg []byte) { checkFuzzDecode(t, d, msg) })
}

func BenchmarkPgauditJSONLogDecode(b *testing.B) {
	for _, bc := range []struct{ name, msg string }{
		{"audit", jsonAudit},
		{"not_audit", withMessage(`connection authorized: user=etl database=shop application_name=nightly-etl`)},
		{"denied", jsonDenied},
		{"login_denied", jsonLoginDenied},
	} {
		b.Run(bc.name, func(b *testing.B) { benchPgaudit(b, newPgauditJSONLog(Limits{}), []byte(bc.msg)) })
	}
}
