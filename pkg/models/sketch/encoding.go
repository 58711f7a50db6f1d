package sketch

import (
	"encoding/binary"
	"errors"
	"math"
)

// Encoding, version 1:
//
//	sparse: 0x01 0x00 uvarint(n) n×uvarint(entry - previous entry)
//	dense:  0x01 0x01 p(=10) float64 LE HIP estimate, 1024 6-bit registers
//	        packed four to three bytes, little-endian (768 bytes)
//
// Entries are strictly increasing, so every delta is at least 1; a few
// distinct ids take a few bytes each. The sparse form holds its entries
// hashed; they are sorted for encoding, so the bytes are canonical.
// Registers never exceed 55 < 64. The change sum is derived from the
// registers, so it is not stored. Decoding accepts only states the sketch
// can reach (n < 256, valid entries, a non-zero register, a finite
// non-negative estimate), which keeps the encoding canonical and the
// invariants of Distinct safe.
//
// Sketches turn dense beyond 192 entries since the sparse form became a
// hash set; earlier ones did at 256. Their encodings of 193 to 255 sparse
// entries still decode exactly, to the sorted sparse form of Distinct, and
// encode again to the same bytes.
const (
	version    = 1
	kindSparse = 0
	kindDense  = 1
	denseLen   = 3 + 8 + numRegs*6/8
)

// AppendBinary appends the encoding of d to b and returns it.
func (d *Distinct) AppendBinary(b []byte) []byte {
	if d.dense() {
		b = append(b, version, kindDense, precision)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(d.hip()))
		for _, w := range d.buf {
			v := w&0x3f | w>>2&0xfc0 | w>>4&0x3f000 | w>>6&0xfc0000
			b = append(b, byte(v), byte(v>>8), byte(v>>16))
		}
		return b
	}
	switch {
	case len(d.buf) == 0: // sorted already: no scratch to clear
		return appendSparse(b, d.in[:d.inlineLen()])
	case d.in[0] == sortedMark:
		return appendSparse(b, d.buf)
	}
	var s [denseWords]uint32
	return appendSparse(b, d.sorted(&s))
}

// appendSparse appends the sparse encoding of the sorted entries es to b.
func appendSparse(b []byte, es []uint32) []byte {
	b = append(b, version, kindSparse)
	b = binary.AppendUvarint(b, uint64(len(es)))
	prev := uint32(0)
	for _, e := range es {
		b = binary.AppendUvarint(b, uint64(e-prev))
		prev = e
	}
	return b
}

// UnmarshalBinary replaces d with the sketch encoded in b, reusing d's
// buffer. On error d is unchanged.
func (d *Distinct) UnmarshalBinary(b []byte) error {
	if len(b) < 2 {
		return errors.New("sketch: truncated")
	}
	if b[0] != version {
		return errors.New("sketch: unknown format version")
	}
	switch b[1] {
	case kindSparse:
		return d.unmarshalSparse(b[2:])
	case kindDense:
		return d.unmarshalDense(b)
	}
	return errors.New("sketch: unknown kind")
}

func (d *Distinct) unmarshalSparse(b []byte) error {
	n, k := binary.Uvarint(b)
	if k <= 0 || n >= denseWords {
		return errors.New("sketch: bad sparse length")
	}
	b = b[k:]
	var es [denseWords]uint32
	prev := uint64(0)
	for i := range n {
		delta, k := binary.Uvarint(b)
		if k <= 0 || delta == 0 || delta >= 1<<31 {
			return errors.New("sketch: bad sparse entry")
		}
		b = b[k:]
		prev += delta
		if r := prev & (1<<rankBits - 1); prev >= 1<<(sparseP+rankBits) || r == 0 || r > maxSubRank {
			return errors.New("sketch: bad sparse entry")
		}
		es[i] = uint32(prev)
	}
	if len(b) != 0 {
		return errors.New("sketch: trailing bytes")
	}
	d.setEntries(es[:n])
	return nil
}

func (d *Distinct) unmarshalDense(b []byte) error {
	if len(b) != denseLen {
		return errors.New("sketch: bad dense length")
	}
	if b[2] != precision {
		return errors.New("sketch: unsupported precision")
	}
	hip := math.Float64frombits(binary.LittleEndian.Uint64(b[3:]))
	if !(hip >= 0) || math.IsInf(hip, 1) {
		return errors.New("sketch: bad estimate")
	}
	var regs [denseWords]uint32
	nonzero := false
	for i, p := 0, b[11:]; i < denseWords; i, p = i+1, p[3:] {
		v := uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16
		for sh := 0; sh < 32; sh += 8 {
			r := v & 0x3f
			if r > maxRho {
				return errors.New("sketch: bad register")
			}
			nonzero = nonzero || r != 0
			regs[i] |= r << sh
			v >>= 6
		}
	}
	if !nonzero {
		return errors.New("sketch: dense sketch with no register set")
	}
	d.loadDense(regs[:])
	d.setHip(hip)
	return nil
}
