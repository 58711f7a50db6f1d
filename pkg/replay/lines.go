package replay

import (
	"bufio"
	"errors"
	"io"

	"github.com/exfilguard/exfilguard/pkg/event"
)

// lineReader returns lines without allocating: a line is a view into the
// reader's buffer, or into a scratch buffer when it is longer than the
// buffer, valid until the next call. A line longer than max is skipped to
// its end and reported as too long, so a giant or binary blob costs
// bounded memory.
type lineReader struct {
	r       *bufio.Reader
	max     int
	scratch []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<20)
	}
	return &lineReader{r: br, max: max}
}

func (l *lineReader) next() (line []byte, tooLong bool, err error) {
	b, err := l.r.ReadSlice('\n')
	if err == nil || (errors.Is(err, io.EOF) && len(b) > 0) {
		return trimEOL(b), len(b) > l.max+2, nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, false, err
	}
	l.scratch = append(l.scratch[:0], b...)
	for {
		b, err = l.r.ReadSlice('\n')
		if len(l.scratch)+len(b) <= l.max+2 {
			l.scratch = append(l.scratch, b...)
		} else {
			tooLong = true
			l.scratch = l.scratch[:0]
		}
		switch {
		case err == nil, errors.Is(err, io.EOF):
			if tooLong {
				return nil, true, nil
			}
			return trimEOL(l.scratch), false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, false, err
		}
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// limiter lets the first few warnings of each reason through, then one
// at every power of ten, so a file of a million bad lines says so in a
// dozen log lines.
type limiter struct{ seen [16]uint64 }

func newLimiter() *limiter { return &limiter{} }

func (l *limiter) allow(r event.Reason) bool {
	i := int(r) % len(l.seen)
	l.seen[i]++
	n := l.seen[i]
	if n <= 5 {
		return true
	}
	for n%10 == 0 {
		n /= 10
	}
	return n == 1
}
