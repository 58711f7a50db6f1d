package event

import (
	"strings"
	"testing"
	"time"
)

// Prefixes from PostgreSQL's documentation and common setups: the Debian
// packaging default, Amazon RDS's, pgBadger's recommended one, Azure's, and
// one with every escape (testdata/pgaudit/local/allescapes.prefix).
func TestPgauditPrefixCompile(t *testing.T) {
	for _, p := range []string{
		"%m [%p] %q%u@%d ",
		"%t:%r:%u@%d:[%p]:",
		"%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
		"%t-%c-%u ",
		"%m [%p] %q[user=%u,db=%d,app=%a] ",
		"%n %u %e%i ",
		allEscapesPrefix,
	} {
		if _, err := compileLogPrefix(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, tc := range []struct{ prefix, err string }{
		{"%m [%p] ", "no user"},
		{"[%p] %u ", "no event time"},
		{"%m %u %z ", "unknown escape %z"},
		{"%m %u %", "incomplete escape"},
		{"%m %u %-", "unknown escape %-"},
		{"%m %u%d ", "%u directly followed by %d"},
		{"%m %u %p%q%l ", "%p directly followed by %l"},
		{"%m\n%u ", "line break"},
		{"%m %u %5q", "no padding"},
	} {
		_, err := compileLogPrefix(tc.prefix)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: err = %v, want it to say %q", tc.prefix, err, tc.err)
		}
	}
	if _, err := NewDecoder("pgaudit_stderr", Limits{}, Options{}); err == nil || !strings.Contains(err.Error(), "%u") {
		t.Errorf("the default prefix: err = %v", err)
	}
	if _, err := NewDecoder("pgaudit_stderr", Limits{}, Options{LogLinePrefix: realPrefix}); err != nil {
		t.Error(err)
	}
}

func TestPgauditPrefixQ(t *testing.T) {
	// Lines of processes without a session stop at %q.
	d := stderrDecoder(t, realPrefix)
	line := []byte("2026-11-30 02:49:26.833 UTC [10628] LOG:  received fast shutdown request")
	if n, _ := d.m.match(line, 2); n != 1 {
		t.Fatalf("%d parses", n)
	}
	if d.m.found[0].vals[slotUser].end >= 0 {
		t.Fatal("a user after the stop escape on a line that stopped there")
	}
}

func TestPgauditParseTime(t *testing.T) {
	at := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixNano()
	}
	for _, tc := range []struct {
		in   string
		want int64 // 0: rejected
	}{
		{"2026-11-30 02:43:43.123 UTC", at("2026-11-30T02:43:43.123Z")},
		{"2026-11-30 02:43:43 UTC", at("2026-11-30T02:43:43Z")},
		{"2026-11-30 02:43:43 GMT", at("2026-11-30T02:43:43Z")},
		{"2026-11-30 04:43:43.5 +02", at("2026-11-30T02:43:43.5Z")},
		{"2026-11-29 23:13:43 -0330", at("2026-11-30T02:43:43Z")},
		{"2026-11-30 08:28:43 +05:45", at("2026-11-30T02:43:43Z")},
		{"2024-02-29 00:00:00.000 UTC", at("2024-02-29T00:00:00Z")},
		{"2026-12-31 23:59:60 UTC", at("2026-12-31T23:59:59Z")},
		{"2026-11-30 02:43:43.123 CET", 0},
		{"2026-11-30 02:43:43.123 EST5EDT", 0},
		{"2026-11-30 02:43:43.123", 0},
		{"2026-11-30 02:43:43.123 ", 0},
		{"2026-11-30T02:43:43.123 UTC", 0},
		{"2025-02-29 00:00:00 UTC", 0},
		{"2026-11-30 24:00:00 UTC", 0},
		{"2026-11-30 02:43:43. UTC", 0},
		{"2026-11-30 02:43:43 +2", 0},
		{"2026-11-30 02:43:43 +24", 0},
	} {
		got, ok := parsePGTime([]byte(tc.in))
		if ok != (tc.want != 0) || ok && got != tc.want {
			t.Errorf("%q: got %d %v, want %d", tc.in, got, ok, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1796007098.463", 1796007098463000000},
		{"1796007098", 1796007098000000000},
		{"1796007098.", 0},
		{"1796007098.1234567891", 0},
		{"-1", 0},
		{"99999999999999999999.1", 0},
	} {
		got, ok := parseEpochSeconds([]byte(tc.in))
		if ok != (tc.want != 0) || ok && got != tc.want {
			t.Errorf("%q: got %d %v, want %d", tc.in, got, ok, tc.want)
		}
	}
}
