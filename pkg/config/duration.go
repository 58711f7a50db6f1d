package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written the way operators think about
// baselines: "90s", "15m", "1h", "1d", "7d", "2w", or combinations ("1d12h").
// time.ParseDuration has no days or weeks, and every horizon here is counted
// in them.
type Duration time.Duration

var unitNanos = map[string]time.Duration{
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
	"d":  24 * time.Hour,
	"w":  7 * 24 * time.Hour,
}

// ParseDuration parses a Duration; it rejects negative values, fractions and
// an empty string because none of them is a meaningful window.
func ParseDuration(s string) (Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if s == "0" {
		return 0, nil
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		unit, ok := unitNanos[rest[:j]]
		if !ok {
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (use ms, s, m, h, d, w)", s, rest[:j])
		}
		rest = rest[j:]
		if n > int64((1<<63-1)/unit) {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		total += time.Duration(n) * unit
		if total < 0 {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
	}
	return Duration(total), nil
}

// String prints the duration in the largest whole units, so that
// `config defaults` round-trips.
func (d Duration) String() string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	v := time.Duration(d)
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"w", unitNanos["w"]}, {"d", unitNanos["d"]}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if v >= u.d {
			fmt.Fprintf(&b, "%d%s", v/u.d, u.name)
			v %= u.d
		}
	}
	return b.String()
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
