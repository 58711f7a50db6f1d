package event

import (
	"errors"
	"fmt"
	"io"
)

// JSONValues reads successive top-level JSON values from a stream, for
// files that are not one record a line: a MySQL or Percona audit file is
// one JSON array written pretty-printed over many lines, and some tools
// write concatenated, pretty-printed objects.
//
// One enclosing array is unwrapped: "[{..},{..}]" yields each element,
// and so does a file whose closing bracket is missing because the server
// was still writing it. Values may also simply follow one another,
// separated by white space; commas between values are skipped. Arrays
// inside the unwrapped one are values like any other, and after it closes
// another may open, so concatenated files read as one stream.
//
// Values are only delimited here, not validated: a broken one comes out
// as it is, for the decoder to reject, and the stream goes on after it. A
// stray closing bracket is skipped.
//
// Like a line reader, it allocates nothing per value once its buffer has
// grown to the largest value read; a value longer than max is skipped to
// its end and reported as too long, so a giant value costs bounded memory.
type JSONValues struct {
	r   io.Reader
	max int
	buf []byte
	// buf[start:end] is read and not yet returned.
	start, end int
	// off is the stream offset of buf[0], for errors.
	off     int64
	err     error
	inArray bool
	begun   bool
}

// jsonValuesMinBuf is the first buffer size: a read syscall's worth, and
// larger than most records, so that the buffer seldom grows.
const jsonValuesMinBuf = 64 << 10

// NewJSONValues returns a reader of the JSON values in r, skipping those
// longer than max bytes (max <= 0 means DefaultMaxMessageBytes).
func NewJSONValues(r io.Reader, max int) *JSONValues {
	if max <= 0 {
		max = DefaultMaxMessageBytes
	}
	return &JSONValues{r: r, max: max, buf: make([]byte, min(jsonValuesMinBuf, max+1))}
}

// errTruncatedValue wraps io.ErrUnexpectedEOF: the stream ended inside a
// value.
type errTruncatedValue struct{ off int64 }

func (e errTruncatedValue) Error() string {
	return fmt.Sprintf("read JSON values: stream ends inside the value at offset %d: %v", e.off, io.ErrUnexpectedEOF)
}

func (e errTruncatedValue) Unwrap() error { return io.ErrUnexpectedEOF }

// Next returns the next value, which stays valid until the next call.
// A value longer than max is skipped and reported with tooLong and a nil
// rec. At the end of the stream err is io.EOF; a stream that ends inside
// a value (a truncated file) is an error wrapping io.ErrUnexpectedEOF;
// read errors are returned as they are. Errors are sticky.
func (j *JSONValues) Next() (rec []byte, tooLong bool, err error) {
	for {
		if j.start == j.end && !j.fill() {
			return nil, false, j.err
		}
		c := j.buf[j.start]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
		case c == '[' && !j.inArray:
			j.inArray = true
		case c == ']':
			j.inArray = false
		case c == 0xEF && !j.begun && j.off+int64(j.start) == 0:
			// A byte order mark, which some editors write.
			if !j.bom() {
				return j.value()
			}
			continue
		default:
			return j.value()
		}
		j.begun = true
		j.start++
	}
}

// bom skips a UTF-8 byte order mark at the start of the stream.
func (j *JSONValues) bom() bool {
	for j.end-j.start < 3 {
		if !j.more() {
			break
		}
	}
	if j.end-j.start >= 3 && j.buf[j.start+1] == 0xBB && j.buf[j.start+2] == 0xBF {
		j.start += 3
		j.begun = true
		return true
	}
	j.begun = true
	return false
}

// value delimits the value at start.
func (j *JSONValues) value() ([]byte, bool, error) {
	j.begun = true
	first := j.buf[j.start]
	i := j.start + 1 // next byte to look at
	depth := 0
	inStr := first == '"'
	switch first {
	case '{', '[':
		depth = 1
	}
	scalar := depth == 0 && !inStr
	tooLong := false
	for {
		for i < j.end {
			c := j.buf[i]
			if inStr {
				if c == '\\' {
					if i+1 >= j.end {
						break // the escaped byte is not read yet
					}
					i += 2
					continue
				}
				i++
				if c == '"' {
					inStr = false
					if depth == 0 {
						return j.done(i, tooLong)
					}
				} else {
					i = plain(j.buf[:j.end], i)
				}
				continue
			}
			if scalar {
				switch c {
				case ' ', '\t', '\n', '\r', ',', '[', ']', '{', '}', '"':
					return j.done(i, tooLong)
				}
				i++
				continue
			}
			i++
			switch c {
			case '"':
				inStr = true
				i = plain(j.buf[:j.end], i)
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j.done(i, tooLong)
				}
			}
		}
		if i-j.start > j.max {
			tooLong = true
		}
		if tooLong {
			// Drop what was seen and scan on for the end.
			j.start = i
		}
		moved := j.start
		if !j.more() {
			i -= moved - j.start
			if scalar && errors.Is(j.err, io.EOF) {
				return j.done(i, tooLong)
			}
			if errors.Is(j.err, io.EOF) {
				j.err = errTruncatedValue{off: j.off + int64(j.start)}
			}
			return nil, false, j.err
		}
		i -= moved - j.start
	}
}

// done returns the value ending before i.
func (j *JSONValues) done(i int, tooLong bool) ([]byte, bool, error) {
	rec := j.buf[j.start:i]
	j.start = i
	if tooLong || len(rec) > j.max {
		return nil, true, nil
	}
	return rec, false, nil
}

// fill reads more after everything buffered was consumed.
func (j *JSONValues) fill() bool {
	j.off += int64(j.end)
	j.start, j.end = 0, 0
	return j.more()
}

// more reads at least one more byte into the buffer, moving the unread
// part to its front and growing it (up to what a value of max bytes
// needs) when it is full. It reports false at the end of the stream or
// on an error, which is kept in j.err.
func (j *JSONValues) more() bool {
	if j.err != nil {
		return false
	}
	if j.start > 0 {
		n := copy(j.buf, j.buf[j.start:j.end])
		j.off += int64(j.start)
		j.start, j.end = 0, n
	}
	if j.end == len(j.buf) {
		size := min(2*len(j.buf), j.max+1)
		if size <= len(j.buf) {
			// Only while skipping a value too long to keep, which drops
			// what it saw before calling: cannot be full here.
			size = len(j.buf) + 1
		}
		grown := make([]byte, size)
		copy(grown, j.buf[:j.end])
		j.buf = grown
	}
	for range 100 {
		n, err := j.r.Read(j.buf[j.end:])
		j.end += n
		if err != nil {
			j.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	j.err = io.ErrNoProgress
	return false
}
