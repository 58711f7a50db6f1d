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

// same reports whether a and b are in the same state: the same form and
// entries or registers. Hash tables of different sizes (a buffer kept by
// Reset) may hold the same entries in different slots.
func same(a, b *Distinct) bool {
	if a.in != b.in || mode(a) != mode(b) {
		return false
	}
	if a.dense() {
		return slices.Equal(a.buf, b.buf)
	}
	var sa, sb [denseWords]uint32
	return slices.Equal(a.sorted(&sa), b.sorted(&sb))
}

// identical reports whether a and b are the same bit for bit, hash table
// slots included.
func identical(a, b *Distinct) bool {
	return a.in == b.in && len(a.buf) == len(b.buf) && slices.Equal(a.buf[:cap(a.buf)], b.buf[:cap(b.buf)])
}

// clone copies d, with its whole buffer (the hash table is all of it).
func clone(d *Distinct) *Distinct {
	buf := make([]uint32, cap(d.buf))
	copy(buf, d.buf[:cap(d.buf)])
	return &Distinct{buf: buf[:len(d.buf)], in: d.in}
}

func mode(d *Distinct) string {
	switch {
	case d.dense():
		return "dense"
	case len(d.buf) > 0 && d.in[0] == sortedMark:
		return "sorted"
	case len(d.buf) > 0:
		return "sparse"
	}
	return "inline"
}

// entry is the sparse entry of h, computed independently of Add.
func entry(h uint64) uint32 {
	top := uint32(h >> (64 - sparseP))
	rank := uint32(min(bits.LeadingZeros64(h<<sparseP)+1, maxSubRank))
	return top<<rankBits | rank
}

// entriesOf returns the sorted distinct entries of hs.
func entriesOf(hs []uint64) []uint32 {
	es := make([]uint32, len(hs))
	for i, h := range hs {
		es[i] = entry(h)
	}
	slices.Sort(es)
	return slices.Compact(es)
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

// check verifies the invariants of d's form, and that its entries (if
// sparse) or registers (if dense) are exactly those of hs.
func check(t *testing.T, d *Distinct, hs []uint64) {
	t.Helper()
	checkForm(t, d)
	if d.dense() {
		if got, want := regsOf(d), registers(hs); got != want {
			t.Fatalf("registers differ from those computed from the hashes")
		}
		return
	}
	var s [denseWords]uint32
	if got, want := d.sorted(&s), entriesOf(hs); !slices.Equal(got, want) {
		t.Fatalf("%s: entries differ from those computed from the hashes: %d vs %d", mode(d), len(got), len(want))
	}
}

// checkForm verifies the invariants of d's form.
func checkForm(t *testing.T, d *Distinct) {
	t.Helper()
	switch mode(d) {
	case "dense":
		if d.sum() != changeSum(d.buf) {
			t.Fatalf("change sum %d, recomputed %d", d.sum(), changeSum(d.buf))
		}
	case "sorted":
		if d.in != [inlineN]uint32{sortedMark} || len(d.buf) <= maxSparse || len(d.buf) >= denseWords || !isStrictlySorted(d.buf) {
			t.Fatalf("bad sorted sparse state %v %v", d.in, d.buf)
		}
	case "sparse":
		c := cap(d.buf)
		if d.in != [inlineN]uint32{} || len(d.buf) <= inlineN || len(d.buf) > maxSparse ||
			c < minTable || c > denseWords || c&(c-1) != 0 || 4*len(d.buf) > 3*c {
			t.Fatalf("bad sparse state: in %v, %d entries, %d slots", d.in, len(d.buf), c)
		}
		tab, n := d.buf[:c], 0
		for i, e := range tab {
			if e == 0 {
				continue
			}
			n++
			// e must be found by probing from its home: no empty slot
			// between, and no other copy of it.
			for j := home(e, c); j != i; j = (j + 1) % c {
				if tab[j] == 0 || tab[j] == e {
					t.Fatalf("entry %#x in slot %d unreachable from home %d", e, i, home(e, c))
				}
			}
		}
		if n != len(d.buf) {
			t.Fatalf("%d entries in the table, count %d", n, len(d.buf))
		}
		var s [denseWords]uint32
		if !isStrictlySorted(d.sorted(&s)) {
			t.Fatal("sorted entries are not sorted")
		}
	default:
		n := d.inlineLen()
		if !isStrictlySorted(d.in[:n]) || slices.ContainsFunc(d.in[n:], func(x uint32) bool { return x != 0 }) {
			t.Fatalf("bad inline state %v", d.in)
		}
	}
}

func isStrictlySorted(es []uint32) bool {
	for i := 1; i < len(es); i++ {
		if es[i-1] >= es[i] {
			return false
		}
	}
	return true
}

// regOf is the dense register and rank of h, computed independently.
func regOf(h uint64) (int, uint8) {
	return int(h >> (64 - precision)), uint8(min(bits.LeadingZeros64(h<<precision)+1, maxRho))
}

// queries returns a stream mixing new hashes, repeats of earlier ones and
// new hashes that share an entry with an earlier one (low bits flipped).
func queries(seed uint64, n int) []uint64 {
	s := splitmix(seed)
	qs := make([]uint64, n)
	for i := range qs {
		switch x := s.next(); {
		case i > 0 && x%4 == 0:
			qs[i] = qs[x>>32%uint64(i)]
		case i > 0 && x%4 == 1:
			qs[i] = qs[x>>32%uint64(i)] ^ 1
		default:
			qs[i] = s.next()
		}
	}
	return qs
}

// TestAddReport checks Add's report in every form: true exactly for a new
// entry while not dense, and once dense exactly when a register rises.
func TestAddReport(t *testing.T) {
	for _, start := range []string{"empty", "sorted", "reused-dense", "reused-sparse"} {
		t.Run(start, func(t *testing.T) {
			var d *Distinct
			var seen []uint64
			switch start {
			case "empty":
				d = new(Distinct)
			case "sorted":
				d = legacySorted(200)
				seen = hashes(300, 200)
			case "reused-dense":
				d = sketchOf(hashes(1, 5000))
				d.Reset()
			case "reused-sparse":
				d = sketchOf(hashes(1, 50))
				d.Reset()
			}
			set := map[uint32]bool{}
			var regs [numRegs]uint8
			for _, h := range seen {
				set[entry(h)] = true
				j, r := regOf(h)
				regs[j] = max(regs[j], r)
			}
			counts := map[string][2]int{}
			qs := queries(7, 6000)
			for i := range min(len(seen), 20) { // repeats first: stay sorted
				qs[i] = seen[i*7%len(seen)]
			}
			for i, h := range qs {
				m := mode(d)
				var want bool
				j, r := regOf(h)
				if m == "dense" {
					want = r > regs[j]
				} else {
					want = !set[entry(h)]
				}
				set[entry(h)] = true
				regs[j] = max(regs[j], r)
				seen = append(seen, h)
				got := d.Add(h)
				if got != want {
					t.Fatalf("add %d (%s, %d entries): Add = %v, want %v", i, m, len(set), got, want)
				}
				c := counts[m]
				if got {
					c[0]++
				} else {
					c[1]++
				}
				counts[m] = c
				if mode(d) != m || i%97 == 0 {
					check(t, d, seen)
					if d.dense() && regsOf(d) != regs {
						t.Fatal("registers differ from the model's")
					}
				}
			}
			for m, c := range counts {
				t.Logf("%-6s %5d changed, %5d unchanged", m, c[0], c[1])
				if c[0] == 0 || c[1] == 0 {
					t.Errorf("%s: reports not both seen", m)
				}
			}
		})
	}
}

// TestSuperset checks what nested buckets rely on: when a holds a subset of
// b's hashes, a hash that leaves a unchanged leaves b unchanged, whatever
// forms the two are in.
func TestSuperset(t *testing.T) {
	covered := map[string]int{}
	for _, na := range []int{0, 2, 4, 5, 30, 150, 192, 193, 400, 3000} {
		for _, extra := range []int{0, 1, 3, 50, 190, 500, 5000} {
			for _, sorted := range []bool{false, true} {
				if sorted && na != 0 {
					continue
				}
				hs := hashes(uint64(na)<<20|uint64(extra), na+extra)
				var a, b *Distinct
				if sorted { // a decoded, b decoded and grown
					a, b = legacySorted(220), legacySorted(220)
				} else {
					a, b = new(Distinct), new(Distinct)
				}
				// b gets a's hashes and the extra ones, interleaved.
				for i, j := 0, na; i < na || j < len(hs); {
					if i < na && (j == len(hs) || (i+j)%3 != 0) {
						a.Add(hs[i])
						b.Add(hs[i])
						i++
					} else {
						b.Add(hs[j])
						j++
					}
				}
				qs := queries(uint64(na*7+extra), 3000)
				// Queries repeat a's and b's hashes too.
				for i := range qs {
					if len(hs) > 0 && i%5 == 0 {
						qs[i] = hs[qs[i]%uint64(len(hs))]
					}
				}
				if sorted { // a's decoded hashes first: a stays sorted
					copy(qs, hashes(320, 20))
				}
				for i, h := range qs {
					ma, mb := mode(a), mode(b)
					ra, rb := a.Add(h), b.Add(h)
					if !ra {
						covered[ma+"/"+mb]++
						if rb {
							t.Fatalf("a %d+%d (%s/%s) query %d: unchanged a, changed b", na, extra, ma, mb, i)
						}
					}
				}
			}
		}
	}
	for _, c := range []string{"inline/inline", "inline/sparse", "inline/dense", "sparse/sparse", "sparse/dense", "dense/dense", "sorted/sorted", "sorted/dense"} {
		if covered[c] == 0 {
			t.Errorf("%s: no unchanged Add seen", c)
		}
	}
	t.Logf("unchanged Adds of a by forms: %v", covered)
}

func TestStructSize(t *testing.T) {
	if s := unsafe.Sizeof(Distinct{}); s > 40 {
		t.Fatalf("sizeof(Distinct) = %d, want <= 40", s)
	}
}

func TestAccuracy(t *testing.T) {
	for _, n := range []int{0, 1, 2, 4, 5, 10, 100, 192, 193, 255, 256, 1000, 10_000, 100_000, 1_000_000} {
		hs := hashes(uint64(n)+1, n)
		d := sketchOf(hs)
		check(t, d, hs)
		got := d.Estimate()
		rel := (got - float64(n)) / float64(max(n, 1))
		t.Logf("n=%-8d %-6s estimate=%-12.1f rel.err=%+.4f", n, mode(d), got, rel)
		if n <= maxSparse && got != float64(n) {
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
		{"sparse+sparse", 150, 150},
		{"dense+sparse", 2000, 150}, {"sparse+dense", 150, 2000},
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
	sizes := []int{0, 3, 4, 50, 120, 192, 200, 255, 2000, 50_000}
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
					if !identical(b, bb) {
						t.Fatal("Merge changed its argument")
					}
					check(t, d, hs)
					if n := len(hs); n <= maxSparse {
						if d.Estimate() != float64(n) || !same(d, sketchOf(hs)) {
							t.Fatalf("sparse union: estimate %v, want exactly %d", d.Estimate(), n)
						}
					} else if rel := d.Estimate()/float64(n) - 1; math.Abs(rel) > 3*stdErr() {
						t.Fatalf("union estimate %v for %d (%+.2f%%)", d.Estimate(), n, 100*rel)
					}
					d2 := clone(a)
					d2.Merge(b)
					if !identical(d, d2) {
						t.Fatal("Merge is not deterministic")
					}
					// The same in buffers kept by Reset (larger tables).
					ra, rb := sketchOf(hashes(99, 5000)), sketchOf(hashes(98, 150))
					ra.Reset()
					rb.Reset()
					for _, h := range ha {
						ra.Add(h)
					}
					for _, h := range hb {
						rb.Add(h)
					}
					ra.Merge(rb)
					check(t, ra, hs)
					if !same(ra, d) || ra.Estimate() != d.Estimate() {
						t.Fatalf("merge in reused buffers: %s %v, fresh: %s %v", mode(ra), ra.Estimate(), mode(d), d.Estimate())
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
	for _, n := range []int{3, 5, 100, 192, 193, 255, 256, 5000} {
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
		// Sparse tables are at most 3/4 full.
		{0, 0}, {1, 0}, {4, 0}, {5, 32}, {6, 32}, {7, 64}, {12, 64}, {13, 128}, {24, 128}, {25, 256},
		{48, 256}, {49, 512}, {96, 512}, {97, 1024}, {192, 1024}, {193, 1024}, {1_000_000, 1024},
	} {
		if got := sketchOf(hashes(uint64(c.n), c.n)).SizeBytes(); got != c.size {
			t.Errorf("n=%d: SizeBytes %d, want %d", c.n, got, c.size)
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	for _, n := range []int{4, 150, 200} { // inline, sparse (200: dense at the end): refill after Reset
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
	b.Run("repeat-150", func(b *testing.B) { // ids seen before: lookups
		hs := hashes(1, 150)
		d := sketchOf(hs)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			d.Add(hs[i%len(hs)])
		}
	})
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
	for _, n := range []int{3, 150, 100_000} {
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
	for _, c := range []struct{ a, b int }{{150, 40}, {100_000, 100_000}, {100_000, 150}, {150, 100_000}} {
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

// BenchmarkAddMixed mimics the engine: each entity has nested window buckets
// (here five, Reset after 4, 16, 64, 256 and 1024 events: inline, two sizes
// of sparse, a bucket that turns dense near its end and one that is mostly
// dense). An event adds a new random hash to its entity's buckets, smallest
// first, and stops at the first that reports no change, as the engine does.
// Buckets are warm (have been through a rotation), so nothing allocates. One
// op is one event; ns/add divides by the Adds actually made.
func BenchmarkAddMixed(b *testing.B) {
	const entities = 256
	resetEvery := [...]int{4, 16, 64, 256, 1024}
	type entity struct {
		events int
		ws     [len(resetEvery)]Distinct
	}
	es := make([]entity, entities)
	s := splitmix(3)
	adds := 0
	event := func(i int) {
		e := &es[i%entities]
		h := s.next()
		for k := range e.ws {
			w := &e.ws[k]
			if e.events%resetEvery[k] == 0 {
				w.Reset()
			}
			adds++
			if !w.Add(h) {
				break
			}
		}
		e.events++
	}
	// Warm up: two full rotations of the largest bucket, from staggered
	// starting points so entities are not all in the same phase.
	for i := range es {
		es[i].events = i * 37
	}
	for i := range 2 * resetEvery[len(resetEvery)-1] * entities {
		event(i)
	}
	adds = 0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		event(i)
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(adds, 1)), "ns/add")
	b.ReportMetric(float64(adds)/float64(max(i, 1)), "adds/op")
}

func BenchmarkEncoding(b *testing.B) {
	for _, n := range []int{3, 150, 100_000} {
		d := sketchOf(hashes(1, n))
		enc := d.AppendBinary(nil)
		b.Run("append-"+mode(d), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				buf = d.AppendBinary(buf[:0])
			}
		})
		b.Run("unmarshal-"+mode(d), func(b *testing.B) {
			var e Distinct
			e.UnmarshalBinary(enc) // warm capacity
			b.ReportAllocs()
			for b.Loop() {
				if err := e.UnmarshalBinary(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
