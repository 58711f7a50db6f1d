package event

import "math"

const nsPerSec = 1_000_000_000

// ParseTime reads an event time and returns it in Unix nanoseconds. It is
// written out by hand because time.Parse allocates and is several times
// slower, and the event time is read from every message.
//
// Two forms are accepted:
//
//   - RFC 3339 with a zone: 2024-03-01T12:00:00Z, 2024-03-01T12:00:00.123+02:00.
//     Also accepted, because common producers emit them: a space or a
//     lower-case t between date and time, a lower-case z, and a leap second
//     (:60), which is read as :59 because Unix time has no leap seconds.
//     The fraction has 1 to 9 digits. Offsets without a colon and times
//     without a zone are rejected: guessing a zone would silently shift
//     events by hours.
//   - Epoch milliseconds as decimal digits with an optional sign, as the
//     native contract says, whether it came as a JSON number or a string.
//     A fraction (1700000000123.5) is kept down to the nanosecond and
//     truncated below it. Exponents are rejected.
//
// Values outside what int64 nanoseconds can hold (years 1678 to 2262) are
// rejected.
func ParseTime(b []byte) (unixNanos int64, ok bool) {
	if len(b) > 4 && b[4] == '-' {
		return parseRFC3339(b)
	}
	return parseEpochMillis(b)
}

func parseRFC3339(b []byte) (int64, bool) {
	// 2006-01-02T15:04:05 is 19 bytes, and a zone takes at least one more.
	if len(b) < 20 {
		return 0, false
	}
	if c := b[10]; c != 'T' && c != 't' && c != ' ' {
		return 0, false
	}
	secs, nanos, b, ok := parseDateTime(b)
	if !ok {
		return 0, false
	}
	var offset int64
	switch {
	case len(b) == 1 && (b[0] == 'Z' || b[0] == 'z'):
	case len(b) == 6 && (b[0] == '+' || b[0] == '-') && b[3] == ':':
		oh, om := int64(d2(b[1], b[2])), int64(d2(b[4], b[5]))
		if oh > 23 || om > 59 {
			return 0, false
		}
		offset = oh*3600 + om*60
		if b[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	return toUnixNanos(secs-offset, nanos)
}

// parseDateTime reads "2006-01-02?15:04:05[.fraction]" (the separator at
// index 10 is the caller's to check) as seconds since the epoch in the
// zone it was written in, the nanoseconds, and what follows (the zone).
// b must hold at least 20 bytes.
func parseDateTime(b []byte) (secs, nanos int64, rest []byte, ok bool) {
	if b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return 0, 0, nil, false
	}
	century, yy := d2(b[0], b[1]), d2(b[2], b[3])
	year := int64(century*100 + yy)
	month, day := int64(d2(b[5], b[6])), int64(d2(b[8], b[9]))
	hour, minute, sec := int64(d2(b[11], b[12])), int64(d2(b[14], b[15])), int64(d2(b[17], b[18]))
	// d2 gives 100 for anything but two digits, which every check below
	// rejects, so the digits need no test of their own.
	if century > 99 || yy > 99 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 60 {
		return 0, 0, nil, false
	}
	if sec == 60 {
		sec = 59
	}
	b = b[19:]
	if b[0] == '.' {
		n := 1
		for ; n < len(b) && isDigit(b[n]); n++ {
			if n > 9 {
				return 0, 0, nil, false
			}
			nanos = nanos*10 + int64(b[n]-'0')
		}
		if n == 1 {
			return 0, 0, nil, false
		}
		for i := n; i <= 9; i++ {
			nanos *= 10
		}
		b = b[n:]
	}
	return daysFromCivil(year, month, day)*86400 + hour*3600 + minute*60 + sec, nanos, b, true
}

// toUnixNanos joins seconds and nanoseconds, refusing what would overflow.
func toUnixNanos(secs, nanos int64) (int64, bool) {
	// Every nanosecond count in range has secs in this interval; the
	// bounds are where secs*1e9 (+ nanos) would overflow.
	if secs < math.MinInt64/nsPerSec || secs > (math.MaxInt64-nanos)/nsPerSec {
		return 0, false
	}
	return secs*nsPerSec + nanos, true
}

// parseEpochMillis reads [-]digits[.digits] as milliseconds since the epoch.
func parseEpochMillis(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	const maxMillis = math.MaxInt64 / 1_000_000
	var ms int64
	i := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		ms = ms*10 + int64(b[i]-'0')
		if ms > maxMillis {
			return 0, false
		}
	}
	if i == 0 {
		return 0, false
	}
	var frac, scale int64 = 0, 1_000_000
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for ; i < len(b) && isDigit(b[i]); i++ {
			if scale > 1 {
				scale /= 10
				frac += int64(b[i]-'0') * scale
			}
		}
		if i == start {
			return 0, false
		}
	}
	if i != len(b) {
		return 0, false
	}
	ns := ms * 1_000_000
	if ns > math.MaxInt64-frac {
		return 0, false
	}
	ns += frac
	if neg {
		ns = -ns
	}
	return ns, true
}

// d2 reads two ASCII digits, or returns 100 when either is not a digit.
func d2(hi, lo byte) uint {
	h, l := uint(hi-'0'), uint(lo-'0')
	if h > 9 || l > 9 {
		return 100
	}
	return h*10 + l
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func daysIn(month, year int64) int64 {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date (Howard Hinnant's algorithm), so that a date
// becomes a number with a handful of integer operations.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400 // [0, 399]
	mp := (m + 9) % 12 // March is 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
