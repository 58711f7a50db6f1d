// Package sketch provides bounded-memory cardinality sketches for per-entity window buckets.
package sketch

import (
	"math"
	"math/bits"
	"slices"
)

// precision is the HyperLogLog precision p of the dense form: 2^p registers
// of one byte each. p=10 gives 1024 bytes and a standard error of
// 1.04/sqrt(1024) ≈ 3.25% (HIP: ≈ 2.6%). With ~10 buckets for each of up to
// a million entities memory matters more than the last percent of accuracy,
// and the detectors compare counts against baselines that vary far more.
// Changing it changes the encoding, so bump version with it.
const precision = 10

const (
	numRegs    = 1 << precision
	denseWords = numRegs / 4 // registers are packed four to a uint32 word
	maxRho     = 64 - precision + 1

	// Sparse entries use HLL++'s high precision p'=25: the top 25 bits of
	// the hash and the rank (leading zeros + 1) of the remaining 39 bits in
	// the low 6 bits. Two distinct hashes share an entry with probability
	// about 2^-26, so counting entries is exact in practice, and an entry
	// carries exactly what the dense register needs (see entryReg).
	sparseP    = 25
	rankBits   = 6
	maxSubRank = 64 - sparseP + 1

	inlineN = 4 // entries held in the struct itself; see Distinct
)

// Distinct estimates the number of distinct 64-bit hashes added to it. The
// hashes must already be well mixed (xxhash or similar): the sketch uses
// their bits directly.
//
// It has three forms, chosen by how many distinct entries it has seen:
//
//   - inline: up to 4 sparse entries, sorted, in the struct (no heap);
//   - sparse: 5 to 255 sorted entries in buf; the count is exact;
//   - dense: 1024 one-byte HLL registers packed in buf (len(buf) ==
//     denseWords, which is how the form is told), with the HIP estimate and
//     the change-probability sum in the struct where the inline entries were.
//
// Sparse turns dense when it would hold 256 entries, that is when it would
// be as large as the dense form. Both heap forms share the one buffer: Reset
// keeps it, so a bucket that went dense once refills its sparse entries and
// later its registers in the same 1 KiB without allocating. The price is
// that a once-busy bucket keeps 1 KiB while light; bucket rotation reuses
// buckets, so that memory is wanted again soon.
//
// The zero value is an empty sketch. A Distinct is not safe for concurrent
// use, and must not be copied by value once used: copies share the buffer.
type Distinct struct {
	buf []uint32
	// in holds sorted sparse entries (0 = unused; entries are never 0) in
	// the inline form, nothing (all zero) in the sparse form, and in the
	// dense form the HIP estimate (float64 bits, words 0-1) and the change
	// sum (words 2-3, see weight).
	in [inlineN]uint32
}

// Add adds a hash and reports whether the sketch changed. It allocates
// only to grow the buffer (at most 6 times, up to 1 KiB), never after Reset
// of a sketch that has held as many entries.
//
// The report lets callers holding nested sketches (a 1m bucket inside a 15m
// bucket inside a 1h one) stop early: a hash that does not change a sketch
// cannot change any sketch of a superset, whose entries (sparse) or
// registers (dense) are at least as large.
func (d *Distinct) Add(h uint64) bool {
	if len(d.buf) == denseWords {
		j := uint32(h >> (64 - precision))
		r := uint32(bits.LeadingZeros64(h<<precision|1<<(precision-1))) + 1
		return d.raise(j, r)
	}
	e := uint32(h>>(64-sparseP))<<rankBits |
		uint32(bits.LeadingZeros64(h<<sparseP|1<<(sparseP-1))) + 1
	if len(d.buf) == 0 {
		if added, fits := d.addInline(e); fits {
			return added
		}
		d.reserve(inlineN + 1)
		d.buf = append(d.buf[:0], d.in[:]...)
		d.in = [inlineN]uint32{}
	}
	i, found := slices.BinarySearch(d.buf, e)
	if found {
		return false
	}
	n := len(d.buf)
	if n+1 == denseWords {
		d.densify(d.buf, []uint32{e}, denseWords)
		return true
	}
	d.reserve(n + 1)
	d.buf = d.buf[:n+1]
	copy(d.buf[i+1:], d.buf[i:n])
	d.buf[i] = e
	return true
}

// addInline adds e to the inline entries; fits is false if they are full
// and e is not among them, added whether e was new.
func (d *Distinct) addInline(e uint32) (added, fits bool) {
	for i, x := range d.in {
		if x == e {
			return false, true
		}
		if x == 0 || x > e {
			if d.in[inlineN-1] != 0 {
				return false, false // sorted: e is not further on
			}
			copy(d.in[i+1:], d.in[i:inlineN-1])
			d.in[i] = e
			return true, true
		}
	}
	return false, false
}

// Estimate returns the estimated number of distinct hashes added: exact
// while sparse, the HIP estimate once dense. It is O(1).
func (d *Distinct) Estimate() float64 {
	switch n := len(d.buf); {
	case n == denseWords:
		return d.hip()
	case n > 0:
		return float64(n)
	}
	return float64(d.inlineLen())
}

// Reset empties the sketch but keeps its buffer for reuse.
func (d *Distinct) Reset() {
	d.buf = d.buf[:0]
	d.in = [inlineN]uint32{}
}

// SizeBytes returns the heap bytes held by the sketch, excluding the struct.
func (d *Distinct) SizeBytes() int { return 4 * cap(d.buf) }

// Merge makes d the union of d and o; o is unchanged. The result depends only
// on the two states, never on map order or randomness.
//
// The estimate stays as good as the inputs allow:
//   - sparse with sparse: the union of the entries, so the count stays
//     exact, also when the union turns dense (HIP then starts from it);
//   - dense with sparse (either way round): the sparse entries are replayed
//     into the dense side's HIP estimator, as if its stream had gone on with
//     them. Entries the dense side has seen never raise a register, so they
//     add nothing, as HIP requires. They are replayed in an order fixed by a
//     bijective mix of each entry, since sorted order would correlate with
//     the register and rank and bias the estimate;
//   - dense with dense: the HIP history of a union is lost, so unless one
//     side's registers dominate the other's (then its estimate is kept), the
//     standard HLL estimate with linear counting for small ranges is taken
//     once here and HIP goes on from it.
func (d *Distinct) Merge(o *Distinct) {
	if o == d || len(o.buf) == 0 && o.in[0] == 0 { // nothing new
		return
	}
	switch {
	case d.dense() && o.dense():
		d.mergeDense(o)
	case o.dense():
		var keys [denseWords]uint64
		k := replayOrder(&keys, d.entries())
		d.loadDense(o.buf)
		d.setHip(o.hip())
		d.replay(k)
	case d.dense():
		var keys [denseWords]uint64
		d.replay(replayOrder(&keys, o.entries()))
	default:
		d.mergeSparse(o.entries())
	}
}

// mergeSparse merges sorted entries b into sparse d.
func (d *Distinct) mergeSparse(b []uint32) {
	a := d.entries()
	u := len(a) + len(b)
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			u--
			i++
			j++
		}
	}
	na := len(a)
	switch {
	case u == na:
	case u >= denseWords:
		d.densify(a, b, u)
	case u <= inlineN:
		mergeBack(d.in[:u], na, b)
	default:
		d.reserve(u)
		if len(d.buf) == 0 { // inline to sparse
			d.buf = append(d.buf, a...)
			d.in = [inlineN]uint32{}
		}
		d.buf = d.buf[:u]
		mergeBack(d.buf, na, b)
	}
}

// mergeBack merges sorted b into sorted a[:na], giving sorted a, which must
// be exactly as long as the union. It works from the back, so a's entries
// move before they are overwritten.
func mergeBack(a []uint32, na int, b []uint32) {
	i, j, k := na-1, len(b)-1, len(a)-1
	for ; j >= 0; k-- {
		switch {
		case i >= 0 && a[i] > b[j]:
			a[k] = a[i]
			i--
		case i >= 0 && a[i] == b[j]:
			a[k] = a[i]
			i--
			j--
		default:
			a[k] = b[j]
			j--
		}
	}
}

// mergeDense merges dense o into dense d (see Merge for the estimate).
func (d *Distinct) mergeDense(o *Distinct) {
	raised, lowered := false, false
	for w, ow := range o.buf {
		dw := d.buf[w]
		// Bytewise max of four registers: they are below 128, so
		// ow|0x80 - dw cannot borrow across bytes and its top bit says
		// ow >= dw.
		ge := ((ow | 0x80808080) - dw) & 0x80808080
		ge = (ge >> 7) * 0xff
		mx := ow&ge | dw&^ge
		raised = raised || mx != dw
		lowered = lowered || mx != ow
		d.buf[w] = mx
	}
	switch {
	case !raised: // o added nothing the registers can see
	case !lowered: // d's state is o's
		d.in = o.in
	default:
		d.setSum(changeSum(d.buf))
		d.setHip(hllEstimate(d.buf))
	}
}

// densify makes d dense from the sparse entries a and b, whose union has n
// entries. a and b may be d's own entries.
func (d *Distinct) densify(a, b []uint32, n int) {
	var regs [denseWords]uint32
	for _, e := range a {
		j, r := entryReg(e)
		foldReg(&regs, j, r)
	}
	for _, e := range b {
		j, r := entryReg(e)
		foldReg(&regs, j, r)
	}
	d.loadDense(regs[:])
	d.setHip(float64(n))
}

// loadDense copies regs (denseWords words) into d's buffer as its registers
// and sets their change sum; the HIP estimate is left to the caller.
func (d *Distinct) loadDense(regs []uint32) {
	d.buf = d.buf[:0]
	d.reserve(denseWords)
	d.buf = d.buf[:denseWords]
	copy(d.buf, regs)
	d.setSum(changeSum(d.buf))
}

func changeSum(regs []uint32) uint64 {
	var s uint64
	for _, w := range regs {
		s += weight(w&0xff) + weight(w>>8&0xff) + weight(w>>16&0xff) + weight(w>>24)
	}
	return s
}

// raise sets register j to at least r, updating the HIP estimate when it
// changes.
//
// HIP (Cohen 2015; Ting 2014): a new distinct hash changes the registers
// with probability P = (1/m) Σ_j P(rank > R_j); adding 1/P at each change
// gives an unbiased estimate with about 20% less error than the HLL
// formula. P is kept exact as the integer S = Σ_j weight(R_j) = P·2^64, so
// the estimate does not drift and survives encoding bit for bit.
func (d *Distinct) raise(j, r uint32) bool {
	w := &d.buf[j/4]
	sh := j % 4 * 8
	old := *w >> sh & 0xff
	if r <= old {
		return false
	}
	s := d.sum()
	d.setHip(d.hip() + 0x1p64/float64(s)) // s > 0: register j could rise
	*w += (r - old) << sh
	d.setSum(s - weight(old) + weight(r))
	return true
}

// weight returns 2^(64-p) · P(rank > r), in [0, 2^54]. The sum over all
// registers is below 2^64 as long as one register is non-zero, which holds
// for every dense sketch.
func weight(r uint32) uint64 {
	if r >= maxRho {
		return 0
	}
	return 1 << (maxRho - 1 - r)
}

// hllEstimate is the HyperLogLog estimate (Flajolet et al. 2007) with linear
// counting below 5m/2. 64-bit hashes need no large-range correction.
func hllEstimate(regs []uint32) float64 {
	const m = numRegs
	var sum float64
	zeros := 0
	for _, w := range regs {
		for sh := 0; sh < 32; sh += 8 {
			r := int(w >> sh & 0xff)
			sum += math.Float64frombits(uint64(1023-r) << 52) // 2^-r
			if r == 0 {
				zeros++
			}
		}
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(float64(m)/float64(zeros))
	}
	return e
}

// replayOrder returns es, each entry in the low half of a key whose high
// half is a bijective mix of it, sorted: an order that does not correlate
// with register or rank.
func replayOrder(keys *[denseWords]uint64, es []uint32) []uint64 {
	k := keys[:len(es)]
	for i, e := range es {
		x := e
		x ^= x >> 16 // murmur3 fmix32
		x *= 0x85ebca6b
		x ^= x >> 13
		x *= 0xc2b2ae35
		x ^= x >> 16
		k[i] = uint64(x)<<32 | uint64(e)
	}
	slices.Sort(k)
	return k
}

func (d *Distinct) replay(keys []uint64) {
	for _, k := range keys {
		d.raise(entryReg(uint32(k)))
	}
}

// entryReg returns the dense register and rank a sparse entry stands for:
// the same ones its hash would give directly.
func entryReg(e uint32) (j, r uint32) {
	idx := e >> rankBits
	j = idx >> (sparseP - precision)
	if mid := idx << (32 - sparseP + precision); mid != 0 {
		return j, uint32(bits.LeadingZeros32(mid)) + 1
	}
	return j, sparseP - precision + e&(1<<rankBits-1)
}

func foldReg(regs *[denseWords]uint32, j, r uint32) {
	w := &regs[j/4]
	sh := j % 4 * 8
	if old := *w >> sh & 0xff; r > old {
		*w += (r - old) << sh
	}
}

// reserve makes cap(d.buf) at least n (≤ denseWords), keeping its contents.
// Capacities are powers of two from 8 up to denseWords, so a growing sparse
// buffer ends up exactly the dense size.
func (d *Distinct) reserve(n int) {
	if cap(d.buf) >= n {
		return
	}
	c := min(max(8, 1<<bits.Len(uint(n-1))), denseWords)
	b := make([]uint32, len(d.buf), c)
	copy(b, d.buf)
	d.buf = b
}

func (d *Distinct) dense() bool { return len(d.buf) == denseWords }

// entries returns the sparse entries, sorted; d must not be dense.
func (d *Distinct) entries() []uint32 {
	if len(d.buf) > 0 {
		return d.buf
	}
	return d.in[:d.inlineLen()]
}

func (d *Distinct) inlineLen() int {
	n := 0
	for n < inlineN && d.in[n] != 0 {
		n++
	}
	return n
}

func (d *Distinct) hip() float64 {
	return math.Float64frombits(uint64(d.in[1])<<32 | uint64(d.in[0]))
}

func (d *Distinct) setHip(v float64) {
	b := math.Float64bits(v)
	d.in[0], d.in[1] = uint32(b), uint32(b>>32)
}

func (d *Distinct) sum() uint64 { return uint64(d.in[3])<<32 | uint64(d.in[2]) }

func (d *Distinct) setSum(s uint64) { d.in[2], d.in[3] = uint32(s), uint32(s>>32) }
