package sketch

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"testing"
	"unsafe"
)

// stdErr is the HLL standard error at precision p; tests allow 3 of them.
func stdErr() float64 { return 1.04 / math.Sqrt(numRegs) }

// splitmix64 stands in for xxhash of record ids: well mixed 64-bit values.
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func hashes(seed uint64, n int) []uint64 {
	s := splitmix(seed)
	hs := make([]uint64, n)
	for i := range hs {
		hs[i] = s.next()
	}
	return hs
}

func sketchOf(hs []uint64) *Distinct {
	d := new(Distinct)
	for _, h := range hs {
		d.Add(h)
	}
	return d
}

func same(a, b *Distinct) bool { return a.in == b.in && slices.Equal(a.buf, b.buf) }

func clone(d *Distinct) *Distinct { return &Distinct{buf: slices.Clone(d.buf), in: d.in} }

func mode(d *Distinct) string {
	switch {
	case d.dense():
		return "dense"
	case len(d.buf) > 0:
		return "sparse"
	}
	return "inline"
}

// registers computes the dense registers of hs directly from the hashes,
// independently of the sketch code.
func registers(hs []uint64) [numRegs]uint8 {
	var regs [numRegs]uint8
	for _, h := range hs {
		r := uint8(min(bits.LeadingZeros64(h<<precision)+1, maxRho))
		regs[h>>(64-precision)] = max(regs[h>>(64-precision)], r)
	}
	return regs
}

func regsOf(d *Distinct) (regs [numRegs]uint8) {
	for j := range regs {
		regs[j] = uint8(d.buf[j/4] >> (j % 4 * 8))
	}
	return regs
}

// check verifies the invariants of d's form, and that its registers (if
// dense) are exactly those of hs.
func check(t *testing.T, d *Distinct, hs []uint64) {
	t.Helper()
	switch mode(d) {
	case "dense":
		if got, want := regsOf(d), registers(hs); got != want {
			t.Fatalf("registers differ from those computed from the hashes")
		}
		if d.sum() != changeSum(d.buf) {
			t.Fatalf("change sum %d, recomputed %d", d.sum(), changeSum(d.buf))
		}
	case "sparse":
		if d.in != [inlineN]uint32{} || len(d.buf) <= inlineN || !slices.IsSorted(d.buf) {
			t.Fatalf("bad sparse state %v %v", d.in, d.buf)
		}
	default:
		n := d.inlineLen()
		if !slices.IsSorted(d.in[:n]) || slices.ContainsFunc(d.in[n:], func(x uint32) bool { return x != 0 }) {
			t.Fatalf("bad inline state %v", d.in)
		}
	}
}

func TestStructSize(t *testing.T) {
	if s := unsafe.Sizeof(Distinct{}); s > 40 {
		t.Fatalf("sizeof(Distinct) = %d, want <= 40", s)
	}
}

func TestAccuracy(t *testing.T) {
	for _, n := range []int{0, 1, 2, 4, 5, 10, 100, 255, 256, 1000, 10_000, 100_000, 1_000_000} {
		hs := hashes(uint64(n)+1, n)
		d := sketchOf(hs)
		check(t, d, hs)
		got := d.Estimate()
		rel := (got - float64(n)) / float64(max(n, 1))
		t.Logf("n=%-8d %-6s estimate=%-12.1f rel.err=%+.4f", n, mode(d), got, rel)
		if n < 256 && got != float64(n) {
			t.Errorf("n=%d: estimate %v, want exact", n, got)
		}
		if math.Abs(rel) > 3*stdErr() {
			t.Errorf("n=%d: estimate %v off by %.2f%%", n, got, 100*rel)
		}
	}
}

// TestAccuracyStats measures bias and error over many streams, for Add and
// for each way Merge handles estimates.
func TestAccuracyStats(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const trials = 200
	for _, c := range []struct {
		name string
		a, b int // b > 0: estimate of a merged with a disjoint b
	}{
		{"add", 300, 0}, {"add", 1000, 0}, {"add", 3000, 0}, {"add", 10_000, 0}, {"add", 100_000, 0},
		{"sparse+sparse", 200, 200},
		{"dense+sparse", 2000, 200}, {"sparse+dense", 200, 2000},
		{"dense+dense", 1000, 1000}, {"dense+dense", 2000, 2000}, {"dense+dense", 5000, 5000}, {"dense+dense", 50_000, 50_000},
	} {
		var sum, sq float64
		for i := range trials {
			hs := hashes(uint64(i)<<32|uint64(c.a)<<8|7, c.a+c.b)
			d := sketchOf(hs[:c.a])
			if c.b > 0 {
				d.Merge(sketchOf(hs[c.a:]))
			}
			rel := d.Estimate()/float64(c.a+c.b) - 1
			sum += rel
			sq += rel * rel
		}
		bias, rmse := sum/trials, math.Sqrt(sq/trials)
		t.Logf("%-13s n=%-7d bias=%+.4f rmse=%.4f (HLL std.err %.4f)", c.name, c.a+c.b, bias, rmse, stdErr())
		if math.Abs(bias) > 0.01 || rmse > 1.2*stdErr() {
			t.Errorf("%s n=%d: bias %+.4f rmse %.4f", c.name, c.a+c.b, bias, rmse)
		}
	}
}

func TestDuplicates(t *testing.T) {
	for _, n := range []int{1, 4, 5, 200, 300, 5000} {
		hs := hashes(uint64(n), n)
		once := sketchOf(hs)
		d := new(Distinct)
		for i := range 3 {
			for _, h := range hs {
				d.Add(h)
				d.Add(hs[i%n])
			}
		}
		if !same(d, once) || d.Estimate() != once.Estimate() {
			t.Errorf("n=%d: duplicates changed the sketch: %v vs %v", n, d.Estimate(), once.Estimate())
		}
	}
}

func TestMerge(t *testing.T) {
	sizes := []int{0, 3, 4, 50, 200, 255, 2000, 50_000}
	for _, na := range sizes {
		for _, nb := range sizes {
			for _, overlap := range []float64{0, 0.5, 1} {
				common := int(overlap * float64(min(na, nb)))
				t.Run(fmt.Sprintf("%d+%d/%d", na, nb, common), func(t *testing.T) {
					hs := hashes(uint64(na*1000+nb), na+nb-common)
					ha, hb := hs[:na], hs[na-common:]
					a, b := sketchOf(ha), sketchOf(hb)
					bb := clone(b)
					d := clone(a)
					d.Merge(b)
					if !same(b, bb) {
						t.Fatal("Merge changed its argument")
					}
					check(t, d, hs)
					if n := len(hs); n < 256 && !d.dense() {
						if d.Estimate() != float64(n) || !same(d, sketchOf(hs)) {
							t.Fatalf("sparse union: estimate %v, want exactly %d", d.Estimate(), n)
						}
					} else if rel := d.Estimate()/float64(n) - 1; math.Abs(rel) > 3*stdErr() {
						t.Fatalf("union estimate %v for %d (%+.2f%%)", d.Estimate(), n, 100*rel)
					}
					d2 := clone(a)
					d2.Merge(b)
					if !same(d, d2) {
						t.Fatal("Merge is not deterministic")
					}
					var z Distinct
					z.Merge(b)
					if !same(&z, b) {
						t.Fatal("merge into zero value differs from the source")
					}
					d.Merge(d)
					if !same(d, d2) {
						t.Fatal("self merge changed the sketch")
					}
				})
			}
		}
	}
}

// TestMergeDominated checks that a dense merge which raises nothing, or
// whose result is one side, keeps that side's HIP estimate.
func TestMergeDominated(t *testing.T) {
	hs := hashes(9, 20_000)
	big, small := sketchOf(hs), sketchOf(hs[:5000])
	d := clone(big)
	d.Merge(small)
	if !same(d, big) {
		t.Error("merging a subset changed the sketch")
	}
	d = clone(small)
	d.Merge(big)
	if !same(d, big) {
		t.Error("merging into a subset did not give the superset's state")
	}
}

// TestResetNoAllocs is the bucket rotation: once warm, refilling a reset
// sketch must not allocate, whether it stays sparse or goes dense.
func TestResetNoAllocs(t *testing.T) {
	for _, n := range []int{3, 100, 255, 256, 5000} {
		hs := hashes(uint64(n), n)
		for _, warm := range []int{n, 5000} {
			var d Distinct
			for _, h := range hashes(1, warm) {
				d.Add(h)
			}
			allocs := testing.AllocsPerRun(20, func() {
				d.Reset()
				for _, h := range hs {
					d.Add(h)
				}
			})
			if allocs != 0 {
				t.Errorf("n=%d warmed with %d: %v allocs per refill", n, warm, allocs)
			}
			if d.Estimate() == 0 && n > 0 {
				t.Error("refill lost")
			}
		}
	}
}

func TestReset(t *testing.T) {
	d := sketchOf(hashes(1, 3000))
	size := d.SizeBytes()
	d.Reset()
	if d.Estimate() != 0 || d.SizeBytes() != size {
		t.Fatalf("after Reset: estimate %v, size %d (was %d)", d.Estimate(), d.SizeBytes(), size)
	}
	for _, n := range []int{2, 100, 1000} {
		d.Reset()
		hs := hashes(uint64(n), n)
		for _, h := range hs {
			d.Add(h)
		}
		fresh := sketchOf(hs)
		if !same(d, fresh) || d.Estimate() != fresh.Estimate() {
			t.Errorf("n=%d: reused sketch differs from a fresh one", n)
		}
		check(t, d, hs)
	}
}

func TestSizeBytes(t *testing.T) {
	for _, c := range []struct{ n, size int }{
		{0, 0}, {1, 0}, {4, 0}, {5, 32}, {8, 32}, {9, 64}, {100, 512}, {255, 1024}, {256, 1024}, {1_000_000, 1024},
	} {
		if got := sketchOf(hashes(uint64(c.n), c.n)).SizeBytes(); got != c.size {
			t.Errorf("n=%d: SizeBytes %d, want %d", c.n, got, c.size)
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	for _, n := range []int{4, 200} { // inline, sparse: refill after Reset
		b.Run(fmt.Sprintf("sparse-%d", n), func(b *testing.B) {
			hs := hashes(1, n)
			d := sketchOf(hs)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%n == 0 {
					d.Reset()
				}
				d.Add(hs[i%n])
			}
		})
	}
	b.Run("dense", func(b *testing.B) { // a long stream of new ids
		s := splitmix(2)
		d := new(Distinct)
		for range 1_000_000 {
			d.Add(s.next())
		}
		b.ReportAllocs()
		for b.Loop() {
			d.Add(s.next())
		}
	})
}

func BenchmarkEstimate(b *testing.B) {
	for _, n := range []int{3, 200, 100_000} {
		d := sketchOf(hashes(1, n))
		b.Run(mode(d), func(b *testing.B) {
			b.ReportAllocs()
			var sum float64
			for b.Loop() {
				sum += d.Estimate()
			}
		})
	}
}

func BenchmarkMerge(b *testing.B) {
	for _, c := range []struct{ a, b int }{{200, 40}, {100_000, 100_000}, {100_000, 200}, {200, 100_000}} {
		x, y := sketchOf(hashes(1, c.a)), sketchOf(hashes(2, c.b))
		b.Run(mode(x)+"+"+mode(y), func(b *testing.B) {
			d := clone(x)
			d.Merge(y) // warm capacity
			b.ReportAllocs()
			for b.Loop() {
				d.Reset()
				d.Merge(x) // into empty: a copy
				d.Merge(y)
			}
		})
	}
}
