package event

import (
	"fmt"
	"slices"
	"strings"
)

// Decoder turns one raw message into an Event. There is one implementation
// per input format, chosen per topic, so that the stream layer does not care
// what the producers emit.
//
// Decode fills ev in place, reusing its slices, so that the hot path does not
// allocate; after an error the content of ev is unspecified. Errors are
// *DecodeError, whose Reason labels the dropped-message counter (or, for
// Reason.Ignored reasons, the ignored-message counter).
// Implementations are not safe for concurrent use: each partition worker
// owns its decoder, like it owns its entities.
type Decoder interface {
	Decode(msg []byte, ev *Event) error
}

// Splitter is implemented by decoders whose messages may carry several
// records: an AWS Database Activity Streams record's event list, an audit
// file written as one JSON array, a chunk of log lines. Split appends to
// dst the sub-slices of msg that each hold one record, in order, for
// Decode; a message of one record is appended whole. The sub-slices alias
// msg. Split allocates nothing once dst has grown to the largest message's
// record count.
//
// An error from Split rejects the whole message; a bad record among good
// ones is left for Decode to reject on its own.
type Splitter interface {
	Split(dst [][]byte, msg []byte) ([][]byte, error)
}

// Options are the per-input settings a format may need beyond Limits.
type Options struct {
	// LogLinePrefix is PostgreSQL's log_line_prefix for the stderr format
	// (pgaudit_stderr), for example "%m [%p] %q%u@%d ". It must name the
	// user (%u): pgaudit records do not, so PostgreSQL's default "%m [%p] "
	// is refused. auto reads no stderr lines without it.
	LogLinePrefix string
}

// Constructor builds a decoder of one format.
type Constructor func(l Limits, o Options) (Decoder, error)

// formats is the registry of input formats, filled by each format's file in
// init so that adding a format touches no shared table.
var formats = map[string]formatEntry{}

type formatEntry struct {
	new Constructor
	doc string
}

// register adds a format; it panics on a duplicate name because that is a
// programming error found by any test.
func register(name, doc string, c Constructor) {
	if _, dup := formats[name]; dup {
		panic("event: format " + name + " registered twice")
	}
	formats[name] = formatEntry{new: c, doc: doc}
}

func init() {
	register("native", "the native JSON event (DESIGN.md)", func(l Limits, _ Options) (Decoder, error) { return NewNative(l), nil })
}

// NewDecoder returns a decoder for the named format.
func NewDecoder(format string, l Limits, o Options) (Decoder, error) {
	f, ok := formats[format]
	if !ok {
		return nil, fmt.Errorf("new decoder: unknown format %q (known: %s)", format, strings.Join(Formats(), ", "))
	}
	d, err := f.new(l, o)
	if err != nil {
		return nil, fmt.Errorf("new %s decoder: %w", format, err)
	}
	return d, nil
}

// Formats returns the names of every input format, sorted.
func Formats() []string {
	out := make([]string, 0, len(formats))
	for n := range formats {
		if n != InternalFormat {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// InternalFormat is the detector's own format on its repartition topics
// (internal.go). Formats leaves it out: no producer writes it, and an
// input topic configured with it would be a mistake.
const InternalFormat = "exfilguard_internal"

// FormatDoc returns the one-line description of a format.
func FormatDoc(format string) string { return formats[format].doc }
