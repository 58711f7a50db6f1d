package sketch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"testing"
)

// everyMode returns sketches in every form a sketch can be in.
func everyMode() map[string]*Distinct {
	merged := sketchOf(hashes(1, 3000))
	merged.Merge(sketchOf(hashes(2, 3000)))
	reused := sketchOf(hashes(3, 3000))
	reused.Reset()
	reused.Add(1)
	return map[string]*Distinct{
		"empty":          new(Distinct),
		"inline1":        sketchOf(hashes(1, 1)),
		"inline4":        sketchOf(hashes(1, 4)),
		"sparse5":        sketchOf(hashes(1, 5)),
		"sparse255":      sketchOf(hashes(1, 255)),
		"dense256":       sketchOf(hashes(1, 256)),
		"dense1M":        sketchOf(hashes(1, 1_000_000)),
		"dense-merged":   merged,
		"inline-reused":  reused,
		"inline-extreme": sketchOf([]uint64{0, 1, math.MaxUint64, 1 << 63}),
		"dense-extreme":  sketchOf(append(hashes(4, 300), 0, 1, math.MaxUint64, 1<<63)),
	}
}

func TestRoundTrip(t *testing.T) {
	for name, d := range everyMode() {
		enc := d.AppendBinary([]byte("prefix"))[len("prefix"):]
		var got Distinct
		if err := got.UnmarshalBinary(enc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !same(&got, d) || got.Estimate() != d.Estimate() {
			t.Errorf("%s: round trip differs", name)
		}
		if !bytes.Equal(got.AppendBinary(nil), enc) {
			t.Errorf("%s: re-encoding differs", name)
		}
		// Decoding over a used sketch reuses it and gives the same state.
		reuse := sketchOf(hashes(7, 5000))
		if err := reuse.UnmarshalBinary(enc); err != nil || !same(reuse, d) {
			t.Errorf("%s: decoding into a used sketch differs (%v)", name, err)
		}
		t.Logf("%-14s %-6s %4d bytes encoded, %4d heap bytes", name, mode(d), len(enc), d.SizeBytes())
	}
}

func TestUnmarshalErrors(t *testing.T) {
	valid := func(n int) []byte { return sketchOf(hashes(1, n)).AppendBinary(nil) }
	dense := valid(5000)
	bad := map[string][]byte{
		"nil":           nil,
		"version only":  {version},
		"version 0":     {0, kindSparse, 0},
		"version 2":     {2, kindSparse, 0},
		"kind 2":        {version, 2, 0},
		"no length":     {version, kindSparse},
		"long varint":   {version, kindSparse, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		"too many":      binary.AppendUvarint([]byte{version, kindSparse}, denseWords),
		"zero entry":    {version, kindSparse, 1, 0},
		"zero rank":     {version, kindSparse, 1, 64},
		"rank > 40":     {version, kindSparse, 1, 41},
		"entry >= 2^31": binary.AppendUvarint([]byte{version, kindSparse, 1}, 1<<31+1),
		"repeat":        {version, kindSparse, 2, 1, 0},
		"trailing":      append(valid(3), 0),
		"dense long":    append(bytes.Clone(dense), 0),
		"dense p=11":    func() []byte { b := bytes.Clone(dense); b[2] = 11; return b }(),
		"dense NaN": func() []byte {
			b := bytes.Clone(dense)
			binary.LittleEndian.PutUint64(b[3:], math.Float64bits(math.NaN()))
			return b
		}(),
		"dense -1": func() []byte {
			b := bytes.Clone(dense)
			binary.LittleEndian.PutUint64(b[3:], math.Float64bits(-1))
			return b
		}(),
		"dense +Inf": func() []byte {
			b := bytes.Clone(dense)
			binary.LittleEndian.PutUint64(b[3:], math.Float64bits(math.Inf(1)))
			return b
		}(),
		"register 56": func() []byte { b := bytes.Clone(dense); b[11] = 56; return b }(),
		"all zero":    func() []byte { b := bytes.Clone(dense); clear(b[11:]); return b }(),
	}
	for _, v := range [][]byte{valid(0), valid(3), valid(200), dense} {
		for i := range len(v) {
			bad[fmt.Sprintf("%x truncated to %d", v[:min(len(v), 4)], i)] = v[:i]
		}
	}
	orig := sketchOf(hashes(5, 100))
	for name, b := range bad {
		d := clone(orig)
		if err := d.UnmarshalBinary(b); err == nil {
			t.Errorf("%s: %x accepted", name, b)
		}
		if !same(d, orig) {
			t.Errorf("%s: failed decode changed the sketch", name)
		}
	}
}

// FuzzUnmarshal: decoding never panics, and whatever decodes is a working
// sketch whose encoding is stable.
func FuzzUnmarshal(f *testing.F) {
	for _, d := range everyMode() {
		f.Add(d.AppendBinary(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Distinct
		if d.UnmarshalBinary(b) != nil {
			return
		}
		enc := d.AppendBinary(nil)
		var e Distinct
		if err := e.UnmarshalBinary(enc); err != nil || !same(&d, &e) || !bytes.Equal(e.AppendBinary(nil), enc) {
			t.Fatalf("unstable: %x -> %x (%v)", b, enc, err)
		}
		if est := d.Estimate(); math.IsNaN(est) || math.IsInf(est, 0) || est < 0 {
			t.Fatalf("estimate %v", est)
		}
		d.Merge(sketchOf(hashes(1, 300)))
		d.Add(42)
		e.Merge(&d)
		if est := e.Estimate(); math.IsNaN(est) || math.IsInf(est, 0) || est < 0 {
			t.Fatalf("estimate after merge %v", est)
		}
	})
}
