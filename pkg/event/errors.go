package event

import (
	"errors"
	"strconv"
)

// Reason says why a message could not be decoded. It is a small closed set
// so that it can label a Prometheus counter of dropped messages without
// unbounded cardinality, and so that callers can route by cause (for example
// to a dead-letter topic) without parsing error text.
type Reason uint8

// Reasons a message is rejected. The zero Reason is none of them, so that a
// forgotten Reason shows up as "unknown" rather than as a plausible cause.
const (
	// ReasonMalformedJSON: the message is not valid JSON.
	ReasonMalformedJSON Reason = iota + 1
	// ReasonTooLarge: the message exceeds the decoder's size limit.
	ReasonTooLarge
	// ReasonMissingTime: no event time was given.
	ReasonMissingTime
	// ReasonMissingPrincipal: no principal, or an empty one, was given.
	ReasonMissingPrincipal
	// ReasonBadTime: the event time was given but could not be read.
	ReasonBadTime
	// ReasonBadValue: a known field has the wrong type or is out of range.
	ReasonBadValue
	// ReasonNotObject: the message is JSON but not an object.
	ReasonNotObject
	// ReasonUnrecognized: the message is in none of the formats the
	// decoder reads (auto found no match, a line without the configured
	// log_line_prefix).
	ReasonUnrecognized
	// ReasonUntrusted: the message looks like an audit record but is not
	// one the audit facility wrote (a user's RAISE LOG 'AUDIT: ...').
	ReasonUntrusted

	// Reasons from here on are not faults: the message is well formed but
	// holds no access to count. They are counted apart from the decode
	// failures and are never dead-lettered (see Reason.Ignored).

	// ReasonNotAudit: an ordinary log line of the source (connections,
	// checkpoints, errors), not an audit record.
	ReasonNotAudit
	// ReasonHeartbeat: a keep-alive record of the source (AWS Database
	// Activity Streams heartbeats).
	ReasonHeartbeat
)

// reasonLabels are stable: they are metric label values and dashboards and
// alerts key on them.
var reasonLabels = [...]string{
	0:                      "unknown",
	ReasonMalformedJSON:    "malformed_json",
	ReasonTooLarge:         "too_large",
	ReasonMissingTime:      "missing_time",
	ReasonMissingPrincipal: "missing_principal",
	ReasonBadTime:          "bad_time",
	ReasonBadValue:         "bad_value",
	ReasonNotObject:        "not_object",
	ReasonUnrecognized:     "unrecognized",
	ReasonUntrusted:        "untrusted",
	ReasonNotAudit:         "not_audit",
	ReasonHeartbeat:        "heartbeat",
}

// Ignored reports whether r marks a well-formed message without an access
// in it rather than a fault: a PostgreSQL log carries many more lines than
// audit records, and counting those as failures would drown the real ones
// and fill the dead-letter topic.
func (r Reason) Ignored() bool { return r >= ReasonNotAudit && int(r) < len(reasonLabels) }

// Reasons returns every Reason, for pre-declaring metric label values.
func Reasons() []Reason {
	out := make([]Reason, 0, len(reasonLabels)-1)
	for r := Reason(1); int(r) < len(reasonLabels); r++ {
		out = append(out, r)
	}
	return out
}

// String returns the snake_case label of r, for use as a metric label value.
func (r Reason) String() string {
	if int(r) < len(reasonLabels) {
		return reasonLabels[r]
	}
	return "unknown"
}

// DecodeError reports why a message was rejected and where. It deliberately
// carries no part of the message: messages hold customer ids and query text,
// and decode errors end up in logs.
type DecodeError struct {
	Reason Reason
	// Field is the contract name of the field whose value is at fault, or ""
	// when there is none (syntax, size, a missing field, which the Reason
	// names). It is never taken from the message.
	Field string
	// Offset is the byte offset in the message where the fault was found, or
	// -1 when the fault concerns the message as a whole.
	Offset int
}

func (e *DecodeError) Error() string {
	b := make([]byte, 0, 64)
	b = append(b, "decode event: "...)
	if e.Field != "" {
		b = append(b, "field "...)
		b = strconv.AppendQuote(b, e.Field)
		b = append(b, ": "...)
	}
	b = append(b, e.Reason.String()...)
	if e.Offset >= 0 {
		b = append(b, " at offset "...)
		b = strconv.AppendInt(b, int64(e.Offset), 10)
	}
	return string(b)
}

// ReasonOf returns the Reason of the first DecodeError in err's chain, so
// that callers which wrap decode errors can still count them by cause.
func ReasonOf(err error) (Reason, bool) {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason, true
	}
	return 0, false
}
