package sketch

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// legacySorted returns the sketch of n distinct hashes (193 to 255) in the
// sorted sparse form, as decoding an earlier version's encoding gives it.
func legacySorted(n int) *Distinct {
	es := entriesOf(hashes(uint64(n)+100, n))
	b := binary.AppendUvarint([]byte{version, kindSparse}, uint64(len(es)))
	prev := uint32(0)
	for _, e := range es {
		b = binary.AppendUvarint(b, uint64(e-prev))
		prev = e
	}
	d := new(Distinct)
	if err := d.UnmarshalBinary(b); err != nil {
		panic(err)
	}
	return d
}

// everyMode returns sketches in every form a sketch can be in.
func everyMode() map[string]*Distinct {
	merged := sketchOf(hashes(1, 3000))
	merged.Merge(sketchOf(hashes(2, 3000)))
	reused := sketchOf(hashes(3, 3000))
	reused.Reset()
	reused.Add(1)
	sparseReused := sketchOf(hashes(3, 3000))
	sparseReused.Reset()
	for _, h := range hashes(5, 150) {
		sparseReused.Add(h)
	}
	return map[string]*Distinct{
		"empty":          new(Distinct),
		"inline1":        sketchOf(hashes(1, 1)),
		"inline4":        sketchOf(hashes(1, 4)),
		"sparse5":        sketchOf(hashes(1, 5)),
		"sparse192":      sketchOf(hashes(1, 192)),
		"sparse-reused":  sparseReused,
		"sorted255":      legacySorted(255),
		"dense193":       sketchOf(hashes(1, 193)),
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

// TestGolden decodes version-1 encodings written by the earlier
// implementation (sorted sparse array, dense from 256 entries; see
// testdata/v1-golden.txt): each must decode to the same estimate, entries
// and registers, and encode again to the same bytes. Sketches of up to 192
// entries, sparse in both implementations, must encode to the same bytes.
func TestGolden(t *testing.T) {
	f, err := os.Open("testdata/v1-golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	cases := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		var name, estHex, encHex string
		var seed uint64
		var n int
		if _, err := fmt.Sscan(line, &name, &seed, &n, &estHex, &encHex); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		estBits, err := strconv.ParseUint(estHex, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := hex.DecodeString(encHex)
		if err != nil {
			t.Fatal(err)
		}
		cases++
		var d Distinct
		if err := d.UnmarshalBinary(enc); err != nil {
			t.Fatalf("%s %d: %v", name, n, err)
		}
		checkForm(t, &d)
		if got := math.Float64bits(d.Estimate()); got != estBits {
			t.Errorf("%s %d: estimate %v, want %v", name, n, d.Estimate(), math.Float64frombits(estBits))
		}
		if got := d.AppendBinary(nil); !bytes.Equal(got, enc) {
			t.Errorf("%s %d: encodes again to different bytes", name, n)
		}
		if name != "stream" {
			continue
		}
		hs := hashes(seed, n)
		check(t, &d, hs)
		fresh := sketchOf(hs)
		switch {
		case n <= maxSparse:
			if !bytes.Equal(fresh.AppendBinary(nil), enc) {
				t.Errorf("%s %d: sketch of the same stream encodes differently", name, n)
			}
		case n < denseWords:
			if mode(&d) != "sorted" || !fresh.dense() {
				t.Errorf("%d entries: decoded %s, fresh %s", n, mode(&d), mode(fresh))
			}
			// Same registers as the fresh (now dense) sketch of the stream.
			d2 := clone(&d)
			d2.Add(hs[0]) // a duplicate: stays sorted
			if !same(d2, &d) {
				t.Errorf("%d entries: a duplicate changed the sorted form", n)
			}
			d2.Add(^hs[0]) // new: turns dense, from the exact count
			if !d2.dense() || d2.Estimate() != float64(n+1) || regsOf(d2) != registers(append(slices.Clone(hs), ^hs[0])) {
				t.Errorf("%d entries: a new entry gave %s with estimate %v", n, mode(d2), d2.Estimate())
			}
		default:
			if regsOf(fresh) != regsOf(&d) {
				t.Errorf("%s %d: registers differ from a fresh sketch's", name, n)
			}
		}
	}
	if err := sc.Err(); err != nil || cases < 20 {
		t.Fatalf("read %d cases: %v", cases, err)
	}
}

// TestSortedMerge merges the sorted sparse form (decoded from an earlier
// version) with every form: a subset leaves it as it is, anything new makes
// it dense from the exact count, and merged into another sketch it gives
// the union.
func TestSortedMerge(t *testing.T) {
	const n = 230
	hs := hashes(n+100, n) // legacySorted(n)'s hashes
	for _, c := range []struct {
		name  string
		other []uint64
	}{
		{"empty", nil}, {"inline-subset", hs[:3]}, {"sparse-subset", hs[:150]}, {"same", hs},
		{"inline-new", hashes(1, 2)}, {"sparse-new", hashes(1, 40)}, {"dense", hashes(1, 3000)},
		{"dense-subset", append(slices.Clone(hs[:100]), hs...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			union := append(slices.Clone(hs), c.other...)
			nu := len(entriesOf(union))
			o := sketchOf(c.other)
			d := legacySorted(n)
			d.Merge(o)
			check(t, d, union)
			switch {
			case o.dense(): // dense, with o's estimate and the replayed entries
				if !d.dense() || math.Abs(d.Estimate()/float64(nu)-1) > 3*stdErr() {
					t.Errorf("%s, estimate %v for %d", mode(d), d.Estimate(), nu)
				}
			case nu == n:
				if !same(d, legacySorted(n)) {
					t.Errorf("merging a subset changed the sorted form (now %s)", mode(d))
				}
			case d.Estimate() != float64(nu):
				t.Errorf("estimate %v, want exactly %d", d.Estimate(), nu)
			}
			if o.dense() {
				return
			}
			// The other way round: the sorted form as the argument.
			o2, s := clone(o), legacySorted(n)
			o2.Merge(s)
			check(t, o2, union)
			if !same(s, legacySorted(n)) {
				t.Error("Merge changed its argument")
			}
			if o2.Estimate() != float64(nu) {
				t.Errorf("reverse: estimate %v, want exactly %d", o2.Estimate(), nu)
			}
		})
	}
}
