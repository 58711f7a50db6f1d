package event

import "bytes"

// pgaudit records in PostgreSQL's csvlog (log_destination = 'csvlog'): one
// CSV record per log entry, written by write_csvlog in
// src/backend/utils/error/csvlog.c. Text columns are quoted with doubled
// quotes and may span lines; empty columns are empty. The columns, in the
// order of PostgreSQL 13 to 15 (PostgreSQL 12 stops after
// application_name, 14 added leader_pid and query_id):
//
//	0 log_time, 1 user_name, 2 database_name, 3 process_id,
//	4 connection_from, 5 session_id, 6 session_line_num, 7 command_tag,
//	8 session_start_time, 9 virtual_transaction_id, 10 transaction_id,
//	11 error_severity, 12 sql_state_code, 13 message, 14 detail, 15 hint,
//	16 internal_query, 17 internal_query_pos, 18 context, 19 query,
//	20 query_pos, 21 location, 22 application_name, 23 backend_type,
//	24 leader_pid, 25 query_id
//
// Records with more columns (a later PostgreSQL) are read by the columns
// above; records with fewer than 23 are not csvlog. The server's own
// denials (see pgaudit_denial.go) are read from error_severity,
// sql_state_code, message, context and query.

const (
	csvLogTime     = 0
	csvUser        = 1
	csvDatabase    = 2
	csvConnFrom    = 4
	csvSession     = 5
	csvSeverity    = 11
	csvState       = 12
	csvMessage     = 13
	csvContext     = 18
	csvQuery       = 19
	csvLocation    = 21
	csvApplication = 22
	csvMinColumns  = 23
)

// csvColumnNames name columns in errors.
var csvColumnNames = [...]string{
	csvLogTime:     "log_time",
	csvUser:        "user_name",
	csvDatabase:    "database_name",
	csvConnFrom:    "connection_from",
	csvSession:     "session_id",
	csvSeverity:    "error_severity",
	csvState:       "sql_state_code",
	csvMessage:     "message",
	csvContext:     "context",
	csvQuery:       "query",
	csvLocation:    "location",
	csvApplication: "application_name",
}

func init() {
	register("pgaudit_csvlog", "PostgreSQL csvlog records carrying pgaudit AUDIT records and the server's refused logins and statements",
		func(l Limits, _ Options) (Decoder, error) { return newPgauditCSVLog(l), nil })
}

// pgauditCSVLog decodes pgaudit records from csvlog records. It is a
// Splitter so that a message of several records is decoded record by
// record; a record's line breaks inside quotes do not split it.
type pgauditCSVLog struct {
	pgauditBase
	// msg receives the unescaped message column.
	msg []byte
}

var (
	_ Decoder  = (*pgauditCSVLog)(nil)
	_ Splitter = (*pgauditCSVLog)(nil)
)

func newPgauditCSVLog(l Limits) *pgauditCSVLog {
	return &pgauditCSVLog{pgauditBase: newPgauditBase(l)}
}

// Split returns each record of msg: a line break outside quotes ends one.
// Blank lines are dropped. A message that ends inside quotes is returned as
// its last record, for Decode to reject.
func (d *pgauditCSVLog) Split(dst [][]byte, msg []byte) ([][]byte, error) {
	n := len(dst)
	start, quoted := 0, false
	for i := 0; i < len(msg); i++ {
		switch msg[i] {
		case '"':
			quoted = !quoted // a doubled quote flips twice
		case '\n':
			if !quoted {
				if rec := msg[start:i]; len(bytes.TrimSpace(rec)) > 0 {
					dst = append(dst, rec)
				}
				start = i + 1
			}
		}
	}
	if rec := msg[start:]; len(bytes.TrimSpace(rec)) > 0 {
		dst = append(dst, rec)
	}
	if len(dst) == n {
		dst = append(dst, msg)
	}
	return dst, nil
}

// Decode decodes one csvlog record (a trailing line break is allowed).
func (d *pgauditCSVLog) Decode(msg []byte, ev *Event) error {
	ev.Reset()
	if len(msg) > d.limits.MaxMessageBytes {
		return &DecodeError{Reason: ReasonTooLarge, Offset: -1}
	}
	var cols csvColumns
	i, n := 0, 0
	denial := false
	for {
		raw, quoted, next, ok := csvField(msg, i)
		if !ok {
			return &DecodeError{Reason: ReasonUnrecognized, Offset: next}
		}
		if n < len(cols) {
			cols[n].raw, cols[n].quoted, cols[n].at = raw, quoted, i
		}
		n++
		if n == csvMessage+1 && !bytes.HasPrefix(raw, pgauditTagBytes) {
			// Most lines end here. "AUDIT: " holds no quote, so the raw
			// column starts with it exactly when the text does. Only an
			// ERROR or FATAL with a denial's SQLSTATE (or none) reads on.
			sev := denialSeverity(cols[csvSeverity].raw)
			if st := cols[csvState].raw; sev == sevUnknown || len(st) > 0 && !denialState(st) {
				return errNotAudit
			}
			denial = true
		}
		if next < len(msg) && msg[next] == ',' {
			i = next + 1
			continue
		}
		// The end of the record: nothing may follow but its line break.
		rest := msg[next:]
		rest = bytes.TrimPrefix(rest, []byte{'\r'})
		rest = bytes.TrimPrefix(rest, []byte{'\n'})
		if len(rest) > 0 {
			return &DecodeError{Reason: ReasonUnrecognized, Offset: next}
		}
		break
	}
	if n < csvMinColumns {
		return &DecodeError{Reason: ReasonUnrecognized, Offset: -1}
	}
	if denial {
		return d.denial(&cols, ev)
	}

	// pgaudit hides the context and the statement (query); a RAISE carries
	// both. With log_error_verbosity = verbose the location must be
	// pgaudit's own.
	for _, c := range [...]int{csvContext, csvQuery} {
		if len(cols[c].raw) > 0 {
			return errUntrusted
		}
	}
	if loc := cols[csvLocation].raw; len(loc) > 0 && !bytes.HasPrefix(loc, []byte(pgauditLocation)) {
		return errUntrusted
	}
	if !auditSeverityTrusted(cols[csvSeverity].raw) {
		return errUntrusted
	}

	m := cols[csvMessage]
	body := m.raw[len(pgauditTag):]
	if m.quoted {
		d.msg = csvUnescape(d.msg[:0], body)
		body = d.msg
	}
	if err := d.decodeAudit(body, ev); err != nil {
		return err
	}

	if err := d.connection(&cols, ev); err != nil {
		return err
	}
	if ev.Principal == "" {
		return &DecodeError{Reason: ReasonMissingPrincipal, Offset: -1}
	}
	return nil
}

// connection fills ev's time, principal, database, client, address and
// session from their columns.
func (d *pgauditCSVLog) connection(cols *csvColumns, ev *Event) error {
	t := cols[csvLogTime]
	if len(t.raw) == 0 {
		return &DecodeError{Reason: ReasonMissingTime, Offset: -1}
	}
	var ok bool
	if ev.Time, ok = parsePGTime(d.text(t.raw, t.quoted)); !ok {
		return &DecodeError{Reason: ReasonBadTime, Field: csvColumnNames[csvLogTime], Offset: t.at}
	}
	if u := cols[csvUser]; len(u.raw) > 0 {
		ev.Principal = d.principals.Intern(d.text(u.raw, u.quoted))
	}
	if c := cols[csvDatabase]; len(c.raw) > 0 {
		ev.Database = d.names.Intern(d.text(c.raw, c.quoted))
	}
	if c := cols[csvApplication]; len(c.raw) > 0 {
		ev.Client = d.names.Intern(d.text(c.raw, c.quoted))
	}
	if c := cols[csvConnFrom]; len(c.raw) > 0 {
		ev.SourceIP = pgAddr(stripPort(c.raw))
	}
	ev.Session = sessionHash(cols[csvSession].raw)
	return nil
}

// csvColumn is one column of a record, as csvField read it.
type csvColumn struct {
	raw    []byte
	quoted bool
	at     int
}

// csvColumns are the columns a record is decoded from.
type csvColumns [csvMinColumns]csvColumn

// denial decodes a record that is not an AUDIT record but may be one of the
// server's denials (see pgaudit_denial.go).
func (d *pgauditCSVLog) denial(cols *csvColumns, ev *Event) error {
	m := cols[csvMessage]
	msg := m.raw
	if m.quoted {
		d.msg = csvUnescape(d.msg[:0], m.raw)
		msg = d.msg
	}
	st := cols[csvState].raw
	if len(st) != 5 {
		st = nil
	}
	kind := pgDenialOf(denialSeverity(cols[csvSeverity].raw), st, msg)
	switch {
	case kind == denialNone:
		return errNotAudit
	case kind == denialPrivilege && len(cols[csvContext].raw) > 0:
		return errUntrusted // a RAISE EXCEPTION ... USING ERRCODE
	}
	action := ActionOther
	if q := cols[csvQuery]; len(q.raw) > 0 {
		raw := q.raw
		if len(raw) > statementHead {
			raw = raw[:statementHead]
		}
		action = statementAction(d.text(raw, q.quoted))
	}
	d.fillDenial(kind, msg, action, ev)
	if err := d.connection(cols, ev); err != nil {
		return err
	}
	if ev.Principal == "" && kind == denialLogin {
		ev.Principal = d.principals.Intern(pgAuthUser(msg))
	}
	if ev.Principal == "" {
		return &DecodeError{Reason: ReasonMissingPrincipal, Offset: -1}
	}
	return nil
}

// text returns a column's text, unescaping it only when it has a doubled
// quote; the result is valid until the next call.
func (d *pgauditCSVLog) text(raw []byte, quoted bool) []byte {
	if !quoted || bytes.IndexByte(raw, '"') < 0 {
		return raw
	}
	d.tmp = csvUnescape(d.tmp[:0], raw)
	return d.tmp
}
