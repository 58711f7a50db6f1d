package event

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tests of the server's denial lines (pgaudit_denial.go). The samples are
// genuine: testdata/pgaudit/denial/ holds one PostgreSQL 15.18 + pgaudit
// 1.7 cluster's logs of refused statements and logins and of RAISE
// EXCEPTION forgeries of them (README.md and produce.sh there); the lines
// below that are not copied from those files are edits of copied ones,
// with the message of another form from PostgreSQL's aclchk.c.

// denialOutcome is what one ERROR or FATAL entry of the sample workload
// must decode to.
type denialOutcome struct {
	reason    Reason // 0: decoded as a denial
	principal string
	database  string
	object    string
	action    Action
}

// denialWorkload is the outcome of each ERROR and FATAL entry of the
// denial samples, in the order produce.sh causes them; each run and each
// format holds all of them.
var denialWorkload = []denialOutcome{
	{0, "analyst", "shop", "customers", ActionRead},       // SELECT
	{0, "analyst", "shop", "customers", ActionWrite},      // UPDATE
	{0, "analyst", "shop", "customers", ActionDelete},     // DELETE
	{0, "analyst", "shop", "customers", ActionExport},     // COPY ... TO
	{0, "analyst", "shop", "payroll", ActionRead},         // schema
	{0, "analyst", "shop", "invoice_seq", ActionRead},     // sequence
	{0, "analyst", "shop", "customer_emails", ActionRead}, // view
	{0, "analyst", "shop", "unmask", ActionRead},          // function
	{ReasonUntrusted, "", "", "", 0},                      // genuine, inside PL/pgSQL: has a context
	{0, "bob", "shop", "customers", ActionRead},           // log_error_verbosity = verbose
	{0, "analyst", "shop", "", ActionLogin},               // wrong password
	{0, "ghost", "shop", "", ActionLogin},                 // no such role, password
	{0, "ghost", "shop", "", ActionLogin},                 // no such role, trust
	{0, "mallory", "shop", "", ActionLogin},               // pg_hba.conf reject
	{0, "analyst", "postgres", "", ActionLogin},           // no pg_hba.conf entry
	{0, "reporting", "shop", "", ActionLogin},             // NOLOGIN
	{0, "analyst", "hr", "", ActionLogin},                 // no CONNECT privilege
	{ReasonUntrusted, "", "", "", 0},                      // DO ... RAISE EXCEPTION ... ERRCODE '42501'
	{ReasonUntrusted, "", "", "", 0},                      // the same from a function
	{ReasonNotAudit, "", "", "", 0},                       // RAISE ... ERRCODE '28P01': an ERROR
	{ReasonUntrusted, "", "", "", 0},                      // the RAISE under terse verbosity (not in stderr)
	{ReasonNotAudit, "", "", "", 0},                       // division by zero
	{ReasonNotAudit, "", "", "", 0},                       // syntax error
}

// terseRaise is the index in denialWorkload of the RAISE that stderr,
// without a CONTEXT: line, cannot tell from a genuine denial.
const terseRaise = 20

// isErrorEntry reports whether a record of the samples is an ERROR or
// FATAL entry, in any of the three formats.
func isErrorEntry(rec []byte) bool {
	first, _, _ := bytes.Cut(rec, []byte{'\n'})
	for _, s := range []string{`"error_severity":"ERROR"`, `"error_severity":"FATAL"`, `,ERROR,`, `,FATAL,`, ` ERROR:  `, ` FATAL:  `} {
		if bytes.Contains(first, []byte(s)) {
			return true
		}
	}
	return false
}

func TestPgauditDenialWorkload(t *testing.T) {
	for _, run := range []string{"sqlstate", "english"} {
		base := filepath.Join("testdata", "pgaudit", "denial", run)
		for _, format := range []string{"jsonlog", "csvlog", "stderr"} {
			t.Run(run+"/"+format, func(t *testing.T) {
				var d Decoder
				var ext string
				switch format {
				case "jsonlog":
					d, ext = newPgauditJSONLog(Limits{}), ".json"
				case "csvlog":
					d, ext = newPgauditCSVLog(Limits{}), ".csv"
				case "stderr":
					d, ext = stderrDecoder(t, readPrefix(t, base+".log")), ".log"
				}
				input, err := os.ReadFile(base + ext)
				if err != nil {
					t.Fatal(err)
				}
				recs, _ := d.(Splitter).Split(nil, input)
				var got []denialOutcome
				var ev Event
				for _, rec := range recs {
					if !isErrorEntry(rec) {
						continue
					}
					if err := d.Decode(rec, &ev); err != nil {
						r, _ := ReasonOf(err)
						got = append(got, denialOutcome{reason: r})
						continue
					}
					if ev.Status != StatusDenied || ev.HasRows || ev.Time == 0 {
						t.Errorf("%q: %+v", rec, ev)
					}
					got = append(got, denialOutcome{0, ev.Principal, ev.Database, ev.Object, ev.Action})
				}
				if len(got) != len(denialWorkload) {
					t.Fatalf("%d ERROR and FATAL entries, want %d", len(got), len(denialWorkload))
				}
				for i, want := range denialWorkload {
					if format == "stderr" && i == terseRaise {
						// See pgaudit_denial.go: read as a denial by
						// postgres, the superuser who raised it.
						want = denialOutcome{0, "postgres", "shop", "customers", ActionOther}
					}
					if got[i] != want {
						t.Errorf("entry %d: got %+v, want %+v", i, got[i], want)
					}
				}
			})
		}
	}
}

// Genuine lines of testdata/pgaudit/denial/sqlstate.* (json line 33 and 88,
// csv line 33, log lines 33-34 and 108-110), which the cases below edit.
const (
	jsonDenied      = `{"timestamp":"2026-11-30 03:08:52.249 UTC","user":"analyst","dbname":"shop","pid":8573,"remote_host":"127.0.0.1","remote_port":38656,"session_id":"6b0ce8c4.217d","line_num":4,"ps":"SELECT","session_start":"2026-11-30 03:08:52 UTC","vxid":"3/24","txid":0,"error_severity":"ERROR","state_code":"42501","message":"permission denied for table customers","statement":"SELECT * FROM public.customers WHERE id < 10","application_name":"metabase","backend_type":"client backend","query_id":0}`
	jsonLoginDenied = `{"timestamp":"2026-11-30 03:08:52.703 UTC","user":"analyst","dbname":"hr","pid":8621,"remote_host":"127.0.0.1","remote_port":38754,"session_id":"6b0ce8c4.21ad","line_num":4,"ps":"startup","session_start":"2026-11-30 03:08:52 UTC","vxid":"3/49","txid":0,"error_severity":"FATAL","state_code":"42501","message":"permission denied for database \"hr\"","detail":"User does not have CONNECT privilege.","backend_type":"client backend","query_id":0}`
	csvDenied       = `2026-11-30 03:08:52.249 UTC,"analyst","shop",8573,"127.0.0.1:38656",6b0ce8c4.217d,4,"SELECT",2026-11-30 03:08:52 UTC,3/24,0,ERROR,42501,"permission denied for table customers",,,,,,"SELECT * FROM public.customers WHERE id < 10",,,"metabase","client backend",,0`
	sqlstatePrefix  = "%m [%p] %q%u@%d %e "
	stderrDenied    = "2026-11-30 03:08:52.249 UTC [8573] analyst@shop 42501 ERROR:  permission denied for table customers\n" +
		"2026-11-30 03:08:52.249 UTC [8573] analyst@shop 42501 STATEMENT:  SELECT * FROM public.customers WHERE id < 10"
	stderrRaise = "2026-11-30 03:08:52.727 UTC [8623] app_svc@shop 42501 ERROR:  permission denied for table customers\n" +
		"2026-11-30 03:08:52.727 UTC [8623] app_svc@shop 42501 CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE\n" +
		"2026-11-30 03:08:52.727 UTC [8623] app_svc@shop 42501 STATEMENT:  DO $$ BEGIN RAISE EXCEPTION 'permission denied for table customers' USING ERRCODE = '42501'; END $$;"
)

// denialCase is a handwritten case: the outcome of one message.
type denialCase struct {
	name  string
	input string
	want  denialOutcome
}

func runDenialCases(t *testing.T, d Decoder, cases []denialCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			err := d.Decode([]byte(tc.input), &ev)
			if tc.want.reason != 0 {
				if r, _ := ReasonOf(err); r != tc.want.reason {
					t.Fatalf("err = %v, want %v (event %+v)", err, tc.want.reason, ev)
				}
				if err != nil && (strings.Contains(err.Error(), "customers") || strings.Contains(err.Error(), "denied")) {
					t.Fatalf("error %q quotes the message", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if ev.Status != StatusDenied || ev.HasRows || ev.Time == 0 {
				t.Fatalf("%+v", ev)
			}
			got := denialOutcome{0, ev.Principal, ev.Database, ev.Object, ev.Action}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func deniedRead(object string, a Action) denialOutcome {
	return denialOutcome{0, "analyst", "shop", object, a}
}

func TestPgauditDenialJSONLog(t *testing.T) {
	msg := func(m string) string {
		return strings.Replace(jsonDenied, `"permission denied for table customers"`, `"`+m+`"`, 1)
	}
	stmt := func(s string) string {
		return strings.Replace(jsonDenied, `"SELECT * FROM public.customers WHERE id < 10"`, `"`+s+`"`, 1)
	}
	login := func(m string) string {
		return strings.Replace(jsonLoginDenied, `"permission denied for database \"hr\""`, `"`+m+`"`, 1)
	}
	noUser := func(s string) string { return strings.Replace(s, `"user":"analyst",`, ``, 1) }
	loginAs := func(user string) denialOutcome { return denialOutcome{0, user, "hr", "", ActionLogin} }
	runDenialCases(t, newPgauditJSONLog(Limits{}), []denialCase{
		{"table", jsonDenied, deniedRead("customers", ActionRead)},
		{"column", msg(`permission denied for column \"email\" of relation \"customers\"`), deniedRead("customers", ActionRead)},
		{"relation (postgresql 10)", msg(`permission denied for relation customers`), deniedRead("customers", ActionRead)},
		{"qualified only as written", msg(`permission denied for table public.customers`), deniedRead("public.customers", ActionRead)},
		{"materialized view", msg(`permission denied for materialized view customer_stats`), deniedRead("customer_stats", ActionRead)},
		{"operator class, not operator", msg(`permission denied for operator class int4_ops`), deniedRead("int4_ops", ActionRead)},
		{"name with a space", msg(`permission denied for table Odd, Name`), deniedRead("Odd, Name", ActionRead)},
		{"owner", strings.Replace(msg(`must be owner of table customers`), `"SELECT * FROM public.customers WHERE id < 10"`, `"ALTER TABLE customers ADD COLUMN ssn text"`, 1), deniedRead("customers", ActionOther)},
		{"no object", msg(`permission denied to create role`), deniedRead("", ActionRead)},
		{"insert", stmt(`INSERT INTO public.customers VALUES (1)`), deniedRead("customers", ActionWrite)},
		{"merge", stmt(`merge into customers c using src s on c.id = s.id when matched then delete`), deniedRead("customers", ActionWrite)},
		{"truncate", stmt(`TRUNCATE customers`), deniedRead("customers", ActionDelete)},
		{"copy from", stmt(`COPY public.customers (id, email) FROM STDIN`), deniedRead("customers", ActionWrite)},
		{"copy of a quoted name from", stmt(`copy \"Odd, Name\" from stdin`), deniedRead("customers", ActionWrite)},
		{"copy of a query", stmt(`COPY (SELECT * FROM customers) TO STDOUT`), deniedRead("customers", ActionExport)},
		{"comment first", stmt(`/* metabase */ -- q\n  select 1`), deniedRead("customers", ActionRead)},
		{"with", stmt(`WITH c AS (SELECT * FROM customers) SELECT * FROM c`), deniedRead("customers", ActionOther)},
		{"no statement", strings.Replace(jsonDenied, `"statement":"SELECT * FROM public.customers WHERE id < 10",`, ``, 1), deniedRead("customers", ActionOther)},
		{"keys in another order", `{"message":"permission denied for table customers","statement":"SELECT 1","user":"analyst","dbname":"shop","timestamp":"2026-11-30 03:08:52.249 UTC","state_code":"42501","error_severity":"ERROR"}`, deniedRead("customers", ActionRead)},
		{"no state_code: the English text", strings.Replace(jsonDenied, `"state_code":"42501",`, ``, 1), deniedRead("customers", ActionRead)},
		{"no state_code, not a denial", strings.Replace(msg(`division by zero`), `"state_code":"42501",`, ``, 1), denialOutcome{reason: ReasonNotAudit}},

		{"connect privilege", jsonLoginDenied, loginAs("analyst")},
		{"user from a password message", noUser(login(`password authentication failed for user \"alice\"`)), loginAs("alice")},
		{"user from an ident message", noUser(login(`Ident authentication failed for user \"alice\"`)), loginAs("alice")},
		{"user from a missing role", noUser(login(`role \"ghost\" does not exist`)), loginAs("ghost")},
		{"user from a nologin role", noUser(login(`role \"reporting\" is not permitted to log in`)), loginAs("reporting")},
		{"user from pg_hba.conf", noUser(login(`no pg_hba.conf entry for host \"10.0.0.9\", user \"mallory\", database \"shop\", no encryption`)), loginAs("mallory")},
		{"no user anywhere", noUser(login(`no PostgreSQL user name specified in startup packet`)), denialOutcome{reason: ReasonMissingPrincipal}},

		{"raise", strings.Replace(jsonDenied, `"statement"`, `"context":"PL/pgSQL function inline_code_block line 1 at RAISE","statement"`, 1), denialOutcome{reason: ReasonUntrusted}},
		{"raise in a function, context after the statement", strings.Replace(jsonDenied, `"application_name"`, `"context":"PL/pgSQL function deny(text) line 1 at RAISE","application_name"`, 1), denialOutcome{reason: ReasonUntrusted}},
		{"raise of a login code", strings.Replace(login(`password authentication failed for user \"alice\"`), `"FATAL","state_code":"42501"`, `"ERROR","state_code":"28P01"`, 1), denialOutcome{reason: ReasonNotAudit}},
		{"fatal of another code", strings.Replace(login(`database \"bob\" does not exist`), `"42501"`, `"3D000"`, 1), denialOutcome{reason: ReasonNotAudit}},
		{"42501 as a warning", strings.Replace(jsonDenied, `"ERROR"`, `"WARNING"`, 1), denialOutcome{reason: ReasonNotAudit}},
		{"denial text with another code", strings.Replace(jsonDenied, `"42501"`, `"P0001"`, 1), denialOutcome{reason: ReasonNotAudit}},
		{"translated severity", strings.Replace(jsonDenied, `"ERROR"`, `"FEHLER"`, 1), denialOutcome{reason: ReasonNotAudit}},
		{"bad time", strings.Replace(jsonDenied, `UTC","user"`, `CET","user"`, 1), denialOutcome{reason: ReasonBadTime}},
		{"no time", strings.Replace(jsonDenied, `"timestamp":"2026-11-30 03:08:52.249 UTC",`, ``, 1), denialOutcome{reason: ReasonMissingTime}},
		{"no user", noUser(jsonDenied), denialOutcome{reason: ReasonMissingPrincipal}},
	})
}

func TestPgauditDenialCSVLog(t *testing.T) {
	msg := func(m string) string {
		return strings.Replace(csvDenied, `"permission denied for table customers"`, m, 1)
	}
	withTail := func(tail string) string {
		return strings.Replace(csvDenied, `,,,,,,"SELECT * FROM public.customers WHERE id < 10",,,"metabase"`, tail, 1)
	}
	login := func(state, m string) string {
		return strings.Replace(strings.Replace(withTail(`,,,,,,,,,""`), `,ERROR,42501,`, `,FATAL,`+state+`,`, 1), `"permission denied for table customers"`, m, 1)
	}
	runDenialCases(t, newPgauditCSVLog(Limits{}), []denialCase{
		{"table", csvDenied, deniedRead("customers", ActionRead)},
		{"line break after", csvDenied + "\r\n", deniedRead("customers", ActionRead)},
		{"column, quoted", msg(`"permission denied for column ""email"" of relation ""customers"""`), deniedRead("customers", ActionRead)},
		{"quoted statement", withTail(`,,,,,,"COPY ""Odd, Name"" FROM STDIN",,,"metabase"`), deniedRead("customers", ActionWrite)},
		{"no statement", withTail(`,,,,,,,,,"metabase"`), deniedRead("customers", ActionOther)},
		{"verbose location", withTail(`,,,,,,"select * from customers",,"aclcheck_error, aclchk.c:3655","metabase"`), deniedRead("customers", ActionRead)},
		{"no sql_state_code: the English text", strings.Replace(csvDenied, `,42501,`, `,,`, 1), deniedRead("customers", ActionRead)},
		{"wrong password", login("28P01", `"password authentication failed for user ""analyst"""`), denialOutcome{0, "analyst", "shop", "", ActionLogin}},
		{"user from the message", strings.Replace(login("28000", `"role ""ghost"" does not exist"`), `"analyst",`, `,`, 1), denialOutcome{0, "ghost", "shop", "", ActionLogin}},

		{"raise", withTail(`,,,,,"PL/pgSQL function inline_code_block line 1 at RAISE","DO $$ BEGIN RAISE EXCEPTION 'permission denied for table customers' USING ERRCODE = '42501'; END $$;",,,"psql"`), denialOutcome{reason: ReasonUntrusted}},
		{"raise of a login code", strings.Replace(login("28P01", `"password authentication failed for user ""alice"""`), `FATAL`, `ERROR`, 1), denialOutcome{reason: ReasonNotAudit}},
		{"division by zero", strings.Replace(msg(`"division by zero"`), `,42501,`, `,22012,`, 1), denialOutcome{reason: ReasonNotAudit}},
		{"42501 as a log line", strings.Replace(csvDenied, `,ERROR,`, `,LOG,`, 1), denialOutcome{reason: ReasonNotAudit}},
		{"bad time", strings.Replace(csvDenied, `.249 UTC`, `.249 CET`, 1), denialOutcome{reason: ReasonBadTime}},
		{"no user", strings.Replace(csvDenied, `"analyst",`, `,`, 1), denialOutcome{reason: ReasonMissingPrincipal}},
		{"too few columns", strings.TrimSuffix(csvDenied, `,"metabase","client backend",,0`), denialOutcome{reason: ReasonUnrecognized}},
	})
}

func TestPgauditDenialStderr(t *testing.T) {
	first, _, _ := strings.Cut(stderrDenied, "\n")
	raiseFirst, _, _ := strings.Cut(stderrRaise, "\n")
	noE := func(s string) string { return strings.ReplaceAll(s, " 42501 ", " ") }
	runDenialCases(t, stderrDecoder(t, sqlstatePrefix), []denialCase{
		{"table", stderrDenied, deniedRead("customers", ActionRead)},
		{"multi-line statement", stderrDenied + "\n\t  JOIN orders o ON o.customer_id = c.id", deniedRead("customers", ActionRead)},
		{"cursor position", strings.Replace(stderrDenied, "customers\n", "customers at character 15\n", 1), deniedRead("customers", ActionRead)},
		{"verbose", strings.Replace(stderrDenied, "ERROR:  ", "ERROR:  42501: ", 1) + "\n2026-11-30 03:08:52.249 UTC [8573] analyst@shop 42501 LOCATION:  aclcheck_error, aclchk.c:3655", deniedRead("customers", ActionRead)},
		{"statement shipped apart", first, deniedRead("customers", ActionOther)},
		{"detail and hint", strings.Replace(stderrDenied, "\n", "\n2026-11-30 03:08:52.249 UTC [8573] analyst@shop 42501 DETAIL:  x\n2026-11-30 03:08:52.249 UTC [8573] analyst@shop 42501 HINT:  y\n", 1), deniedRead("customers", ActionRead)},
		{"login, %u [unknown]: the user from the message", "2026-11-30 03:08:52.644 UTC [8617] [unknown]@[unknown] 28000 FATAL:  no pg_hba.conf entry for host \"127.0.0.1\", user \"analyst\", database \"postgres\", no encryption",
			denialOutcome{0, "analyst", "", "", ActionLogin}},

		{"raise", stderrRaise, denialOutcome{reason: ReasonUntrusted}},
		{"raise with a context only", strings.Join(strings.Split(stderrRaise, "\n")[:2], "\n"), denialOutcome{reason: ReasonUntrusted}},
		// Shipped one line a message, or under terse verbosity, the
		// RAISE cannot be told from a denial (see pgaudit_denial.go).
		{"raise line alone is indistinguishable", raiseFirst, denialOutcome{0, "app_svc", "shop", "customers", ActionOther}},
		{"raise of a login code", "2026-11-30 03:08:52.776 UTC [8627] app_svc@shop 28P01 ERROR:  password authentication failed for user \"alice\"", denialOutcome{reason: ReasonNotAudit}},
		{"denial text with another code", strings.ReplaceAll(stderrDenied, " 42501 ", " P0001 "), denialOutcome{reason: ReasonNotAudit}},
		{"verbose code against %e", strings.Replace(strings.ReplaceAll(stderrDenied, " 42501 ", " P0001 "), "ERROR:  ", "ERROR:  42501: ", 1), denialOutcome{reason: ReasonNotAudit}},
		{"division by zero", "2026-11-30 03:08:52.836 UTC [8631] app_svc@shop 22012 ERROR:  division by zero\n2026-11-30 03:08:52.836 UTC [8631] app_svc@shop 22012 STATEMENT:  SELECT 1 / 0", denialOutcome{reason: ReasonNotAudit}},
		{"a further line alone", strings.Split(stderrRaise, "\n")[1], denialOutcome{reason: ReasonNotAudit}},
		{"no user in the startup packet", "2026-11-30 03:08:52.644 UTC [8617] [unknown]@[unknown] 28000 FATAL:  no PostgreSQL user name specified in startup packet", denialOutcome{reason: ReasonMissingPrincipal}},
		{"two entries", stderrDenied + "\n" + stderrDenied, denialOutcome{reason: ReasonUnrecognized}},
		{"bad time", strings.Replace(stderrDenied, "UTC", "CET", 1), denialOutcome{reason: ReasonBadTime}},
		{"no prefix %e, but a code", noE(stderrDenied), denialOutcome{reason: ReasonUnrecognized}},
	})

	// Without %e: the verbose code, else the English text.
	runDenialCases(t, stderrDecoder(t, realPrefix), []denialCase{
		{"english", noE(stderrDenied), deniedRead("customers", ActionRead)},
		{"english, verbose", strings.Replace(noE(stderrDenied), "ERROR:  ", "ERROR:  42501: ", 1), deniedRead("customers", ActionRead)},
		{"english login", "2026-11-30 03:08:53.478 UTC [8677] mallory@shop FATAL:  pg_hba.conf rejects connection for host \"127.0.0.1\", user \"mallory\", database \"shop\", no encryption", denialOutcome{0, "mallory", "shop", "", ActionLogin}},
		{"english certificate login", "2026-11-30 03:08:53.478 UTC [8677] mallory@shop FATAL:  certificate authentication failed for user \"mallory\"", denialOutcome{0, "mallory", "shop", "", ActionLogin}},
		{"english raise", noE(stderrRaise), denialOutcome{reason: ReasonUntrusted}},
		{"english login text at ERROR", "2026-11-30 03:08:53.633 UTC [8689] app_svc@shop ERROR:  password authentication failed for user \"alice\"", denialOutcome{reason: ReasonNotAudit}},
		{"english fatal, not a login", "2026-11-30 02:51:55.621 UTC [13998] bob@bob FATAL:  database \"bob\" does not exist", denialOutcome{reason: ReasonNotAudit}},
		// From testdata/pgaudit/denial/injected.log: a client whose user
		// name holds a line break and a forged prefix naming alice.
		{"user name with a forged line", "2026-11-30 03:08:52.546 UTC [1] alice@shop FATAL:  password authentication failed for user \"x\n\t2026-11-30 03:08:52.546 UTC [1] alice\"", denialOutcome{reason: ReasonUntrusted}},
		{"user differs from the message", "2026-11-30 03:08:53.478 UTC [8677] alice@shop FATAL:  password authentication failed for user \"mallory\"", denialOutcome{reason: ReasonUntrusted}},
		{"english, message with an authentication phrase inside", "2026-11-30 03:08:53.478 UTC [8677] mallory@shop FATAL:  terminating connection: password authentication failed for user \"x\"", denialOutcome{reason: ReasonNotAudit}},
		// A role named "alice@shop" connecting to database "x" makes the
		// line read two ways: neither can be attributed.
		{"ambiguous prefix", "2026-11-30 03:08:53.122 UTC [8651] alice@shop@x ERROR:  permission denied for table customers", denialOutcome{reason: ReasonUntrusted}},
		{"ambiguous prefix, not a denial", "2026-11-30 03:08:53.122 UTC [8651] alice@shop@x ERROR:  division by zero", denialOutcome{reason: ReasonNotAudit}},
	})
}

func TestDenialObject(t *testing.T) {
	for msg, want := range map[string]string{
		"permission denied for table customers":                                "customers",
		"permission denied for schema payroll":                                 "payroll",
		`permission denied for column "email" of relation "customers"`:         "customers",
		"permission denied for column email":                                   "email",
		"permission denied for text search dictionary english_stem":            "english_stem",
		"permission denied for operator family integer_ops":                    "integer_ops",
		"permission denied for operator +":                                     "+",
		"must be owner of relation customers":                                  "customers",
		"permission denied for tablespace fast":                                "fast",
		"permission denied for table":                                          "",
		"permission denied for widget w":                                       "",
		"permission denied to create role":                                     "",
		"permission denied for table customers_archive_2026":                   "customers_archive_2026",
		"division by zero":                                                     "",
		"permission denied for large object 16403":                             "16403",
		"permission denied for foreign-data wrapper postgres_fdw":              "postgres_fdw",
		"must be owner of materialized view customer_stats":                    "customer_stats",
		"permission denied for statistics object public.customers_email_stats": "public.customers_email_stats",
	} {
		if got := string(denialObject([]byte(msg))); got != want {
			t.Errorf("%q: %q, want %q", msg, got, want)
		}
	}
}

func TestStatementAction(t *testing.T) {
	for stmt, want := range map[string]Action{
		"SELECT 1":                                      ActionRead,
		"  \n\tselect 1":                                ActionRead,
		"TABLE customers":                               ActionRead,
		"Update customers set x = 1":                    ActionWrite,
		"DELETE FROM customers":                         ActionDelete,
		"copy customers to stdout":                      ActionExport,
		`COPY "public"."Customers" FROM STDIN`:          ActionWrite,
		`COPY public.customers(id,email) from '/tmp/x'`: ActionWrite,
		"COPY customers TO PROGRAM 'curl'":              ActionExport,
		"COPY (select 1) TO STDOUT":                     ActionExport,
		"COPY":                                          ActionExport,
		"selectx":                                       ActionOther,
		"/* unterminated":                               ActionOther,
		"DO $$ BEGIN END $$":                            ActionOther,
		"":                                              ActionOther,
		"select" + strings.Repeat(" ", 600):             ActionRead,
		strings.Repeat(" ", 600) + "select":             ActionOther, // past the head
	} {
		if got := statementAction([]byte(stmt)); got != want {
			t.Errorf("%.40q: %v, want %v", stmt, got, want)
		}
	}
}

func FuzzPgauditDenial(f *testing.F) {
	js, cs := newPgauditJSONLog(Limits{}), newPgauditCSVLog(Limits{})
	se := stderrDecoder(f, sqlstatePrefix)
	for _, name := range []string{"sqlstate.json", "english.json", "sqlstate.csv", "sqlstate.log"} {
		var sp Splitter = js
		switch filepath.Ext(name) {
		case ".csv":
			sp = cs
		case ".log":
			sp = se
		}
		pgauditSeeds(f, filepath.Join("testdata", "pgaudit", "denial", name), sp)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		checkFuzzDecode(t, js, msg)
		checkFuzzDecode(t, cs, msg)
		checkFuzzDecode(t, se, msg)
		for _, s := range [][]byte{msg} {
			_ = denialObject(s)
			_ = pgAuthUser(s)
			_ = statementAction(s)
		}
	})
}
