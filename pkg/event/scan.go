package event

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is the JSON tokenizer under Native. It reads values in place and
// returns slices of the message; only strings with escapes are copied, into
// scratch, which is reused across messages so that it stops growing.
type scanner struct {
	buf     []byte
	pos     int
	scratch []byte
}

// kind is the JSON type of a value.
type kind uint8

const (
	kindString kind = iota + 1
	kindNumber
	kindBool
	kindNull
	kindObject
	kindArray
)

func (s *scanner) malformed() error {
	return &DecodeError{Reason: ReasonMalformedJSON, Offset: s.pos}
}

// peek returns the byte at pos, or 0 at the end: 0 is never valid where the
// decoder peeks, so the end needs no separate check.
func (s *scanner) peek() byte { return at(s.buf, s.pos) }

func (s *scanner) skipWS() {
	// The first test fails at once on compact JSON, the common case.
	for s.pos < len(s.buf) && s.buf[s.pos] <= ' ' {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// scalar reads the value at pos. Strings come back unescaped and numbers as
// their text; the slice is valid until the next read. Objects and arrays are
// only identified, not consumed.
func (s *scanner) scalar() (kind, []byte, error) {
	switch c := s.peek(); c {
	case '"':
		v, err := s.str()
		return kindString, v, err
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		start := s.pos
		err := s.number()
		return kindNumber, s.buf[start:s.pos], err
	case 't':
		return kindBool, nil, s.literal("true")
	case 'f':
		return kindBool, nil, s.literal("false")
	case 'n':
		return kindNull, nil, s.literal("null")
	case '{':
		return kindObject, nil, nil
	case '[':
		return kindArray, nil, nil
	}
	return 0, nil, s.malformed()
}

func (s *scanner) literal(lit string) error {
	if len(s.buf)-s.pos < len(lit) || string(s.buf[s.pos:s.pos+len(lit)]) != lit {
		return s.malformed()
	}
	s.pos += len(lit)
	return nil
}

// number consumes a number, enforcing the JSON grammar.
func (s *scanner) number() error {
	buf, i := s.buf, s.pos
	if i < len(buf) && buf[i] == '-' {
		i++
	}
	switch {
	case i < len(buf) && buf[i] == '0':
		i++
	case i < len(buf) && '1' <= buf[i] && buf[i] <= '9':
		i = skipDigits(buf, i+1)
	default:
		s.pos = i
		return s.malformed()
	}
	if i < len(buf) && buf[i] == '.' {
		if i++; i == len(buf) || !isDigit(buf[i]) {
			s.pos = i
			return s.malformed()
		}
		i = skipDigits(buf, i)
	}
	if i < len(buf) && (buf[i] == 'e' || buf[i] == 'E') {
		if i++; i < len(buf) && (buf[i] == '+' || buf[i] == '-') {
			i++
		}
		if i == len(buf) || !isDigit(buf[i]) {
			s.pos = i
			return s.malformed()
		}
		i = skipDigits(buf, i)
	}
	s.pos = i
	return nil
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// str reads the string at pos (which is '"'). Without escapes the result is
// a slice of the message; with escapes it is unescaped into scratch.
func (s *scanner) str() ([]byte, error) {
	buf := s.buf
	start := s.pos + 1
	i := plain(buf, start)
	for i < len(buf) && buf[i] != '"' && buf[i] != '\\' && buf[i] >= 0x20 {
		i++
	}
	if i < len(buf) && buf[i] == '"' {
		s.pos = i + 1
		return buf[start:i], nil
	}
	if i < len(buf) && buf[i] == '\\' {
		return s.unescape(start, i)
	}
	s.pos = i
	return nil, s.malformed()
}

// unescape continues str from the first backslash at i. Invalid surrogates
// become U+FFFD, as encoding/json does, so both decoders agree on the text.
func (s *scanner) unescape(start, i int) ([]byte, error) {
	buf := s.buf
	s.scratch = append(s.scratch[:0], buf[start:i]...)
	for i < len(buf) {
		c := buf[i]
		if c == '"' {
			s.pos = i + 1
			return s.scratch, nil
		}
		if c < 0x20 {
			break
		}
		if c != '\\' {
			s.scratch = append(s.scratch, c)
			i++
			continue
		}
		switch e := at(buf, i+1); e {
		case '"', '\\', '/':
			s.scratch = append(s.scratch, e)
		case 'b':
			s.scratch = append(s.scratch, '\b')
		case 'f':
			s.scratch = append(s.scratch, '\f')
		case 'n':
			s.scratch = append(s.scratch, '\n')
		case 'r':
			s.scratch = append(s.scratch, '\r')
		case 't':
			s.scratch = append(s.scratch, '\t')
		case 'u':
			r, ok := hex4(buf[i+2:])
			if !ok {
				s.pos = i
				return nil, s.malformed()
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// Only a high surrogate followed by an escaped low one is a
				// pair; anything else is U+FFFD and the next escape is read
				// on its own.
				r2, ok := rune(-1), false
				if len(buf)-i >= 6 && buf[i] == '\\' && buf[i+1] == 'u' {
					r2, ok = hex4(buf[i+2:])
				}
				if r = utf16.DecodeRune(r, r2); ok && r != utf8.RuneError {
					i += 6
				}
			}
			s.scratch = utf8.AppendRune(s.scratch, r)
			continue
		default:
			s.pos = i
			return nil, s.malformed()
		}
		i += 2
	}
	s.pos = i
	return nil, s.malformed()
}

// plain skips bytes from i on that need no look in a string, eight at a
// time since strings are most of every message. It stops at the first '"',
// '\\' or control character, or where fewer than eight bytes are left; the
// caller finishes byte by byte.
func plain(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q, bs := x^(ones*'"'), x^(ones*'\\')
		// For a byte below 0x80, each difference has its high bit set when
		// the byte is '"', '\\' or below 0x20; &^x drops the bytes from
		// 0x80 up. Borrows can only mark bytes after the first hit, so the
		// lowest set bit is exact.
		if hit := ((q - ones) | (bs - ones) | (x - ones*0x20)) &^ x & highs; hit != 0 {
			return i + bits.TrailingZeros64(hit)/8
		}
	}
	return i
}

// at returns b[i], or 0 past the end, which no escape accepts.
func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skipString consumes the string at pos, validating it without copying:
// the values of unknown fields are never needed.
func (s *scanner) skipString() error {
	buf := s.buf
	for i := plain(buf, s.pos+1); i < len(buf); i = plain(buf, i+1) {
		switch c := buf[i]; {
		case c == '"':
			s.pos = i + 1
			return nil
		case c == '\\':
			i++
			switch at(buf, i) {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if _, ok := hex4(buf[i+1:]); !ok {
					s.pos = i
					return s.malformed()
				}
				i += 4
			default:
				s.pos = i
				return s.malformed()
			}
		case c < 0x20:
			s.pos = i
			return s.malformed()
		}
	}
	s.pos = len(buf)
	return s.malformed()
}

// skip consumes the value at pos, which sits at the given nesting depth,
// checking its syntax.
func (s *scanner) skip(depth int) error {
	open := s.peek()
	switch open {
	case '"':
		return s.skipString()
	case '{', '[':
	default:
		_, _, err := s.scalar()
		return err
	}
	if depth > maxDepth {
		return s.malformed()
	}
	end := byte('}')
	if open == '[' {
		end = ']'
	}
	s.pos++
	s.skipWS()
	for more := s.peek() != end; more; {
		if open == '{' {
			if s.peek() != '"' {
				return s.malformed()
			}
			if err := s.skipString(); err != nil {
				return err
			}
			s.skipWS()
			if s.peek() != ':' {
				return s.malformed()
			}
			s.pos++
			s.skipWS()
		}
		if err := s.skip(depth + 1); err != nil {
			return err
		}
		s.skipWS()
		switch s.peek() {
		case ',':
			s.pos++
			s.skipWS()
		case end:
			more = false
		default:
			return s.malformed()
		}
	}
	s.pos++ // the closing bracket or brace
	return nil
}
