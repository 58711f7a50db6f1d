package event

import (
	"bytes"
	"net/netip"

	"github.com/cespare/xxhash/v2"
)

// AWS RDS and Aurora Database Activity Streams (DAS), as the user's consumer
// ships them once it has decrypted the Kinesis record: the activity record
// {"type":"DatabaseActivityMonitoringRecord","databaseActivityEventList":[...]},
// the documentation's outer {"type":"DatabaseActivityMonitoringRecords",
// "databaseActivityEvents":{...}} around it, a JSON array of events, or one
// event alone. Split hands out the events; Decode reads one.
//
// The engines fill the same fields differently, and the decoder follows the
// AWS field tables ("databaseActivityEventList JSON array") rather than one
// engine's habits:
//
//   - Aurora MySQL writes every statement twice, a MAIN event with the SQL
//     and its row count and one AUX event per object touched. AUX events are
//     ignored (ReasonNotAudit) so that a statement counts once; the MAIN
//     event names the object.
//   - Aurora MySQL logs statements as command "QUERY": the action comes from
//     the leading keyword of commandText, which is read and never kept.
//   - RDS for Oracle puts the object's schema in objectType, and RDS for SQL
//     Server puts it in engineNativeAuditFields.schema_name; both become
//     the schema part of Object.
//   - RDS for SQL Server's exitCode is the succeeded bit of the SQL Server
//     audit (1 success, 0 failure of the permission check), not an error
//     code, so 0 there is a denial.
//   - Aurora PostgreSQL reports rowCount 0 for INSERT and UPDATE whatever
//     they wrote, so a zero count on a write is no count at all; a count on
//     a connect or DDL record is a placeholder and is dropped too.
//
// Heartbeats (type "heartbeat") are ReasonHeartbeat, so that they are
// counted as ignored, not as failures. A record whose list holds only
// heartbeats therefore yields only heartbeats under Split, and is
// ReasonHeartbeat as a whole under Decode; a record with an empty list
// yields no record under Split and is ReasonNotAudit under Decode. A still
// encrypted record (the
// databaseActivityEvents string) is ReasonUnrecognized: the consumer did not
// decrypt it.
//
// This file also holds what the ocsf and azure_sql decoders share with it:
// the lenient walker (dasWalker), the timestamp forms (dasTime) and the
// classification of SQL text (dasSQLAction).

func init() {
	register("aws_das", "AWS RDS/Aurora Database Activity Streams, decrypted (PostgreSQL, MySQL, Oracle, SQL Server)",
		func(l Limits, _ Options) (Decoder, error) { return NewDAS(l), nil })
}

// DAS decodes decrypted AWS Database Activity Streams events. It is not safe
// for concurrent use.
type DAS struct {
	limits     Limits
	principals *Interner
	names      *Interner
	w          dasWalker
	ev         *Event
	st         dasState
	// The object's name and its schema come in separate fields, in any
	// order, so they are copied until the engine is known.
	obj, objType, schema, join []byte
	recs                       [][]byte
}

var (
	_ Decoder  = (*DAS)(nil)
	_ Splitter = (*DAS)(nil)
)

// NewDAS returns a decoder for decrypted Database Activity Streams events.
func NewDAS(l Limits) *DAS {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	return &DAS{limits: l, principals: NewInterner(l.PrincipalIntern), names: NewInterner(1 << 14), w: dasWalker{zonelessUTC: true}}
}

// dasState is what one event says beyond the fields written straight into
// the Event, kept until the whole event is read because JSON keys come in
// any order.
type dasState struct {
	logTime, startTime int64
	hasLog, hasStart   bool
	startBad           int // offset+1 of an unreadable startTime, 0 if none

	heartbeat, wrapper, wrapperType bool

	class      dasClass
	cmd        dasCmd
	cmdAction  Action
	textAction Action
	hasText    bool

	typeEngine, protoEngine dasEngine

	exit      [16]byte
	exitLen   int
	exitLong  bool
	errMsg    bool
	errDenied bool

	rows    int64
	hasRows bool
}

// Errors without an offset or a field are shared rather than allocated on
// every return: heartbeats and other ignored records arrive all the time,
// and decoding them must not allocate either. They must not be modified.
var (
	dasErrTooLarge         = &DecodeError{Reason: ReasonTooLarge, Offset: -1}
	dasErrMissingTime      = &DecodeError{Reason: ReasonMissingTime, Offset: -1}
	dasErrMissingPrincipal = &DecodeError{Reason: ReasonMissingPrincipal, Offset: -1}
	dasErrUnrecognized     = &DecodeError{Reason: ReasonUnrecognized, Offset: -1}
	dasErrNotAudit         = &DecodeError{Reason: ReasonNotAudit, Offset: -1}
	dasErrHeartbeat        = &DecodeError{Reason: ReasonHeartbeat, Offset: -1}
)

// Split appends each event of a DAS record to dst; a message that is one
// event is appended whole.
func (d *DAS) Split(dst [][]byte, msg []byte) ([][]byte, error) {
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
		err = s.members(0, func(key []byte) error { return d.splitMember(&dst, &list, key, 1) })
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

// splitMember looks for the event list in a record, or in the outer
// DatabaseActivityMonitoringRecords object around it; depth is the value's.
func (d *DAS) splitMember(dst *[][]byte, list *bool, key []byte, depth int) error {
	s := &d.w.scanner
	switch string(key) {
	case "databaseActivityEventList":
		*list = true
		switch s.peek() {
		case '[':
			return dasSplitElements(s, dst, depth)
		case 'n':
			return s.literal("null")
		}
		return &DecodeError{Reason: ReasonBadValue, Field: "databaseActivityEventList", Offset: s.pos}
	case "databaseActivityEvents":
		*list = true
		switch s.peek() {
		case '{':
			return s.members(depth, func(key []byte) error { return d.splitMember(dst, list, key, depth+1) })
		case '"':
			// Still encrypted: base64 of the ciphertext.
			return &DecodeError{Reason: ReasonUnrecognized, Field: "databaseActivityEvents", Offset: s.pos}
		case 'n':
			return s.literal("null")
		}
		return &DecodeError{Reason: ReasonBadValue, Field: "databaseActivityEvents", Offset: s.pos}
	}
	return s.skip(depth)
}

// dasSplitElements appends each element of the array at pos (at the given
// depth) to dst, checking its syntax but not its content.
func dasSplitElements(s *scanner, dst *[][]byte, depth int) error {
	return s.elements(depth, func() error {
		start := s.pos
		if err := s.skip(depth + 1); err != nil {
			return err
		}
		*dst = append(*dst, s.buf[start:s.pos])
		return nil
	})
}

// Decode decodes one DAS event. Given a whole record instead, it decodes the
// one access the record holds (see the type's documentation); a record of
// several accesses is ReasonBadValue: it needs Split.
func (d *DAS) Decode(msg []byte, ev *Event) error {
	return d.decode(msg, ev, false)
}

func (d *DAS) decode(msg []byte, ev *Event, nested bool) error {
	ev.Reset()
	if len(msg) > d.limits.MaxMessageBytes {
		return dasErrTooLarge
	}
	w := &d.w
	w.reset(msg)
	d.ev, d.st = ev, dasState{}
	d.obj, d.objType, d.schema = d.obj[:0], d.objType[:0], d.schema[:0]
	err := w.members(0, d.member)
	if err == nil {
		err = w.end()
	}
	w.buf, d.ev = nil, nil
	if err != nil {
		return err
	}
	if d.st.wrapper {
		if nested {
			return &DecodeError{Reason: ReasonBadValue, Field: "databaseActivityEventList", Offset: -1}
		}
		return d.decodeRecord(msg, ev)
	}
	return d.finish(ev)
}

// decodeRecord decodes a whole activity record given to Decode.
func (d *DAS) decodeRecord(msg []byte, ev *Event) error {
	recs, err := d.Split(d.recs[:0], msg)
	if err == nil {
		err = dasDecodeOnly(recs, ev, ReasonBadValue, "databaseActivityEventList", func(rec []byte) error { return d.decode(rec, ev, true) })
	}
	clear(recs) // keep no reference to msg
	d.recs = recs[:0]
	return err
}

// dasDecodeOnly decodes the single access among the records of a container
// message given to Decode without Split. Records that hold no access
// (heartbeats, ignored categories) are passed over; with none left the
// first of their errors is returned, and several accesses are an error of
// the given reason and field, since one Event cannot hold them.
func dasDecodeOnly(recs [][]byte, ev *Event, several Reason, field string, decode func(rec []byte) error) error {
	if len(recs) == 0 {
		return dasErrNotAudit
	}
	only := -1
	var ignored error
	for i, rec := range recs {
		err := decode(rec)
		if de, _ := err.(*DecodeError); de != nil && de.Reason.Ignored() {
			if ignored == nil {
				ignored = err
			}
			continue
		}
		if only >= 0 {
			ev.Reset()
			return &DecodeError{Reason: several, Field: field, Offset: -1}
		}
		only = i
	}
	if only < 0 {
		return ignored
	}
	return decode(recs[only])
}

// member reads one field of an event.
func (d *DAS) member(key []byte) error {
	w, ev, st := &d.w, d.ev, &d.st
	switch string(key) {
	case "type":
		v, err := w.str("type", 1)
		switch {
		case bytes.EqualFold(v, []byte("heartbeat")):
			st.heartbeat = true
		case bytes.HasPrefix(v, []byte("DatabaseActivityMonitoringRecord")):
			st.wrapperType = true
		}
		return err
	case "databaseActivityEventList", "databaseActivityEvents":
		st.wrapper = true
		return w.skip(1)
	case "dbUserName":
		v, err := w.str("dbUserName", 1)
		ev.Principal = d.principals.Intern(v)
		return err
	case "logTime":
		return w.time("logTime", 1, &st.logTime, &st.hasLog)
	case "startTime":
		start := w.pos
		var bad bool
		v, err := w.str("startTime", 1)
		if len(v) > 0 {
			st.startTime, st.hasStart = dasTime(v, w.zonelessUTC)
			bad = !st.hasStart
			st.hasStart = st.hasStart && st.startTime != 0
		}
		if bad {
			st.startBad = start + 1
		}
		return err
	case "class":
		v, err := w.str("class", 1)
		st.class = dasClassOf(v)
		return err
	case "command":
		v, err := w.str("command", 1)
		st.cmd, st.cmdAction = dasCommandOf(v)
		return err
	case "commandText":
		v, err := w.str("commandText", 1)
		st.hasText = len(v) > 0
		if st.hasText {
			st.textAction = dasSQLAction(v)
		}
		return err
	case "clientApplication":
		v, err := w.str("clientApplication", 1)
		ev.Client = d.names.Intern(v)
		return err
	case "databaseName":
		v, err := w.str("databaseName", 1)
		ev.Database = d.names.Intern(v)
		return err
	case "objectName":
		v, err := w.str("objectName", 1)
		d.obj = append(d.obj[:0], v...)
		return err
	case "objectType":
		v, err := w.str("objectType", 1)
		d.objType = append(d.objType[:0], v...)
		return err
	case "remoteHost":
		v, err := w.str("remoteHost", 1)
		ev.SourceIP = dasAddr(v)
		return err
	case "sessionId":
		v, err := w.str("sessionId", 1)
		ev.Session = 0
		if len(v) > 0 {
			ev.Session = xxhash.Sum64(v)
		}
		return err
	case "rowCount":
		var err error
		st.rows, st.hasRows, err = w.count("rowCount", 1)
		return err
	case "exitCode":
		v, err := w.str("exitCode", 1)
		st.exitLen = copy(st.exit[:], v)
		st.exitLong = len(v) > len(st.exit)
		return err
	case "errorMessage":
		v, err := w.str("errorMessage", 1)
		st.errMsg = len(v) > 0
		st.errDenied = st.errMsg && dasDeniedText(v)
		return err
	case "serverType":
		v, err := w.str("serverType", 1)
		st.typeEngine = dasEngineOf(v)
		return err
	case "dbProtocol":
		v, err := w.str("dbProtocol", 1)
		st.protoEngine = dasEngineOf(v)
		return err
	case "engineNativeAuditFields":
		return w.object("engineNativeAuditFields", 1, d.nativeField)
	}
	return w.skip(1)
}

// nativeField reads engineNativeAuditFields, of which only SQL Server's
// schema is wanted.
func (d *DAS) nativeField(key []byte) error {
	if string(key) == "schema_name" {
		v, err := d.w.str("schema_name", 2)
		d.schema = append(d.schema[:0], v...)
		return err
	}
	return d.w.skip(2)
}

// finish checks and completes the event once every field is read.
func (d *DAS) finish(ev *Event) error {
	st := &d.st
	switch {
	case st.heartbeat:
		return dasErrHeartbeat
	case st.class == dasClassAux, st.wrapperType:
		return dasErrNotAudit
	}
	if err := d.w.fault(); err != nil {
		return err
	}
	switch {
	case st.hasLog:
		ev.Time = st.logTime
	case st.hasStart:
		ev.Time = st.startTime
	case st.startBad > 0:
		return &DecodeError{Reason: ReasonBadTime, Field: "startTime", Offset: st.startBad - 1}
	default:
		return dasErrMissingTime
	}
	if ev.Principal == "" {
		return dasErrMissingPrincipal
	}
	engine := st.typeEngine
	if engine == dasEngineUnknown {
		engine = st.protoEngine
	}
	ev.Action = d.action()
	ev.Status = d.status(engine)
	if st.hasRows {
		switch ev.Action {
		case ActionRead, ActionExport:
			ev.Rows, ev.HasRows = st.rows, true
		case ActionWrite, ActionDelete:
			if st.rows != 0 || engine != dasEnginePostgres {
				ev.Rows, ev.HasRows = st.rows, true
			}
		}
	}
	d.object(ev, engine)
	return nil
}

// action decides what the event did from command, class and statement.
func (d *DAS) action() Action {
	st := &d.st
	switch st.cmd {
	case dasCmdLogin, dasCmdFailedLogin:
		return ActionLogin
	case dasCmdCopy:
		// PostgreSQL's class says which way COPY went: READ when the
		// source is a relation or query, WRITE when the target is.
		switch st.class {
		case dasClassRead:
			return ActionExport
		case dasClassWrite:
			return ActionWrite
		}
		if st.hasText {
			return st.textAction
		}
		return ActionOther
	case dasCmdVerb:
		if st.cmdAction == ActionRead && st.hasText && st.textAction == ActionExport {
			return ActionExport
		}
		return st.cmdAction
	}
	// QUERY (Aurora MySQL) or a command this decoder does not know.
	if st.hasText && st.textAction != ActionOther {
		return st.textAction
	}
	return st.class.action()
}

// status reads exitCode and errorMessage, whose meaning depends on the
// engine.
func (d *DAS) status(engine dasEngine) Status {
	st := &d.st
	code := st.exit[:st.exitLen]
	if st.exitLong {
		code = nil
	}
	switch {
	case st.cmd == dasCmdFailedLogin:
		return StatusDenied
	case engine == dasEngineSQLServer:
		switch {
		case string(code) == "0" || bytes.EqualFold(code, []byte("false")):
			return StatusDenied
		case st.errMsg || st.exitLong:
			return StatusError
		}
		return StatusOK
	case st.errDenied || dasDeniedCode(code):
		return StatusDenied
	case st.errMsg || st.exitLong || !dasZeroCode(code):
		return StatusError
	}
	return StatusOK
}

// object sets Object to the first object named, with the schema where the
// engine gives it apart.
func (d *DAS) object(ev *Event, engine dasEngine) {
	name := d.obj
	if i := bytes.IndexByte(name, ','); i >= 0 {
		name = name[:i] // Aurora MySQL lists every object of a statement
	}
	name = bytes.TrimSpace(name)
	if len(name) == 0 {
		return
	}
	var schema []byte
	switch engine {
	case dasEngineOracle:
		schema = bytes.TrimSpace(d.objType)
	case dasEngineSQLServer:
		schema = bytes.TrimSpace(d.schema)
	}
	if len(schema) == 0 || bytes.IndexByte(name, '.') >= 0 {
		ev.Object = d.names.Intern(name)
		return
	}
	d.join = append(append(append(d.join[:0], schema...), '.'), name...)
	ev.Object = d.names.Intern(d.join)
}

// dasEngine is the database engine behind an event, which decides what
// exitCode and objectType mean.
type dasEngine uint8

const (
	dasEngineUnknown dasEngine = iota
	dasEnginePostgres
	dasEngineMySQL
	dasEngineOracle
	dasEngineSQLServer
)

// dasEngineOf reads serverType or dbProtocol ("PostgreSQL", "Postgres 3.0",
// "MySQL", "oracle", "SQLSERVER").
func dasEngineOf(v []byte) dasEngine {
	switch {
	case dasHasPrefixFold(v, "postgres"):
		return dasEnginePostgres
	case dasHasPrefixFold(v, "mysql"):
		return dasEngineMySQL
	case dasHasPrefixFold(v, "oracle"):
		return dasEngineOracle
	case dasHasPrefixFold(v, "sqlserver"), dasHasPrefixFold(v, "mssql"), dasHasPrefixFold(v, "microsoft sql"):
		return dasEngineSQLServer
	}
	return dasEngineUnknown
}

// dasClass is the class field: pgaudit's statement classes for
// PostgreSQL, MAIN and AUX for MySQL, the AUDIT_TYPE for Oracle.
type dasClass uint8

const (
	dasClassOther dasClass = iota
	dasClassRead
	dasClassWrite
	dasClassDDL
	dasClassConnect
	dasClassAux
)

func dasClassOf(v []byte) dasClass {
	switch {
	case bytes.EqualFold(v, []byte("READ")):
		return dasClassRead
	case bytes.EqualFold(v, []byte("WRITE")):
		return dasClassWrite
	case bytes.EqualFold(v, []byte("DDL")), bytes.EqualFold(v, []byte("ROLE")):
		return dasClassDDL
	case bytes.EqualFold(v, []byte("CONNECT")):
		return dasClassConnect
	case bytes.EqualFold(v, []byte("AUX")):
		return dasClassAux
	}
	return dasClassOther
}

func (c dasClass) action() Action {
	switch c {
	case dasClassRead:
		return ActionRead
	case dasClassWrite:
		return ActionWrite
	case dasClassDDL:
		return ActionDDL
	case dasClassConnect:
		return ActionLogin
	}
	return ActionOther
}

// dasCmd is what the command field says.
type dasCmd uint8

const (
	dasCmdUnknown dasCmd = iota
	// dasCmdQuery: Aurora MySQL's QUERY, classified by its text.
	dasCmdQuery
	dasCmdLogin
	dasCmdFailedLogin
	dasCmdCopy
	// dasCmdVerb: a SQL command tag (SELECT, CREATE TABLE, LOGOFF...)
	// whose action is known.
	dasCmdVerb
)

// dasCommandOf reads the command: a PostgreSQL command tag, an Aurora MySQL
// MAIN command (CONNECT, QUERY, FAILED_CONNECT, DISCONNECT, CHANGEUSER), an
// Oracle ACTION_NAME (LOGON, SELECT, CREATE TABLE) or a SQL Server action.
func dasCommandOf(v []byte) (dasCmd, Action) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0:
		return dasCmdUnknown, ActionOther
	case bytes.EqualFold(v, []byte("QUERY")):
		return dasCmdQuery, ActionOther
	case bytes.EqualFold(v, []byte("CONNECT")), bytes.EqualFold(v, []byte("LOGON")),
		bytes.EqualFold(v, []byte("LOGIN")), bytes.EqualFold(v, []byte("CHANGEUSER")),
		bytes.EqualFold(v, []byte("LOGIN SUCCEEDED")):
		return dasCmdLogin, ActionLogin
	case bytes.EqualFold(v, []byte("FAILED_CONNECT")), bytes.EqualFold(v, []byte("LOGIN FAILED")):
		return dasCmdFailedLogin, ActionLogin
	case bytes.EqualFold(v, []byte("DISCONNECT")), dasHasPrefixFold(v, "LOGOFF"), bytes.EqualFold(v, []byte("LOGOUT")):
		return dasCmdVerb, ActionOther
	case bytes.EqualFold(v, []byte("COPY")):
		return dasCmdCopy, ActionOther
	}
	var l dasLexer
	l.b = v
	if a, ok := dasVerb(l.word()); ok {
		return dasCmdVerb, a
	}
	return dasCmdUnknown, ActionOther
}

// dasDeniedCode reports exit codes that mean a permission or authentication
// denial: PostgreSQL SQLSTATE 42501 (insufficient privilege), 28000 and
// 28P01 (authorization, password); MySQL 1044, 1045, 1142, 1143, 1227;
// Oracle 1017 (bad logon), 1031 (insufficient privileges), 1045 (no CREATE
// SESSION) and 28000 (account locked).
func dasDeniedCode(c []byte) bool {
	switch string(c) {
	case "42501", "28000", "28P01", "1044", "1045", "1142", "1143", "1227", "1017", "1031":
		return true
	}
	return false
}

// dasZeroCode reports an exit code that means success: none, or zeros
// ("0", "00000").
func dasZeroCode(c []byte) bool {
	for _, b := range c {
		if b != '0' {
			return false
		}
	}
	return true
}

// dasDeniedText spots a denial in an error message whose code is missing,
// from the wording of PostgreSQL ("permission denied for table ...",
// "password authentication failed") and MySQL ("Access denied for user").
func dasDeniedText(v []byte) bool {
	return dasContainsFold(v, "permission denied") || dasContainsFold(v, "access denied") ||
		dasContainsFold(v, "authentication failed")
}

// dasHasPrefixFold is bytes.HasPrefix ignoring ASCII case.
func dasHasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// dasContainsFold is bytes.Contains ignoring ASCII case, without the copy
// that lowering the text would take.
func dasContainsFold(b []byte, sub string) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if dasHasPrefixFold(b[i:], sub) {
			return true
		}
	}
	return false
}

// dasAddr reads a client address like parseAddr, but skips at once what
// cannot be an IP address ("[local]", "localhost", "local machine", a host
// name), which audit records are full of and on which netip.ParseAddr
// would allocate its error.
func dasAddr(b []byte) netip.Addr {
	colon := false
	for _, c := range b {
		switch {
		case c == ':':
			colon = true
		case c == '.' || c == '%' || '0' <= c && c <= '9':
		case 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F':
			if !colon && bytes.IndexByte(b, ':') < 0 {
				return netip.Addr{}
			}
		default:
			if !colon {
				return netip.Addr{}
			}
		}
	}
	return parseAddr(b)
}

// dasTime reads a timestamp of the audit formats. Beyond ParseTime it takes
// PostgreSQL's hour-only offset ("2019-10-30 00:39:49.990579+00"), an offset
// without a colon ("+0000"), a " UTC" suffix, and, when zonelessUTC is set,
// a time without any zone, read as UTC: AWS documents every DAS time as UTC
// and RDS for Oracle writes EVENT_TIMESTAMP_UTC with no zone, and SQL
// Server's event_time is UTC too. ParseTime itself refuses to guess a zone.
func dasTime(b []byte, zonelessUTC bool) (int64, bool) {
	const maxLen = 40
	if len(b) < 19 || b[4] != '-' || len(b) > maxLen {
		return ParseTime(b)
	}
	var buf [maxLen + 6]byte
	n := copy(buf[:], b)
	i := 19
	if i < n && buf[i] == '.' {
		for i++; i < n && isDigit(buf[i]); i++ {
		}
	}
	zone := n - i
	switch {
	case zone == 0:
		if !zonelessUTC {
			return 0, false
		}
		buf[n] = 'Z'
		n++
	case zone == 3 && (buf[i] == '+' || buf[i] == '-'):
		n += copy(buf[n:], ":00")
	case zone == 5 && (buf[i] == '+' || buf[i] == '-') && isDigit(buf[i+3]):
		buf[i+5], buf[i+4], buf[i+3] = buf[i+4], buf[i+3], ':'
		n++
	case zone == 4 && (string(buf[i:n]) == " UTC" || string(buf[i:n]) == " GMT"):
		buf[i] = 'Z'
		n = i + 1
	}
	return ParseTime(buf[:n])
}

// dasWalker is the scanner with the first fault in a field's value kept
// aside instead of returned at once, so that a record the format ignores (a
// heartbeat, another OCSF class, another diagnostic category) is ignored
// whatever its fields hold, while a syntax error still stops the walk.
type dasWalker struct {
	scanner
	// zonelessUTC reads a time without a zone as UTC (see dasTime), for
	// the formats that document their times as UTC.
	zonelessUTC bool
	faultReason Reason
	faultField  string
	faultOffset int
}

func (w *dasWalker) reset(msg []byte) {
	w.buf, w.pos = msg, 0
	w.faultReason = 0
}

// note keeps the first value fault.
func (w *dasWalker) note(r Reason, field string, offset int) {
	if w.faultReason == 0 {
		w.faultReason, w.faultField, w.faultOffset = r, field, offset
	}
}

// fault returns the first value fault, or nil.
func (w *dasWalker) fault() error {
	if w.faultReason == 0 {
		return nil
	}
	return &DecodeError{Reason: w.faultReason, Field: w.faultField, Offset: w.faultOffset}
}

// str reads a scalar as text (a number as written; null is nil). An object,
// array or boolean is a noted fault and is skipped; depth is the value's.
// The text is valid until the next read.
func (w *dasWalker) str(field string, depth int) ([]byte, error) {
	start := w.pos
	switch w.peek() {
	case '{', '[', 't', 'f':
		w.note(ReasonBadValue, field, start)
		return nil, w.skip(depth)
	}
	k, v, err := w.scalar()
	if err != nil || k == kindNull {
		return nil, err
	}
	return v, nil
}

// count reads a row count, a number or a numeric string. Null, "" and
// negative values (some engines write -1 for "not counted") are no count;
// anything else unreadable is a noted fault.
func (w *dasWalker) count(field string, depth int) (int64, bool, error) {
	start := w.pos
	v, err := w.str(field, depth)
	if err != nil || len(v) == 0 || v[0] == '-' {
		return 0, false, err
	}
	n, ok := parseCount(v)
	if !ok {
		w.note(ReasonBadValue, field, start)
		return 0, false, nil
	}
	return n, true, nil
}

// time reads a timestamp into *t; null, "" and the epoch itself (the
// placeholder of producers that have no time) leave it unset, and an
// unreadable one is a noted ReasonBadTime.
func (w *dasWalker) time(field string, depth int, t *int64, ok *bool) error {
	start := w.pos
	v, err := w.str(field, depth)
	if err != nil || len(v) == 0 {
		return err
	}
	if *t, *ok = dasTime(v, w.zonelessUTC); !*ok {
		w.note(ReasonBadTime, field, start)
	}
	*ok = *ok && *t != 0
	return nil
}

// id reads an enumeration value or a numeric identifier, an integer or a
// numeric string; null is absent and anything else is a noted fault.
func (w *dasWalker) id(field string, depth int, n *int64, ok *bool) error {
	start := w.pos
	v, err := w.str(field, depth)
	if err != nil || v == nil {
		return err
	}
	if *n, *ok = parseCount(v); !*ok {
		w.note(ReasonBadValue, field, start)
	}
	return nil
}

// flag reads a boolean given as true/false, "true"/"false" in any case,
// 1/0 or "1"/"0"; null is absent.
func (w *dasWalker) flag(field string, depth int) (val, ok bool, err error) {
	start := w.pos
	switch w.peek() {
	case 't':
		return true, true, w.literal("true")
	case 'f':
		return false, true, w.literal("false")
	}
	v, err := w.str(field, depth)
	if err != nil || v == nil {
		return false, false, err
	}
	switch {
	case bytes.EqualFold(v, []byte("true")), string(v) == "1":
		return true, true, nil
	case bytes.EqualFold(v, []byte("false")), string(v) == "0":
		return false, true, nil
	}
	w.note(ReasonBadValue, field, start)
	return false, false, nil
}

// object walks the object at pos with member; null is absent and anything
// else is a noted fault.
func (w *dasWalker) object(field string, depth int, member func(key []byte) error) error {
	switch w.peek() {
	case '{':
		return w.members(depth, member)
	case 'n':
		return w.literal("null")
	}
	w.note(ReasonBadValue, field, w.pos)
	return w.skip(depth)
}

// dasSQLAction classifies a SQL statement by its leading verb, skipping
// comments, opening parentheses, a T-SQL parameter list ("(@p1 int)SELECT")
// and statements that only set up the session (SET, USE, BEGIN...). SELECT
// is a read unless it writes a file (INTO OUTFILE/DUMPFILE, an export);
// WITH takes the verb of its main statement; COPY is an export when it
// copies TO and a write when it copies FROM. The text is only scanned,
// never kept.
func dasSQLAction(q []byte) Action {
	l := dasLexer{b: q}
	for {
		// The start of a statement.
		w := l.word()
		if w == nil {
			return ActionOther
		}
		// Depth counts from the verb, so that "(SELECT ...) UNION ..."
		// is read at the level of its SELECT.
		l.depth = 0
		if dasNeutral(w) {
			if !l.nextStatement() {
				return ActionOther
			}
			continue
		}
		switch {
		case dasIsWord(w, "WITH"):
			w = l.topWord("SELECT", "INSERT", "UPDATE", "DELETE", "MERGE")
			if w == nil {
				return ActionOther
			}
			if !dasIsWord(w, "SELECT") {
				a, _ := dasVerb(w)
				return a
			}
			fallthrough
		case dasIsWord(w, "SELECT"):
			if l.selectsIntoFile() {
				return ActionExport
			}
			return ActionRead
		case dasIsWord(w, "COPY"):
			switch w := l.topWord("TO", "FROM"); {
			case dasIsWord(w, "TO"):
				return ActionExport
			case dasIsWord(w, "FROM"):
				return ActionWrite
			}
			return ActionOther
		}
		a, _ := dasVerb(w)
		return a
	}
}

// dasVerb maps a leading SQL keyword to an action; ok is false for a word
// that is not a known verb.
func dasVerb(w []byte) (Action, bool) {
	var up [10]byte
	if len(w) == 0 || len(w) > len(up) {
		return ActionOther, false
	}
	for i, c := range w {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	switch string(up[:len(w)]) {
	case "SELECT", "TABLE", "VALUES", "FETCH", "WITH":
		return ActionRead, true
	case "INSERT", "UPDATE", "REPLACE", "MERGE", "UPSERT", "LOAD", "BULK":
		return ActionWrite, true
	case "DELETE", "TRUNCATE":
		return ActionDelete, true
	case "COPY", "UNLOAD", "EXPORT", "BACKUP":
		return ActionExport, true
	case "CREATE", "ALTER", "DROP", "RENAME", "GRANT", "REVOKE", "DENY", "COMMENT":
		return ActionDDL, true
	case "EXEC", "EXECUTE", "CALL", "DO", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "ANALYZE", "VACUUM",
		"SET", "USE", "BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "DECLARE", "PRINT",
		"LOCK", "UNLOCK", "PREPARE", "DEALLOCATE", "DISCARD", "RESET", "CHECKPOINT", "CLOSE", "OPEN",
		"NOTIFY", "LISTEN", "CLUSTER", "REINDEX", "REFRESH", "KILL", "FLUSH", "OPTIMIZE", "CHECK", "HANDLER":
		return ActionOther, true
	}
	return ActionOther, false
}

// dasNeutral reports verbs that only set up the session or transaction, so
// that the statement after them is the one that says what was done.
func dasNeutral(w []byte) bool {
	for _, n := range [...]string{"SET", "USE", "BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "DECLARE", "PRINT", "GO", "END"} {
		if dasIsWord(w, n) {
			return true
		}
	}
	return false
}

func dasIsWord(w []byte, kw string) bool { return bytes.EqualFold(w, []byte(kw)) }

// dasLexer walks SQL text a word at a time, skipping white space, comments,
// quoted strings and identifiers, and tracking parenthesis depth relative to
// the start of the current statement.
type dasLexer struct {
	b     []byte
	i     int
	depth int
}

// token returns the next word, or a one-byte slice holding '(', ')' or ';'
// (other punctuation is skipped), or nil at the end. Quoted text is skipped
// whole; dollar quotes are not, which at worst misreads a keyword inside one.
func (l *dasLexer) token() []byte {
	b := l.b
	for l.i < len(b) {
		c := b[l.i]
		switch {
		case c == '-' && at(b, l.i+1) == '-':
			for l.i < len(b) && b[l.i] != '\n' {
				l.i++
			}
		case c == '#':
			// A MySQL comment, or a T-SQL temporary table name.
			if start := l.i; dasWordByte(at(b, l.i+1)) {
				for l.i++; l.i < len(b) && dasWordByte(b[l.i]); l.i++ {
				}
				return b[start:l.i]
			}
			for l.i < len(b) && b[l.i] != '\n' {
				l.i++
			}
		case c == '/' && at(b, l.i+1) == '*':
			end := bytes.Index(b[l.i+2:], []byte("*/"))
			if end < 0 {
				l.i = len(b)
			} else {
				l.i += end + 4
			}
		case c == '\'' || c == '"' || c == '`' || c == '[':
			closing := c
			if c == '[' {
				closing = ']'
			}
			for l.i++; l.i < len(b); l.i++ {
				if b[l.i] == '\\' && c != '[' {
					l.i++
					continue
				}
				if b[l.i] == closing {
					l.i++
					break
				}
			}
		case c == '(' || c == ')' || c == ';':
			l.i++
			switch c {
			case '(':
				l.depth++
			case ')':
				l.depth--
			}
			return b[l.i-1 : l.i]
		case dasWordByte(c) || c == '@':
			start := l.i
			for l.i++; l.i < len(b) && dasWordByte(b[l.i]); l.i++ {
			}
			return b[start:l.i]
		default:
			l.i++
		}
	}
	return nil
}

func dasWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '$' || c >= 0x80
}

// word returns the first word of a statement, past opening parentheses and
// a T-SQL parameter list, or nil if the statement has none.
func (l *dasLexer) word() []byte {
	for {
		t := l.token()
		switch {
		case t == nil:
			return nil
		case t[0] == '(':
			continue
		case t[0] == '@':
			// "(@p1 int, @p2 nvarchar(10))SELECT ...": skip to the close
			// of the parameter list.
			for l.depth > 0 {
				if l.token() == nil {
					return nil
				}
			}
			continue
		case t[0] == ')' || t[0] == ';':
			continue
		}
		return t
	}
}

// topWord returns the first of the given words found outside parentheses
// in the current statement, or nil.
func (l *dasLexer) topWord(kws ...string) []byte {
	for {
		t := l.token()
		switch {
		case t == nil:
			return nil
		case t[0] == ';' && l.depth <= 0:
			return nil
		case l.depth > 0:
			continue
		}
		for _, kw := range kws {
			if dasIsWord(t, kw) {
				return t
			}
		}
	}
}

// selectsIntoFile reports whether the rest of a SELECT writes a file on
// the server (MySQL INTO OUTFILE or INTO DUMPFILE).
func (l *dasLexer) selectsIntoFile() bool {
	for {
		t := l.topWord("INTO")
		if t == nil {
			return false
		}
		if n := l.token(); dasIsWord(n, "OUTFILE") || dasIsWord(n, "DUMPFILE") {
			return true
		}
	}
}

// nextStatement moves past the next ';' outside parentheses and reports
// whether there is one.
func (l *dasLexer) nextStatement() bool {
	for {
		t := l.token()
		if t == nil {
			return false
		}
		if t[0] == ';' && l.depth <= 0 {
			l.depth = 0
			return true
		}
	}
}
