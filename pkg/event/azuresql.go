package event

import (
	"bytes"

	"github.com/cespare/xxhash/v2"
)

// Azure SQL Database auditing records (diagnostic category
// SQLSecurityAuditEvents), as exported to Event Hubs or Log Analytics:
// the Event Hubs envelope {"records":[{"time":..., "category":
// "SQLSecurityAuditEvents", "properties":{...}}]} (Split hands out the
// records), a JSON array of records, one record, or the audit fields as one
// flat object. The field names are read in all three spellings Microsoft
// uses: the audit's own (server_principal_name), Log Analytics' typed
// columns in AzureDiagnostics (server_principal_name_s, event_time_t,
// response_rows_d) and the resource-specific table's (ServerPrincipalName).
//
// What is read: event_time (else the record's time or TimeGenerated);
// server_principal_name as the principal (else
// session_server_principal_name, else database_principal_name); client_ip;
// application_name; database_name; schema_name.object_name as the object,
// except for logins and for audits of a whole database or server, whose
// object_name only repeats it; session_id, hashed with
// server_instance_name because SQL Server reuses session ids; action_id
// (else action_name) and succeeded for action and status; response_rows
// for reads and affected_rows for writes. statement is scanned for its verb
// and never kept.
//
// Azure's default audit policy records queries as BATCH COMPLETED (BCM) and
// RPC COMPLETED (RCM) rather than SELECT or UPDATE, so their action comes
// from the statement. succeeded is a login's outcome or a batch's, but only
// the permission check for other actions: a failed login or permission
// check is StatusDenied, a failed batch StatusError.
//
// A record of another diagnostic category is ReasonNotAudit.

func init() {
	register("azure_sql", "Azure SQL Database audit records (SQLSecurityAuditEvents) from Event Hubs or Log Analytics",
		func(l Limits, _ Options) (Decoder, error) { return NewAzureSQL(l), nil })
}

// AzureSQL decodes Azure SQL Database audit records. It is not safe for
// concurrent use.
type AzureSQL struct {
	limits     Limits
	principals *Interner
	names      *Interner
	w          dasWalker
	ev         *Event
	st         azureSQLState
	// Parts of fields resolved once the record is read: the object needs
	// the class, the session the server.
	obj, schema, server, join []byte
	recs                      [][]byte
}

var (
	_ Decoder  = (*AzureSQL)(nil)
	_ Splitter = (*AzureSQL)(nil)
)

// NewAzureSQL returns a decoder for Azure SQL Database audit records.
func NewAzureSQL(l Limits) *AzureSQL {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	return &AzureSQL{limits: l, principals: NewInterner(l.PrincipalIntern), names: NewInterner(1 << 14),
		w: dasWalker{zonelessUTC: true}}
}

type azureSQLState struct {
	eventTime, recordTime       int64
	hasEventTime, hasRecordTime bool

	hasCategory, audit, envelope bool

	act           azureSQLAct
	hasActionID   bool
	nameAct       azureSQLAct
	stmtAction    Action
	hasStmt       bool
	succeeded     bool
	hasSucceeded  bool
	principalRank int

	classType    [4]byte
	classTypeLen int
	session      [24]byte
	sessionLen   int

	response, affected       int64
	hasResponse, hasAffected bool
}

// Split appends each record of an Event Hubs envelope or a JSON array to
// dst; any other message is appended whole.
func (d *AzureSQL) Split(dst [][]byte, msg []byte) ([][]byte, error) {
	if len(msg) > d.limits.MaxMessageBytes {
		return dst, dasErrTooLarge
	}
	n := len(dst)
	s := &d.w.scanner
	s.buf, s.pos = msg, 0
	list := false
	var err error
	s.skipWS()
	if s.peek() == '[' {
		list = true
		err = dasSplitElements(s, &dst, 0)
	} else {
		err = s.members(0, func(key []byte) error {
			if string(key) != "records" {
				return s.skip(1)
			}
			list = true
			switch s.peek() {
			case '[':
				return dasSplitElements(s, &dst, 1)
			case 'n':
				return s.literal("null")
			}
			return &DecodeError{Reason: ReasonBadValue, Field: "records", Offset: s.pos}
		})
	}
	if err == nil {
		err = s.end()
	}
	s.buf = nil
	if err != nil {
		return dst[:n], err
	}
	if !list {
		dst = append(dst, msg)
	}
	return dst, nil
}

// Decode decodes one audit record. Given an envelope or array instead, it
// decodes the one audit record it holds; several are ReasonBadValue of
// records: they need Split.
func (d *AzureSQL) Decode(msg []byte, ev *Event) error {
	return d.decode(msg, ev, false)
}

func (d *AzureSQL) decode(msg []byte, ev *Event, nested bool) error {
	ev.Reset()
	if len(msg) > d.limits.MaxMessageBytes {
		return dasErrTooLarge
	}
	w := &d.w
	w.reset(msg)
	w.skipWS()
	if w.peek() == '[' && !nested {
		w.buf = nil
		return d.decodeEnvelope(msg, ev)
	}
	d.ev, d.st = ev, azureSQLState{}
	d.obj, d.schema, d.server = d.obj[:0], d.schema[:0], d.server[:0]
	err := w.members(0, func(key []byte) error { return d.member(key, 1) })
	if err == nil {
		err = w.end()
	}
	w.buf, d.ev = nil, nil
	if err != nil {
		return err
	}
	if d.st.envelope {
		if nested {
			return &DecodeError{Reason: ReasonBadValue, Field: "records", Offset: -1}
		}
		return d.decodeEnvelope(msg, ev)
	}
	return d.finish(ev)
}

func (d *AzureSQL) decodeEnvelope(msg []byte, ev *Event) error {
	recs, err := d.Split(d.recs[:0], msg)
	if err == nil {
		err = dasDecodeOnly(recs, ev, ReasonBadValue, "records", func(rec []byte) error { return d.decode(rec, ev, true) })
	}
	clear(recs) // keep no reference to msg
	d.recs = recs[:0]
	return err
}

// azureSQLKey folds the spellings of a field name into one: lower case
// without underscores, and without Log Analytics' type suffix (_s, _d, _t,
// _g, _b). No audit field ends in such a suffix of its own. The result
// lives in buf; nil means a name too long to be a known one.
func azureSQLKey(buf *[40]byte, key []byte) []byte {
	if n := len(key); n > 2 && key[n-2] == '_' {
		switch key[n-1] {
		case 's', 'd', 't', 'g', 'b':
			key = key[:n-2]
		}
	}
	n := 0
	for _, c := range key {
		if c == '_' {
			continue
		}
		if n == len(buf) {
			return nil
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	return buf[:n]
}

// member reads a field of a record or of its properties; depth is the
// value's.
func (d *AzureSQL) member(key []byte, depth int) error {
	w, ev, st := &d.w, d.ev, &d.st
	var buf [40]byte
	switch string(azureSQLKey(&buf, key)) {
	case "records":
		st.envelope = true
		return w.skip(depth)
	case "properties":
		if depth > 1 {
			return w.skip(depth)
		}
		return w.object("properties", depth, func(key []byte) error { return d.member(key, depth+1) })
	case "category":
		v, err := w.str("category", depth)
		st.hasCategory = v != nil
		st.audit = bytes.EqualFold(v, []byte("SQLSecurityAuditEvents"))
		return err
	case "eventtime":
		return w.time("event_time", depth, &st.eventTime, &st.hasEventTime)
	case "time", "timegenerated":
		return w.time("time", depth, &st.recordTime, &st.hasRecordTime)
	case "actionid":
		v, err := w.str("action_id", depth)
		v = bytes.TrimSpace(v) // char(4), blank-padded
		st.hasActionID = len(v) > 0
		st.act = azureSQLActionID(v)
		return err
	case "actionname":
		v, err := w.str("action_name", depth)
		st.nameAct = azureSQLActionName(v)
		return err
	case "succeeded":
		var err error
		st.succeeded, st.hasSucceeded, err = w.flag("succeeded", depth)
		return err
	case "serverprincipalname":
		return d.principal("server_principal_name", depth, 3)
	case "sessionserverprincipalname":
		return d.principal("session_server_principal_name", depth, 2)
	case "databaseprincipalname":
		return d.principal("database_principal_name", depth, 1)
	case "clientip":
		v, err := w.str("client_ip", depth)
		ev.SourceIP = dasAddr(v)
		return err
	case "applicationname":
		v, err := w.str("application_name", depth)
		ev.Client = d.names.Intern(v)
		return err
	case "databasename":
		v, err := w.str("database_name", depth)
		ev.Database = d.names.Intern(v)
		return err
	case "schemaname":
		v, err := w.str("schema_name", depth)
		d.schema = append(d.schema[:0], v...)
		return err
	case "objectname":
		v, err := w.str("object_name", depth)
		d.obj = append(d.obj[:0], v...)
		return err
	case "classtype":
		v, err := w.str("class_type", depth)
		st.classTypeLen = copy(st.classType[:], bytes.TrimSpace(v))
		return err
	case "statement":
		v, err := w.str("statement", depth)
		st.hasStmt = len(v) > 0
		if st.hasStmt {
			st.stmtAction = dasSQLAction(v)
		}
		return err
	case "responserows":
		var err error
		st.response, st.hasResponse, err = w.count("response_rows", depth)
		return err
	case "affectedrows":
		var err error
		st.affected, st.hasAffected, err = w.count("affected_rows", depth)
		return err
	case "sessionid":
		v, err := w.str("session_id", depth)
		st.sessionLen = copy(st.session[:], v)
		return err
	case "serverinstancename":
		v, err := w.str("server_instance_name", depth)
		d.server = append(d.server[:0], v...)
		return err
	}
	return w.skip(depth)
}

// principal takes a principal name when no better-ranked field gave one:
// the login over the session's login over the database user, which is
// often only dbo.
func (d *AzureSQL) principal(field string, depth, rank int) error {
	v, err := d.w.str(field, depth)
	if len(v) > 0 && rank >= d.st.principalRank {
		d.ev.Principal, d.st.principalRank = d.principals.Intern(v), rank
	}
	return err
}

func (d *AzureSQL) finish(ev *Event) error {
	st := &d.st
	if st.hasCategory && !st.audit {
		return dasErrNotAudit
	}
	if err := d.w.fault(); err != nil {
		return err
	}
	switch {
	case st.hasEventTime:
		ev.Time = st.eventTime
	case st.hasRecordTime:
		ev.Time = st.recordTime
	default:
		return dasErrMissingTime
	}
	if ev.Principal == "" {
		return dasErrMissingPrincipal
	}
	act := st.act
	if !st.hasActionID {
		act = st.nameAct
	}
	switch act {
	case azureSQLBatch:
		ev.Action = ActionOther
		if st.hasStmt {
			ev.Action = st.stmtAction
		}
	case azureSQLLoginFailed:
		ev.Action = ActionLogin
	default:
		ev.Action = act.action()
	}
	switch {
	case act == azureSQLLoginFailed:
		ev.Status = StatusDenied
	case st.hasSucceeded && !st.succeeded && act == azureSQLBatch:
		ev.Status = StatusError
	case st.hasSucceeded && !st.succeeded:
		ev.Status = StatusDenied
	}
	switch ev.Action {
	case ActionRead, ActionExport:
		ev.Rows, ev.HasRows = st.response, st.hasResponse
	case ActionWrite, ActionDelete:
		ev.Rows, ev.HasRows = st.affected, st.hasAffected
	}
	// Session 0 is no session: failed logins carry it.
	if sid := st.session[:st.sessionLen]; len(sid) > 0 && !dasZeroCode(sid) {
		d.join = append(append(append(d.join[:0], d.server...), '/'), sid...)
		ev.Session = xxhash.Sum64(d.join)
	}
	d.object(ev)
	return nil
}

// object sets schema.object, except where object_name only names the
// database or server the audit is about.
func (d *AzureSQL) object(ev *Event) {
	st := &d.st
	name := bytes.TrimSpace(d.obj)
	switch string(st.classType[:st.classTypeLen]) {
	case "DB", "SV":
		return
	}
	if ev.Action == ActionLogin || len(name) == 0 || string(name) == "0" {
		return
	}
	schema := bytes.TrimSpace(d.schema)
	if len(schema) == 0 || bytes.IndexByte(name, '.') >= 0 {
		ev.Object = d.names.Intern(name)
		return
	}
	d.join = append(append(append(d.join[:0], schema...), '.'), name...)
	ev.Object = d.names.Intern(d.join)
}

// azureSQLAct is what an audit action is, before the statement of a batch
// is looked at.
type azureSQLAct uint8

const (
	azureSQLOther azureSQLAct = iota
	azureSQLRead
	azureSQLWrite
	azureSQLDelete
	azureSQLDDL
	azureSQLLogin
	azureSQLLoginFailed
	// azureSQLBatch: BATCH COMPLETED or RPC COMPLETED, whose action is
	// its statement's.
	azureSQLBatch
)

func (a azureSQLAct) action() Action {
	switch a {
	case azureSQLRead:
		return ActionRead
	case azureSQLWrite:
		return ActionWrite
	case azureSQLDelete:
		return ActionDelete
	case azureSQLDDL:
		return ActionDDL
	case azureSQLLogin, azureSQLLoginFailed:
		return ActionLogin
	}
	return ActionOther
}

// azureSQLActionID maps a SQL Server audit action_id (sys.dm_audit_actions).
func azureSQLActionID(v []byte) azureSQLAct {
	switch string(v) {
	case "SL", "RC": // SELECT, RECEIVE
		return azureSQLRead
	case "IN", "UP": // INSERT, UPDATE
		return azureSQLWrite
	case "DL": // DELETE
		return azureSQLDelete
	case "BCM", "RCM": // BATCH COMPLETED, RPC COMPLETED
		return azureSQLBatch
	case "LGIS", "DBAS": // LOGIN SUCCEEDED, DATABASE AUTHENTICATION SUCCEEDED
		return azureSQLLogin
	case "LGIF", "DBAF": // LOGIN FAILED, DATABASE AUTHENTICATION FAILED
		return azureSQLLoginFailed
	case "AL", "CR", "DR", "G", "GWG", "D", "R", "RWG", "TO", "TRO": // ALTER, CREATE, DROP, GRANT, DENY, REVOKE, ownership
		return azureSQLDDL
	}
	return azureSQLOther
}

// azureSQLActionName maps an action_name, for records without action_id.
func azureSQLActionName(v []byte) azureSQLAct {
	v = bytes.TrimSpace(v)
	switch {
	case dasIsWord(v, "SELECT"), dasIsWord(v, "RECEIVE"):
		return azureSQLRead
	case dasIsWord(v, "INSERT"), dasIsWord(v, "UPDATE"):
		return azureSQLWrite
	case dasIsWord(v, "DELETE"):
		return azureSQLDelete
	case dasIsWord(v, "BATCH COMPLETED"), dasIsWord(v, "RPC COMPLETED"):
		return azureSQLBatch
	case dasContainsFold(v, "LOGIN FAILED"), dasContainsFold(v, "AUTHENTICATION FAILED"):
		return azureSQLLoginFailed
	case dasContainsFold(v, "LOGIN SUCCEEDED"), dasContainsFold(v, "AUTHENTICATION SUCCEEDED"):
		return azureSQLLogin
	case dasIsWord(v, "ALTER"), dasIsWord(v, "CREATE"), dasIsWord(v, "DROP"), dasIsWord(v, "GRANT"),
		dasIsWord(v, "DENY"), dasIsWord(v, "REVOKE"):
		return azureSQLDDL
	}
	return azureSQLOther
}
