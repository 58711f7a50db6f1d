package sketch

import (
	"math/bits"
	"unsafe"
)

// numClasses is the number of buffer sizes a Distinct uses: tables of 8,
// 16, 32, 64, 128 and 256 slots (the last also the dense form's size).
const numClasses = 6

// Pool is a free list of sketch buffers by size: the buffers that the
// sketches of one owner gave back (Recycle, Free, and the tables left
// behind when one grows), for the next sketch of that owner that needs
// one. Bucket fills come and go (a principal busy this hour is quiet the
// next, another one starts), so a set of sketches drawing on one pool
// stops allocating once the pool has as many buffers of each size as they
// use at once, where sketches that each keep their own largest buffer
// allocate whenever one of them meets more distinct values than it ever
// held.
//
// A Pool is owned, like the sketches that use it: it is not safe for
// concurrent use, and every sketch taking from or giving to it must
// belong to the same goroutine. (Not a sync.Pool: its buffers are meant to
// stay, and a GC must not empty it.) A nil *Pool is valid: sketches then
// allocate what they need and give nothing back.
type Pool struct {
	// free holds, per class, the free buffers by their first word: the
	// class says the size, so 8 bytes an entry rather than a slice's 24
	// (the lists are sized for every buffer the pool made, see miss).
	free [numClasses][]*uint32
	// made counts, per class, the buffers the pool allocated.
	made [numClasses]int
	// held is the bytes of the buffers in free; limit bounds it: a buffer
	// given back beyond it is left to the GC.
	held, limit int
	stats       PoolStats
}

// PoolStats counts what a Pool did.
type PoolStats struct {
	Reused  uint64 // buffers handed out from the free lists
	Misses  uint64 // gets that found the free list empty
	Made    uint64 // buffers allocated at those misses
	Kept    uint64 // buffers given back and kept
	Dropped uint64 // buffers given back but left to the GC (over the limit)
}

// NewPool returns a pool holding at most limit bytes of free buffers.
func NewPool(limit int) *Pool { return &Pool{limit: limit} }

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats { return p.stats }

// Held returns the bytes of the free buffers the pool holds.
func (p *Pool) Held() int { return p.held }

// classOf returns the class of a buffer of size slots, or -1 if that is
// not a size sketches use.
func classOf(size int) int {
	if size < minTable || size > denseWords || size&(size-1) != 0 {
		return -1
	}
	return bits.TrailingZeros(uint(size)) - bits.TrailingZeros(minTable)
}

// get returns a buffer of length 0 and capacity size (a power of two from
// minTable to denseWords) whose contents are undefined.
func (p *Pool) get(size int) []uint32 {
	if p == nil {
		return make([]uint32, 0, size)
	}
	c := classOf(size)
	l := p.free[c]
	if len(l) == 0 {
		return p.miss(c, size)
	}
	b := unsafe.Slice(l[len(l)-1], size)[:0]
	l[len(l)-1] = nil
	p.free[c] = l[:len(l)-1]
	p.held -= 4 * size
	p.stats.Reused++
	return b
}

// maxMiss bounds the bytes one miss allocates.
const maxMiss = 256 << 10

// miss returns a new buffer of class c (size slots) for a pool with none
// free. Like a slice's append, it allocates ahead: half as many buffers of
// the class as the pool made so far, and keeps all of them but the one
// returned. Demand that creeps past what the sketches ever used at once (a
// new bucket alignment, a busier day) then finds a buffer: the misses of a
// class are logarithmic in its buffers, where sketches keeping their own
// buffers allocate each time one meets more values than any before it.
//
// Each buffer is its own allocation, not a piece of a larger one, so that
// one the pool drops (over its limit) is memory the GC gets back. Buffers
// never move between classes: a free list holds only buffers of its size,
// so free small ones cannot strand the demand for large ones, and the free
// list, sized here for every buffer of the class the pool made, never
// grows while it is given them back.
func (p *Pool) miss(c, size int) []uint32 {
	n := min(p.made[c]/2, maxMiss/(4*size), (p.limit-p.held)/(4*size))
	n = max(n, 1)
	p.made[c] += n
	p.stats.Misses++
	p.stats.Made += uint64(n)
	if cap(p.free[c]) < p.made[c] {
		// Doubled, not just enough: a pool at its limit makes one buffer
		// a miss, and copying the list each time would be quadratic.
		l := make([]*uint32, len(p.free[c]), max(p.made[c], 2*cap(p.free[c])))
		copy(l, p.free[c])
		p.free[c] = l
	}
	for range n - 1 {
		p.put(make([]uint32, 0, size))
	}
	return make([]uint32, 0, size)
}

// put gives buffer b, which no sketch may use any more, to the pool; one
// beyond the limit is left to the GC. A free list has room for every
// buffer the pool made (see miss), so it grows (allocates) only for
// buffers the pool did not make, such as those of decoded entities.
func (p *Pool) put(b []uint32) {
	if p == nil || cap(b) == 0 {
		return
	}
	size := cap(b)
	c := classOf(size)
	if c < 0 || p.held+4*size > p.limit {
		p.stats.Dropped++
		return
	}
	l := p.free[c]
	if len(l) == cap(l) {
		l = append(make([]*uint32, 0, 2*len(l)+16), l...)
	}
	p.free[c] = append(l, &b[:1][0])
	p.held += 4 * size
	p.stats.Kept++
}
