package event

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/cespare/xxhash/v2"
)

func init() {
	register("mariadb_audit", "MariaDB server_audit plugin lines, from its own file or through syslog",
		func(l Limits, _ Options) (Decoder, error) { return NewMariaDBAudit(l), nil })
}

// MariaDBAudit decodes the lines of MariaDB's server_audit plugin (also
// loadable into MySQL and Percona Server):
//
//	20240102 10:11:12,db1,alice,10.0.0.5,42,1077,QUERY,shop,'SELECT * FROM customers',0
//	20240102 10:11:12,db1,alice,10.0.0.5,42,1077,READ,shop,customers,
//
// that is timestamp, server host, user, client host (with ":port" from
// MariaDB 12.0.1), connection id, query id, operation, database, object
// and return code. The object of a QUERY is the statement, quoted, with
// quotes and backslashes escaped and line breaks turned into spaces by
// the plugin, so a line is always one whole record; it may hold commas, so
// the return code is taken from the end of the line. The statement is
// only looked at for its leading keyword (and INTO OUTFILE), never kept.
//
// With server_audit_output_type=syslog the plugin leaves the timestamp to
// syslog, so the line is "Jan  2 10:11:12 host mysql-server_auditing: "
// (or an RFC 3339 time instead of the BSD one, as rsyslog can write), an
// optional server_audit_syslog_info, then the record without its first
// field. The syslog ident is configurable, so any is accepted; a syslog
// line whose message is not a record is ReasonNotAudit.
//
// Times carry no zone, and the plugin writes the server's local time:
// they are read as UTC, so run the server (or syslog) in UTC. A BSD
// syslog time has no year either: it is taken to be in the last year up
// to a week ahead of the decoder's clock, which is wrong for replays of
// logs older than a year.
//
// MariaDB's audit reports no row counts, so HasRows is never set.
//
// A MariaDBAudit is not safe for concurrent use.
type MariaDBAudit struct {
	limits     Limits
	principals *Interner
	names      *Interner
	// now is the clock that dates BSD syslog times; tests set it.
	now func() time.Time
	buf []byte
}

var _ Decoder = (*MariaDBAudit)(nil)

// NewMariaDBAudit returns a decoder of MariaDB server_audit lines within
// the given limits.
func NewMariaDBAudit(l Limits) *MariaDBAudit {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	return &MariaDBAudit{limits: l, principals: NewInterner(l.PrincipalIntern), names: NewInterner(1 << 14), now: time.Now}
}

// Decode decodes one line from msg into ev. Nothing in ev refers to msg
// afterwards.
func (d *MariaDBAudit) Decode(msg []byte, ev *Event) error {
	ev.Reset()
	if len(msg) > d.limits.MaxMessageBytes {
		return &DecodeError{Reason: ReasonTooLarge, Offset: -1}
	}
	// Trimmed by hand: bytes.TrimLeft and TrimRight build their cutset on
	// every call.
	base, end := 0, len(msg)
	for end > 0 && mysqlSpace(msg[end-1]) {
		end--
	}
	for base < end && (msg[base] == ' ' || msg[base] == '\t') {
		base++
	}
	line := msg[base:end]

	if t, rest, shape, ok := mariadbFileTime(line); shape {
		if !ok {
			return &DecodeError{Reason: ReasonBadTime, Field: "timestamp", Offset: base}
		}
		return d.record(ev, t, rest, false)
	}
	t, payload, ok, err := d.syslog(line)
	if err != nil {
		return err
	}
	if !ok {
		return &DecodeError{Reason: ReasonUnrecognized, Offset: -1}
	}
	// A file line relayed by syslog keeps its own time, which has a year.
	if ft, rest, shape, ok := mariadbFileTime(payload); shape && ok {
		return d.record(ev, ft, rest, true)
	}
	// server_audit_syslog_info, when set, comes before the server host,
	// which has no space in it.
	if c := bytes.IndexByte(payload, ','); c >= 0 {
		if sp := bytes.LastIndexByte(payload[:c], ' '); sp >= 0 {
			payload = payload[sp+1:]
		}
	}
	return d.record(ev, t, payload, true)
}

// record decodes the fields after the timestamp: serverhost, username,
// host, connectionid, queryid, operation, database, object, retcode.
// Through syslog, a line that is not a record is some other message of
// the log; in the plugin's file there is nothing else.
func (d *MariaDBAudit) record(ev *Event, t int64, rec []byte, syslog bool) error {
	var f [7][]byte
	rest := rec
	for i := range f {
		c := bytes.IndexByte(rest, ',')
		if c < 0 {
			return mariadbNotRecord(syslog)
		}
		f[i], rest = rest[:c], rest[c+1:]
	}
	last := bytes.LastIndexByte(rest, ',')
	if last < 0 {
		return mariadbNotRecord(syslog)
	}
	serverHost, user, host, connID, queryID, op, db := f[0], f[1], f[2], f[3], f[4], f[5], f[6]
	object, retcode := rest[:last], rest[last+1:]
	if !mariadbDigits(connID) || !mariadbDigits(queryID) || !mariadbOperation(op) {
		return mariadbNotRecord(syslog)
	}
	code, ok := mariadbRetcode(retcode)
	if !ok {
		return &DecodeError{Reason: ReasonBadValue, Field: "retcode", Offset: -1}
	}
	if len(user) == 0 {
		return &DecodeError{Reason: ReasonMissingPrincipal, Offset: -1}
	}
	if t == 0 {
		// The epoch itself: a zeroed clock, and 0 means no time.
		return &DecodeError{Reason: ReasonBadTime, Field: "timestamp", Offset: -1}
	}

	ev.Time = t
	ev.Principal = d.principals.Intern(user)
	ev.SourceIP = mariadbAddr(host)
	d.buf = append(append(append(d.buf[:0], serverHost...), ','), connID...)
	ev.Session = xxhash.Sum64(d.buf)
	ev.Database = d.names.Intern(db)
	ev.Status = mysqlStatus(code)

	table := false
	switch string(op) {
	case "CONNECT", "CHANGEUSER", "PROXY_CONNECT":
		ev.Action = ActionLogin
	case "FAILED_CONNECT":
		ev.Action = ActionLogin
		if ev.Status == StatusOK {
			ev.Status = StatusDenied
		}
	case "DISCONNECT":
		ev.Action = ActionOther
	case "QUERY":
		q := object
		if len(q) > 0 && q[0] == '\'' {
			q = q[1:]
		}
		ev.Action = mysqlKeywordAction(q)
		if ev.Action == ActionRead && mysqlExports(q) {
			ev.Action = ActionExport
		}
	case "READ":
		ev.Action, table = ActionRead, true
	case "WRITE":
		ev.Action, table = ActionWrite, true
	case "CREATE", "ALTER", "DROP", "RENAME":
		ev.Action, table = ActionDDL, true
	default:
		ev.Action = ActionOther
	}
	if table && len(object) > 0 {
		// RENAME names old|newdb.new: the first is the one acted on.
		if bar := bytes.IndexByte(object, '|'); bar >= 0 {
			object = object[:bar]
		}
		if len(db) > 0 {
			d.buf = append(append(append(d.buf[:0], db...), '.'), object...)
			object = d.buf
		}
		ev.Object = d.names.Intern(object)
	}
	return nil
}

func mariadbNotRecord(syslog bool) error {
	if syslog {
		return &DecodeError{Reason: ReasonNotAudit, Offset: -1}
	}
	return &DecodeError{Reason: ReasonUnrecognized, Offset: -1}
}

// mariadbFileTime reads the first field of a file line. shape says whether
// it looks like a time at all; ok whether it is a valid one. The default
// server_audit_timestamp_format is "%Y%m%d %H:%i:%s"; ISO forms are read
// too for servers configured otherwise.
func mariadbFileTime(line []byte) (t int64, rest []byte, shape, ok bool) {
	c := bytes.IndexByte(line, ',')
	if c < 0 {
		return 0, nil, false, false
	}
	f, rest := line[:c], line[c+1:]
	switch {
	case len(f) == 17 && f[8] == ' ' && f[11] == ':' && f[14] == ':' && mariadbDigits(f[:8]):
		// 20240102 10:11:12 -> 2024-01-02T10:11:12Z
		var b [20]byte
		z := append(b[:0], f[0], f[1], f[2], f[3], '-', f[4], f[5], '-', f[6], f[7], 'T')
		z = append(z, f[9:17]...)
		z = append(z, 'Z')
		t, ok = ParseTime(z)
		return t, rest, true, ok
	case len(f) >= 19 && f[4] == '-' && f[7] == '-' && mariadbDigits(f[:4]) && !mariadbSpaced(f[11:]):
		t, ok = mysqlTime(f)
		return t, rest, true, ok
	}
	return 0, nil, false, false
}

// mariadbSpaced reports whether the time of day of an ISO timestamp has a
// space in it other than before a UTC zone name: then it is not a
// timestamp field but, say, the RFC 3339 time of a syslog header.
func mariadbSpaced(b []byte) bool {
	if n := len(b); n > 4 && (string(b[n-4:]) == " UTC" || string(b[n-4:]) == " GMT") {
		b = b[:n-4]
	}
	return bytes.IndexByte(b, ' ') >= 0
}

var mariadbMonths = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// syslog strips a syslog header, "[<PRI>]TIMESTAMP [HOST] IDENT: ", and
// returns its time and the message after it. ok is false when line has no
// such header; err is set when it has one with a bad time.
func (d *MariaDBAudit) syslog(line []byte) (t int64, msg []byte, ok bool, err error) {
	b := line
	if len(b) > 0 && b[0] == '<' {
		end := bytes.IndexByte(b, '>')
		if end < 2 || end > 4 || !mariadbDigits(b[1:end]) {
			return 0, nil, false, nil
		}
		b = b[end+1:]
	}
	tsAt := len(line) - len(b)
	month := 0
	if len(b) >= 16 {
		for i, m := range mariadbMonths {
			if string(b[:3]) == m {
				month = i + 1
			}
		}
	}
	if month > 0 && b[3] == ' ' && b[6] == ' ' && b[9] == ':' && b[12] == ':' && b[15] == ' ' {
		// Jan  2 10:11:12
		day := d2('0', b[5])
		if b[4] != ' ' {
			day = d2(b[4], b[5])
		}
		hour, minute, sec := d2(b[7], b[8]), d2(b[10], b[11]), d2(b[13], b[14])
		if day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
			return 0, nil, false, &DecodeError{Reason: ReasonBadTime, Field: "timestamp", Offset: tsAt}
		}
		if t, ok = d.bsdTime(int64(month), int64(day), int64(hour*3600+minute*60+min(sec, 59))); !ok {
			return 0, nil, false, &DecodeError{Reason: ReasonBadTime, Field: "timestamp", Offset: tsAt}
		}
		b = b[16:]
	} else {
		sp := bytes.IndexByte(b, ' ')
		if sp < 20 || b[4] != '-' || !mariadbDigits(b[:4]) {
			return 0, nil, false, nil
		}
		if t, ok = ParseTime(b[:sp]); !ok {
			return 0, nil, false, &DecodeError{Reason: ReasonBadTime, Field: "timestamp", Offset: tsAt}
		}
		b = b[sp+1:]
	}
	// HOST, which a message straight from syslog(3) lacks, then
	// IDENT[PID]: with its colon.
	for range 2 {
		sp := bytes.IndexByte(b, ' ')
		if sp < 0 && len(b) > 1 && b[len(b)-1] == ':' {
			return t, nil, true, nil // an empty message
		}
		if sp <= 0 {
			return 0, nil, false, nil
		}
		if b[sp-1] == ':' {
			return t, bytes.TrimLeft(b[sp+1:], " "), true, nil
		}
		b = b[sp+1:]
	}
	return 0, nil, false, nil
}

// bsdTime dates a yearless syslog time (seconds of the day given) in the
// last year that does not put it more than a week after the clock, so
// that a December line read in January lands in December of last year.
func (d *MariaDBAudit) bsdTime(month, day, secOfDay int64) (int64, bool) {
	clock := d.now()
	now, year := clock.Unix(), int64(clock.UTC().Year())
	for range 2 {
		if day <= daysIn(month, year) {
			secs := daysFromCivil(year, month, day)*86400 + secOfDay
			if secs <= now+7*86400 {
				return secs * nsPerSec, true
			}
		}
		year--
	}
	return 0, false
}

// mariadbAddr reads the client host: an address, an address with the
// client port MariaDB 12.0.1 appends (or ":unavailable"), or a host name,
// which is not an address and is ignored. An IPv6 address followed by a
// port of four digits or fewer reads as an address without one, since it
// is one; client ports are almost always five-digit ephemeral ones, which
// no IPv6 group can be.
func mariadbAddr(h []byte) netip.Addr {
	if len(h) > 0 && h[0] == '[' {
		if end := bytes.IndexByte(h, ']'); end > 0 {
			return mysqlAddr(h[1:end])
		}
		return netip.Addr{}
	}
	c := bytes.LastIndexByte(h, ':')
	if c < 0 {
		return mysqlAddr(h)
	}
	host, port := h[:c], h[c+1:]
	switch {
	case string(port) == "unavailable",
		bytes.IndexByte(host, ':') < 0 && bytes.IndexByte(port, '.') < 0,
		len(port) == 5 && mariadbDigits(port):
		return mysqlAddr(host)
	}
	return mysqlAddr(h)
}

func mariadbDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

// mariadbOperation reports whether b can be an operation: CONNECT, QUERY,
// READ, FAILED_CONNECT, ... (upper case and underscores).
func mariadbOperation(b []byte) bool {
	for _, c := range b {
		if (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return len(b) > 0
}

// mariadbRetcode reads the return code; table records leave it empty.
func mariadbRetcode(b []byte) (int64, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) > 10 || !mariadbDigits(b) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
