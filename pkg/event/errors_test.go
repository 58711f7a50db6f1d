package event

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestReasonString(t *testing.T) {
	want := map[Reason]string{
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
		ReasonHeartbeat + 1:    "unknown",
		255:                    "unknown",
	}
	for r, s := range want {
		if got := r.String(); got != s {
			t.Errorf("Reason(%d).String() = %q, want %q", r, got, s)
		}
	}
}

func TestDecodeErrorError(t *testing.T) {
	tests := []struct {
		err  DecodeError
		want string
	}{
		{DecodeError{Reason: ReasonMissingPrincipal, Offset: -1}, `decode event: missing_principal`},
		{DecodeError{Reason: ReasonTooLarge, Offset: -1}, `decode event: too_large`},
		{DecodeError{Reason: ReasonBadValue, Field: "rows", Offset: 42}, `decode event: field "rows": bad_value at offset 42`},
		{DecodeError{Reason: ReasonMalformedJSON, Offset: 0}, `decode event: malformed_json at offset 0`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestReasonOf(t *testing.T) {
	de := &DecodeError{Reason: ReasonBadTime, Field: "ts", Offset: 6}
	if r, ok := ReasonOf(fmt.Errorf("partition 3 offset 17: %w", de)); !ok || r != ReasonBadTime {
		t.Errorf("ReasonOf(wrapped) = %v, %v, want bad_time, true", r, ok)
	}
	if r, ok := ReasonOf(io.EOF); ok {
		t.Errorf("ReasonOf(io.EOF) = %v, true, want false", r)
	}
	if _, ok := ReasonOf(nil); ok {
		t.Error("ReasonOf(nil) = true, want false")
	}
	var target *DecodeError
	if !errors.As(error(de), &target) || target != de {
		t.Error("errors.As does not find the *DecodeError")
	}
}
