// Package event defines the canonical access Event and the decoders that turn
// raw log messages into it.
//
// An Event is flat and reusable: decoders fill a caller-owned *Event in place,
// reusing its slices, so that decoding allocates nothing per message in steady
// state. Strings in an Event are interned by the decoder and are safe to keep;
// RecordIDs and RecordNums are owned by the Event and overwritten by the next
// decode into it.
package event

import "net/netip"

// Action is what the access did.
type Action uint8

// Actions, in the order of the native contract.
const (
	ActionRead Action = iota
	ActionWrite
	ActionDelete
	ActionExport
	ActionLogin
	ActionDDL
	ActionOther
)

var actionNames = [...]string{"read", "write", "delete", "export", "login", "ddl", "other"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "other"
}

// ParseAction maps a native action name to an Action. Unknown names are
// ActionOther rather than an error: new producers must not break the stream.
func ParseAction(b []byte) Action {
	for i, n := range actionNames {
		if string(b) == n {
			return Action(i)
		}
	}
	return ActionOther
}

// Status is the outcome of the access.
type Status uint8

// Statuses of the native contract.
const (
	StatusOK Status = iota
	StatusDenied
	StatusError
)

var statusNames = [...]string{"ok", "denied", "error"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "error"
}

// ParseStatus maps a native status name to a Status; unknown non-empty
// values count as errors because they are not a plain success.
func ParseStatus(b []byte) Status {
	for i, n := range statusNames {
		if string(b) == n {
			return Status(i)
		}
	}
	return StatusError
}

// PrincipalType says what kind of principal acted.
type PrincipalType uint8

// Principal types of the native contract.
const (
	PrincipalUnknown PrincipalType = iota
	PrincipalUser
	PrincipalService
	PrincipalAPIKey
	PrincipalCustomer
)

var principalTypeNames = [...]string{"", "user", "service", "api_key", "customer"}

func (p PrincipalType) String() string {
	if int(p) < len(principalTypeNames) {
		return principalTypeNames[p]
	}
	return ""
}

// ParsePrincipalType maps a native principal_type; unknown values are
// PrincipalUnknown.
func ParsePrincipalType(b []byte) PrincipalType {
	for i, n := range principalTypeNames {
		if i > 0 && string(b) == n {
			return PrincipalType(i)
		}
	}
	return PrincipalUnknown
}

// Event is one access to a datastore or API, in the shape every decoder
// produces. Zero values mean "not given".
type Event struct {
	// Time is the event time in Unix nanoseconds.
	Time int64

	Principal     string
	PrincipalType PrincipalType
	Credential    string
	Role          string
	SourceIP      netip.Addr
	Client        string
	// Session is a hash of the session id: sessions are too many to intern
	// and only ever compared.
	Session  uint64
	Database string
	Object   string
	Action   Action
	Status   Status

	// Rows is the number of records returned or affected; HasRows says
	// whether the source reported a count at all (unknown is not zero).
	Rows    int64
	HasRows bool
	Bytes   int64

	// RecordIDs holds a 64-bit hash of every customer record id touched
	// (up to the decoder's limit); the ids themselves are never kept.
	RecordIDs []uint64
	// RecordNums holds the numeric part of each record id that has one, in
	// message order, for enumeration detection.
	RecordNums []uint64
	// RecordCount is the number of record ids in the message, which may
	// exceed len(RecordIDs) when the decoder's limit cut the list.
	RecordCount int
}

// Reset clears e for reuse, keeping the capacity of its slices.
func (e *Event) Reset() {
	ids, nums := e.RecordIDs[:0], e.RecordNums[:0]
	*e = Event{RecordIDs: ids, RecordNums: nums}
}

// CopyFrom makes e a copy of src that shares no memory with it, reusing e's
// slices.
func (e *Event) CopyFrom(src *Event) {
	ids := append(e.RecordIDs[:0], src.RecordIDs...)
	nums := append(e.RecordNums[:0], src.RecordNums...)
	*e = *src
	e.RecordIDs, e.RecordNums = ids, nums
}
