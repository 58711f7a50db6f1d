package alerts

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/exfilguard/exfilguard/pkg/models"
)

// stateVersion is the version of the builder's checkpoint encoding. A
// newer detector must keep reading every older version. Version 2 added
// the entity kind, the accumulated exposure and the last alert of each
// incident, which its resolution is made from.
const stateVersion = 2

// AppendState appends the builder's open incidents to dst, for a
// checkpoint: after a restart the same detections must continue the same
// incidents, with the same ids. Incidents are written in key order so that
// equal states encode equally.
func (b *Builder) AppendState(dst []byte) []byte {
	s := b.inc
	keys := make([]incidentKey, 0, len(s.open))
	for k := range s.open {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	dst = append(dst, stateVersion)
	dst = binary.AppendUvarint(dst, b.Suppressed)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	f64 := func(dst []byte, x float64) []byte { return binary.BigEndian.AppendUint64(dst, math.Float64bits(x)) }
	for _, k := range keys {
		in := s.open[k]
		dst = binary.BigEndian.AppendUint64(dst, k.entity)
		dst = append(dst, byte(k.family), byte(in.severity), byte(in.kind))
		dst = binary.AppendVarint(dst, in.opened)
		dst = binary.AppendVarint(dst, in.last)
		dst = binary.AppendUvarint(dst, uint64(in.seq))
		dst = f64(dst, in.exposure)
		dst = binary.AppendUvarint(dst, uint64(in.detections))
		dst = f64(dst, in.emitted)
		dst = binary.AppendUvarint(dst, uint64(len(in.marks)))
		for _, m := range in.marks {
			dst = binary.AppendVarint(dst, m.end)
			dst = f64(dst, m.rows)
			dst = f64(dst, m.recs)
		}
		var js []byte
		if in.lastAlert != nil {
			js, _ = json.Marshal(in.lastAlert) // an Alert always encodes
		}
		dst = binary.AppendUvarint(dst, uint64(len(js)))
		dst = append(dst, js...)
	}
	return dst
}

var errTruncated = errors.New("truncated")

// RestoreState replaces the builder's incidents with those of data.
func (b *Builder) RestoreState(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	v := data[0]
	if v == 0 || v > stateVersion {
		return fmt.Errorf("restore alert state: version %d unknown (this detector reads up to %d)", v, stateVersion)
	}
	r := reader{b: data[1:]}
	if v == 1 {
		r.varint()  // watermark, no longer kept
		r.uvarint() // sweep counter, no longer kept
	}
	supp := r.uvarint()
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b))/20 {
		r.err = errTruncated
	}
	if r.err != nil {
		return fmt.Errorf("restore alert state: %w", r.err)
	}
	open := make(map[incidentKey]*incident, n)
	f64 := func() float64 { return math.Float64frombits(r.u64()) }
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := incidentKey{entity: r.u64()}
		if v == 1 {
			k.family = models.Rule(r.byte()).Family() // version 1 kept incidents per rule
		} else {
			k.family = models.Family(r.byte())
		}
		in := &incident{severity: models.Severity(r.byte())}
		if v >= 2 {
			in.kind = models.Kind(r.byte())
		}
		in.opened = r.varint()
		in.last = r.varint()
		in.seq = int(r.uvarint())
		in.exposure = f64()
		if v >= 2 {
			in.detections = int(r.uvarint())
			in.emitted = f64()
			nm := r.uvarint()
			if nm > maxMarks {
				return fmt.Errorf("restore alert state: %d exposure marks, at most %d", nm, maxMarks)
			}
			for range nm {
				in.marks = append(in.marks, mark{end: r.varint(), rows: f64(), recs: f64()})
			}
			if js := r.bytes(int(r.uvarint())); len(js) > 0 {
				in.lastAlert = new(Alert)
				if err := json.Unmarshal(js, in.lastAlert); err != nil {
					return fmt.Errorf("restore alert state: incident alert: %w", err)
				}
				in.rules = slices.Clone(in.lastAlert.Incident.Rules)
			}
		}
		open[k] = in
	}
	if r.err != nil {
		return fmt.Errorf("restore alert state: %w", r.err)
	}
	b.inc.open, b.Suppressed = open, supp
	b.inc.resetDue()
	return nil
}

// reader decodes what AppendState wrote; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errTruncated
	}
	r.b = nil
}
