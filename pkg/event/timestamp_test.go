package event

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) int64 {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC).UnixNano()
	}
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"2024-01-02T03:04:05Z", utc(2024, 1, 2, 3, 4, 5, 0), true},
		{"2024-01-02T03:04:05z", utc(2024, 1, 2, 3, 4, 5, 0), true},
		{"2024-01-02t03:04:05Z", utc(2024, 1, 2, 3, 4, 5, 0), true},
		{"2024-01-02 03:04:05Z", utc(2024, 1, 2, 3, 4, 5, 0), true},
		{"2024-01-02T03:04:05+00:00", utc(2024, 1, 2, 3, 4, 5, 0), true},
		{"2024-01-02T03:04:05-00:00", utc(2024, 1, 2, 3, 4, 5, 0), true},
		{"2024-01-02T03:04:05+05:30", utc(2024, 1, 1, 21, 34, 5, 0), true},
		{"2024-01-02T03:04:05-23:59", utc(2024, 1, 3, 3, 3, 5, 0), true},
		{"2024-01-02T03:04:05.1Z", utc(2024, 1, 2, 3, 4, 5, 100000000), true},
		{"2024-01-02T03:04:05.000000001Z", utc(2024, 1, 2, 3, 4, 5, 1), true},
		{"2024-01-02T03:04:05.999999999Z", utc(2024, 1, 2, 3, 4, 5, 999999999), true},
		{"1970-01-01T00:00:00Z", 0, true},
		{"1969-12-31T23:59:59.5Z", -5e8, true},
		{"2000-02-29T00:00:00Z", utc(2000, 2, 29, 0, 0, 0, 0), true},
		{"2016-12-31T23:59:60Z", utc(2016, 12, 31, 23, 59, 59, 0), true},
		{"2262-04-11T23:47:16.854775807Z", math.MaxInt64, true},
		{"2262-04-11T23:47:16.854775808Z", 0, false},
		{"1677-09-21T00:12:44Z", utc(1677, 9, 21, 0, 12, 44, 0), true},
		{"1677-09-21T00:12:43Z", 0, false},
		{"0000-01-01T00:00:00Z", 0, false},
		{"1900-02-29T00:00:00Z", 0, false},
		{"2023-02-29T00:00:00Z", 0, false},
		{"2024-04-31T00:00:00Z", 0, false},
		{"2024-00-01T00:00:00Z", 0, false},
		{"2024-01-00T00:00:00Z", 0, false},
		{"2024-01-01T24:00:00Z", 0, false},
		{"2024-01-01T00:60:00Z", 0, false},
		{"2024-01-01T00:00:61Z", 0, false},
		{"2024-01-01T00:00:00+24:00", 0, false},
		{"2024-01-01T00:00:00+01:60", 0, false},
		{"2024-01-01T00:00:00+0100", 0, false},
		{"2024-01-01T00:00:00", 0, false},
		{"2024-01-01T00:00:00.Z", 0, false},
		{"2024-01-01T00:00:00.1234567890Z", 0, false},
		{"2024-01-01T00:00:00,5Z", 0, false},
		{"2024-01-01T00:00:00ZZ", 0, false},
		{"2024-01-01T00:00:00 Z", 0, false},
		{"2024-01-01X00:00:00Z", 0, false},
		{"2024-1-01T00:00:00Z", 0, false},
		{"2024-01-01T0:00:00Z", 0, false},
		{"+024-01-01T00:00:00Z", 0, false},
		{"20x4-01-01T00:00:00Z", 0, false},
		{"x024-01-01T00:00:00Z", 0, false},
		{"2024-0x-01T00:00:00Z", 0, false},
		{"2024-01-0xT00:00:00Z", 0, false},
		{"2024-01-01T0x:00:00Z", 0, false},
		{"2024-01-01T00:0x:00Z", 0, false},
		{"2024-01-01T00:00:0xZ", 0, false},
		{"2024-01-01T00:00:00+0x:00", 0, false},
		{"2024-01-01T00:00:00+00:0x", 0, false},
		{"2024-01-01T00:00:00.12x4Z", 0, false},
		{"2024-01-01T00:00:00-:0:00", 0, false},
		{"2024-01-01", 0, false},
		{"", 0, false},

		{"1700000000123", 1700000000123 * 1e6, true},
		{"0", 0, true},
		{"-1", -1e6, true},
		{"-0", 0, true},
		{"00042", 42e6, true},
		{"1700000000123.5", 1700000000123*1e6 + 5e5, true},
		{"1700000000123.000001", 1700000000123*1e6 + 1, true},
		{"1700000000123.0000019", 1700000000123*1e6 + 1, true},
		{"-1.5", -15e5, true},
		{"9223372036854", 9223372036854 * 1e6, true},
		{"9223372036854.775807", math.MaxInt64, true},
		{"9223372036854.775808", 0, false},
		{"9223372036855", 0, false},
		{"99999999999999999999999", 0, false},
		{"1.", 0, false},
		{".5", 0, false},
		{"1e3", 0, false},
		{"+1", 0, false},
		{"-", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"0x10", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseTime([]byte(tt.in))
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("ParseTime(%q) = %d, %v, want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestParseTimeMatchesTime compares generated timestamps, in every accepted
// spelling, with the time package.
func TestParseTimeMatchesTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lo := time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for range 200_000 {
		ts := time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9)).UTC()
		offset := (rng.IntN(2*1439+1) - 1439) * 60 // within ±23:59
		if rng.IntN(4) == 0 {
			offset = 0
		}
		ts = ts.In(time.FixedZone("", offset))
		digits := rng.IntN(10)
		layout := "2006-01-02T15:04:05"
		if digits > 0 {
			layout += "." + strings.Repeat("0", digits)
		}
		layout += "Z07:00"
		s := ts.Format(layout)
		want := ts.Truncate(time.Duration(math.Pow10(9 - digits))).UnixNano()
		switch rng.IntN(4) {
		case 1:
			s = s[:10] + " " + s[11:]
		case 2:
			s = strings.ToLower(s)
		}
		got, ok := ParseTime([]byte(s))
		if !ok || got != want {
			t.Fatalf("ParseTime(%q) = %d, %v, want %d", s, got, ok, want)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456789+05:30", "2016-12-31T23:59:60z",
		"2024-02-29 00:00:00-00:00", "1677-09-21T00:12:44Z", "2262-04-11T23:47:16.854775807Z",
		"1700000000123", "-1.5", "9223372036854.775807", "2024-01-02T03:04:05,5Z",
	} {
		f.Add(s)
	}
	strict := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$`)
	millis := regexp.MustCompile(`^-?\d+(\.\d+)?$`)
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseTime([]byte(s))

		// What time.Parse reads in strict RFC 3339 within int64 range,
		// ParseTime must read the same.
		if want, err := time.Parse(time.RFC3339Nano, s); err == nil && strict.MatchString(s) && inNanoRange(want) {
			if !ok || got != want.UnixNano() {
				t.Fatalf("ParseTime(%q) = %d, %v; time.Parse gives %d", s, got, ok, want.UnixNano())
			}
		}

		if !ok {
			if millis.MatchString(s) && refMillis(s) != nil {
				t.Fatalf("ParseTime(%q) rejected milliseconds in range", s)
			}
			return
		}
		if len(s) > 4 && s[4] == '-' {
			// Whatever ParseTime accepts is RFC 3339 once the tolerated
			// spellings are undone, and time.Parse agrees on its value.
			norm := []byte(s)
			norm[10] = 'T'
			if norm[len(norm)-1] == 'z' {
				norm[len(norm)-1] = 'Z'
			}
			if string(norm[17:19]) == "60" {
				norm[18] = '9'
				norm[17] = '5'
			}
			want, err := time.Parse(time.RFC3339Nano, string(norm))
			if err != nil || !strict.Match(norm) {
				t.Fatalf("ParseTime(%q) accepted what is not RFC 3339: %v", s, err)
			}
			if got != want.UnixNano() {
				t.Fatalf("ParseTime(%q) = %d, time.Parse gives %d", s, got, want.UnixNano())
			}
			return
		}
		if !millis.MatchString(s) {
			t.Fatalf("ParseTime(%q) accepted what is not decimal milliseconds", s)
		}
		if want := refMillis(s); want == nil || !want.IsInt64() || want.Int64() != got {
			t.Fatalf("ParseTime(%q) = %d, want %v", s, got, want)
		}
	})
}

// refMillis converts decimal milliseconds to nanoseconds, truncating, or
// returns nil when the magnitude does not fit an int64.
func refMillis(s string) *big.Int {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(fmt.Sprintf("refMillis(%q)", s))
	}
	r.Mul(r, big.NewRat(1e6, 1))
	n := new(big.Int).Quo(r.Num(), r.Denom()) // truncates towards zero
	if new(big.Int).Abs(n).Cmp(big.NewInt(math.MaxInt64)) > 0 {
		return nil
	}
	return n
}

func inNanoRange(t time.Time) bool {
	sec := t.Unix()
	return sec > math.MinInt64/nsPerSec && sec < math.MaxInt64/nsPerSec
}
