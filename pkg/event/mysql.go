package event

import (
	"bytes"
	"math"
	"net/netip"

	"github.com/cespare/xxhash/v2"
)

func init() {
	register("mysql_audit", "MySQL Enterprise Audit / Percona audit_log_filter JSON records and Percona audit_log plugin JSON (audit_record); a message that is a JSON array is split into its records",
		func(l Limits, _ Options) (Decoder, error) { return NewMySQLAudit(l), nil })
}

// MySQLAudit decodes the JSON audit records of the MySQL family:
//
//   - MySQL Enterprise Audit with audit_log_format=JSON, and Percona
//     Server's audit_log_filter, which writes the same fields:
//     {"timestamp":"2019-10-03 13:50:01","class":"table_access","event":"read",
//     "connection_id":10,"account":{...},"login":{...},"table_access_data":{...}}.
//   - Percona Server's older audit_log plugin with audit_log_format=JSON:
//     {"audit_record":{"name":"Query","timestamp":"2021-06-30T15:07:58 UTC",
//     "command_class":"select","user":"root[root] @ localhost []",...}}.
//
// Both write a file that is one JSON array spanning many lines, so a
// message may be the whole array (Split hands out its records), one record
// followed by the comma that separated it from the next (what a line-based
// shipper reads), or only the "[" or "]" of the array, which is ignored as
// ReasonNotAudit.
//
// Records without an access in them are ignored (ReasonNotAudit): the
// audit class (startup, shutdown), general records other than the final
// "status" one of a statement (the "log" record before it would count the
// statement twice), and the classes a Percona filter may add (command,
// query, parse, message, ...), which repeat what the general class says or
// carry no account.
//
// Not kept: the statement text, which is only looked at for its leading
// keyword and for INTO OUTFILE/DUMPFILE, so an unload to a file counts as
// an export. A record of neither shape, such as a native event sent to the
// wrong topic, is ReasonUnrecognized.
//
// # One statement, one event
//
// The server writes a statement as one table_access record per table it
// opens (the table, no row count), then one general "status" record (the
// outcome and the row counts, no table), both with the statement text.
// Emitted apart, the table would count one row of unknown size and the
// rows would count for no table, so the decoder joins them, per connection
// (connection_id and principal: a topic may carry several servers, whose
// connection ids repeat). It may, because the messages of a principal go
// to one partition in order, and a MySQLAudit is per partition:
//
//   - Until this decoder has read a general status record, it has no
//     reason to think one will come (a filter may log table_access alone),
//     and emits every table_access record as an event of its own, without
//     rows. A statement read before the first status record is thus
//     emitted twice, as its table and as its status without a table.
//   - From then on a table_access record is held (ReasonNotAudit): the
//     first table of the statement, as Event has one Object. The further
//     tables of the statement (the same text) are dropped. The status
//     record of the same text that follows on the connection is emitted
//     with that table as its Object (and its database), with its own
//     time, status, rows and action; when it names no action (HANDLER ...
//     READ) the table's is taken.
//   - A held table that gets no status record is emitted on its own,
//     without rows, in the place of the connection's next table_access
//     record of another text (which is held in turn), or of any text once
//     a status record of another text came; or in the place of the
//     disconnect (a disconnect says nothing about data). Those are a
//     filter that logs status for some statements or accounts only, and
//     the statements of a stored program, which are logged with their own
//     text while only the CALL gets a status record (so the CALL's rows
//     are not put on one of its tables). A connect or change_user record
//     stays a login event; a table held then is dropped and counted in
//     MergesLost.
//
// The same statement run twice in a row on a connection that has no
// status records counts once. A table held when the decoder is dropped (a
// restart, a rebalance) is lost with it, and its status record is emitted
// without a table. The held tables are bounded by MySQLAuditMaxHeld
// connections: when full they are dropped, and counted in MergesLost.
//
// A MySQLAudit is not safe for concurrent use.
type MySQLAudit struct {
	limits     Limits
	principals *Interner
	names      *Interner
	s          scanner
	r          mysqlRecord
	// arena holds copies of the values needed once the whole record is
	// read (user, host, db, table, ...): when read they may sit in the
	// scanner's scratch buffer, which the next escaped string overwrites.
	arena []byte
	// obj is where db.table is put together before interning.
	obj []byte

	// merging: a general status record was read, so table_access
	// records are held for the status record of their statement.
	merging bool
	// held is the statement in progress of each connection that has one.
	held    map[mysqlConn]mysqlStatement
	maxHeld int
	lost    uint64
}

// MySQLAuditMaxHeld bounds the connections with a statement in progress
// that one MySQLAudit remembers: about 100 bytes each.
const MySQLAuditMaxHeld = 1 << 16

// mysqlConn names a connection: connection ids are per server, and a topic
// may carry several servers.
type mysqlConn struct {
	id        uint64 // xxhash of connection_id
	principal string
}

// mysqlStatement is the first table_access record of a statement, kept
// for the status record that ends it. All strings are interned, so that
// keeping one allocates nothing.
type mysqlStatement struct {
	time int64
	// query is the xxhash of the statement text, which tells a further
	// table of the same statement from the next statement, and the
	// statement's status record from another's.
	query uint64
	// over: a status record of another statement came, so this one will
	// get none; it waits only for a chance to be emitted.
	over                     bool
	ip                       netip.Addr
	client, database, object string
	action                   Action
}

// mysqlErrHeld answers a table_access record kept for its status record;
// shared, so that holding allocates nothing.
var mysqlErrHeld error = &DecodeError{Reason: ReasonNotAudit, Offset: -1}

var (
	_ Decoder  = (*MySQLAudit)(nil)
	_ Splitter = (*MySQLAudit)(nil)
)

// NewMySQLAudit returns a decoder of MySQL-family JSON audit records
// within the given limits.
func NewMySQLAudit(l Limits) *MySQLAudit {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	return &MySQLAudit{limits: l, principals: NewInterner(l.PrincipalIntern), names: NewInterner(1 << 14),
		held: make(map[mysqlConn]mysqlStatement), maxHeld: MySQLAuditMaxHeld}
}

// MergesLost returns how many table_access records were held for a status
// record and then dropped without being emitted: when the table of held
// statements was full, or when the connection logged in again.
func (d *MySQLAudit) MergesLost() uint64 { return d.lost }

// mysqlSpan is a value copied into the decoder's arena.
type mysqlSpan struct{ a, b int }

// mysqlRecord is what one record says, gathered member by member, since
// the order of the members is not guaranteed and the action depends on
// several of them.
type mysqlRecord struct {
	legacy bool
	class  mysqlClass
	event  mysqlEvent
	name   mysqlName

	hasTime, hasUnix bool
	time, unix       int64

	// cmd is the action named by sql_command or command_class; query the
	// one of the statement's leading keyword.
	cmd, query       Action
	hasCmd, hasQuery bool
	// export: the statement writes its result to a file on the server.
	export bool
	// queryHash is the xxhash of the statement text of a table_access or
	// general record, 0 without one.
	queryHash uint64

	status    int64
	hasStatus bool

	rowsSent, rowsAffected, bytesSent          int64
	hasRowsSent, hasRowsAffected, hasBytesSent bool

	session uint64

	loginUser, accountUser, privUser, ip, host, accountHost mysqlSpan
	db, table, program, clientName                          mysqlSpan
}

type mysqlClass uint8

const (
	mysqlClassNone mysqlClass = iota
	mysqlClassAudit
	mysqlClassConnection
	mysqlClassGeneral
	mysqlClassTableAccess
	mysqlClassOther
)

func mysqlClassOf(v []byte) mysqlClass {
	switch string(v) {
	case "":
		return mysqlClassNone
	case "audit":
		return mysqlClassAudit
	case "connection":
		return mysqlClassConnection
	case "general":
		return mysqlClassGeneral
	case "table_access":
		return mysqlClassTableAccess
	}
	return mysqlClassOther
}

type mysqlEvent uint8

const (
	mysqlEventNone mysqlEvent = iota
	mysqlEventConnect
	mysqlEventChangeUser
	mysqlEventDisconnect
	mysqlEventRead
	mysqlEventInsert
	mysqlEventUpdate
	mysqlEventDelete
	mysqlEventStatus
	mysqlEventOther
)

func mysqlEventOf(v []byte) mysqlEvent {
	switch string(v) {
	case "":
		return mysqlEventNone
	case "connect":
		return mysqlEventConnect
	case "change_user":
		return mysqlEventChangeUser
	case "disconnect":
		return mysqlEventDisconnect
	case "read":
		return mysqlEventRead
	case "insert":
		return mysqlEventInsert
	case "update":
		return mysqlEventUpdate
	case "delete":
		return mysqlEventDelete
	case "status":
		return mysqlEventStatus
	}
	return mysqlEventOther
}

// mysqlName is the NAME of a Percona audit_log plugin record.
type mysqlName uint8

const (
	mysqlNameNone mysqlName = iota
	mysqlNameAudit
	mysqlNameConnect
	mysqlNameChangeUser
	mysqlNameQuit
	mysqlNameCommand
)

func mysqlNameOf(v []byte) mysqlName {
	switch string(v) {
	case "":
		return mysqlNameNone
	case "Audit", "NoAudit":
		return mysqlNameAudit
	case "Connect":
		return mysqlNameConnect
	case "Change user":
		return mysqlNameChangeUser
	case "Quit":
		return mysqlNameQuit
	}
	// Query, Prepare, Execute, Init DB, ...: a command with a class.
	return mysqlNameCommand
}

// Decode decodes one record from msg into ev. Nothing in ev refers to msg
// afterwards.
//
// Beyond the formats: null members are absent; for duplicate keys the last
// one wins; numbers are also accepted as numeric strings (Percona writes
// connection_id as a string); an unparsable ip is ignored.
func (d *MySQLAudit) Decode(msg []byte, ev *Event) error {
	ev.Reset()
	if len(msg) > d.limits.MaxMessageBytes {
		return &DecodeError{Reason: ReasonTooLarge, Offset: -1}
	}
	d.s.buf, d.s.pos = msg, 0
	err := d.record(ev)
	d.s.buf = nil // do not pin the caller's buffer
	return err
}

func (d *MySQLAudit) record(ev *Event) error {
	s := &d.s
	s.skipWS()
	if c := s.peek(); c == '[' || c == ']' {
		if mysqlFraming(s.buf[s.pos:]) {
			return &DecodeError{Reason: ReasonNotAudit, Offset: -1}
		}
		return &DecodeError{Reason: ReasonNotObject, Offset: s.pos}
	}
	d.r = mysqlRecord{}
	d.arena = d.arena[:0]
	if err := s.members(0, d.top); err != nil {
		return err
	}
	// The separator a line-based shipper leaves on a record of the array,
	// or the closing bracket after the last one.
	s.skipWS()
	if c := s.peek(); c == ',' || c == ']' {
		s.pos++
	}
	if err := s.end(); err != nil {
		return err
	}
	return d.finish(ev)
}

// mysqlFraming reports whether b holds nothing but the brackets and commas
// of the array an audit file is, as the lines "[" and "]" of that file.
func mysqlFraming(b []byte) bool {
	for _, c := range b {
		switch c {
		case '[', ']', ',', ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}

// Split hands out the records of a message that is a JSON array (a whole
// audit file, or the part of one a shipper sent: the closing bracket may
// be missing, as it is while the server still writes the file). Any other
// message is one record. An element whose end cannot be found is passed
// on with the rest of the message, for Decode to reject.
func (d *MySQLAudit) Split(dst [][]byte, msg []byte) ([][]byte, error) {
	if len(msg) > d.limits.MaxMessageBytes {
		return dst, &DecodeError{Reason: ReasonTooLarge, Offset: -1}
	}
	i := 0
	for i < len(msg) && mysqlSpace(msg[i]) {
		i++
	}
	if i == len(msg) || msg[i] != '[' {
		return append(dst, msg), nil
	}
	n := len(dst)
	s := &d.s
	s.buf, s.pos = msg, i+1
	for {
		s.skipWS()
		if s.pos >= len(msg) {
			break
		}
		switch msg[s.pos] {
		case ',':
			s.pos++
			continue
		case ']':
			s.pos++
			for s.pos < len(msg) && (mysqlSpace(msg[s.pos]) || msg[s.pos] == ',') {
				s.pos++
			}
			if s.pos < len(msg) {
				dst = append(dst, msg[s.pos:])
			}
			s.pos = len(msg)
			continue
		}
		start := s.pos
		if err := s.skip(1); err != nil {
			dst = append(dst, msg[start:])
			break
		}
		dst = append(dst, msg[start:s.pos])
	}
	s.buf = nil
	if len(dst) == n {
		// Only brackets: Decode says so.
		dst = append(dst, msg)
	}
	return dst, nil
}

func mysqlSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// keep copies v into the arena.
func (d *MySQLAudit) keep(v []byte) mysqlSpan {
	a := len(d.arena)
	d.arena = append(d.arena, v...)
	return mysqlSpan{a, len(d.arena)}
}

func (d *MySQLAudit) get(sp mysqlSpan) []byte { return d.arena[sp.a:sp.b] }

// str reads a scalar member as text into the arena.
func (d *MySQLAudit) str(field string) (mysqlSpan, error) {
	v, err := d.s.text(field)
	if err != nil {
		return mysqlSpan{}, err
	}
	return d.keep(v), nil
}

// object walks a nested object; null is absent.
func (d *MySQLAudit) object(depth int, field string, member func(key []byte) error) error {
	s := &d.s
	switch s.peek() {
	case '{':
		return s.members(depth, member)
	case 'n':
		return s.literal("null")
	}
	return &DecodeError{Reason: ReasonBadValue, Field: field, Offset: s.pos}
}

func (d *MySQLAudit) top(key []byte) error {
	s, r := &d.s, &d.r
	var err error
	switch string(key) {
	case "audit_record":
		r.legacy = true
		return d.object(1, "audit_record", d.legacyMember)
	case "timestamp":
		return d.timestamp()
	case "time":
		return d.unixTime()
	case "class":
		var v []byte
		v, err = s.text("class")
		r.class = mysqlClassOf(v)
	case "event":
		var v []byte
		v, err = s.text("event")
		r.event = mysqlEventOf(v)
	case "connection_id":
		err = d.session()
	case "account":
		return d.object(1, "account", d.account)
	case "login":
		return d.object(1, "login", d.login)
	case "connection_data":
		return d.object(1, "connection_data", d.connectionData)
	case "general_data":
		return d.object(1, "general_data", d.generalData)
	case "table_access_data":
		return d.object(1, "table_access_data", d.tableAccessData)
	case "query_statistics":
		return d.object(1, "query_statistics", d.queryStatistics)
	default:
		return s.skip(1)
	}
	return err
}

func (d *MySQLAudit) legacyMember(key []byte) error {
	s, r := &d.s, &d.r
	var err error
	switch string(key) {
	case "name":
		var v []byte
		v, err = s.text("name")
		r.name = mysqlNameOf(v)
	case "timestamp":
		return d.timestamp()
	case "command_class":
		err = d.command("command_class")
	case "connection_id":
		err = d.session()
	case "status":
		err = d.status("status")
	case "sqltext":
		_, err = d.query("sqltext")
	case "user":
		r.loginUser, err = d.str("user")
	case "priv_user":
		r.privUser, err = d.str("priv_user")
	case "host":
		r.host, err = d.str("host")
	case "ip":
		r.ip, err = d.str("ip")
	case "db":
		r.db, err = d.str("db")
	default:
		return s.skip(2)
	}
	return err
}

func (d *MySQLAudit) account(key []byte) (err error) {
	switch string(key) {
	case "user":
		d.r.accountUser, err = d.str("account.user")
	case "host":
		d.r.accountHost, err = d.str("account.host")
	default:
		err = d.s.skip(2)
	}
	return err
}

func (d *MySQLAudit) login(key []byte) (err error) {
	switch string(key) {
	case "user":
		d.r.loginUser, err = d.str("login.user")
	case "ip":
		d.r.ip, err = d.str("login.ip")
	default:
		err = d.s.skip(2)
	}
	return err
}

func (d *MySQLAudit) connectionData(key []byte) (err error) {
	switch string(key) {
	case "status":
		err = d.status("connection_data.status")
	case "db":
		d.r.db, err = d.str("connection_data.db")
	case "connection_attributes":
		err = d.object(2, "connection_data.connection_attributes", d.connectionAttributes)
	default:
		err = d.s.skip(2)
	}
	return err
}

func (d *MySQLAudit) connectionAttributes(key []byte) (err error) {
	switch string(key) {
	case "program_name":
		d.r.program, err = d.str("program_name")
	case "_client_name":
		d.r.clientName, err = d.str("_client_name")
	default:
		err = d.s.skip(3)
	}
	return err
}

func (d *MySQLAudit) generalData(key []byte) (err error) {
	switch string(key) {
	case "sql_command":
		err = d.command("general_data.sql_command")
	case "query":
		err = d.queryHashed("general_data.query")
	case "status":
		err = d.status("general_data.status")
	default:
		err = d.s.skip(2)
	}
	return err
}

func (d *MySQLAudit) tableAccessData(key []byte) (err error) {
	switch string(key) {
	case "db":
		d.r.db, err = d.str("table_access_data.db")
	case "table":
		d.r.table, err = d.str("table_access_data.table")
	case "query":
		err = d.queryHashed("table_access_data.query")
	default:
		err = d.s.skip(2)
	}
	return err
}

func (d *MySQLAudit) queryStatistics(key []byte) (err error) {
	r := &d.r
	switch string(key) {
	case "rows_sent":
		r.rowsSent, r.hasRowsSent, err = d.s.count("query_statistics.rows_sent")
	case "rows_affected":
		r.rowsAffected, r.hasRowsAffected, err = d.s.count("query_statistics.rows_affected")
	case "bytes_sent":
		r.bytesSent, r.hasBytesSent, err = d.s.count("query_statistics.bytes_sent")
	default:
		err = d.s.skip(2)
	}
	return err
}

func (d *MySQLAudit) timestamp() error {
	start := d.s.pos
	v, err := d.s.text("timestamp")
	if err != nil {
		return err
	}
	d.r.hasTime = v != nil
	if v == nil {
		return nil
	}
	t, ok := mysqlTime(v)
	if !ok {
		return &DecodeError{Reason: ReasonBadTime, Field: "timestamp", Offset: start}
	}
	d.r.time = t
	return nil
}

// unixTime reads the "time" member MySQL adds with
// audit_log_format_unix_timestamp: Unix seconds.
func (d *MySQLAudit) unixTime() error {
	start := d.s.pos
	n, ok, err := d.s.count("time")
	if de, _ := err.(*DecodeError); de != nil && de.Reason == ReasonBadValue {
		de.Reason = ReasonBadTime
	}
	if err != nil {
		return err
	}
	if ok && n > math.MaxInt64/nsPerSec {
		return &DecodeError{Reason: ReasonBadTime, Field: "time", Offset: start}
	}
	d.r.unix, d.r.hasUnix = n*nsPerSec, ok
	return nil
}

func (d *MySQLAudit) session() error {
	v, err := d.s.text("connection_id")
	d.r.session = 0
	if len(v) > 0 {
		d.r.session = xxhash.Sum64(v)
	}
	return err
}

func (d *MySQLAudit) status(field string) (err error) {
	d.r.status, d.r.hasStatus, err = d.s.count(field)
	return err
}

func (d *MySQLAudit) command(field string) error {
	v, err := d.s.text(field)
	d.r.cmd, d.r.hasCmd = mysqlCommandAction(v), len(v) > 0
	return err
}

// queryHashed reads a statement text for its action and keeps its hash,
// which tells the records of one statement from those of the next.
func (d *MySQLAudit) queryHashed(field string) error {
	v, err := d.query(field)
	d.r.queryHash = 0
	if len(v) > 0 {
		d.r.queryHash = xxhash.Sum64(v)
	}
	return err
}

// query reads a statement text for its action, and returns it until the
// scanner moves on.
func (d *MySQLAudit) query(field string) ([]byte, error) {
	v, err := d.s.text(field)
	if err != nil || len(v) == 0 {
		return nil, err
	}
	d.r.query, d.r.hasQuery = mysqlKeywordAction(v), true
	d.r.export = d.r.query == ActionRead && mysqlExports(v)
	return v, nil
}

// finish turns the gathered record into ev.
func (d *MySQLAudit) finish(ev *Event) error {
	r := &d.r
	var action Action
	if r.legacy {
		switch r.name {
		case mysqlNameNone:
			return &DecodeError{Reason: ReasonUnrecognized, Offset: -1}
		case mysqlNameAudit:
			return &DecodeError{Reason: ReasonNotAudit, Offset: -1}
		case mysqlNameConnect, mysqlNameChangeUser:
			action = ActionLogin
		case mysqlNameQuit:
			action = ActionOther
		default:
			action = r.statementAction()
		}
	} else {
		switch r.class {
		case mysqlClassNone:
			return &DecodeError{Reason: ReasonUnrecognized, Offset: -1}
		case mysqlClassConnection:
			switch r.event {
			case mysqlEventConnect, mysqlEventChangeUser:
				action = ActionLogin
			case mysqlEventDisconnect:
				action = ActionOther
			default:
				// pre_authenticate: the connect record follows.
				return &DecodeError{Reason: ReasonNotAudit, Offset: -1}
			}
		case mysqlClassTableAccess:
			switch r.event {
			case mysqlEventRead:
				action = ActionRead
				if r.export {
					action = ActionExport
				}
			case mysqlEventInsert, mysqlEventUpdate:
				action = ActionWrite
			case mysqlEventDelete:
				action = ActionDelete
			default:
				return &DecodeError{Reason: ReasonNotAudit, Offset: -1}
			}
		case mysqlClassGeneral:
			if r.event != mysqlEventStatus && r.event != mysqlEventNone {
				return &DecodeError{Reason: ReasonNotAudit, Offset: -1}
			}
			action = r.statementAction()
		default:
			return &DecodeError{Reason: ReasonNotAudit, Offset: -1}
		}
	}

	switch {
	case r.hasTime:
		ev.Time = r.time
	case r.hasUnix:
		ev.Time = r.unix
	default:
		return &DecodeError{Reason: ReasonMissingTime, Offset: -1}
	}
	if ev.Time == 0 {
		// The epoch itself: a zeroed clock, and 0 means no time.
		return &DecodeError{Reason: ReasonBadTime, Field: "timestamp", Offset: -1}
	}

	login, priv, host, ip := mysqlUserHost(d.get(r.loginUser))
	acct, acctPriv, _, _ := mysqlUserHost(d.get(r.accountUser))
	principal := login
	for _, p := range [...][]byte{priv, acct, acctPriv, d.get(r.privUser)} {
		if len(principal) > 0 {
			break
		}
		principal = p
	}
	if len(principal) == 0 {
		return &DecodeError{Reason: ReasonMissingPrincipal, Offset: -1}
	}
	ev.Principal = d.principals.Intern(principal)

	for _, a := range [...][]byte{d.get(r.ip), ip, host, d.get(r.host), d.get(r.accountHost)} {
		if ev.SourceIP = mysqlAddr(a); ev.SourceIP.IsValid() {
			break
		}
	}
	if p := d.get(r.program); len(p) > 0 {
		ev.Client = d.names.Intern(p)
	} else {
		ev.Client = d.names.Intern(d.get(r.clientName))
	}
	ev.Session = r.session
	db := d.get(r.db)
	ev.Database = d.names.Intern(db)
	if table := d.get(r.table); len(table) > 0 {
		if len(db) > 0 {
			d.obj = append(append(append(d.obj[:0], db...), '.'), table...)
			table = d.obj
		}
		ev.Object = d.names.Intern(table)
	}
	if !r.legacy {
		switch r.class {
		case mysqlClassTableAccess:
			if d.merging && r.session != 0 {
				ev.Action = action
				return d.hold(ev)
			}
		case mysqlClassGeneral:
			d.merging = true
			if r.session != 0 && len(d.held) > 0 {
				action = d.merge(ev, action)
			}
		case mysqlClassConnection:
			if r.session != 0 && len(d.held) > 0 && d.connectionEnds(ev, action) {
				return nil
			}
		}
	}
	ev.Action = action
	if r.hasStatus {
		ev.Status = mysqlStatus(r.status)
	}
	// rows_sent counts rows sent to the client, which an export to a file
	// on the server does not do (it reports 0): no count for those.
	switch {
	case action == ActionRead && r.hasRowsSent:
		ev.Rows, ev.HasRows = r.rowsSent, true
	case (action == ActionWrite || action == ActionDelete) && r.hasRowsAffected:
		ev.Rows, ev.HasRows = r.rowsAffected, true
	}
	if r.hasBytesSent {
		ev.Bytes = r.bytesSent
	}
	return nil
}

// hold keeps the table_access record in ev for the status record of its
// statement. When the connection holds a table of another statement,
// which got no status record, that one is put in ev to be emitted instead.
func (d *MySQLAudit) hold(ev *Event) error {
	k := mysqlConn{id: ev.Session, principal: ev.Principal}
	st := mysqlStatement{time: ev.Time, query: d.r.queryHash, ip: ev.SourceIP, client: ev.Client,
		database: ev.Database, object: ev.Object, action: ev.Action}
	if prev, ok := d.held[k]; ok {
		if prev.query == st.query && !prev.over {
			return mysqlErrHeld // a further table of the same statement
		}
		d.held[k] = st
		prev.emit(ev, k)
		return nil
	}
	if len(d.held) >= d.maxHeld {
		d.lost += uint64(len(d.held))
		clear(d.held)
	}
	d.held[k] = st
	return mysqlErrHeld
}

// merge gives the status record in ev the table its connection holds for
// the same statement text, and returns the statement's action: the status
// record's, or the table's when the status record names none. The table of
// another statement text will get no status record of its own (a status
// record was not logged, or this one ends the CALL of a stored program
// the table was read in); it stays held until it can be emitted alone.
func (d *MySQLAudit) merge(ev *Event, action Action) Action {
	k := mysqlConn{id: ev.Session, principal: ev.Principal}
	st, ok := d.held[k]
	if !ok || st.over {
		return action
	}
	if st.query != d.r.queryHash {
		st.over = true
		d.held[k] = st
		return action
	}
	delete(d.held, k)
	ev.Object = st.object
	if ev.Database == "" {
		ev.Database = st.database
	}
	if action == ActionOther {
		action = st.action
	}
	return action
}

// connectionEnds drops the table a connection holds when a connection
// record says its statement is over, and reports whether ev now holds
// that table to emit in place of a disconnect. A login (connect,
// change_user) stays the event, and the table is lost.
func (d *MySQLAudit) connectionEnds(ev *Event, action Action) bool {
	k := mysqlConn{id: ev.Session, principal: ev.Principal}
	st, ok := d.held[k]
	if !ok {
		return false
	}
	delete(d.held, k)
	if action == ActionLogin {
		d.lost++
		return false
	}
	st.emit(ev, k)
	return true
}

// emit puts the held statement in ev as an event of its own, without rows.
func (st *mysqlStatement) emit(ev *Event, k mysqlConn) {
	ev.Reset()
	ev.Time, ev.Principal, ev.Session = st.time, k.principal, k.id
	ev.SourceIP, ev.Client, ev.Database, ev.Object = st.ip, st.client, st.database, st.object
	ev.Action, ev.Status = st.action, StatusOK
}

// statementAction is the action of a statement record: the one its
// sql_command names, or else the one of its leading keyword (Execute
// records say execute_sql, Percona's Prepare says nothing useful).
func (r *mysqlRecord) statementAction() Action {
	a := ActionOther
	switch {
	case r.hasCmd && r.cmd != ActionOther:
		a = r.cmd
	case r.hasQuery:
		a = r.query
	}
	if a == ActionRead && r.export {
		a = ActionExport
	}
	return a
}

// mysqlUserHost splits the "priv_user[user] @ host [ip]" form that MySQL's
// general log and Percona write for the user (the name the account was
// matched by, then in brackets the name the client gave). A value without
// brackets is a plain user name.
func mysqlUserHost(v []byte) (user, priv, host, ip []byte) {
	open := bytes.IndexByte(v, '[')
	if open < 0 {
		return v, nil, nil, nil
	}
	priv = v[:open]
	rest := v[open+1:]
	closing := bytes.IndexByte(rest, ']')
	if closing < 0 {
		return v, nil, nil, nil
	}
	user, rest = rest[:closing], rest[closing+1:]
	if at := bytes.IndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
		if o := bytes.LastIndexByte(rest, '['); o >= 0 && rest[len(rest)-1] == ']' {
			ip, rest = rest[o+1:len(rest)-1], rest[:o]
		}
		host = bytes.TrimSpace(rest)
	}
	return user, priv, host, ip
}

// mysqlAddr is parseAddr for values that are often host names
// ("localhost", "db-client-3.internal"): those are turned away before
// netip, whose error for them would allocate.
func mysqlAddr(b []byte) netip.Addr {
	ip := b
	if i := bytes.IndexByte(ip, '%'); i >= 0 {
		ip = ip[:i]
	}
	sep := false
	for _, c := range ip {
		switch {
		case c == '.' || c == ':':
			sep = true
		case isDigit(c) || ('a' <= c|0x20 && c|0x20 <= 'f'):
		default:
			return netip.Addr{}
		}
	}
	if !sep {
		return netip.Addr{}
	}
	return parseAddr(b)
}

// mysqlTime reads the audit timestamp forms: MySQL's "2019-10-03 13:50:01"
// (UTC, without a zone), Percona's "2021-06-30T15:07:58 UTC", and RFC 3339.
// Epoch numbers are not among them (those come as "time").
func mysqlTime(b []byte) (int64, bool) {
	if len(b) < 19 || len(b) > 40 || b[4] != '-' {
		return 0, false
	}
	var buf [48]byte
	z := append(buf[:0], b...)
	i := 19
	if i < len(z) && z[i] == '.' {
		for i++; i < len(z) && isDigit(z[i]); i++ {
		}
	}
	switch string(z[i:]) {
	case "", " UTC", " GMT":
		z = append(z[:i], 'Z')
	}
	return ParseTime(z)
}

// mysqlStatus maps a MySQL error number to a Status: the access-denied
// errors (database, user, table, column, privilege, routine, no password,
// locked account) are denials, the rest failures.
func mysqlStatus(code int64) Status {
	switch code {
	case 0:
		return StatusOK
	case 1044, 1045, 1142, 1143, 1227, 1370, 1698, 3118:
		return StatusDenied
	}
	return StatusError
}

// mysqlCommandAction maps a MySQL sql_command (Percona's command_class),
// the names of the server's Com_xxx status variables, to an Action.
func mysqlCommandAction(cmd []byte) Action {
	switch string(cmd) {
	case "select":
		return ActionRead
	case "insert", "insert_select", "update", "update_multi", "replace", "replace_select", "load":
		return ActionWrite
	case "delete", "delete_multi", "truncate":
		return ActionDelete
	case "grant", "grant_roles", "revoke", "revoke_all", "revoke_roles":
		return ActionDDL
	}
	for _, p := range [...]string{"create_", "alter_", "drop_", "rename_"} {
		if len(cmd) > len(p) && string(cmd[:len(p)]) == p {
			return ActionDDL
		}
	}
	return ActionOther
}

// mysqlKeywordAction maps a statement to an Action by its leading keyword,
// after white space, opening parentheses and comments (the content of a
// /*!50100 ... */ comment is executed, so it is read as the statement).
func mysqlKeywordAction(q []byte) Action {
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(':
			i++
		case c == '/' && at(q, i+1) == '*':
			if at(q, i+2) == '!' {
				for i += 3; i < len(q) && isDigit(q[i]); i++ {
				}
				continue
			}
			end := bytes.Index(q[i+2:], []byte("*/"))
			if end < 0 {
				return ActionOther
			}
			i += 2 + end + 2
		case c == '#' || (c == '-' && at(q, i+1) == '-' && (at(q, i+2) == ' ' || at(q, i+2) == '\t')):
			end := bytes.IndexByte(q[i:], '\n')
			if end < 0 {
				return ActionOther
			}
			i += end + 1
		default:
			return mysqlWordAction(q[i:])
		}
	}
	return ActionOther
}

func mysqlWordAction(q []byte) Action {
	var w [8]byte
	n := 0
	for ; n < len(q); n++ {
		c := q[n]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if c < 'A' || c > 'Z' {
			break
		}
		if n == len(w) {
			return ActionOther
		}
		w[n] = c
	}
	switch string(w[:n]) {
	case "SELECT", "WITH", "TABLE":
		return ActionRead
	case "INSERT", "UPDATE", "REPLACE", "LOAD":
		return ActionWrite
	case "DELETE", "TRUNCATE":
		return ActionDelete
	case "CREATE", "ALTER", "DROP", "RENAME", "GRANT", "REVOKE":
		return ActionDDL
	}
	return ActionOther
}

// mysqlExports reports whether a SELECT writes its result to a file on the
// server (INTO OUTFILE, INTO DUMPFILE), in any case and spacing. A string
// literal holding those words also matches; counting such a read as an
// export errs on the side of attention. It looks only where an F is,
// found with IndexByte, because it runs on the text of every read.
func mysqlExports(q []byte) bool {
	lo, up := mysqlNext(q, 0, 'f'), mysqlNext(q, 0, 'F')
	for lo >= 0 || up >= 0 {
		var p int
		if up < 0 || (lo >= 0 && lo < up) {
			p, lo = lo, mysqlNext(q, lo+1, 'f')
		} else {
			p, up = up, mysqlNext(q, up+1, 'F')
		}
		if mysqlExportAt(q, p) {
			return true
		}
	}
	return false
}

func mysqlNext(q []byte, from int, c byte) int {
	if i := bytes.IndexByte(q[from:], c); i >= 0 {
		return from + i
	}
	return -1
}

// mysqlExportAt reports whether the F at p is the one of INTO OUTFILE or
// INTO DUMPFILE.
func mysqlExportAt(q []byte, p int) bool {
	if !mysqlFold(q[p:], "file") || (p+4 < len(q) && mysqlWordByte(q[p+4])) {
		return false
	}
	var k int
	switch {
	case p >= 3 && mysqlFold(q[p-3:], "out"):
		k = p - 3
	case p >= 4 && mysqlFold(q[p-4:], "dump"):
		k = p - 4
	default:
		return false
	}
	e := k
	for e > 0 && mysqlSpace(q[e-1]) {
		e--
	}
	return e < k && e >= 4 && mysqlFold(q[e-4:], "into") && (e == 4 || !mysqlWordByte(q[e-5]))
}

// mysqlFold reports whether b starts with the lower-case ASCII word w, in
// any case.
func mysqlFold(b []byte, w string) bool {
	if len(b) < len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		if b[i]|0x20 != w[i] {
			return false
		}
	}
	return true
}

func mysqlWordByte(c byte) bool {
	return c == '_' || isDigit(c) || ('a' <= c|0x20 && c|0x20 <= 'z')
}
