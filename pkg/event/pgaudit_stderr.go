package event

import (
	"bytes"
	"fmt"
	"strconv"
)

// pgaudit records in PostgreSQL's plain stderr log (log_destination =
// 'stderr', usually through logging_collector into files a shipper tails).
//
// A log entry is a first line, log_line_prefix then "SEVERITY:  message",
// where each line break of the message is followed by a tab, so a
// multi-line statement continues on lines that start with a tab. Then come
// further lines of the same entry, each with the prefix again and a label:
// DETAIL:, HINT:, QUERY:, CONTEXT:, LOCATION: (with log_error_verbosity =
// verbose), STATEMENT:. A message, as shippers cut them, is expected to be
// one entry with its continuation lines (rsyslog imfile with a
// startmsg.regex on the prefix, Fluent Bit multiline, Vector's multiline)
// or a chunk of whole lines; Split cuts a chunk into entries, keeping each
// entry's labelled lines with it.
//
// Trust. A genuine pgaudit entry has no CONTEXT: and no STATEMENT: line; a
// RAISE LOG has a STATEMENT: line always and a CONTEXT: line unless
// log_error_verbosity is terse. An entry followed by either is
// ReasonUntrusted. This only works when those lines reach the decoder in
// the same message as the entry: a shipper that sends every prefixed line
// as its own message delivers the impostor's first line alone, which is
// then indistinguishable from a genuine record. Use jsonlog or csvlog, which
// carry the context and statement inside the record, where that matters.
// A line that matches log_line_prefix in two ways (a client-chosen
// application_name that contains the text after %a, a role named
// "alice@shop" under %u@%d; see pgaudit_prefix.go) is ReasonUntrusted when
// either reading is an AUDIT record.
//
// Not detectable here: PostgreSQL writes role and database names into the
// prefix as they are, line breaks included, and accepts line breaks in
// them. Someone who can create roles or databases (CREATEROLE, CREATEDB)
// can name one "x\n<a forged prefix naming alice>", and the genuine records
// of its sessions then start on a line of their own that names alice.
// jsonlog and csvlog escape the names; prefer them where such a grant is
// given out. The refused logins decoded here (pgaudit_denial.go) widen
// this: the user and database of a failed login are whatever the client
// sent, so anyone who can reach the port can put a line break and up to
// 63 bytes of a forged prefix in the log (seen with PostgreSQL 15.18:
// testdata/pgaudit/denial/injected.log). A forged line through the user
// name is caught, as its %u differs from the user the message names; one
// through the database name can only restate the login the client really
// attempted, under a forged time. Lines that forge an ERROR or an AUDIT
// record need a session, hence a role or database so named.

func init() {
	register("pgaudit_stderr", "PostgreSQL stderr log lines (log_line_prefix from the input's log_line_prefix) carrying pgaudit AUDIT records and the server's refused logins and statements",
		func(l Limits, o Options) (Decoder, error) { return newPgauditStderr(l, o) })
}

// defaultLogLinePrefix is PostgreSQL's default log_line_prefix.
const defaultLogLinePrefix = "%m [%p] "

// pgauditStderr decodes pgaudit records from stderr log entries.
type pgauditStderr struct {
	pgauditBase
	m prefixMatcher
	// sid receives a session id rebuilt from %s and %p.
	sid [40]byte
}

var (
	_ Decoder  = (*pgauditStderr)(nil)
	_ Splitter = (*pgauditStderr)(nil)
)

// newPgauditStderr builds the decoder for the input's log_line_prefix. An
// empty prefix is PostgreSQL's default, "%m [%p] ", which names no user: as
// pgaudit records do not name it either, no record could be decoded, so it
// is refused like any prefix without %u, with a hint, instead of failing
// every record at run time.
func newPgauditStderr(l Limits, o Options) (*pgauditStderr, error) {
	if o.LogLinePrefix == "" {
		return nil, fmt.Errorf("log_line_prefix not set, and PostgreSQL's default %q names no user, which pgaudit records do not carry: "+
			"set log_line_prefix in postgresql.conf and on this input to one with %%u, for example '%%m [%%p] %%q%%u@%%d '", defaultLogLinePrefix)
	}
	p, err := compileLogPrefix(o.LogLinePrefix)
	if err != nil {
		return nil, err
	}
	d := &pgauditStderr{pgauditBase: newPgauditBase(l)}
	d.m.p = p
	return d, nil
}

// nextLine returns the line of msg that starts at pos, without its line
// break, and where the line after it starts.
func nextLine(msg []byte, pos int) (line []byte, next int) {
	end := len(msg)
	next = end
	if i := bytes.IndexByte(msg[pos:], '\n'); i >= 0 {
		end, next = pos+i, pos+i+1
	}
	line = msg[pos:end]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, next
}

// Split cuts msg into entries: an entry starts at each line that is neither
// a continuation (a leading tab) nor a labelled further line of the entry
// before it (DETAIL: ... STATEMENT:). Blank lines end an entry and are
// dropped.
func (d *pgauditStderr) Split(dst [][]byte, msg []byte) ([][]byte, error) {
	n := len(dst)
	start, end := -1, 0
	flush := func() {
		if start >= 0 {
			dst = append(dst, msg[start:end])
		}
		start = -1
	}
	for pos := 0; pos < len(msg); {
		line, next := nextLine(msg, pos)
		switch {
		case len(bytes.TrimSpace(line)) == 0:
			flush()
		case line[0] == '\t' && start >= 0:
		case start >= 0 && d.further(line):
		default:
			flush()
			start = pos
		}
		if start >= 0 {
			end = pos + len(line)
		}
		pos = next
	}
	flush()
	if len(dst) == n {
		dst = append(dst, msg)
	}
	return dst, nil
}

// further reports whether line is a labelled further line of an entry.
func (d *pgauditStderr) further(line []byte) bool {
	if n, _ := d.m.match(line, 1); n == 0 {
		return false
	}
	p := &d.m.found[0]
	return pgSeverityOf(line[p.sev:p.sevEnd]) >= sevDetail
}

// Decode decodes one entry: its first line, its continuation lines and its
// labelled further lines. A message that starts with a continuation line
// (a shipper cut an entry apart) or holds more than one entry (Split it
// first) is ReasonUnrecognized.
func (d *pgauditStderr) Decode(msg []byte, ev *Event) error {
	ev.Reset()
	if len(msg) > d.limits.MaxMessageBytes {
		return &DecodeError{Reason: ReasonTooLarge, Offset: -1}
	}
	msg = bytes.TrimRight(msg, "\r\n")
	if len(msg) == 0 || msg[0] == '\t' {
		return &DecodeError{Reason: ReasonUnrecognized, Offset: 0}
	}
	line, next := nextLine(msg, 0)
	// The entry's own text runs over its continuation lines.
	entryEnd := len(line)
	for next < len(msg) && msg[next] == '\t' {
		var l []byte
		pos := next
		l, next = nextLine(msg, pos)
		entryEnd = pos + len(l)
	}

	if !bytes.Contains(line, pgauditTagBytes) {
		// The common case, an ordinary line: one reading of the prefix
		// tells it from a line of another format. Only an ERROR or a
		// FATAL line can be a denial.
		if n, _ := d.m.match(line, 1); n == 0 {
			return &DecodeError{Reason: ReasonUnrecognized, Offset: 0}
		}
		p := &d.m.found[0]
		if sev := pgSeverityOf(line[p.sev:p.sevEnd]); sev != sevError && sev != sevFatal {
			return errNotAudit
		}
		return d.denial(msg, line, next, entryEnd, ev)
	}
	n, exhausted := d.m.match(line, 2)
	if n == 0 && !exhausted {
		return &DecodeError{Reason: ReasonUnrecognized, Offset: 0}
	}
	if n > 1 || exhausted {
		// Ambiguous: a value holds the text that follows it. Whichever
		// reading is the AUDIT record, it cannot be trusted.
		for _, p := range d.m.found[:n] {
			if _, ok := stderrAuditBody(msg[p.msg:entryEnd]); ok {
				return errUntrusted
			}
		}
		if exhausted {
			return errUntrusted
		}
		return errNotAudit
	}
	p := d.m.found[0] // a copy: the further lines reuse the matcher
	sev := line[p.sev:p.sevEnd]
	if pgSeverityOf(sev) >= sevDetail {
		// A further line whose entry came in an earlier message.
		return errNotAudit
	}
	body, ok := stderrAuditBody(msg[p.msg:entryEnd])
	if !ok {
		return errNotAudit
	}
	if !auditSeverityTrusted(sev) {
		return errUntrusted
	}
	if err := d.furtherLines(msg, next); err != nil {
		return err
	}
	if err := d.decodeAudit(body, ev); err != nil {
		return err
	}
	return d.prefixFields(line, &p, false, nil, ev)
}

// stderrAuditBody returns the CSV after "AUDIT: " of an entry's message.
// With log_error_verbosity = verbose the message starts with the SQLSTATE
// ("00000: AUDIT: ...").
func stderrAuditBody(m []byte) ([]byte, bool) {
	if body, ok := bytes.CutPrefix(m, pgauditTagBytes); ok {
		return body, true
	}
	if _, rest, ok := cutSQLState(m); ok {
		return bytes.CutPrefix(rest, pgauditTagBytes)
	}
	return nil, false
}

// furtherLines checks the labelled lines after an AUDIT entry, from pos on.
func (d *pgauditStderr) furtherLines(msg []byte, pos int) error {
	for pos < len(msg) {
		at := pos
		line, next := nextLine(msg, pos)
		pos = next
		if len(line) == 0 || line[0] == '\t' {
			continue // a continuation of a labelled line
		}
		if n, _ := d.m.match(line, 1); n == 0 {
			return &DecodeError{Reason: ReasonUnrecognized, Offset: at}
		}
		p := &d.m.found[0]
		switch pgSeverityOf(line[p.sev:p.sevEnd]) {
		case sevLocation:
			if !bytes.HasPrefix(line[p.msg:], []byte(pgauditLocation)) {
				return errUntrusted
			}
		case sevDetail, sevHint, sevQuery, sevContext, sevStatement:
			// pgaudit writes none of these; a RAISE writes STATEMENT:
			// and CONTEXT:.
			return errUntrusted
		default:
			// Another entry: the message was not split.
			return &DecodeError{Reason: ReasonUnrecognized, Offset: at}
		}
	}
	return nil
}

// denial decodes an ERROR or FATAL entry that may be one of the server's
// denials (see pgaudit_denial.go): line is its first line, next where its
// further lines start and entryEnd where its message ends.
func (d *pgauditStderr) denial(msg, line []byte, next, entryEnd int, ev *Event) error {
	n, exhausted := d.m.match(line, 2)
	if n == 0 {
		return errNotAudit
	}
	if n > 1 || exhausted {
		// A value holds the text after it (a role named "alice@shop"
		// under %u@%d): whichever reading is a denial, it cannot be
		// attributed.
		for i := range n {
			if kind, _ := stderrDenialOf(line, msg[:entryEnd], &d.m.found[i]); kind != denialNone {
				return errUntrusted
			}
		}
		return errNotAudit
	}
	p := d.m.found[0] // a copy: the further lines reuse the matcher
	kind, text := stderrDenialOf(line, msg[:entryEnd], &p)
	if kind == denialNone {
		return errNotAudit
	}
	context, stmt, err := d.denialLines(msg, next)
	switch {
	case err != nil:
		return err
	case kind == denialPrivilege && context:
		return errUntrusted // a RAISE EXCEPTION ... USING ERRCODE
	}
	d.fillDenial(kind, text, statementAction(stmt), ev)
	var user []byte
	if kind == denialLogin {
		// The user of a refused login is the client's to choose, before
		// any authentication, and %u writes it as it is, line breaks
		// included: a user named "x\n<prefix naming alice>" starts a line
		// that reads as alice's refused login. The message names the
		// whole name, so a %u that differs from it is such a line.
		user = pgAuthUser(text)
		if u := p.vals[slotUser]; user != nil && u.end >= 0 {
			if v := line[u.start:u.end]; string(v) != unknownName && string(v) != string(user) {
				return errUntrusted
			}
		}
	}
	return d.prefixFields(line, &p, true, user, ev)
}

// unknownName is what log_line_prefix prints for an unset user, database
// or application name.
const unknownName = "[unknown]"

// stderrDenialOf classifies an entry by the severity and SQLSTATE of the
// reading p of its first line; msg ends where the entry's message ends. It
// also returns the message, without the SQLSTATE that verbose error
// verbosity puts before it and without the " at character N" that stderr
// appends to it.
func stderrDenialOf(line, msg []byte, p *prefixParse) (pgDenial, []byte) {
	var state []byte
	if s := p.vals[slotSQLState]; s.end >= 0 {
		state = line[s.start:s.end]
	}
	text := msg[p.msg:]
	if st, rest, ok := cutSQLState(text); ok && (state == nil || string(st) == string(state)) {
		state, text = st, rest
	}
	if i := bytes.LastIndex(text, []byte(cursorPosText)); i >= 0 && allDigits(text[i+len(cursorPosText):]) {
		text = text[:i]
	}
	return pgDenialOf(pgSeverityOf(line[p.sev:p.sevEnd]), state, text), text
}

// cursorPosText is how the stderr format appends an error's cursor
// position to its message (jsonlog and csvlog have a field for it).
const cursorPosText = " at character "

// cutSQLState cuts the "42501: " that log_error_verbosity = verbose writes
// before the message.
func cutSQLState(m []byte) (state, rest []byte, ok bool) {
	if len(m) < 7 || m[5] != ':' || m[6] != ' ' {
		return nil, m, false
	}
	for _, c := range m[:5] {
		if !classSQLState.has(c) {
			return nil, m, false
		}
	}
	return m[:5], m[7:], true
}

// denialLines reads the labelled lines after a denial entry, from pos on:
// whether one is a CONTEXT: (the mark of a RAISE), and the text of the
// STATEMENT:, if any, with its continuation lines.
func (d *pgauditStderr) denialLines(msg []byte, pos int) (context bool, stmt []byte, err error) {
	for pos < len(msg) {
		at := pos
		line, next := nextLine(msg, pos)
		pos = next
		if len(line) == 0 || line[0] == '\t' {
			continue // a continuation of a labelled line
		}
		if n, _ := d.m.match(line, 1); n == 0 {
			return false, nil, &DecodeError{Reason: ReasonUnrecognized, Offset: at}
		}
		p := &d.m.found[0]
		switch pgSeverityOf(line[p.sev:p.sevEnd]) {
		case sevContext:
			context = true
		case sevStatement:
			end := at + len(line)
			for pos < len(msg) && msg[pos] == '\t' {
				var l []byte
				start := pos
				l, pos = nextLine(msg, pos)
				end = start + len(l)
			}
			if stmt == nil {
				stmt = msg[at+p.msg : end]
			}
		case sevDetail, sevHint, sevQuery, sevLocation:
		default:
			// Another entry: the message was not split.
			return false, nil, &DecodeError{Reason: ReasonUnrecognized, Offset: at}
		}
	}
	return context, stmt, nil
}

// prefixFields fills ev from the values of the prefix. With unset, a user,
// database or application name of "[unknown]" is empty, and user stands in
// for an empty user: a refused login is logged before the session has them.
func (d *pgauditStderr) prefixFields(line []byte, p *prefixParse, unset bool, user []byte, ev *Event) error {
	val := func(slot int) []byte {
		s := p.vals[slot]
		if s.end < 0 {
			return nil
		}
		v := line[s.start:s.end]
		if unset && string(v) == unknownName {
			return nil
		}
		return v
	}
	var ok bool
	switch {
	case p.vals[slotTime].end >= 0:
		ev.Time, ok = parsePGTime(val(slotTime))
	case p.vals[slotEpoch].end >= 0:
		ev.Time, ok = parseEpochSeconds(val(slotEpoch))
	case p.vals[slotTimeSec].end >= 0:
		ev.Time, ok = parsePGTime(val(slotTimeSec))
	default:
		return &DecodeError{Reason: ReasonMissingTime, Offset: -1}
	}
	if !ok {
		return &DecodeError{Reason: ReasonBadTime, Field: "log_line_prefix", Offset: 0}
	}
	u := val(slotUser)
	if len(u) == 0 {
		u = user
	}
	if ev.Principal = d.principals.Intern(u); ev.Principal == "" {
		return &DecodeError{Reason: ReasonMissingPrincipal, Offset: -1}
	}
	ev.Database = d.names.Intern(val(slotDB))
	ev.Client = d.names.Intern(val(slotApp))
	if h := val(slotHost); len(h) > 0 {
		ev.SourceIP = pgAddr(h)
	} else if h := val(slotHostPort); len(h) > 0 {
		// %r is "host(port)".
		if i := bytes.LastIndexByte(h, '('); i > 0 && h[len(h)-1] == ')' {
			h = h[:i]
		}
		ev.SourceIP = pgAddr(h)
	}
	if c := val(slotSession); len(c) > 0 {
		ev.Session = sessionHash(c)
	} else {
		ev.Session = d.rebuiltSession(val(slotStart), val(slotPID))
	}
	return nil
}

// rebuiltSession hashes the session id PostgreSQL would have written for
// %c ("%lx.%x" of the process start time and pid) from %s and %p, so that
// the session hash agrees with the other formats when the prefix has no %c.
func (d *pgauditStderr) rebuiltSession(start, pid []byte) uint64 {
	if len(start) == 0 || len(pid) == 0 {
		return 0
	}
	t, ok := parsePGTime(start)
	if !ok || t < 0 {
		return 0
	}
	n, ok := parseCount(pid)
	if !ok {
		return 0
	}
	b := strconv.AppendInt(d.sid[:0], t/nsPerSec, 16)
	b = append(b, '.')
	b = strconv.AppendInt(b, n, 16)
	return sessionHash(b)
}
