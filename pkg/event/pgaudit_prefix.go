package event

import (
	"bytes"
	"fmt"
)

// Reading PostgreSQL's log_line_prefix back out of stderr log lines.
//
// The prefix is a printf-like template (%m [%p] %q%u@%d ) whose values are
// written without quoting, so a line is read by matching the template
// against it: literals must match, and each escape takes the bytes its
// values can have. Some values have no fixed end (a user name, an
// application name with spaces), so the matcher tries every end and keeps
// the parses after which the line goes on with a severity ("LOG:  "). A
// value that contains the literal after it can make a line match in two
// ways; that is how a client could forge a prefix, e.g. with an
// application_name of `x alice@shop LOG:  AUDIT: ...` under a prefix with %a
// before %u. The matcher therefore finds up to two parses, and the decoder
// does not trust a line with two.
//
// To keep genuine lines unambiguous, user and database names (%u, %d), hosts
// (%h, %r, %L) and the fixed-shape values are read without spaces; only the
// application name (%a, at most 63 bytes as PostgreSQL truncates it), the
// command tag (%i) and the backend type (%b) may hold spaces. Names with
// spaces in them are not supported.

// prefixItem is one part of a compiled log_line_prefix: literal text, or an
// escape with its padding (%-10u is -10: left-aligned in 10 columns).
type prefixItem struct {
	esc byte
	lit []byte
	pad int
	sh  escShape
}

// logPrefix is a compiled log_line_prefix.
type logPrefix struct {
	items []prefixItem
	// next is, per item, the first byte of the literal after it (skipping
	// %q), or -1: escapes try only the ends where that byte follows.
	next []int
}

// The escapes whose values are kept, as slots of a match.
const (
	slotTime     = iota // %m
	slotTimeSec         // %t
	slotEpoch           // %n
	slotPID             // %p
	slotUser            // %u
	slotDB              // %d
	slotApp             // %a
	slotHost            // %h
	slotHostPort        // %r
	slotSession         // %c
	slotStart           // %s
	slotSQLState        // %e
	numSlots
)

// prefixSlot returns the slot an escape's value goes to, or -1.
func prefixSlot(esc byte) int {
	switch esc {
	case 'm':
		return slotTime
	case 't':
		return slotTimeSec
	case 'n':
		return slotEpoch
	case 'p':
		return slotPID
	case 'u':
		return slotUser
	case 'd':
		return slotDB
	case 'a':
		return slotApp
	case 'h':
		return slotHost
	case 'r':
		return slotHostPort
	case 'c':
		return slotSession
	case 's':
		return slotStart
	case 'e':
		return slotSQLState
	}
	return -1
}

// compileLogPrefix parses a log_line_prefix. It rejects what PostgreSQL
// would print but this package could not read back: unknown escapes (which
// PostgreSQL prints as nothing, so a typo would silently shift every field),
// an escape directly followed by another one (their values could not be told
// apart), line breaks, and a prefix without the event time (%m, %t or %n) or
// the user (%u), without which no audit record could be decoded.
func compileLogPrefix(p string) (*logPrefix, error) {
	lp := &logPrefix{}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			lp.items = append(lp.items, prefixItem{lit: lit})
			lit = nil
		}
	}
	hasTime, hasUser := false, false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\n' || c == '\r' {
			return nil, fmt.Errorf("log_line_prefix: a line break cannot be read back from a log line")
		}
		if c != '%' {
			lit = append(lit, c)
			continue
		}
		i++
		pad := 0
		if i < len(p) && (isDigit(p[i]) || p[i] == '-' && i+1 < len(p) && isDigit(p[i+1])) {
			neg := p[i] == '-'
			if neg {
				i++
			}
			for i < len(p) && isDigit(p[i]) {
				pad = pad*10 + int(p[i]-'0')
				if pad > 1000 {
					return nil, fmt.Errorf("log_line_prefix: padding too wide at offset %d", i)
				}
				i++
			}
			if neg {
				pad = -pad
			}
		}
		if i >= len(p) {
			return nil, fmt.Errorf("log_line_prefix: ends in an incomplete escape")
		}
		esc := p[i]
		switch esc {
		case '%':
			lit = append(lit, '%')
			continue
		case 'm', 't', 'n':
			hasTime = true
		case 'u':
			hasUser = true
		case 'p', 'd', 'a', 'h', 'r', 'c', 'l', 's', 'v', 'x', 'e', 'i', 'b', 'P', 'Q', 'L':
		case 'q':
			if pad != 0 {
				return nil, fmt.Errorf("log_line_prefix: %%q takes no padding")
			}
		default:
			return nil, fmt.Errorf("log_line_prefix: unknown escape %%%c", esc)
		}
		flush()
		lp.items = append(lp.items, prefixItem{esc: esc, pad: pad, sh: shapeOf(esc)})
	}
	flush()
	if !hasTime {
		return nil, fmt.Errorf("log_line_prefix: no event time (%%m, %%t or %%n)")
	}
	if !hasUser {
		return nil, fmt.Errorf("log_line_prefix: no user (%%u); pgaudit records do not name it themselves")
	}
	lp.next = make([]int, len(lp.items))
	for i := range lp.items {
		lp.next[i] = -1
		for j := i + 1; j < len(lp.items); j++ {
			if lp.items[j].esc == 'q' {
				continue
			}
			if lp.items[j].esc == 0 {
				lp.next[i] = int(lp.items[j].lit[0])
			} else if e := lp.items[i].esc; e != 0 && e != 'q' && e != 'e' {
				return nil, fmt.Errorf("log_line_prefix: %%%c directly followed by %%%c cannot be read back; put text between them", e, lp.items[j].esc)
			}
			break
		}
	}
	return lp, nil
}

// escShape says which bytes an escape's value may hold and how many.
type escShape struct {
	// head is the fixed-layout start of the value (the date and time of
	// %m); 0 for none.
	head byte
	// min and max bound the length of the rest.
	min, max int
	// class of the bytes of the rest.
	class charClass
}

type charClass uint8

const (
	classDigits   charClass = iota + 1 // 0-9
	classSigned                        // -0-9
	classEpoch                         // 0-9 .
	classHexDot                        // 0-9 a-f .
	classVXID                          // 0-9 /
	classSQLState                      // 0-9 A-Z
	classZone                          // A-Z a-z 0-9 + - :
	classToken                         // no space or control byte
	classText                          // printable ASCII, space included, and UTF-8
)

// classTables hold each class as a table, for the matcher's inner loop.
var classTables [classText + 1][256]bool

func init() {
	for c := classDigits; c <= classText; c++ {
		for b := range 256 {
			classTables[c][b] = c.has(byte(b))
		}
	}
}

func (c charClass) has(b byte) bool {
	switch c {
	case classDigits:
		return isDigit(b)
	case classSigned:
		return isDigit(b) || b == '-'
	case classEpoch:
		return isDigit(b) || b == '.'
	case classHexDot:
		return isDigit(b) || 'a' <= b && b <= 'f' || b == '.'
	case classVXID:
		return isDigit(b) || b == '/'
	case classSQLState:
		return isDigit(b) || 'A' <= b && b <= 'Z'
	case classZone:
		return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || isDigit(b) || b == '+' || b == '-' || b == ':'
	case classToken:
		return b > ' ' && b != 0x7f
	case classText:
		return b >= ' ' && b != 0x7f
	}
	return false
}

const (
	headMillis = 'm' // "2006-01-02 15:04:05.000 "
	headSecs   = 't' // "2006-01-02 15:04:05 "
)

// maxAppName is the longest application_name PostgreSQL logs: it truncates
// the setting to NAMEDATALEN-1 bytes.
const maxAppName = 63

func shapeOf(esc byte) escShape {
	switch esc {
	case 'm':
		return escShape{head: headMillis, min: 1, max: 10, class: classZone}
	case 't', 's':
		return escShape{head: headSecs, min: 1, max: 10, class: classZone}
	case 'n':
		return escShape{min: 1, max: 24, class: classEpoch}
	case 'p', 'l', 'x':
		return escShape{min: 1, max: 20, class: classDigits}
	case 'P':
		return escShape{min: 0, max: 10, class: classDigits}
	case 'Q':
		return escShape{min: 1, max: 21, class: classSigned}
	case 'c':
		return escShape{min: 3, max: 30, class: classHexDot}
	case 'v':
		return escShape{min: 0, max: 25, class: classVXID}
	case 'e':
		return escShape{min: 5, max: 5, class: classSQLState}
	case 'u', 'd':
		return escShape{min: 0, max: 64, class: classToken}
	case 'h', 'L':
		return escShape{min: 0, max: 256, class: classToken}
	case 'r':
		return escShape{min: 0, max: 270, class: classToken}
	case 'a':
		return escShape{min: 0, max: maxAppName, class: classText}
	case 'i', 'b':
		return escShape{min: 0, max: 64, class: classText}
	}
	return escShape{}
}

// span is a value's position in the line; end < 0 means not set.
type span struct{ start, end int }

// prefixParse is one way a line matches the prefix.
type prefixParse struct {
	vals [numSlots]span
	// sev and sevEnd delimit the severity word; msg is where the message
	// starts.
	sev, sevEnd, msg int
}

// maxPrefixSteps bounds the matcher's work on one line. Genuine lines take
// a few dozen steps; a line built to make the matcher backtrack (an
// application name full of the literal that follows it) stops here and is
// reported ambiguous.
const maxPrefixSteps = 4096

// prefixMatcher matches one line at a time against a logPrefix; it is
// reused so that matching allocates nothing.
type prefixMatcher struct {
	p     *logPrefix
	line  []byte
	cur   prefixParse
	found [2]prefixParse
	n     int
	want  int
	steps int
}

// match finds up to want (1 or 2) parses of line. It returns how many it
// found; exhausted means the step budget ran out first, and the count is
// then not to be trusted.
func (m *prefixMatcher) match(line []byte, want int) (n int, exhausted bool) {
	m.line, m.n, m.want, m.steps = line, 0, want, 0
	for i := range m.cur.vals {
		m.cur.vals[i] = span{-1, -1}
	}
	m.item(0, 0)
	m.line = nil
	return m.n, m.steps > maxPrefixSteps
}

// item matches items[i:] at pos; it returns true to stop the search.
func (m *prefixMatcher) item(i, pos int) bool {
	if m.steps++; m.steps > maxPrefixSteps {
		return true
	}
	items := m.p.items
	if i == len(items) {
		return m.end(pos)
	}
	it := &items[i]
	switch it.esc {
	case 0:
		if bytes.HasPrefix(m.line[pos:], it.lit) {
			return m.item(i+1, pos+len(it.lit))
		}
		return false
	case 'q':
		// Processes without a session (the postmaster, the checkpointer)
		// print nothing from %q on.
		if m.item(i+1, pos) {
			return true
		}
		saved := m.cur.vals
		for j := i + 1; j < len(items); j++ {
			if s := prefixSlot(items[j].esc); s >= 0 {
				m.cur.vals[s] = span{-1, -1}
			}
		}
		stop := m.end(pos)
		m.cur.vals = saved
		return stop
	}
	return m.escape(i, pos)
}

// escape tries each length the value of items[i] may have at pos.
func (m *prefixMatcher) escape(i, pos int) bool {
	it := &m.p.items[i]
	line := m.line
	start := pos
	if it.pad > 0 {
		// Right-aligned: spaces first.
		for start < len(line) && line[start] == ' ' {
			start++
		}
	}
	sh := &it.sh
	from := start
	switch sh.head {
	case headMillis:
		if !pgTimeHead(line[start:], true) {
			return false
		}
		from += 24
	case headSecs:
		if !pgTimeHead(line[start:], false) {
			return false
		}
		from += 20
	}
	next := m.p.next[i]
	limit := min(len(line), from+sh.max)
	if it.esc == 'a' {
		// Truncated to 63 bytes; should a version write non-ASCII
		// bytes as \xNN, each counts as one.
		limit = min(len(line), from+appNameLimit(line[from:]))
	}
	class := &classTables[sh.class]
	for end := from; ; end++ {
		if end-from >= sh.min && (next < 0 || it.pad < 0 || end < len(line) && int(line[end]) == next) {
			if m.value(i, start, end) {
				return true
			}
		}
		if end >= limit || !class[line[end]] {
			return false
		}
	}
}

// appNameLimit returns how many bytes of b an application name of at most
// maxAppName characters can span, a \xNN escape being one character.
func appNameLimit(b []byte) int {
	i := 0
	for n := 0; i < len(b) && n < maxAppName; n++ {
		if b[i] == '\\' && i+3 < len(b) && b[i+1] == 'x' {
			i += 4
		} else {
			i++
		}
	}
	return i
}

// value records [start, end) as the value of items[i], consumes its
// padding, and goes on with the next item.
func (m *prefixMatcher) value(i, start, end int) bool {
	it := &m.p.items[i]
	next := end
	if it.pad < 0 {
		for k := end - start; k < -it.pad; k++ {
			if next >= len(m.line) || m.line[next] != ' ' {
				return false
			}
			next++
		}
	}
	s := prefixSlot(it.esc)
	if s < 0 {
		return m.item(i+1, next)
	}
	old := m.cur.vals[s]
	m.cur.vals[s] = span{start, end}
	stop := m.item(i+1, next)
	m.cur.vals[s] = old
	return stop
}

// end records a parse when a severity follows the prefix at pos.
func (m *prefixMatcher) end(pos int) bool {
	sevEnd, msg, ok := severityAt(m.line, pos)
	if !ok {
		return false
	}
	p := m.cur
	p.sev, p.sevEnd, p.msg = pos, sevEnd, msg
	m.found[m.n] = p
	m.n++
	return m.n >= m.want
}

// severityAt reads "SEVERITY:  " at line[pos:], returning the end of the
// word and where the message starts.
func severityAt(line []byte, pos int) (sevEnd, msg int, ok bool) {
	j := pos
	for j < len(line) && 'A' <= line[j] && line[j] <= 'Z' {
		j++
	}
	k := j
	if k < len(line) && line[k] >= '1' && line[k] <= '5' && string(line[pos:j]) == "DEBUG" {
		k++ // DEBUG1..DEBUG5 are all written as DEBUG; be lenient anyway
	}
	if k+3 > len(line) || line[k] != ':' || line[k+1] != ' ' || line[k+2] != ' ' {
		return 0, 0, false
	}
	if pgSeverityOf(line[pos:j]) == sevUnknown {
		return 0, 0, false
	}
	return j, k + 3, true
}

// pgTimeHead checks the "2006-01-02 15:04:05[.000] " start of %m, %t, %s.
func pgTimeHead(b []byte, millis bool) bool {
	n := 20
	if millis {
		n = 24
	}
	if len(b) < n {
		return false
	}
	for i, c := range b[:n] {
		switch i {
		case 4, 7:
			if c != '-' {
				return false
			}
		case 10:
			if c != ' ' {
				return false
			}
		case 13, 16:
			if c != ':' {
				return false
			}
		case 19:
			if millis && c != '.' || !millis && c != ' ' {
				return false
			}
		case 23:
			if c != ' ' {
				return false
			}
		default:
			if !isDigit(c) {
				return false
			}
		}
	}
	return true
}
