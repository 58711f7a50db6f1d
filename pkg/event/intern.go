package event

// DefaultInternCapacity is the number of strings an Interner keeps per
// generation when none is given: enough for the principals, roles, clients
// and objects of a large company.
const DefaultInternCapacity = 1 << 18

// internBytesPerString is the average string length a generation budgets
// for. Bounding bytes as well as strings keeps a flood of long unique values
// from holding capacity times maxInternLen bytes; at the default capacity a
// decoder's strings stay around 50 MiB at worst, map overhead included.
const internBytesPerString = 64

// maxInternLen bounds the length of an interned string. Longer values are
// almost always unique junk (a pasted token, a giant user agent); interning
// them would only evict useful values.
const maxInternLen = 1 << 10

// Interner turns byte slices into strings, allocating only the first time a
// value is seen. Events keep the principal, object and similar names as
// strings, and the same few thousand values repeat in every message, so
// interning removes the per-message allocation without tying the strings to
// the message buffer.
//
// Memory is bounded under a flood of unique values, such as a crawler
// forging a new customer account per request: strings live in two
// generations, and when the current one is full (in strings or in bytes) it
// becomes the old one and the previous old one is dropped. A value found in the old generation is
// promoted, so values in steady use survive every rotation.
//
// An Interner is not safe for concurrent use; each decoder owns one, which
// keeps the hot path free of locks.
type Interner struct {
	cur, old map[string]string
	capacity int
	// bytes is the length of the strings in cur.
	bytes int
}

// NewInterner returns an Interner holding up to capacity strings per
// generation; capacity <= 0 means DefaultInternCapacity.
func NewInterner(capacity int) *Interner {
	if capacity <= 0 {
		capacity = DefaultInternCapacity
	}
	return &Interner{cur: map[string]string{}, old: map[string]string{}, capacity: capacity}
}

// Intern returns b as a string, shared with earlier calls for equal bytes.
// The result does not alias b.
func (in *Interner) Intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	// Indexing with string(b) does not allocate.
	if s, ok := in.cur[string(b)]; ok {
		return s
	}
	s, ok := in.old[string(b)]
	if !ok {
		if len(b) > maxInternLen {
			return string(b)
		}
		s = string(b)
	}
	if len(in.cur) >= in.capacity || in.bytes+len(s) > in.capacity*internBytesPerString {
		// Reuse the dropped generation's map rather than allocate a new one.
		in.cur, in.old = in.old, in.cur
		clear(in.cur)
		in.bytes = 0
	}
	in.cur[s] = s
	in.bytes += len(s)
	return s
}
