package event

import (
	"bytes"
	"math"
	"net/netip"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// Defaults for Limits.
const (
	DefaultMaxMessageBytes = 1 << 20
	DefaultMaxRecordIDs    = 4096
)

// maxDepth bounds the nesting of skipped unknown fields, so that a hostile
// message cannot drive the recursive skip arbitrarily deep.
const maxDepth = 64

// Limits bound what a single message can cost, in time and in memory, since
// one producer bug or one hostile client must not stall a partition.
type Limits struct {
	// MaxMessageBytes is the largest message decoded; larger ones are
	// rejected unread. Zero means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxRecordIDs is how many record ids of one message are hashed into
	// Event.RecordIDs and Event.RecordNums; further ids are only counted in
	// Event.RecordCount. Zero means DefaultMaxRecordIDs.
	MaxRecordIDs int
	// PrincipalIntern is how many principal names the decoder's interner
	// keeps per generation. Zero means DefaultInternCapacity. A pipeline
	// with a decoder per partition gives each a share, so that a flood of
	// unique principals costs memory once, not once per partition.
	PrincipalIntern int
}

// Native decodes the native JSON event (see the contract in DESIGN.md).
//
// It is a hand-written single-pass scanner rather than encoding/json because
// it runs once per message on the hot path: it allocates nothing in steady
// state, interns the names it keeps, hashes what is only compared (session,
// record ids) and never materialises the values of unknown fields.
//
// A Native is not safe for concurrent use.
type Native struct {
	limits Limits
	// Two interners: principals number in the millions where customer
	// accounts act, while objects, roles, databases, clients and
	// credentials are few and on every message. Kept apart, the small
	// table of hot names stays in cache instead of being scattered through
	// a table of principals.
	principals *Interner
	names      *Interner
	s          scanner
}

var _ Decoder = (*Native)(nil)

// NewNative returns a decoder for native events within the given limits.
func NewNative(l Limits) *Native {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.MaxRecordIDs <= 0 {
		l.MaxRecordIDs = DefaultMaxRecordIDs
	}
	return &Native{limits: l, principals: NewInterner(l.PrincipalIntern), names: NewInterner(1 << 14)}
}

// Decode decodes one native event from msg into ev. Nothing in ev refers to
// msg afterwards, so the caller may reuse msg at once.
//
// Beyond the contract: null means absent; for duplicate keys the last one
// wins; string fields also accept a number, taken as its text; rows, bytes
// and ts also accept a numeric string; an unparsable source_ip is ignored
// rather than rejected, since a bad address must not drop the access.
func (d *Native) Decode(msg []byte, ev *Event) error {
	ev.Reset()
	if len(msg) > d.limits.MaxMessageBytes {
		return &DecodeError{Reason: ReasonTooLarge, Offset: -1}
	}
	d.s.buf, d.s.pos = msg, 0
	err := d.object(ev)
	d.s.buf = nil // do not pin the caller's buffer
	return err
}

func (d *Native) object(ev *Event) error {
	s := &d.s
	s.skipWS()
	switch c := s.peek(); {
	case c == '{':
	case c == '[' || c == '"' || c == '-' || isDigit(c) || c == 't' || c == 'f' || c == 'n':
		return &DecodeError{Reason: ReasonNotObject, Offset: s.pos}
	default:
		return s.malformed()
	}
	s.pos++
	s.skipWS()
	hasTime := false
	for more := s.peek() != '}'; more; {
		if s.peek() != '"' {
			return s.malformed()
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		// Resolve the key before reading the value: both may live in the
		// same scratch buffer.
		f := fieldOf(key)
		s.skipWS()
		if s.peek() != ':' {
			return s.malformed()
		}
		s.pos++
		s.skipWS()
		switch f {
		case fieldUnknown:
			err = s.skip(2)
		case fieldTS:
			hasTime, err = d.ts(ev)
		case fieldRecordIDs:
			err = d.recordIDs(ev)
		default:
			err = d.field(f, ev)
		}
		if err != nil {
			return err
		}
		s.skipWS()
		switch s.peek() {
		case ',':
			s.pos++
			s.skipWS()
		case '}':
			more = false
		default:
			return s.malformed()
		}
	}
	s.pos++ // the closing brace
	s.skipWS()
	if s.pos != len(s.buf) {
		return s.malformed()
	}
	if !hasTime {
		return &DecodeError{Reason: ReasonMissingTime, Offset: -1}
	}
	if ev.Principal == "" {
		return &DecodeError{Reason: ReasonMissingPrincipal, Offset: -1}
	}
	return nil
}

// ts reads the event time and reports whether one was given.
func (d *Native) ts(ev *Event) (bool, error) {
	start := d.s.pos
	k, v, err := d.s.scalar()
	if err != nil {
		return false, err
	}
	switch k {
	case kindNull:
		ev.Time = 0
		return false, nil
	case kindString, kindNumber:
		if t, ok := ParseTime(v); ok {
			ev.Time = t
			return true, nil
		}
	}
	return false, &DecodeError{Reason: ReasonBadTime, Field: fieldNames[fieldTS], Offset: start}
}

// field reads a scalar field other than ts. Every field is assigned even
// when the value is null, so that a later duplicate key wins.
func (d *Native) field(f field, ev *Event) error {
	start := d.s.pos
	k, v, err := d.s.scalar()
	if err != nil {
		return err
	}
	if f == fieldRows || f == fieldBytes {
		// Counts, also as numeric strings; null is absent.
		var n int64
		switch k {
		case kindNull:
		case kindNumber, kindString:
			var ok bool
			if n, ok = parseCount(v); !ok {
				return badValue(f, start)
			}
		default:
			return badValue(f, start)
		}
		if f == fieldRows {
			ev.Rows, ev.HasRows = n, k != kindNull
		} else {
			ev.Bytes = n
		}
		return nil
	}

	// The rest are strings. Producers emit numeric ids unquoted, so a
	// number is taken as its text; null and "" are both absent.
	switch k {
	case kindString, kindNumber:
	case kindNull:
		v = nil
	default:
		return badValue(f, start)
	}
	switch f {
	case fieldPrincipal:
		ev.Principal = d.principals.Intern(v)
	case fieldPrincipalType:
		ev.PrincipalType = ParsePrincipalType(v)
	case fieldCredential:
		ev.Credential = d.names.Intern(v)
	case fieldRole:
		ev.Role = d.names.Intern(v)
	case fieldSourceIP:
		ev.SourceIP = parseAddr(v)
	case fieldClient:
		ev.Client = d.names.Intern(v)
	case fieldSession:
		ev.Session = 0
		if len(v) > 0 {
			ev.Session = xxhash.Sum64(v)
		}
	case fieldDatabase:
		ev.Database = d.names.Intern(v)
	case fieldObject:
		ev.Object = d.names.Intern(v)
	case fieldAction:
		ev.Action = ActionRead
		if len(v) > 0 {
			ev.Action = ParseAction(v)
		}
	case fieldStatus:
		ev.Status = StatusOK
		if len(v) > 0 {
			ev.Status = ParseStatus(v)
		}
	}
	return nil
}

// recordIDs hashes each id instead of keeping it: ids are customer data
// and the detector only needs to count and compare them.
func (d *Native) recordIDs(ev *Event) error {
	s := &d.s
	ev.RecordIDs, ev.RecordNums, ev.RecordCount = ev.RecordIDs[:0], ev.RecordNums[:0], 0
	start := s.pos
	if s.peek() != '[' {
		k, _, err := s.scalar()
		if err != nil || k == kindNull {
			return err
		}
		return badValue(fieldRecordIDs, start)
	}
	s.pos++
	s.skipWS()
	for more := s.peek() != ']'; more; {
		start = s.pos
		k, v, err := s.scalar()
		if err != nil {
			return err
		}
		if k != kindString && k != kindNumber {
			return badValue(fieldRecordIDs, start)
		}
		if ev.RecordCount < d.limits.MaxRecordIDs {
			ev.RecordIDs = append(ev.RecordIDs, xxhash.Sum64(v))
			if n, ok := lastNumber(v); ok {
				ev.RecordNums = append(ev.RecordNums, n)
			}
		}
		ev.RecordCount++
		s.skipWS()
		switch s.peek() {
		case ',':
			s.pos++
			s.skipWS()
		case ']':
			more = false
		default:
			return s.malformed()
		}
	}
	s.pos++ // the closing bracket
	return nil
}

func badValue(f field, offset int) error {
	return &DecodeError{Reason: ReasonBadValue, Field: fieldNames[f], Offset: offset}
}

// parseCount reads a non-negative count. A fraction of zeros (42.0) is
// accepted because some producers emit every number as a float.
func parseCount(b []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		c := int64(b[i] - '0')
		if n > (math.MaxInt64-c)/10 {
			return 0, false
		}
		n = n*10 + c
	}
	if i == 0 {
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		zeros := i
		for i < len(b) && b[i] == '0' {
			i++
		}
		if i == zeros {
			return 0, false
		}
	}
	return n, i == len(b)
}

// lastNumber returns the value of the last run of ASCII digits in id
// ("cust-000123" is 123), for enumeration detection. Of a run longer than
// 19 digits only the last 19 are read: they fit a uint64 and hold the part
// that changes when ids are walked.
func lastNumber(id []byte) (uint64, bool) {
	end := len(id)
	for end > 0 && !isDigit(id[end-1]) {
		end--
	}
	if end == 0 {
		return 0, false
	}
	var n, scale uint64 = 0, 1
	for i := end - 1; i >= 0 && i > end-20 && isDigit(id[i]); i-- {
		n += uint64(id[i]-'0') * scale
		scale *= 10
	}
	return n, true
}

// parseAddr reads a client address, or returns the zero Addr when it is
// empty or unparsable. IPv4-mapped IPv6 addresses are unmapped so that one
// client has one key; a zone is dropped because it means nothing off the
// host that logged it.
func parseAddr(b []byte) netip.Addr {
	if i := bytes.IndexByte(b, '%'); i >= 0 {
		b = b[:i]
	}
	if len(b) == 0 {
		return netip.Addr{}
	}
	// A zone-less Addr keeps no reference to the string it was parsed
	// from, so a transient view of b is safe and saves an allocation per
	// message. The error, which would hold the view, is dropped here.
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(b), len(b)))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// field is a known key of the native contract.
type field uint8

const (
	fieldUnknown field = iota
	fieldTS
	fieldPrincipal
	fieldPrincipalType
	fieldCredential
	fieldRole
	fieldSourceIP
	fieldClient
	fieldSession
	fieldDatabase
	fieldObject
	fieldAction
	fieldRows
	fieldBytes
	fieldRecordIDs
	fieldStatus
)

// fieldNames are the contract names, used in errors so that an error names
// a field without quoting anything from the message.
var fieldNames = [...]string{
	fieldUnknown:       "",
	fieldTS:            "ts",
	fieldPrincipal:     "principal",
	fieldPrincipalType: "principal_type",
	fieldCredential:    "credential",
	fieldRole:          "role",
	fieldSourceIP:      "source_ip",
	fieldClient:        "client",
	fieldSession:       "session",
	fieldDatabase:      "database",
	fieldObject:        "object",
	fieldAction:        "action",
	fieldRows:          "rows",
	fieldBytes:         "bytes",
	fieldRecordIDs:     "record_ids",
	fieldStatus:        "status",
}

func fieldOf(key []byte) field {
	switch string(key) {
	case "ts":
		return fieldTS
	case "principal":
		return fieldPrincipal
	case "principal_type":
		return fieldPrincipalType
	case "credential":
		return fieldCredential
	case "role":
		return fieldRole
	case "source_ip":
		return fieldSourceIP
	case "client":
		return fieldClient
	case "session":
		return fieldSession
	case "database":
		return fieldDatabase
	case "object":
		return fieldObject
	case "action":
		return fieldAction
	case "rows":
		return fieldRows
	case "bytes":
		return fieldBytes
	case "record_ids":
		return fieldRecordIDs
	case "status":
		return fieldStatus
	}
	return fieldUnknown
}
