package event

import "bytes"

// pgaudit records in PostgreSQL's jsonlog (log_destination = 'jsonlog',
// PostgreSQL 15 and later): one JSON object per line, written by
// write_jsonlog in src/backend/utils/error/jsonlog.c. A key is left out
// when its value is empty, which is how a genuine pgaudit record shows it
// has no "context" and no "statement". The server's own denials (see
// pgaudit_denial.go) are read from "error_severity", "state_code" (always
// written), "message", "context" and "statement".

func init() {
	register("pgaudit_jsonlog", "PostgreSQL jsonlog lines (PostgreSQL 15+) carrying pgaudit AUDIT records and the server's refused logins and statements",
		func(l Limits, _ Options) (Decoder, error) { return newPgauditJSONLog(l), nil })
}

// pgauditJSONLog decodes pgaudit records from jsonlog lines. It is a
// Splitter so that a message holding several lines (a shipper's batch) is
// decoded line by line.
type pgauditJSONLog struct {
	pgauditBase
	s scanner
	// msg keeps the message of a line that may be a denial until the
	// severity and SQLSTATE are known: the scanner's own copy of an
	// escaped string lasts only until the next value.
	msg []byte
}

var (
	_ Decoder  = (*pgauditJSONLog)(nil)
	_ Splitter = (*pgauditJSONLog)(nil)
)

func newPgauditJSONLog(l Limits) *pgauditJSONLog {
	return &pgauditJSONLog{pgauditBase: newPgauditBase(l)}
}

// Split returns each non-blank line of msg.
func (d *pgauditJSONLog) Split(dst [][]byte, msg []byte) ([][]byte, error) {
	n := len(dst)
	for rest := msg; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			dst = append(dst, line)
		}
	}
	if len(dst) == n {
		dst = append(dst, msg)
	}
	return dst, nil
}

// Decode decodes one jsonlog line. Lines whose message is neither an AUDIT
// record nor one of the server's denials (pgaudit_denial.go) are
// ReasonNotAudit, and are recognised as soon as the message is read when
// the severity comes before it, as PostgreSQL writes it. Keys may come in
// any order (a shipper may rewrite the object); unknown keys are skipped.
func (d *pgauditJSONLog) Decode(msg []byte, ev *Event) error {
	ev.Reset()
	if len(msg) > d.limits.MaxMessageBytes {
		return &DecodeError{Reason: ReasonTooLarge, Offset: -1}
	}
	d.s.buf, d.s.pos = msg, 0
	err := d.object(ev)
	d.s.buf = nil
	return err
}

func (d *pgauditJSONLog) object(ev *Event) error {
	s := &d.s
	var (
		audit, hasTime, timeBad, severityBad, shown bool
		// A line that is not an AUDIT record but may be a denial: its
		// message is in d.msg.
		candidate, hasContext bool
		sev                   pgSeverity
		state                 [5]byte
		hasState              bool
		stmtAction            = ActionOther
		timeAt                int
		bodyErr               error
	)
	// notDenial reports, once the severity or the SQLSTATE is known, that
	// the line cannot be a denial: most lines end at their message.
	notDenial := func() bool {
		return sev != sevUnknown && sev != sevError && sev != sevFatal ||
			hasState && !denialState(state[:])
	}
	err := s.members(0, func(key []byte) error {
		at := s.pos
		switch string(key) {
		case "message":
			v, err := s.text("message")
			if err != nil {
				return err
			}
			body, ok := bytes.CutPrefix(v, pgauditTagBytes)
			if !ok {
				if v == nil || notDenial() {
					return errNotAudit
				}
				candidate = true
				d.msg = append(d.msg[:0], v...)
				return nil
			}
			audit = true
			bodyErr = d.decodeAudit(body, ev)
		case "timestamp":
			v, err := s.text("timestamp")
			if err != nil {
				return err
			}
			ev.Time, hasTime = 0, v != nil
			if hasTime {
				var ok bool
				ev.Time, ok = parsePGTime(v)
				timeBad, timeAt = !ok, at
			}
		case "user":
			v, err := s.text("user")
			if err != nil {
				return err
			}
			ev.Principal = d.principals.Intern(v)
		case "dbname":
			v, err := s.text("dbname")
			if err != nil {
				return err
			}
			ev.Database = d.names.Intern(v)
		case "application_name":
			v, err := s.text("application_name")
			if err != nil {
				return err
			}
			ev.Client = d.names.Intern(v)
		case "remote_host":
			v, err := s.text("remote_host")
			if err != nil {
				return err
			}
			ev.SourceIP = pgAddr(v)
		case "session_id":
			v, err := s.text("session_id")
			if err != nil {
				return err
			}
			ev.Session = sessionHash(v)
		case "error_severity":
			v, err := s.text("error_severity")
			if err != nil {
				return err
			}
			severityBad = !auditSeverityTrusted(v)
			sev = denialSeverity(v)
			if sev == sevUnknown && v != nil {
				sev = sevLog // any other severity: never a denial
			}
			if candidate && notDenial() {
				return errNotAudit
			}
		case "state_code":
			v, err := s.text("state_code")
			if err != nil {
				return err
			}
			hasState = len(v) == len(state)
			copy(state[:], v)
			if candidate && notDenial() {
				return errNotAudit
			}
		case "context":
			// pgaudit hides the context and the statement; a RAISE
			// carries both.
			v, err := s.text("context")
			if err != nil {
				return err
			}
			hasContext = hasContext || len(v) > 0
			shown = shown || len(v) > 0
		case "statement":
			v, err := s.text("statement")
			if err != nil {
				return err
			}
			stmtAction = statementAction(v)
			shown = shown || len(v) > 0
		case "func_name":
			// Written with log_error_verbosity = verbose, like file_name:
			// the C function and file that emitted the entry.
			v, err := s.text("func_name")
			if err != nil {
				return err
			}
			shown = shown || v != nil && string(v) != "log_audit_event"
		case "file_name":
			v, err := s.text("file_name")
			if err != nil {
				return err
			}
			shown = shown || v != nil && string(v) != "pgaudit.c"
		default:
			return s.skip(1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	switch {
	case candidate && audit:
		return errUntrusted // two messages: which one the server wrote is unknown
	case candidate:
		var st []byte
		if hasState {
			st = state[:]
		}
		kind := pgDenialOf(sev, st, d.msg)
		switch {
		case kind == denialNone:
			return errNotAudit
		case kind == denialPrivilege && hasContext:
			return errUntrusted // a RAISE EXCEPTION ... USING ERRCODE
		}
		d.fillDenial(kind, d.msg, stmtAction, ev)
		if ev.Principal == "" && kind == denialLogin {
			ev.Principal = d.principals.Intern(pgAuthUser(d.msg))
		}
	case !audit:
		return errNotAudit
	case shown || severityBad:
		// A context, a statement or another emitter than pgaudit's
		// log_audit_event: not pgaudit (see pgaudit.go).
		return errUntrusted
	case bodyErr != nil:
		return bodyErr
	}
	switch {
	case !hasTime:
		return &DecodeError{Reason: ReasonMissingTime, Offset: -1}
	case timeBad:
		return &DecodeError{Reason: ReasonBadTime, Field: "timestamp", Offset: timeAt}
	case ev.Principal == "":
		return &DecodeError{Reason: ReasonMissingPrincipal, Offset: -1}
	}
	return nil
}
