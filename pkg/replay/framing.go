package replay

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/exfilguard/exfilguard/pkg/event"
)

// A log file is not always one record per line: MySQL writes its audit
// file as one JSON array across many lines, a csvlog record's quoted
// statement spans lines, and a stderr record's statement continues on
// lines that start with a tab. Replay frames each file the way its format
// writes it, so that a recorded file replays as the records a shipper
// would have sent.

// records yields one record at a time; the slice stays valid until the
// next call.
type records interface {
	next() (rec []byte, tooLong bool, err error)
}

// newRecords picks the framing of in for format; for auto, by the file's
// first bytes.
func newRecords(in io.Reader, format string, max int) records {
	br, ok := in.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(in, 1<<20)
	}
	head, _ := br.Peek(4096)
	head = bytes.TrimLeft(head, " \t\r\n\ufeff")
	if format == "auto" {
		first, _, _ := bytes.Cut(head, []byte("\n"))
		if len(head) > 0 && head[0] == '[' {
			first = head
		}
		format = event.Sniff(first)
	}
	lines := newLineReader(br, max)
	switch {
	case len(head) > 0 && head[0] == '[' && format != "native":
		return jsonArray{event.NewJSONValues(br, max)}
	case format == "pgaudit_csvlog":
		return &joined{lines: lines, max: max, more: oddQuotes}
	case format == "pgaudit_stderr":
		return &joined{lines: lines, max: max, cont: stderrContinues}
	}
	return lines
}

type jsonArray struct{ v *event.JSONValues }

func (j jsonArray) next() ([]byte, bool, error) { return j.v.Next() }

// oddQuotes reports whether a CSV record so far has an open quoted field.
func oddQuotes(rec []byte) bool { return bytes.Count(rec, []byte{'"'})%2 == 1 }

// joined frames records of several lines: a record continues while more
// says it is unfinished (an open CSV quote), or while the following line
// is a continuation (cont: a tab-indented stderr line).
type joined struct {
	lines *lineReader
	max   int
	more  func(rec []byte) bool
	cont  func(line []byte) bool
	rec   []byte
	// ahead is a line read past the end of the previous record.
	ahead    []byte
	hasAhead bool
	err      error
}

func (j *joined) line() ([]byte, bool, error) {
	if j.hasAhead {
		j.hasAhead = false
		return j.ahead, false, nil
	}
	return j.lines.next()
}

func (j *joined) next() ([]byte, bool, error) {
	if j.err != nil && !j.hasAhead {
		return nil, false, j.err
	}
	first, tooLong, err := j.line()
	if err != nil {
		return nil, false, err
	}
	j.rec = append(j.rec[:0], first...)
	for {
		if j.more != nil && !j.more(j.rec) {
			break
		}
		l, long, err := j.lines.next()
		if err != nil {
			if j.cont == nil && !errors.Is(err, io.EOF) {
				return nil, false, err
			}
			j.err = err
			break
		}
		if j.cont != nil && !j.cont(l) {
			j.ahead = append(j.ahead[:0], l...)
			j.hasAhead = true
			break
		}
		tooLong = tooLong || long || len(j.rec)+1+len(l) > j.max
		if !tooLong {
			j.rec = append(j.rec, '\n')
			j.rec = append(j.rec, l...)
		}
	}
	if tooLong {
		return nil, true, nil
	}
	return j.rec, false, nil
}

// stderrContinues reports whether a stderr line belongs to the record
// before it: a tab-indented statement line, or one of the extra fields
// PostgreSQL writes as lines of their own after the message (CONTEXT,
// STATEMENT, DETAIL, HINT, QUERY, LOCATION). They must stay with their
// record: the CONTEXT of a RAISE is what tells a user's forged "AUDIT:"
// line from pgaudit's.
func stderrContinues(l []byte) bool {
	if len(l) > 0 && l[0] == '\t' {
		return true
	}
	// The severity is the first word followed by a colon and two spaces;
	// the prefix before it (time, pid, user@db) has no such colon.
	i := bytes.Index(l, []byte(":  "))
	if i < 0 {
		return false
	}
	w := l[bytes.LastIndexByte(l[:i], ' ')+1 : i]
	switch string(w) {
	case "CONTEXT", "STATEMENT", "DETAIL", "HINT", "QUERY", "LOCATION":
		return true
	}
	return false
}
