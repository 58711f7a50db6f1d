package stream

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/exfilguard/exfilguard/pkg/event"
)

// Exactly once through the repartition topics. After a crash, the input
// tasks read again from their last checkpoint, and the forwarder produces
// the events since then a second time. Each routed record therefore says
// where it came from: the input partition, the message's offset and the
// event's index among that message's events (an origin). Per input
// partition, origins only grow in a repartition partition (the forwarder
// produces in the merge's order, which keeps each partition's order), so a
// repartition task keeps the last origin it applied from each input
// partition, checkpointed with its state, and skips any record that is not
// past it: the copy of an event it has counted.
//
// Record value: uvarint partition, uvarint offset, uvarint index, then the
// event in the internal format (event.AppendInternal).

// origin is where a routed event was read. The zero origin is that of an
// event read from the input itself.
type origin struct {
	part int32
	k    uint32
	off  int64
}

// after reports whether o comes after p in their input partition.
func (o origin) after(p origin) bool { return o.off > p.off || (o.off == p.off && o.k > p.k) }

func appendOrigin(dst []byte, o origin) []byte {
	dst = binary.AppendUvarint(dst, uint64(o.part))
	dst = binary.AppendUvarint(dst, uint64(o.off))
	return binary.AppendUvarint(dst, uint64(o.k))
}

// routedDecoder reads a repartition record: its origin, then the event.
type routedDecoder struct {
	inner event.Decoder
	src   origin
}

func (d *routedDecoder) Decode(msg []byte, ev *event.Event) error {
	var v [3]uint64
	rest := msg
	for i := range v {
		x, n := binary.Uvarint(rest)
		if n <= 0 {
			ev.Reset()
			return &event.DecodeError{Reason: event.ReasonBadValue, Offset: len(msg) - len(rest)}
		}
		v[i], rest = x, rest[n:]
	}
	if v[0] > 1<<31-1 || v[1] > 1<<63-1 || v[2] > 1<<32-1 {
		ev.Reset()
		return &event.DecodeError{Reason: event.ReasonBadValue, Offset: 0}
	}
	d.src = origin{part: int32(v[0]), off: int64(v[1]), k: uint32(v[2])}
	return d.inner.Decode(rest, ev)
}

// fresh reports whether a routed event's origin is past the last one
// the task applied from that input partition, and makes it the last.
func (t *task) fresh(o origin) bool {
	if last, ok := t.seen[o.part]; ok && !o.after(last) {
		return false
	}
	if t.seen == nil {
		t.seen = map[int32]origin{}
	}
	t.seen[o.part] = o
	return true
}

// appendSeen encodes the last origins, in partition order.
func (t *task) appendSeen(dst []byte) []byte {
	parts := make([]int32, 0, len(t.seen))
	for p := range t.seen {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	dst = binary.AppendUvarint(dst, uint64(len(parts)))
	for _, p := range parts {
		dst = appendOrigin(dst, t.seen[p])
	}
	return dst
}

func (t *task) restoreSeen(b []byte) error {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > 1<<20 {
		return fmt.Errorf("restore routed origins: bad count")
	}
	b = b[w:]
	t.seen = make(map[int32]origin, n)
	for range n {
		var v [3]uint64
		for i := range v {
			x, w := binary.Uvarint(b)
			if w <= 0 {
				return fmt.Errorf("restore routed origins: truncated")
			}
			v[i], b = x, b[w:]
		}
		t.seen[int32(v[0])] = origin{part: int32(v[0]), off: int64(v[1]), k: uint32(v[2])}
	}
	return nil
}
