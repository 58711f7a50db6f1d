package event

import (
	"bytes"

	"github.com/cespare/xxhash/v2"
)

// OCSF Datastore Activity events (class_uid 6005, OCSF 1.1 and later), as
// security data lakes and SIEM pipelines normalise database and bucket
// access: one event per message, or a JSON array of them (Split).
//
// What is read: class_uid (or type_uid / 100) must be 6005, anything else
// is ReasonUnrecognized; time (epoch milliseconds) or else time_dt;
// actor.user.name, else actor.user.uid, as the principal, with
// actor.user.type_id as its type; actor.session.uid; src_endpoint.ip;
// actor.app_name, else http_request.user_agent, as the client;
// database.name; table.name, else databucket.name, as the object, as given;
// activity_id (else the activity part of type_uid, else activity_name);
// status_id, else status; query_info.bytes. query_info.query_string is
// scanned for its verb and never kept.
//
// OCSF has no row count. Producers put one in unmapped, and these keys of
// unmapped are read: rows_returned, rowsReturned and rows_produced (rows
// read), rows_affected, rowsAffected and affected_rows (rows written), and
// rows, row_count and rowCount (either). A read takes the rows read and a
// write the rows written, each falling back to the generic count.

func init() {
	register("ocsf", "OCSF Datastore Activity events (class_uid 6005), one or a JSON array",
		func(l Limits, _ Options) (Decoder, error) { return NewOCSF(l), nil })
}

// ocsfDatastoreActivity is the class_uid of Datastore Activity.
const ocsfDatastoreActivity = 6005

// OCSF decodes OCSF Datastore Activity events. It is not safe for
// concurrent use.
type OCSF struct {
	limits     Limits
	principals *Interner
	names      *Interner
	w          dasWalker
	ev         *Event
	st         ocsfState
	// uid is actor.user.uid, kept in case no name comes.
	uid  []byte
	recs [][]byte
}

var (
	_ Decoder  = (*OCSF)(nil)
	_ Splitter = (*OCSF)(nil)
)

// NewOCSF returns a decoder for OCSF Datastore Activity events.
func NewOCSF(l Limits) *OCSF {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	return &OCSF{limits: l, principals: NewInterner(l.PrincipalIntern), names: NewInterner(1 << 14)}
}

// ocsfState is what an event says beyond the fields written straight into
// the Event, kept until the whole event is read.
type ocsfState struct {
	classUID, typeUID, activityID        int64
	hasClass, hasType, hasActivity       bool
	nameAction, queryAction              Action
	hasName, hasQuery                    bool
	time, timeDT                         int64
	hasTime, hasTimeDT                   bool
	statusID                             int64
	hasStatusID, statusFailed, statusOK  bool
	deniedText, blocked                  bool
	userType                             int64
	hasUserName, hasApp, hasTable        bool
	returned, affected, anyRows          int64
	hasReturned, hasAffected, hasAnyRows bool
}

// Split appends each event of a JSON array to dst; a message that is one
// event is appended whole.
func (d *OCSF) Split(dst [][]byte, msg []byte) ([][]byte, error) {
	if len(msg) > d.limits.MaxMessageBytes {
		return dst, dasErrTooLarge
	}
	s := &d.w.scanner
	s.buf, s.pos = msg, 0
	s.skipWS()
	if s.peek() != '[' {
		s.buf = nil
		return append(dst, msg), nil
	}
	n := len(dst)
	err := dasSplitElements(s, &dst, 0)
	if err == nil {
		err = s.end()
	}
	s.buf = nil
	if err != nil {
		return dst[:n], err
	}
	return dst, nil
}

// Decode decodes one OCSF event. Given a JSON array instead, it decodes the
// one Datastore Activity event the array holds; several are
// ReasonNotObject: they need Split.
func (d *OCSF) Decode(msg []byte, ev *Event) error {
	return d.decode(msg, ev, false)
}

func (d *OCSF) decode(msg []byte, ev *Event, nested bool) error {
	ev.Reset()
	if len(msg) > d.limits.MaxMessageBytes {
		return dasErrTooLarge
	}
	w := &d.w
	w.reset(msg)
	w.skipWS()
	if w.peek() == '[' && !nested {
		w.buf = nil
		recs, err := d.Split(d.recs[:0], msg)
		if err == nil {
			err = dasDecodeOnly(recs, ev, ReasonNotObject, "", func(rec []byte) error { return d.decode(rec, ev, true) })
		}
		clear(recs) // keep no reference to msg
		d.recs = recs[:0]
		return err
	}
	d.ev, d.st, d.uid = ev, ocsfState{}, d.uid[:0]
	err := w.members(0, d.member)
	if err == nil {
		err = w.end()
	}
	w.buf, d.ev = nil, nil
	if err != nil {
		return err
	}
	return d.finish(ev)
}

func (d *OCSF) member(key []byte) error {
	w, st := &d.w, &d.st
	switch string(key) {
	case "class_uid":
		return w.id("class_uid", 1, &st.classUID, &st.hasClass)
	case "type_uid":
		return w.id("type_uid", 1, &st.typeUID, &st.hasType)
	case "activity_id":
		return w.id("activity_id", 1, &st.activityID, &st.hasActivity)
	case "activity_name":
		v, err := w.str("activity_name", 1)
		st.nameAction, st.hasName = ocsfActivityName(v)
		return err
	case "time":
		return w.time("time", 1, &st.time, &st.hasTime)
	case "time_dt":
		return w.time("time_dt", 1, &st.timeDT, &st.hasTimeDT)
	case "status_id":
		return w.id("status_id", 1, &st.statusID, &st.hasStatusID)
	case "status":
		v, err := w.str("status", 1)
		st.statusFailed = bytes.EqualFold(v, []byte("Failure"))
		st.statusOK = bytes.EqualFold(v, []byte("Success"))
		return err
	case "status_code":
		v, err := w.str("status_code", 1)
		st.deniedText = st.deniedText || ocsfDeniedText(v)
		return err
	case "status_detail":
		v, err := w.str("status_detail", 1)
		st.deniedText = st.deniedText || ocsfDeniedText(v)
		return err
	case "disposition_id":
		var id int64
		var ok bool
		err := w.id("disposition_id", 1, &id, &ok)
		st.blocked = st.blocked || ok && id == 2 // Blocked
		return err
	case "actor":
		return w.object("actor", 1, d.actor)
	case "src_endpoint":
		return w.object("src_endpoint", 1, d.srcEndpoint)
	case "http_request":
		return w.object("http_request", 1, d.httpRequest)
	case "database":
		return w.object("database", 1, d.database)
	case "table":
		return w.object("table", 1, d.table)
	case "databucket":
		return w.object("databucket", 1, d.databucket)
	case "query_info":
		return w.object("query_info", 1, d.queryInfo)
	case "unmapped":
		return w.object("unmapped", 1, d.unmapped)
	}
	return w.skip(1)
}

func (d *OCSF) actor(key []byte) error {
	w := &d.w
	switch string(key) {
	case "user":
		return w.object("actor.user", 2, d.user)
	case "session":
		return w.object("actor.session", 2, d.session)
	case "app_name":
		v, err := w.str("actor.app_name", 2)
		if len(v) > 0 {
			d.ev.Client, d.st.hasApp = d.names.Intern(v), true
		}
		return err
	}
	return w.skip(2)
}

func (d *OCSF) user(key []byte) error {
	w, st := &d.w, &d.st
	switch string(key) {
	case "name":
		v, err := w.str("actor.user.name", 3)
		if len(v) > 0 {
			d.ev.Principal, st.hasUserName = d.principals.Intern(v), true
		}
		return err
	case "uid":
		v, err := w.str("actor.user.uid", 3)
		d.uid = append(d.uid[:0], v...)
		return err
	case "type_id":
		var ok bool
		return w.id("actor.user.type_id", 3, &st.userType, &ok)
	}
	return w.skip(3)
}

func (d *OCSF) session(key []byte) error {
	if string(key) == "uid" {
		v, err := d.w.str("actor.session.uid", 3)
		d.ev.Session = 0
		if len(v) > 0 {
			d.ev.Session = xxhash.Sum64(v)
		}
		return err
	}
	return d.w.skip(3)
}

func (d *OCSF) srcEndpoint(key []byte) error {
	if string(key) == "ip" {
		v, err := d.w.str("src_endpoint.ip", 2)
		d.ev.SourceIP = dasAddr(v)
		return err
	}
	return d.w.skip(2)
}

func (d *OCSF) httpRequest(key []byte) error {
	if string(key) == "user_agent" {
		v, err := d.w.str("http_request.user_agent", 2)
		if len(v) > 0 && !d.st.hasApp {
			d.ev.Client = d.names.Intern(v)
		}
		return err
	}
	return d.w.skip(2)
}

func (d *OCSF) database(key []byte) error {
	if string(key) == "name" {
		v, err := d.w.str("database.name", 2)
		d.ev.Database = d.names.Intern(v)
		return err
	}
	return d.w.skip(2)
}

func (d *OCSF) table(key []byte) error {
	if string(key) == "name" {
		v, err := d.w.str("table.name", 2)
		if len(v) > 0 {
			d.ev.Object, d.st.hasTable = d.names.Intern(v), true
		}
		return err
	}
	return d.w.skip(2)
}

func (d *OCSF) databucket(key []byte) error {
	if string(key) == "name" {
		v, err := d.w.str("databucket.name", 2)
		if len(v) > 0 && !d.st.hasTable {
			d.ev.Object = d.names.Intern(v)
		}
		return err
	}
	return d.w.skip(2)
}

func (d *OCSF) queryInfo(key []byte) error {
	w, st := &d.w, &d.st
	switch string(key) {
	case "query_string":
		v, err := w.str("query_info.query_string", 2)
		st.hasQuery = len(v) > 0
		if st.hasQuery {
			st.queryAction = dasSQLAction(v)
		}
		return err
	case "bytes":
		n, ok, err := w.count("query_info.bytes", 2)
		if ok {
			d.ev.Bytes = n
		}
		return err
	}
	return w.skip(2)
}

// unmapped reads the row counts producers put outside the schema.
func (d *OCSF) unmapped(key []byte) error {
	w, st := &d.w, &d.st
	switch string(key) {
	case "rows_returned", "rowsReturned", "rows_produced":
		var err error
		st.returned, st.hasReturned, err = w.count("unmapped.rows_returned", 2)
		return err
	case "rows_affected", "rowsAffected", "affected_rows":
		var err error
		st.affected, st.hasAffected, err = w.count("unmapped.rows_affected", 2)
		return err
	case "rows", "row_count", "rowCount":
		var err error
		st.anyRows, st.hasAnyRows, err = w.count("unmapped.rows", 2)
		return err
	}
	return w.skip(2)
}

func (d *OCSF) finish(ev *Event) error {
	st := &d.st
	class := st.classUID
	if !st.hasClass && st.hasType {
		class = st.typeUID / 100
	}
	if (!st.hasClass && !st.hasType) || class != ocsfDatastoreActivity {
		return dasErrUnrecognized
	}
	if err := d.w.fault(); err != nil {
		return err
	}
	switch {
	case st.hasTime:
		ev.Time = st.time
	case st.hasTimeDT:
		ev.Time = st.timeDT
	default:
		return dasErrMissingTime
	}
	if !st.hasUserName {
		ev.Principal = d.principals.Intern(d.uid)
	}
	if ev.Principal == "" {
		return dasErrMissingPrincipal
	}
	switch st.userType {
	case 1, 2: // User, Admin
		ev.PrincipalType = PrincipalUser
	case 3, 4: // System, Service
		ev.PrincipalType = PrincipalService
	}
	ev.Action = d.action()
	failed := st.statusID == 2 || !st.hasStatusID && st.statusFailed
	switch {
	case st.blocked, failed && (st.deniedText || ev.Action == ActionLogin):
		// A failed Connect is a refused login.
		ev.Status = StatusDenied
	case failed:
		ev.Status = StatusError
	}
	switch ev.Action {
	case ActionRead, ActionExport:
		ev.Rows, ev.HasRows = ocsfRows(st.returned, st.hasReturned, st.anyRows, st.hasAnyRows, st.affected, st.hasAffected)
	case ActionWrite, ActionDelete:
		ev.Rows, ev.HasRows = ocsfRows(st.affected, st.hasAffected, st.anyRows, st.hasAnyRows, st.returned, st.hasReturned)
	}
	return nil
}

// ocsfRows returns the first count given, in order of preference.
func ocsfRows(a int64, hasA bool, b int64, hasB bool, c int64, hasC bool) (int64, bool) {
	switch {
	case hasA:
		return a, true
	case hasB:
		return b, true
	case hasC:
		return c, true
	}
	return 0, false
}

// action maps the activity. Query takes the verb of its query_string when
// it has a known one (producers file every statement under Query); a Read
// or Query whose statement writes a file is an export.
func (d *OCSF) action() Action {
	st := &d.st
	id := st.activityID
	if !st.hasActivity && st.hasType {
		id = st.typeUID % 100
	}
	var a Action
	switch id {
	case 1, 8, 10: // Read, List, Decrypt: the data is seen
		a = ActionRead
	case 2, 5, 6: // Update, Write, Create
		a = ActionWrite
	case 3: // Connect
		return ActionLogin
	case 4: // Query
		a = ActionRead
		if st.hasQuery && st.queryAction != ActionOther {
			a = st.queryAction
		}
	case 7: // Delete
		a = ActionDelete
	case 9: // Encrypt
		a = ActionOther
	default: // Unknown, Other, or a producer's own
		switch {
		case st.hasName:
			a = st.nameAction
		case st.hasQuery:
			a = st.queryAction
		default:
			a = ActionOther
		}
	}
	if a == ActionRead && st.hasQuery && st.queryAction == ActionExport {
		a = ActionExport
	}
	return a
}

// ocsfActivityName maps an activity_name, for events whose activity_id is
// missing or Other.
func ocsfActivityName(v []byte) (Action, bool) {
	switch {
	case len(v) == 0:
		return ActionOther, false
	case dasIsWord(v, "Read"), dasIsWord(v, "Query"), dasIsWord(v, "List"), dasIsWord(v, "Decrypt"), dasIsWord(v, "Select"):
		return ActionRead, true
	case dasIsWord(v, "Update"), dasIsWord(v, "Write"), dasIsWord(v, "Create"), dasIsWord(v, "Insert"):
		return ActionWrite, true
	case dasIsWord(v, "Delete"), dasIsWord(v, "Truncate"):
		return ActionDelete, true
	case dasIsWord(v, "Connect"), dasIsWord(v, "Logon"), dasIsWord(v, "Login"):
		return ActionLogin, true
	case dasIsWord(v, "Export"), dasIsWord(v, "Unload"), dasIsWord(v, "Copy"):
		return ActionExport, true
	}
	return ActionOther, true
}

// ocsfDeniedText spots a permission failure in status_code or
// status_detail: "AccessDenied", "permission denied", "Unauthorized",
// "Forbidden", SQLSTATE 42501.
func ocsfDeniedText(v []byte) bool {
	return dasContainsFold(v, "denied") || dasContainsFold(v, "unauthori") || dasContainsFold(v, "forbidden") ||
		dasContainsFold(v, "not authorized") || dasContainsFold(v, "permission") || bytes.Equal(v, []byte("42501"))
}
