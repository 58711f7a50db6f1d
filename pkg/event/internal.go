package event

import (
	"encoding/binary"
	"math"
	"net/netip"
)

// The internal format carries a decoded Event from one detector replica to
// another through the repartition topics, which are keyed by an entity
// (source network, credential, client) other than the input topic's key.
// A decoded Event keeps record ids only as hashes and numeric parts, so
// native JSON cannot carry it: this is a compact binary copy of the Event
// itself, field for field.
//
// Layout of version 1 (uvarint and varint are encoding/binary's; a string
// is a uvarint length and that many bytes; fixed64 is 8 bytes little
// endian, for hashes, which are uniform and so longer as varints):
//
//	byte     magic 0xF8 (never in UTF-8 text, so no JSON or log line
//	         starts with it)
//	byte     version, 1
//	byte     flags: bit 0 HasRows, bit 1 a Session follows; other bits 0
//	varint   Time
//	string   Principal
//	byte     PrincipalType (0..4)
//	string   Credential
//	string   Role
//	byte     SourceIP length, 0 (none), 4 or 16, then as many address
//	         bytes (As4 or As16; no zone, an IPv4-mapped IPv6 address
//	         stays 16 bytes)
//	string   Client
//	fixed64  Session, only when flags bit 1 is set
//	string   Database
//	string   Object
//	byte     Action (0..6)
//	byte     Status (0..2)
//	varint   Rows
//	varint   Bytes
//	varint   RecordCount
//	uvarint  number of RecordIDs, then each as a fixed64
//	uvarint  number of RecordNums, then each as a uvarint
//
// Nothing may follow. The layout is a contract between replicas of
// different versions during a rolling upgrade, so it changes only this way:
// a decoder accepts its own version and rejects a higher one as
// unrecognized (counted and dead-lettered, not misread); a new field is
// only ever appended after the last one, and a new flag bit or enum value
// (Action, Status, PrincipalType) is a change too, each with a version
// bump; a decoder of version n keeps reading every version below n. Roll
// out a reader of a new version everywhere before any replica writes it.

// Framing of the internal format.
const (
	internalMagic   = 0xF8
	internalVersion = 1

	internalHasRows    = 1 << 0
	internalHasSession = 1 << 1
	internalFlags      = internalHasRows | internalHasSession
)

// Field names of the internal format's errors: the native contract's names
// where the field has one, so that one dashboard reads both.
const (
	internalFieldVersion     = "version"
	internalFieldFlags       = "flags"
	internalFieldTime        = "ts"
	internalFieldPrincipal   = "principal"
	internalFieldPType       = "principal_type"
	internalFieldCredential  = "credential"
	internalFieldRole        = "role"
	internalFieldSourceIP    = "source_ip"
	internalFieldClient      = "client"
	internalFieldSession     = "session"
	internalFieldDatabase    = "database"
	internalFieldObject      = "object"
	internalFieldAction      = "action"
	internalFieldStatus      = "status"
	internalFieldRows        = "rows"
	internalFieldBytes       = "bytes"
	internalFieldRecordCount = "record_count"
	internalFieldRecordIDs   = "record_ids"
	internalFieldRecordNums  = "record_nums"
	internalFieldTrailing    = "end"
)

// AppendInternal appends the internal encoding of ev to dst. It allocates
// only when dst must grow, so a producer that reuses its buffer encodes
// without allocating. Enum values beyond the known ones are written as they
// are and then refused by every decoder: they are not an Event a decoder
// produces.
func AppendInternal(dst []byte, ev *Event) []byte {
	var flags byte
	if ev.HasRows {
		flags |= internalHasRows
	}
	if ev.Session != 0 {
		flags |= internalHasSession
	}
	dst = append(dst, internalMagic, internalVersion, flags)
	dst = binary.AppendVarint(dst, ev.Time)
	dst = appendInternalString(dst, ev.Principal)
	dst = append(dst, byte(ev.PrincipalType))
	dst = appendInternalString(dst, ev.Credential)
	dst = appendInternalString(dst, ev.Role)
	switch a := ev.SourceIP; {
	case a.Is4():
		b := a.As4()
		dst = append(append(dst, 4), b[:]...)
	case a.Is6():
		b := a.As16()
		dst = append(append(dst, 16), b[:]...)
	default:
		dst = append(dst, 0)
	}
	dst = appendInternalString(dst, ev.Client)
	if ev.Session != 0 {
		dst = binary.LittleEndian.AppendUint64(dst, ev.Session)
	}
	dst = appendInternalString(dst, ev.Database)
	dst = appendInternalString(dst, ev.Object)
	dst = append(dst, byte(ev.Action), byte(ev.Status))
	dst = binary.AppendVarint(dst, ev.Rows)
	dst = binary.AppendVarint(dst, ev.Bytes)
	dst = binary.AppendVarint(dst, int64(ev.RecordCount))
	dst = binary.AppendUvarint(dst, uint64(len(ev.RecordIDs)))
	for _, id := range ev.RecordIDs {
		dst = binary.LittleEndian.AppendUint64(dst, id)
	}
	dst = binary.AppendUvarint(dst, uint64(len(ev.RecordNums)))
	for _, n := range ev.RecordNums {
		dst = binary.AppendUvarint(dst, n)
	}
	return dst
}

func appendInternalString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Internal decodes the internal format. Its writer is another replica, but
// a repartition topic is still a topic anyone with access can produce to,
// so every length is checked against the message before it is used and
// nothing is allocated in proportion to a length the message claims.
//
// An Internal is not safe for concurrent use.
type Internal struct {
	limits Limits
	// Interners kept apart as in Native: the many principals would push
	// the few hot names out of cache.
	principals *Interner
	names      *Interner
	r          internalReader
}

var _ Decoder = (*Internal)(nil)

func init() {
	register(InternalFormat, "the detector's own repartition records (not for producers)",
		func(l Limits, _ Options) (Decoder, error) { return NewInternal(l), nil })
}

// NewInternal returns a decoder of the internal format within the given
// limits (zero limits take the defaults, as in NewNative).
func NewInternal(l Limits) *Internal {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.MaxRecordIDs <= 0 {
		l.MaxRecordIDs = DefaultMaxRecordIDs
	}
	return &Internal{limits: l, principals: NewInterner(l.PrincipalIntern), names: NewInterner(1 << 14)}
}

// Decode decodes one internal record from msg into ev. Nothing in ev refers
// to msg afterwards.
//
// RecordIDs beyond Limits.MaxRecordIDs are cut, and so are RecordNums,
// whose link to the ids the Event does not keep; RecordCount then says how
// many ids there were.
func (d *Internal) Decode(msg []byte, ev *Event) error {
	ev.Reset()
	if len(msg) > d.limits.MaxMessageBytes {
		return &DecodeError{Reason: ReasonTooLarge, Offset: -1}
	}
	d.r = internalReader{buf: msg}
	err := d.record(ev)
	d.r.buf = nil // do not pin the caller's buffer
	return err
}

func (d *Internal) record(ev *Event) error {
	r := &d.r
	if len(r.buf) < 2 || r.buf[0] != internalMagic {
		return &DecodeError{Reason: ReasonUnrecognized, Offset: -1}
	}
	if r.buf[1] != internalVersion {
		// Version 0 was never written; a higher one is a newer replica's.
		return &DecodeError{Reason: ReasonUnrecognized, Field: internalFieldVersion, Offset: 1}
	}
	r.pos = 2
	flags, err := r.enum(internalFieldFlags, internalFlags)
	if err != nil {
		return err
	}
	ev.HasRows = flags&internalHasRows != 0
	if ev.Time, err = r.varint(internalFieldTime); err != nil {
		return err
	}
	var b []byte
	if b, err = r.str(internalFieldPrincipal); err != nil {
		return err
	}
	ev.Principal = d.principals.Intern(b)
	var v byte
	if v, err = r.enum(internalFieldPType, byte(PrincipalCustomer)); err != nil {
		return err
	}
	ev.PrincipalType = PrincipalType(v)
	if ev.Credential, err = d.name(internalFieldCredential); err != nil {
		return err
	}
	if ev.Role, err = d.name(internalFieldRole); err != nil {
		return err
	}
	if ev.SourceIP, err = r.addr(); err != nil {
		return err
	}
	if ev.Client, err = d.name(internalFieldClient); err != nil {
		return err
	}
	if flags&internalHasSession != 0 {
		if ev.Session, err = r.fixed64(internalFieldSession); err != nil {
			return err
		}
		if ev.Session == 0 {
			// The flag says "a session"; a zero hash is "none".
			return r.bad(internalFieldSession, r.pos-8)
		}
	}
	if ev.Database, err = d.name(internalFieldDatabase); err != nil {
		return err
	}
	if ev.Object, err = d.name(internalFieldObject); err != nil {
		return err
	}
	if v, err = r.enum(internalFieldAction, byte(ActionOther)); err != nil {
		return err
	}
	ev.Action = Action(v)
	if v, err = r.enum(internalFieldStatus, byte(StatusError)); err != nil {
		return err
	}
	ev.Status = Status(v)
	if ev.Rows, err = r.varint(internalFieldRows); err != nil {
		return err
	}
	if ev.Bytes, err = r.varint(internalFieldBytes); err != nil {
		return err
	}
	if err = d.records(ev); err != nil {
		return err
	}
	if r.pos != len(r.buf) {
		return r.bad(internalFieldTrailing, r.pos)
	}
	if ev.Time == 0 {
		return &DecodeError{Reason: ReasonMissingTime, Offset: -1}
	}
	if ev.Principal == "" {
		return &DecodeError{Reason: ReasonMissingPrincipal, Offset: -1}
	}
	return nil
}

func (d *Internal) name(field string) (string, error) {
	b, err := d.r.str(field)
	if err != nil {
		return "", err
	}
	return d.names.Intern(b), nil
}

// records reads RecordCount, RecordIDs and RecordNums. Every count is
// checked against the bytes left before anything is appended, so a forged
// count costs nothing.
func (d *Internal) records(ev *Event) error {
	r := &d.r
	start := r.pos
	count, err := r.varint(internalFieldRecordCount)
	if err != nil {
		return err
	}
	if count < math.MinInt || count > math.MaxInt {
		return r.bad(internalFieldRecordCount, start)
	}
	ev.RecordCount = int(count)

	start = r.pos
	n, err := r.uvarint(internalFieldRecordIDs)
	if err != nil {
		return err
	}
	if n > uint64(len(r.buf)-r.pos)/8 {
		return r.bad(internalFieldRecordIDs, start)
	}
	keep := min(int(n), d.limits.MaxRecordIDs)
	for i := range keep {
		ev.RecordIDs = append(ev.RecordIDs, binary.LittleEndian.Uint64(r.buf[r.pos+8*i:]))
	}
	r.pos += 8 * int(n)
	if int(n) > keep {
		ev.RecordCount = max(ev.RecordCount, int(n))
	}

	start = r.pos
	if n, err = r.uvarint(internalFieldRecordNums); err != nil {
		return err
	}
	// Each number takes at least a byte.
	if n > uint64(len(r.buf)-r.pos) {
		return r.bad(internalFieldRecordNums, start)
	}
	for i := range int(n) {
		num, err := r.uvarint(internalFieldRecordNums)
		if err != nil {
			return err
		}
		if i < d.limits.MaxRecordIDs {
			ev.RecordNums = append(ev.RecordNums, num)
		}
	}
	return nil
}

// internalReader reads the primitives of the internal format from buf,
// failing with ReasonBadValue, never past the end of buf.
type internalReader struct {
	buf []byte
	pos int
}

func (r *internalReader) bad(field string, offset int) error {
	return &DecodeError{Reason: ReasonBadValue, Field: field, Offset: offset}
}

// enum reads a byte that may be at most last.
func (r *internalReader) enum(field string, last byte) (byte, error) {
	if r.pos >= len(r.buf) || r.buf[r.pos] > last {
		return 0, r.bad(field, r.pos)
	}
	r.pos++
	return r.buf[r.pos-1], nil
}

// uvarint fails on a truncated value and on one that overflows 64 bits.
func (r *internalReader) uvarint(field string) (uint64, error) {
	v, n := binary.Uvarint(r.buf[r.pos:])
	if n <= 0 {
		return 0, r.bad(field, r.pos)
	}
	r.pos += n
	return v, nil
}

func (r *internalReader) varint(field string) (int64, error) {
	v, n := binary.Varint(r.buf[r.pos:])
	if n <= 0 {
		return 0, r.bad(field, r.pos)
	}
	r.pos += n
	return v, nil
}

func (r *internalReader) fixed64(field string) (uint64, error) {
	if len(r.buf)-r.pos < 8 {
		return 0, r.bad(field, r.pos)
	}
	r.pos += 8
	return binary.LittleEndian.Uint64(r.buf[r.pos-8:]), nil
}

// str returns a view of the next string in buf; the caller interns it.
func (r *internalReader) str(field string) ([]byte, error) {
	start := r.pos
	n, err := r.uvarint(field)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.buf)-r.pos) {
		return nil, r.bad(field, start)
	}
	r.pos += int(n)
	return r.buf[r.pos-int(n) : r.pos], nil
}

func (r *internalReader) addr() (netip.Addr, error) {
	start := r.pos
	if r.pos >= len(r.buf) {
		return netip.Addr{}, r.bad(internalFieldSourceIP, start)
	}
	n := int(r.buf[r.pos])
	if (n != 0 && n != 4 && n != 16) || len(r.buf)-r.pos-1 < n {
		return netip.Addr{}, r.bad(internalFieldSourceIP, start)
	}
	r.pos += 1 + n
	switch n {
	case 4:
		return netip.AddrFrom4([4]byte(r.buf[start+1 : r.pos])), nil
	case 16:
		return netip.AddrFrom16([16]byte(r.buf[start+1 : r.pos])), nil
	}
	return netip.Addr{}, nil
}
