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
	// carries exactly what the dense register needs (see entryReg). Entries
	// are below 2^31 and never 0.
	sparseP    = 25
	rankBits   = 6
	maxSubRank = 64 - sparseP + 1

	inlineN = 4 // entries held in the struct itself; see Distinct

	// The sparse form is an open-addressing hash set of entries whose table
	// is the whole buffer: a power of two from minTable to denseWords slots,
	// at most 3/4 full, so it holds up to maxSparse entries.
	minTable  = 8
	maxSparse = denseWords * 3 / 4

	// sortedMark in in[0] marks the sorted sparse form (see Distinct).
	sortedMark = 1
)

// Distinct estimates the number of distinct 64-bit hashes added to it. The
// hashes must already be well mixed (xxhash or similar): the sketch uses
// their bits directly.
//
// It has three forms, chosen by how many distinct entries it has seen:
//
//   - inline: up to 4 sparse entries, sorted, in in (no heap); len(buf) == 0;
//   - sparse: 5 to 192 entries in an open-addressing hash set in buf; the
//     count is exact, and is len(buf);
//   - dense: 1024 one-byte HLL registers packed in buf (len(buf) ==
//     denseWords, which is how the form is told), with the HIP estimate and
//     the change-probability sum in in.
//
// The sparse hash set is buf[:cap(buf)], beyond len(buf): cap(buf) is always
// a power of two, from 8 to 256, and is the number of slots. A slot holds an
// entry or 0 (empty: entries are never 0). An entry's home slot is its top
// bits, e·cap/2^31 (entries are hash bits, so these are uniform), and it sits
// in the first free slot from there on, wrapping around (linear probing).
// Adding an entry that would fill more than 3/4 of the slots first doubles
// the table, rehashing into a new buffer; at 256 slots it makes the sketch
// dense instead: a 193rd entry would pass that load, and the dense form
// takes the same 1 KiB. At 3/4 load a repeat takes about 2.5 probes on
// average and a new entry 8.5, fewer below; Add is O(1). Since home slots
// rise with the entry, the table is nearly sorted, and encoding, which needs
// sorted entries, sorts a copy on the stack cheaply.
//
// in holds, per form:
//
//   - inline: the entries, sorted, then zeros;
//   - sparse: all zeros;
//   - sorted sparse, a fourth form: {sortedMark, 0, 0, 0}. Earlier versions
//     kept sorted entries and turned dense at 256, so their version-1
//     encodings can hold 193 to 255 sparse entries. Decoding one keeps them
//     as they are (exact count, and the same bytes when encoded again),
//     sorted in buf[:len(buf)] and found by binary search. Only decoding
//     makes this form, and the first new entry, from Add or Merge, makes it
//     dense;
//   - dense: the HIP estimate (float64 bits, words 0-1) and the change sum
//     (words 2-3, see weight).
//
// Both heap forms share the one buffer: Reset keeps it, and the next fill
// hashes into all of its slots (clearing them when a fifth entry leaves the
// inline form), so a bucket that went dense once refills its sparse set
// without rehashing, and later its registers, in the same 1 KiB without
// allocating. The price is that a once-busy bucket keeps 1 KiB while light;
// bucket rotation reuses buckets, so that memory is wanted again soon.
//
// The zero value is an empty sketch. A Distinct is not safe for concurrent
// use, and must not be copied by value once used: copies share the buffer.
type Distinct struct {
	buf []uint32
	in  [inlineN]uint32 // see above
}

// Add adds a hash and reports whether the sketch changed. It allocates
// only to grow the buffer (at most 6 times, up to 1 KiB), never after Reset
// of a sketch that has held as many entries.
//
// The report lets callers holding nested sketches (a 1m bucket inside a 15m
// bucket inside a 1h one) stop early: a hash that does not change a sketch
// cannot change any sketch of a superset, whose entries (sparse) or
// registers (dense) are at least as large.
func (d *Distinct) Add(h uint64) bool { return d.AddWith(h, nil) }

// AddWith is Add drawing the buffers it needs from p, and giving p the
// table a growing sparse set leaves behind. p may be nil.
func (d *Distinct) AddWith(h uint64, p *Pool) bool {
	n := len(d.buf)
	if n == denseWords {
		j := uint32(h >> (64 - precision))
		r := uint32(bits.LeadingZeros64(h<<precision|1<<(precision-1))) + 1
		return d.raise(j, r)
	}
	e := uint32(h>>(64-sparseP))<<rankBits |
		uint32(bits.LeadingZeros64(h<<sparseP|1<<(sparseP-1))) + 1
	if n == 0 {
		if added, fits := d.addInline(e); fits {
			return added
		}
		d.spill(e, p)
		return true
	}
	if d.in[0] != 0 {
		return d.addSorted(e)
	}
	t := d.buf[:cap(d.buf)]
	mask := len(t) - 1
	i := home(e, len(t))
	for {
		x := t[i&mask]
		if x == e {
			return false
		}
		if x == 0 {
			break
		}
		i++
	}
	if 4*(n+1) > 3*len(t) {
		d.grow(e, p)
		return true
	}
	t[i&mask] = e
	d.buf = d.buf[:n+1]
	return true
}

// home returns the slot where probing for entry e starts in a table of size
// slots: its top bits, so that home slots rise with the entry.
func home(e uint32, size int) int { return int(uint64(e) * uint64(size) >> 31) }

// insert adds entry e to the hash table t unless it is there; t must have a
// free slot.
func insert(t []uint32, e uint32) {
	mask := len(t) - 1
	for i := home(e, len(t)); ; i = (i + 1) & mask {
		switch t[i] {
		case 0:
			t[i] = e
			return
		case e:
			return
		}
	}
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

// spill turns the full inline form into the sparse one, with new entry e:
// five entries in a table of all the buffer's slots.
func (d *Distinct) spill(e uint32, p *Pool) {
	if cap(d.buf) < minTable {
		d.buf = p.get(minTable)
	}
	t := d.buf[:cap(d.buf)]
	clear(t) // what a previous fill left
	for _, x := range d.in {
		insert(t, x)
	}
	insert(t, e)
	d.buf = t[:inlineN+1]
	d.in = [inlineN]uint32{}
}

// grow adds new entry e to the sparse set whose table is full: it doubles
// the table, or at 256 slots makes the sketch dense.
func (d *Distinct) grow(e uint32, p *Pool) {
	n := len(d.buf)
	old := d.buf[:cap(d.buf)]
	if len(old) >= denseWords {
		d.densify(old, []uint32{e}, n+1)
		return
	}
	t := p.get(2 * len(old))
	t = t[:cap(t)]
	clear(t)
	for _, x := range old {
		if x != 0 {
			insert(t, x)
		}
	}
	insert(t, e)
	d.buf = t[:n+1]
	p.put(old)
}

// addSorted adds e to the sorted sparse form: any new entry makes it dense.
func (d *Distinct) addSorted(e uint32) bool {
	if _, found := slices.BinarySearch(d.buf, e); found {
		return false
	}
	d.densify(d.buf, []uint32{e}, len(d.buf)+1)
	return true
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

// Recycle empties the sketch like Reset, but gives its buffer to p when
// the buffer is at least four times the table that the larger of its fill
// and next's calls for (next, which may be nil, is the sketch whose fill
// best predicts this one's next: a bucket's neighbour). A bucket that was
// busy once then holds no more than its recent fills need, and the buffer
// serves a busier sketch; if this one gets busy again, it takes one from
// p. With a nil p it is Reset.
func (d *Distinct) Recycle(p *Pool, next *Distinct) {
	if c := cap(d.buf); p != nil && c > 0 {
		need := d.need()
		if next != nil {
			need = max(need, next.need())
		}
		if 4*need <= c {
			p.put(d.buf)
			d.buf = nil
		}
	}
	d.Reset()
}

// Free empties the sketch and gives its buffer to p (a nil p leaves it to
// the GC): for a sketch that is done with, such as a forgotten entity's.
func (d *Distinct) Free(p *Pool) {
	p.put(d.buf)
	*d = Distinct{}
}

// need returns the buffer slots the sketch's entries call for: none for
// the inline form, a table holding them at most 3/4 full, or denseWords
// once dense.
func (d *Distinct) need() int {
	n := len(d.buf)
	if n == 0 {
		return 0
	}
	if n == denseWords || d.in[0] == sortedMark {
		return denseWords
	}
	size := minTable
	for 4*n > 3*size {
		size *= 2
	}
	return size
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
		var es [denseWords]uint32
		k := replayOrder(&keys, d.appendEntries(es[:0]))
		d.loadDense(o.buf)
		d.setHip(o.hip())
		d.replay(k)
	case d.dense():
		var keys [denseWords]uint64
		var es [denseWords]uint32
		d.replay(replayOrder(&keys, o.appendEntries(es[:0])))
	default:
		d.mergeSparse(o)
	}
}

// mergeSparse merges the entries of o into d; neither is dense.
func (d *Distinct) mergeSparse(o *Distinct) {
	na := int(d.Estimate()) // exact while sparse
	if na == 0 && len(o.buf) > 0 && o.in[0] != sortedMark && cap(d.buf) <= cap(o.buf) {
		// A copy of hashed o, table and all.
		if cap(d.buf) < cap(o.buf) {
			d.buf = make([]uint32, 0, cap(o.buf))
		}
		d.buf = d.buf[:len(o.buf)]
		copy(d.buf[:cap(d.buf)], o.buf[:cap(o.buf)])
		return
	}
	u := na
	for _, e := range o.raw() {
		if e != 0 && !d.has(e) {
			u++
		}
	}
	switch {
	case u == na:
	case u > maxSparse:
		d.densify(d.raw(), o.raw(), u)
	case u <= inlineN: // both inline
		mergeBack(d.in[:u], na, o.in[:o.inlineLen()])
	case len(d.buf) > 0 && 4*u <= 3*cap(d.buf): // hashed, with room
		t := d.buf[:cap(d.buf)]
		for _, e := range o.raw() {
			if e != 0 {
				insert(t, e)
			}
		}
		d.buf = t[:u]
	default: // a new table, or the kept buffer of an inline d
		size := minTable
		for 4*u > 3*size {
			size *= 2
		}
		in := d.in
		a, t := in[:], d.buf[:cap(d.buf)]
		if len(d.buf) > 0 { // hashed, too small for u
			a = t
		}
		if len(d.buf) > 0 || len(t) < size {
			t = make([]uint32, size)
		} else {
			clear(t)
		}
		for _, e := range a {
			if e != 0 {
				insert(t, e)
			}
		}
		for _, e := range o.raw() {
			if e != 0 {
				insert(t, e)
			}
		}
		d.buf = t[:u]
		d.in = [inlineN]uint32{}
	}
}

// raw returns where d's sparse entries are kept: the inline array, the hash
// table or the sorted entries; zeros in it are not entries. d must not be
// dense.
func (d *Distinct) raw() []uint32 {
	if len(d.buf) == 0 {
		return d.in[:]
	}
	if d.in[0] == sortedMark {
		return d.buf
	}
	return d.buf[:cap(d.buf)]
}

// has reports whether sparse d holds entry e.
func (d *Distinct) has(e uint32) bool {
	switch {
	case len(d.buf) == 0:
		return slices.Contains(d.in[:], e)
	case d.in[0] == sortedMark:
		_, found := slices.BinarySearch(d.buf, e)
		return found
	}
	t := d.buf[:cap(d.buf)]
	mask := len(t) - 1
	for i := home(e, len(t)); t[i] != 0; i = (i + 1) & mask {
		if t[i] == e {
			return true
		}
	}
	return false
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

// setEntries makes d the sparse sketch of the strictly increasing entries
// es (fewer than denseWords), in the form their number calls for, as
// decoding gives them. es must not share memory with d's buffer.
func (d *Distinct) setEntries(es []uint32) {
	n := len(es)
	d.buf = d.buf[:0]
	d.in = [inlineN]uint32{}
	switch {
	case n <= inlineN:
		copy(d.in[:], es)
	case n <= maxSparse:
		size := minTable
		for 4*n > 3*size {
			size *= 2
		}
		if cap(d.buf) < size {
			d.buf = make([]uint32, 0, size)
		}
		t := d.buf[:cap(d.buf)]
		clear(t)
		for _, e := range es {
			insert(t, e)
		}
		d.buf = t[:n]
	default:
		if cap(d.buf) < denseWords {
			d.buf = make([]uint32, 0, denseWords)
		}
		d.buf = append(d.buf, es...)
		d.in[0] = sortedMark
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
// entries. a and b may be d's own entries or hash table, in any order; zeros
// (empty slots) are skipped.
func (d *Distinct) densify(a, b []uint32, n int) {
	var regs [denseWords]uint32
	// The change sum of all-zero registers is numRegs·weight(0) = 2^64,
	// which wraps to 0; the sum of the result is below 2^64, so adding the
	// changes with wrap-around gives it exactly.
	s := foldEntries(&regs, a, 0)
	s = foldEntries(&regs, b, s)
	if cap(d.buf) < denseWords {
		d.buf = make([]uint32, denseWords)
	}
	d.buf = d.buf[:denseWords]
	copy(d.buf, regs[:])
	d.setSum(s)
	d.setHip(float64(n))
}

// foldEntries raises regs to the registers of entries es (zeros skipped)
// and returns change sum s updated for the changes, modulo 2^64.
func foldEntries(regs *[denseWords]uint32, es []uint32, s uint64) uint64 {
	for _, e := range es {
		if e == 0 {
			continue
		}
		j, r := entryReg(e)
		w := &regs[j/4]
		sh := j % 4 * 8
		if old := *w >> sh & 0xff; r > old {
			*w += (r - old) << sh
			s += weight(r) - weight(old)
		}
	}
	return s
}

// loadDense copies regs (denseWords words) into d's buffer as its registers
// and sets their change sum; the HIP estimate is left to the caller.
func (d *Distinct) loadDense(regs []uint32) {
	if cap(d.buf) < denseWords {
		d.buf = make([]uint32, denseWords)
	}
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

func (d *Distinct) dense() bool { return len(d.buf) == denseWords }

// appendEntries appends d's sparse entries to dst in storage order (sorted
// unless hashed); d must not be dense.
func (d *Distinct) appendEntries(dst []uint32) []uint32 {
	switch {
	case len(d.buf) == 0:
		return append(dst, d.in[:d.inlineLen()]...)
	case d.in[0] == sortedMark:
		return append(dst, d.buf...)
	}
	for _, e := range d.buf[:cap(d.buf)] {
		if e != 0 {
			dst = append(dst, e)
		}
	}
	return dst
}

// sorted returns d's sparse entries, sorted: d's own inline or sorted
// entries, or those of its hash table copied into s; d must not be dense.
func (d *Distinct) sorted(s *[denseWords]uint32) []uint32 {
	switch {
	case len(d.buf) == 0:
		return d.in[:d.inlineLen()]
	case d.in[0] == sortedMark:
		return d.buf
	}
	// An entry sits at or after its home slot, and home slots rise with the
	// entry, so reading the slots in order gives entries nearly sorted:
	// only entries of one cluster can be out of order, and entries of a
	// cluster wrapping past the end of the table sit before their home, at
	// its start; they are taken last.
	t := d.buf[:cap(d.buf)]
	es := s[:0]
	for i, e := range t {
		if e != 0 && home(e, len(t)) <= i {
			es = append(es, e)
		}
	}
	for i, e := range t {
		if e == 0 {
			break
		}
		if home(e, len(t)) > i {
			es = append(es, e)
		}
	}
	// Insertion sort: linear in the entries plus the few inversions.
	for i := 1; i < len(es); i++ {
		e := es[i]
		j := i
		for ; j > 0 && es[j-1] > e; j-- {
			es[j] = es[j-1]
		}
		es[j] = e
	}
	return es
}

// inlineLen is the number of inline entries: they come first, so it is the
// count of non-zero words, counted without branches ((x + 2^32-1) >> 32 is
// 1 for a non-zero 32-bit x, 0 for 0). Estimate reads it on every
// distinct check of a small sketch; the loop it replaces, a branch per
// entry, was slower even though Estimate inlined it and cannot inline
// this.
func (d *Distinct) inlineLen() int {
	const m = 1<<32 - 1
	return int((uint64(d.in[0])+m)>>32 + (uint64(d.in[1])+m)>>32 + (uint64(d.in[2])+m)>>32 + (uint64(d.in[3])+m)>>32)
}

// inlineLen counts exactly inlineN words: this fails to compile otherwise.
var _ = [1]struct{}{}[inlineN-4]

func (d *Distinct) hip() float64 {
	return math.Float64frombits(uint64(d.in[1])<<32 | uint64(d.in[0]))
}

func (d *Distinct) setHip(v float64) {
	b := math.Float64bits(v)
	d.in[0], d.in[1] = uint32(b), uint32(b>>32)
}

func (d *Distinct) sum() uint64 { return uint64(d.in[3])<<32 | uint64(d.in[2]) }

func (d *Distinct) setSum(s uint64) { d.in[2], d.in[3] = uint32(s), uint32(s>>32) }
