package event

import "bytes"

// PostgreSQL's own records of denied access, read from the same log lines
// as pgaudit's records.
//
// pgaudit logs a statement only once the executor runs it, so a statement
// refused by a privilege check, and a connection refused at login, leave no
// AUDIT record: the server's ERROR or FATAL line is the only trace. Without
// these lines the denied_burst detector could never fire on PostgreSQL, and
// a stolen credential probing tables it may not read, or a password being
// guessed, would go unseen. The decoders therefore turn two kinds of server
// line into events, trusting only what the server writes:
//
//   - a refused login: FATAL with SQLSTATE 28P01 (invalid_password), 28000
//     (invalid_authorization_specification: no pg_hba.conf entry, a role
//     that does not exist or may not log in) or 42501 (no CONNECT privilege
//     on the database). ActionLogin.
//   - a refused statement: ERROR with SQLSTATE 42501 (insufficient_privilege:
//     "permission denied for table customers", "must be owner of ..."). The
//     object is the one the message names, the action the statement's
//     leading keyword.
//
// Every other ERROR (division by zero, a syntax error, a missing relation)
// is not an access decision and stays ReasonNotAudit.
//
// The SQLSTATE is read where the format has it: jsonlog's state_code,
// csvlog's sql_state_code, and in stderr the %e escape of log_line_prefix or
// the "42501: " that log_error_verbosity = verbose puts before the message.
// A stderr log with neither is read by the English message text, so a
// server whose lc_messages is not English (or C) has its stderr denials go
// unread: put %e in log_line_prefix, or use jsonlog or csvlog. The severity
// words ERROR and FATAL are read in English in every format, and
// lc_messages translates them in some; lc_messages = 'C' on the server
// keeps every denial readable.
//
// Trust. Any user who can run PL/pgSQL can write an ERROR line with any
// message and SQLSTATE: RAISE EXCEPTION 'permission denied for table
// customers' USING ERRCODE = '42501'. Such a line always carries the
// PL/pgSQL context ("PL/pgSQL function inline_code_block line 1 at RAISE"),
// which jsonlog and csvlog write whatever log_error_verbosity says, and
// stderr writes as a CONTEXT: line unless log_error_verbosity is terse. A
// privilege denial with a context is therefore ReasonUntrusted, like a RAISE
// LOG 'AUDIT: ...'. The price: a genuine denial raised inside a function
// (a PL/pgSQL function reading a table its caller may not read) carries a
// context too ("SQL statement ... PL/pgSQL function f() line 1 at SQL
// statement") and is rejected with the forgeries; the caller's own
// statements are unaffected. What stays forgeable: in stderr, a RAISE whose
// CONTEXT: line is missing (log_error_verbosity = terse, a superuser-only
// setting, or a shipper that sends every line as its own message). A
// refused login is FATAL, which no SQL can raise (RAISE stops at ERROR), so
// 28P01 and 28000 are believed only at FATAL; an ERROR with those codes is a
// RAISE and stays ReasonNotAudit.
//
// The user of a refused login is whoever the client claimed to be, a role
// that may not exist: it is still the principal, as credential stuffing is
// exactly many such names or many tries at one.

// pgDenial is what a server line says about an access decision.
type pgDenial uint8

const (
	denialNone      pgDenial = iota
	denialLogin              // a refused connection
	denialPrivilege          // a refused statement
)

// pgDenialOf classifies a line by its severity and SQLSTATE; state is nil
// when the line does not carry one, and then the English message decides.
func pgDenialOf(sev pgSeverity, state, msg []byte) pgDenial {
	if sev != sevError && sev != sevFatal {
		return denialNone
	}
	if len(state) == 5 {
		switch {
		case sev == sevFatal && (string(state) == "28P01" || string(state) == "28000" || string(state) == "42501"):
			return denialLogin
		case sev == sevError && string(state) == "42501":
			return denialPrivilege
		}
		return denialNone
	}
	if sev == sevFatal {
		if pgLoginDeniedText(msg) {
			return denialLogin
		}
		return denialNone
	}
	for _, p := range privilegeDeniedPrefixes {
		if bytes.HasPrefix(msg, []byte(p)) {
			return denialPrivilege
		}
	}
	return denialNone
}

// denialState reports whether a SQLSTATE can be a denial's at some
// severity.
func denialState(state []byte) bool {
	switch string(state) {
	case "28P01", "28000", "42501":
		return true
	}
	return false
}

// privilegeDeniedPrefixes start the English messages of SQLSTATE 42501 that
// refuse a statement (aclcheck_error in src/backend/catalog/aclchk.c, and
// the "permission denied to ..." of role and setting checks).
var privilegeDeniedPrefixes = [...]string{"permission denied for ", "permission denied to ", "must be owner of "}

// pgLoginDeniedText reports whether a FATAL message is one of the English
// messages of a refused login (auth_failed and check_hba in
// src/backend/libpq, InitializeSessionUserId and CheckMyDatabase in
// src/backend/utils/init).
func pgLoginDeniedText(msg []byte) bool {
	switch {
	case bytes.HasPrefix(msg, []byte("no pg_hba.conf entry for ")),
		bytes.HasPrefix(msg, []byte("pg_hba.conf rejects ")),
		bytes.HasPrefix(msg, []byte(`permission denied for database `)):
		return true
	case bytes.HasPrefix(msg, []byte(`role "`)):
		return bytes.HasSuffix(msg, []byte(`" does not exist`)) || bytes.HasSuffix(msg, []byte(`" is not permitted to log in`))
	}
	// "<method> authentication failed for user "name"": password, Ident,
	// Peer, LDAP, PAM, certificate, RADIUS, GSSAPI, SSPI, BSD.
	i := bytes.Index(msg, []byte(authFailedText))
	return i > 0 && bytes.IndexByte(msg[:i], ' ') < 0 && bytes.HasSuffix(msg, []byte{'"'})
}

const authFailedText = ` authentication failed for user "`

// pgAuthUser returns the user a refused login's message names, for lines
// that do not carry the user in a field of their own. The name is whatever
// the client sent, so a form with two quoted names is read by the fixed
// text on both sides.
func pgAuthUser(msg []byte) []byte {
	if rest, ok := bytes.CutPrefix(msg, []byte(`role "`)); ok {
		for _, tail := range [...]string{`" does not exist`, `" is not permitted to log in`} {
			if name, ok := bytes.CutSuffix(rest, []byte(tail)); ok {
				return name
			}
		}
		return nil
	}
	if i := bytes.Index(msg, []byte(authFailedText)); i > 0 {
		name, _ := bytes.CutSuffix(msg[i+len(authFailedText):], []byte{'"'})
		return name
	}
	if i := bytes.Index(msg, []byte(`", user "`)); i > 0 {
		rest := msg[i+len(`", user "`):]
		if j := bytes.Index(rest, []byte(`", database "`)); j >= 0 {
			return rest[:j]
		}
	}
	return nil
}

// aclObjectKinds are the object kinds aclcheck_error names, in PostgreSQL
// 11 to 17 ("relation" before 11). A kind that starts another comes after
// it, so that "operator class x" is not read as the operator "class x".
var aclObjectKinds = [...]string{
	"aggregate", "collation", "column", "conversion", "database", "domain",
	"event trigger", "extension", "foreign-data wrapper", "foreign server",
	"foreign table", "function", "index", "language", "large object",
	"materialized view", "operator class", "operator family", "operator",
	"parameter", "policy", "procedure", "publication", "relation", "routine",
	"schema", "sequence", "statistics object", "subscription", "table",
	"tablespace", "text search configuration", "text search dictionary",
	"type", "view",
}

// denialObject returns the object a privilege denial names, as the message
// writes it: "permission denied for table customers" is customers, and
// only a name the server qualified is qualified. The column form,
// `permission denied for column "email" of relation "customers"`, names the
// relation.
func denialObject(msg []byte) []byte {
	rest, ok := bytes.CutPrefix(msg, []byte("permission denied for "))
	if !ok {
		if rest, ok = bytes.CutPrefix(msg, []byte("must be owner of ")); !ok {
			return nil
		}
	}
	for _, kind := range aclObjectKinds {
		if len(rest) <= len(kind) || rest[len(kind)] != ' ' || string(rest[:len(kind)]) != kind {
			continue
		}
		name := rest[len(kind)+1:]
		if kind == "column" && len(name) > 0 && name[0] == '"' {
			const of = `" of relation "`
			if i := bytes.Index(name, []byte(of)); i > 0 {
				if rel, ok := bytes.CutSuffix(name[i+len(of):], []byte{'"'}); ok {
					return rel
				}
			}
		}
		return name
	}
	return nil
}

// statementHead bounds how much of a statement is read for its keyword.
const statementHead = 512

// statementAction maps the leading keyword of a refused statement to an
// Action. COPY is an export (COPY ... TO, COPY (query) TO) unless it names
// a table and then FROM.
func statementAction(stmt []byte) Action {
	if len(stmt) > statementHead {
		stmt = stmt[:statementHead]
	}
	s := skipSQLSpace(stmt, 0)
	w := leadingWord(s)
	switch {
	case asciiEqualFold(w, "select"), asciiEqualFold(w, "table"):
		return ActionRead
	case asciiEqualFold(w, "insert"), asciiEqualFold(w, "update"), asciiEqualFold(w, "merge"):
		return ActionWrite
	case asciiEqualFold(w, "delete"), asciiEqualFold(w, "truncate"):
		return ActionDelete
	case asciiEqualFold(w, "copy"):
		if copyIsFrom(s[len(w):]) {
			return ActionWrite
		}
		return ActionExport
	}
	return ActionOther
}

// leadingWord returns the letters s starts with.
func leadingWord(s []byte) []byte {
	i := 0
	for i < len(s) && ('a' <= s[i] && s[i] <= 'z' || 'A' <= s[i] && s[i] <= 'Z') {
		i++
	}
	return s[:i]
}

// copyIsFrom reports whether the rest of a COPY statement, after the
// keyword, is "table [(columns)] FROM".
func copyIsFrom(s []byte) bool {
	s = skipSQLSpace(s, 0)
	if len(s) == 0 || s[0] == '(' {
		return false // COPY (query) TO
	}
	// The table name: identifiers, quoted or not, joined by dots.
	for {
		if len(s) > 0 && s[0] == '"' {
			i := 1
			for ; i < len(s); i++ {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						i++
						continue
					}
					break
				}
			}
			if i >= len(s) {
				return false
			}
			s = s[i+1:]
		} else {
			i := 0
			for i < len(s) && isIdentByte(s[i]) {
				i++
			}
			if i == 0 {
				return false
			}
			s = s[i:]
		}
		if len(s) == 0 || s[0] != '.' {
			break
		}
		s = s[1:]
	}
	s = skipSQLSpace(s, 0)
	if len(s) > 0 && s[0] == '(' {
		i := bytes.IndexByte(s, ')')
		if i < 0 {
			return false
		}
		s = skipSQLSpace(s, i+1)
	}
	return asciiEqualFold(leadingWord(s), "from")
}

// fillDenial sets what a denial line says about the access on ev: its
// status, action and object. The principal, time and connection fields
// come from the line's other fields, as for an AUDIT record.
func (d *pgauditBase) fillDenial(kind pgDenial, msg []byte, action Action, ev *Event) {
	ev.Status = StatusDenied
	ev.Rows, ev.HasRows = 0, false
	if kind == denialLogin {
		ev.Action, ev.Object = ActionLogin, ""
		return
	}
	ev.Action = action
	ev.Object = d.names.Intern(denialObject(msg))
}

// denialSeverity reads a denial line's severity word; only ERROR and FATAL
// matter.
func denialSeverity(b []byte) pgSeverity {
	switch string(b) {
	case "ERROR":
		return sevError
	case "FATAL":
		return sevFatal
	}
	return sevUnknown
}
