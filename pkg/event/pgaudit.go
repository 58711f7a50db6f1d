package event

import (
	"bytes"
	"math"
	"net/netip"

	"github.com/cespare/xxhash/v2"
)

// The PostgreSQL Audit Extension (pgaudit) writes its records through the
// server's ordinary logging, so they arrive inside whatever log format the
// server is set to write (jsonlog, csvlog or stderr lines), mixed with every
// other line the server logs. This file holds what the three decoders share:
// reading the AUDIT message itself, the timestamps PostgreSQL writes, and the
// rules for telling a record pgaudit wrote from one a user wrote.
//
// The message is written by log_audit_event in pgaudit.c as
//
//	AUDIT: <AUDIT_TYPE>,<STATEMENT_ID>,<SUBSTATEMENT_ID>,<CLASS>,<COMMAND>,
//	       <OBJECT_TYPE>,<OBJECT_NAME>,<STATEMENT>,<PARAMETER>[,<ROWS>]
//
// where each field after CLASS goes through append_valid_csv: quoted, with
// quotes doubled, only when it holds a comma, a quote, CR or LF. ROWS is
// there only with pgaudit.log_rows = on.
//
// Trust. Anyone who can run PL/pgSQL can write a server log line whose
// message is any text, RAISE LOG 'AUDIT: ...' being the obvious one, and the
// line then looks like a pgaudit record to anything that only reads the
// message. pgaudit emits its ereport with errhidestmt(true) and
// errhidecontext(true), so a genuine record never carries an error context
// or a statement. PostgreSQL adds both to a RAISE:
//
//   - the context ("PL/pgSQL function inline_code_block line 1 at RAISE";
//     other procedural languages set their own) is written by jsonlog and
//     csvlog whatever log_error_verbosity says; only C code can hide it;
//   - the statement is written because a LOG entry counts as more severe
//     than log_min_error_statement's default, error.
//
// log_error_verbosity and log_min_error_statement are superuser-only, so
// the user who raises cannot turn either off (unless granted SET on them).
// With log_error_verbosity = verbose the location also names the emitting
// C function, log_audit_event in pgaudit.c, which no procedural language
// can fake. The decoders therefore reject as ReasonUntrusted an AUDIT
// message with a context, a statement, a location other than pgaudit's, or
// a severity of ERROR or above (pgaudit never logs at those; RAISE
// EXCEPTION does).
//
// What stays indistinguishable: a C extension, which only a superuser can
// install, that logs AUDIT text with hidden context and statement; and, in
// the stderr format only, a RAISE whose CONTEXT: and STATEMENT: lines were
// shipped as messages of their own (see pgaudit_stderr.go). A forged record
// written inside the statement text of a genuine one does not parse: see
// splitAudit.

// pgauditTag starts every message pgaudit writes.
const pgauditTag = "AUDIT: "

var pgauditTagBytes = []byte(pgauditTag)

// pgauditBase is the state the three pgaudit decoders share: limits,
// interners and scratch space.
type pgauditBase struct {
	limits Limits
	// principals and names are kept apart as in Native: database users
	// can be many, objects, databases and applications are few and hot.
	principals *Interner
	names      *Interner
	// tmp receives unescaped object names and statement heads; reused so
	// that it stops growing.
	tmp []byte
}

func newPgauditBase(l Limits) pgauditBase {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.MaxRecordIDs <= 0 {
		l.MaxRecordIDs = DefaultMaxRecordIDs
	}
	return pgauditBase{limits: l, principals: NewInterner(l.PrincipalIntern), names: NewInterner(1 << 14)}
}

// auditField names the message in errors; it is the name all three log
// formats give the field.
const auditField = "message"

// auditFields are the raw CSV fields of an AUDIT message. Quoted fields keep
// their doubled quotes; only the ones kept are ever unescaped.
type auditFields struct {
	class, command, object, statement, rows []byte
	objectQuoted, statementQuoted, hasRows  bool
}

// splitAudit reads the CSV after "AUDIT: " strictly: nine or ten fields,
// quotes only around a whole field, and the fixed leading fields in the
// shape pgaudit writes them. Strictness is what makes a forged record
// embedded in the quoted statement of a genuine one fail to parse: every
// quote the user wrote is doubled, so a parse that starts inside the
// statement meets the closing quote in the wrong place.
func splitAudit(body []byte) (auditFields, bool) {
	var f auditFields
	i, n := 0, 0
	for {
		raw, quoted, next, ok := csvField(body, i)
		if !ok {
			return f, false
		}
		switch n {
		case 0:
			if string(raw) != "SESSION" && string(raw) != "OBJECT" || quoted {
				return f, false
			}
		case 1, 2:
			if !allDigits(raw) || quoted {
				return f, false
			}
		case 3:
			if pgauditClassOf(raw) == classUnknown || quoted {
				return f, false
			}
			f.class = raw
		case 4:
			if len(raw) == 0 {
				return f, false
			}
			f.command = raw
		case 6:
			f.object, f.objectQuoted = raw, quoted
		case 7:
			f.statement, f.statementQuoted = raw, quoted
		case 9:
			if !allDigits(raw) || quoted {
				return f, false
			}
			f.rows, f.hasRows = raw, true
		}
		n++
		if next == len(body) {
			break
		}
		if body[next] != ',' || n == 10 {
			return f, false
		}
		i = next + 1
	}
	return f, n >= 9
}

// csvField reads the CSV field that starts at b[i]: quoted (with "" for a
// quote) or bare. raw is the content without the enclosing quotes and with
// doubled quotes kept; next is the index of the byte after the field, which
// is a ',', a line break or len(b). A quote inside a bare field, or a closing
// quote followed by anything but a separator, is malformed.
func csvField(b []byte, i int) (raw []byte, quoted bool, next int, ok bool) {
	if i < len(b) && b[i] == '"' {
		start := i + 1
		for j := start; ; {
			k := bytes.IndexByte(b[j:], '"')
			if k < 0 {
				return nil, true, len(b), false
			}
			j += k + 1
			if j < len(b) && b[j] == '"' {
				j++
				continue
			}
			if j < len(b) && b[j] != ',' && b[j] != '\n' && b[j] != '\r' {
				return nil, true, j, false
			}
			return b[start : j-1], true, j, true
		}
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '\n', '\r':
			return b[i:j], false, j, true
		case '"':
			return nil, false, j, false
		}
		j++
	}
	return b[i:j], false, j, true
}

// csvUnescape appends raw with its doubled quotes made single.
func csvUnescape(dst, raw []byte) []byte {
	for {
		k := bytes.IndexByte(raw, '"')
		if k < 0 || k+1 >= len(raw) {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:k+1]...)
		raw = raw[k+2:]
	}
}

func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// pgauditClass is pgaudit's statement class.
type pgauditClass uint8

const (
	classUnknown pgauditClass = iota
	classRead
	classWrite
	classFunction
	classRole
	classDDL
	classMisc
)

func pgauditClassOf(b []byte) pgauditClass {
	switch string(b) {
	case "READ":
		return classRead
	case "WRITE":
		return classWrite
	case "FUNCTION":
		return classFunction
	case "ROLE":
		return classRole
	case "DDL":
		return classDDL
	case "MISC", "MISC_SET":
		// pgaudit writes SET statements as MISC and only filters them by
		// MISC_SET; MISC_SET is accepted should a version write it.
		return classMisc
	}
	return classUnknown
}

// pgauditAction maps a record to an Action. The command decides where it
// names an access (a READ-class record of a JOIN over two tables is two
// SELECT records); the class decides for the rest. COPY is an export in the
// READ class (COPY ... TO) and a write in the WRITE class (COPY ... FROM).
// ROLE (GRANT, CREATE ROLE) counts as DDL: it changes who may read what.
func pgauditAction(class pgauditClass, command []byte) Action {
	switch string(command) {
	case "SELECT":
		return ActionRead
	case "INSERT", "UPDATE", "MERGE":
		return ActionWrite
	case "DELETE", "TRUNCATE TABLE":
		return ActionDelete
	case "COPY":
		if class == classRead {
			return ActionExport
		}
		return ActionWrite
	}
	switch class {
	case classRead:
		return ActionRead
	case classWrite:
		return ActionWrite
	case classDDL, classRole:
		return ActionDDL
	}
	return ActionOther
}

// pgauditCountsRows reports whether pgaudit's ROWS field is a real count for
// the command. pgaudit counts the rows an executor processed; for utility
// statements (COPY, TRUNCATE, DDL, SET, cursors) it writes 0 whatever
// happened: a COPY ... TO STDOUT of 5000 rows is logged with ROWS 0. That 0
// is "unknown", not zero.
func pgauditCountsRows(command []byte) bool {
	switch string(command) {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE":
		return true
	}
	return false
}

// decodeAudit reads the AUDIT message body (after "AUDIT: ") into ev's
// Object, Action, Rows and HasRows. Statement ids are not kept: several
// records of one statement (one per relation with pgaudit.log_relation, so
// two for a JOIN) are each an access to one object and become one event
// each. Each carries the statement's row count: the rows of a JOIN are
// counted once per relation, which overstates them but never hides a read.
func (d *pgauditBase) decodeAudit(body []byte, ev *Event) error {
	f, ok := splitAudit(body)
	if !ok {
		return &DecodeError{Reason: ReasonBadValue, Field: auditField, Offset: -1}
	}
	class := pgauditClassOf(f.class)
	ev.Action = pgauditAction(class, f.command)
	ev.Status = StatusOK // pgaudit logs only statements that ran
	switch {
	case len(f.object) > 0 && f.objectQuoted:
		d.tmp = csvUnescape(d.tmp[:0], f.object)
		ev.Object = d.names.Intern(d.tmp)
	case len(f.object) > 0:
		ev.Object = d.names.Intern(f.object)
	case string(f.command) == "COPY":
		ev.Object = d.copyObject(f.statement, f.statementQuoted)
	}
	if f.hasRows && pgauditCountsRows(f.command) {
		n, ok := parseCount(f.rows)
		if !ok {
			return &DecodeError{Reason: ReasonBadValue, Field: auditField, Offset: -1}
		}
		ev.Rows, ev.HasRows = n, true
	}
	return nil
}

// copyStatementHead bounds how much of a COPY statement is unescaped to find
// the table name: the name comes first.
const copyStatementHead = 512

// copyObject returns the table a COPY statement names, since pgaudit logs
// COPY table TO/FROM without an object. Only a statement that starts with
// COPY (after white space and comments) is read, and only its first name;
// "COPY (SELECT ...)" names none (pgaudit logs the inner SELECT with its
// relations on its own record), nor does a query string where COPY is not
// the first statement: guessing there would let text in an earlier
// statement pick the object. The name is as written (unquoted parts
// lower-cased, as PostgreSQL folds them), so "customers" and
// "public.customers" stay different names.
func (d *pgauditBase) copyObject(stmt []byte, quoted bool) string {
	if len(stmt) > copyStatementHead {
		stmt = stmt[:copyStatementHead]
	}
	d.tmp = d.tmp[:0]
	if quoted {
		d.tmp = csvUnescape(d.tmp, stmt)
	} else {
		d.tmp = append(d.tmp, stmt...)
	}
	s := skipSQLSpace(d.tmp, 0)
	if len(s) < 5 || !asciiEqualFold(s[:4], "copy") || !isSQLSpace(s[4]) {
		return ""
	}
	s = skipSQLSpace(s, 4)
	// Write the name over the start of tmp: it is never longer than what it
	// is read from, and the read position stays ahead of the write one.
	name := d.tmp[:0]
	for {
		if len(s) == 0 {
			return ""
		}
		if s[0] == '"' {
			i := 1
			for {
				if i >= len(s) {
					return ""
				}
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						name = append(name, '"')
						i += 2
						continue
					}
					break
				}
				name = append(name, s[i])
				i++
			}
			s = s[i+1:]
		} else {
			i := 0
			for i < len(s) && isIdentByte(s[i]) {
				c := s[i]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				name = append(name, c)
				i++
			}
			if i == 0 {
				return ""
			}
			s = s[i:]
		}
		if len(s) == 0 || s[0] != '.' {
			break
		}
		name = append(name, '.')
		s = s[1:]
	}
	if len(s) > 0 && !isSQLSpace(s[0]) && s[0] != '(' && s[0] != ';' {
		return ""
	}
	if string(name) == "binary" { // the pre-7.3 COPY BINARY table syntax
		return ""
	}
	return d.names.Intern(name)
}

func isIdentByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '_' || c == '$' || c >= 0x80
}

func isSQLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// skipSQLSpace returns s from i on past white space and comments.
func skipSQLSpace(s []byte, i int) []byte {
	for i < len(s) {
		switch {
		case isSQLSpace(s[i]):
			i++
		case s[i] == '-' && i+1 < len(s) && s[i+1] == '-':
			k := bytes.IndexByte(s[i:], '\n')
			if k < 0 {
				return nil
			}
			i += k + 1
		case s[i] == '/' && i+1 < len(s) && s[i+1] == '*':
			// PostgreSQL's block comments nest.
			depth := 0
			for i < len(s) {
				if s[i] == '/' && i+1 < len(s) && s[i+1] == '*' {
					depth++
					i += 2
				} else if s[i] == '*' && i+1 < len(s) && s[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
			if depth != 0 {
				return nil
			}
		default:
			return s[i:]
		}
	}
	return nil
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// pgSeverity is the severity word PostgreSQL writes on a log entry.
type pgSeverity uint8

const (
	sevUnknown pgSeverity = iota
	// Severities of an entry's own line.
	sevDebug
	sevLog
	sevInfo
	sevNotice
	sevWarning
	sevError
	sevFatal
	sevPanic
	// Labels of the further lines of one entry in the stderr format.
	sevDetail
	sevHint
	sevQuery
	sevContext
	sevLocation
	sevStatement
)

// pgSeverityOf reads a severity as PostgreSQL writes it in English
// (lc_messages = C or en; translated severities are not recognised).
func pgSeverityOf(b []byte) pgSeverity {
	switch string(b) {
	case "DEBUG":
		return sevDebug
	case "LOG":
		return sevLog
	case "INFO":
		return sevInfo
	case "NOTICE":
		return sevNotice
	case "WARNING":
		return sevWarning
	case "ERROR":
		return sevError
	case "FATAL":
		return sevFatal
	case "PANIC":
		return sevPanic
	case "DETAIL":
		return sevDetail
	case "HINT":
		return sevHint
	case "QUERY":
		return sevQuery
	case "CONTEXT":
		return sevContext
	case "LOCATION":
		return sevLocation
	case "STATEMENT":
		return sevStatement
	}
	return sevUnknown
}

// auditSeverityTrusted reports whether a record at this severity can be
// pgaudit's: it logs at LOG, or at pgaudit.log_level (DEBUG1-5, INFO,
// NOTICE, WARNING, LOG) when pgaudit.log_client is on, never at ERROR or
// above; an AUDIT message at ERROR is a RAISE EXCEPTION. Severities the
// decoder does not know (a translated "LOG") are left to the other checks.
func auditSeverityTrusted(s []byte) bool {
	switch string(s) {
	case "ERROR", "FATAL", "PANIC":
		return false
	}
	return true
}

// pgauditLocation is the start of the location PostgreSQL writes for a
// pgaudit record with log_error_verbosity = verbose: "function, file:line".
const pgauditLocation = "log_audit_event, pgaudit.c:"

// The errors of the lines a log holds most of, and of impostors, are
// shared values: building one per line would allocate on the hot path, and
// a flood of impostor lines must not cost more than genuine ones. Nothing
// in them is per message.
var (
	errNotAudit  error = &DecodeError{Reason: ReasonNotAudit, Offset: -1}
	errUntrusted error = &DecodeError{Reason: ReasonUntrusted, Offset: -1}
)

// pgAddr reads a client address as PostgreSQL logs it. "[local]" (a Unix
// socket) and host names (log_hostname = on) are no address; they are
// turned away before netip.ParseAddr, whose error would allocate on every
// such line.
func pgAddr(b []byte) netip.Addr {
	for _, c := range b {
		switch {
		case isDigit(c), 'a' <= c && c <= 'f', 'A' <= c && c <= 'F', c == ':', c == '.':
		case c == '%':
			return parseAddr(b)
		default:
			return netip.Addr{}
		}
	}
	return parseAddr(b)
}

// sessionHash hashes a PostgreSQL session id ("6b0ce436.29c6": process
// start time and pid in hex) into Event.Session; empty is no session.
func sessionHash(id []byte) uint64 {
	if len(id) == 0 {
		return 0
	}
	return xxhash.Sum64(id)
}

// parsePGTime reads a timestamp as PostgreSQL writes it in logs: the log
// time of jsonlog and csvlog and the %m and %t escapes of log_line_prefix,
// "2026-11-30 02:43:43.123 UTC" or "2026-11-30 02:43:43 UTC". The zone is
// log_timezone's abbreviation; only abbreviations that say their offset are
// accepted: UTC, GMT, UCT, Z, and numeric ones (+02, -0330, +05:30), which is
// what PostgreSQL writes for zones without a letter abbreviation (Etc/GMT-2
// is "+02"). Letter abbreviations of other zones (CET, EST, IST) are
// ambiguous across the world and rejected: log_timezone = 'UTC' is the
// setting to use.
func parsePGTime(b []byte) (int64, bool) {
	if len(b) < 21 || b[10] != ' ' {
		return 0, false
	}
	secs, nanos, b, ok := parseDateTime(b)
	if !ok {
		return 0, false
	}
	if len(b) < 2 || b[0] != ' ' {
		return 0, false
	}
	offset, ok := pgZoneOffset(b[1:])
	if !ok {
		return 0, false
	}
	return toUnixNanos(secs-offset, nanos)
}

// pgZoneOffset returns the offset east of UTC, in seconds, of a zone
// abbreviation that states it.
func pgZoneOffset(z []byte) (int64, bool) {
	switch string(z) {
	case "UTC", "GMT", "UCT", "Z":
		return 0, true
	}
	if len(z) < 3 || z[0] != '+' && z[0] != '-' {
		return 0, false
	}
	h := d2(z[1], z[2])
	var m uint
	switch {
	case len(z) == 3:
	case len(z) == 5:
		m = d2(z[3], z[4])
	case len(z) == 6 && z[3] == ':':
		m = d2(z[4], z[5])
	default:
		return 0, false
	}
	if h > 23 || m > 59 {
		return 0, false
	}
	off := int64(h)*3600 + int64(m)*60
	if z[0] == '-' {
		off = -off
	}
	return off, true
}

// parseEpochSeconds reads the %n escape: seconds since the epoch with a
// fraction ("1796007096.087").
func parseEpochSeconds(b []byte) (int64, bool) {
	var secs int64
	i := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		secs = secs*10 + int64(b[i]-'0')
		if secs > math.MaxInt64/nsPerSec-1 {
			return 0, false
		}
	}
	if i == 0 {
		return 0, false
	}
	var nanos int64
	if i < len(b) && b[i] == '.' {
		i++
		n := 0
		for ; i < len(b) && isDigit(b[i]); i++ {
			if n == 9 {
				return 0, false
			}
			nanos = nanos*10 + int64(b[i]-'0')
			n++
		}
		if n == 0 {
			return 0, false
		}
		for ; n < 9; n++ {
			nanos *= 10
		}
	}
	if i != len(b) {
		return 0, false
	}
	return secs*nsPerSec + nanos, true
}

// stripPort removes a trailing ":port" (csvlog's connection_from) from a
// host. An address without a port is never given one here: PostgreSQL
// appends the port whenever it has one, and only Unix-socket connections
// ("[local]") have none.
func stripPort(h []byte) []byte {
	i := bytes.LastIndexByte(h, ':')
	if i < 0 || !allDigits(h[i+1:]) {
		return h
	}
	return h[:i]
}
