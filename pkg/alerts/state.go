package alerts

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/exfilguard/exfilguard/pkg/models"
)

// stateVersion is the version of the builder's checkpoint encoding. A
// newer detector must keep reading every older version.
const stateVersion = 1

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
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].entity != keys[j].entity {
			return keys[i].entity < keys[j].entity
		}
		return keys[i].rule < keys[j].rule
	})
	dst = append(dst, stateVersion)
	dst = binary.AppendVarint(dst, s.watermark)
	dst = binary.AppendUvarint(dst, uint64(s.sinceSweep))
	dst = binary.AppendUvarint(dst, b.Suppressed)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		in := s.open[k]
		dst = binary.BigEndian.AppendUint64(dst, k.entity)
		dst = append(dst, byte(k.rule), byte(in.severity))
		dst = binary.AppendVarint(dst, in.opened)
		dst = binary.AppendVarint(dst, in.last)
		dst = binary.AppendUvarint(dst, uint64(in.seq))
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(in.exposure))
	}
	return dst
}

var errTruncated = errors.New("truncated")

// RestoreState replaces the builder's incidents with those of data.
func (b *Builder) RestoreState(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if data[0] == 0 || data[0] > stateVersion {
		return fmt.Errorf("restore alert state: version %d unknown (this detector reads up to %d)", data[0], stateVersion)
	}
	r := reader{b: data[1:]}
	wm := r.varint()
	sweep := r.uvarint()
	supp := r.uvarint()
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b))/20 {
		r.err = errTruncated
	}
	if r.err != nil {
		return fmt.Errorf("restore alert state: %w", r.err)
	}
	open := make(map[incidentKey]*incident, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := incidentKey{entity: r.u64()}
		k.rule = models.Rule(r.byte())
		in := &incident{severity: models.Severity(r.byte())}
		in.opened = r.varint()
		in.last = r.varint()
		in.seq = int(r.uvarint())
		in.exposure = math.Float64frombits(r.u64())
		open[k] = in
	}
	if r.err != nil {
		return fmt.Errorf("restore alert state: %w", r.err)
	}
	b.inc.open, b.inc.watermark, b.inc.sinceSweep, b.Suppressed = open, wm, int(sweep), supp
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
