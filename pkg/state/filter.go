package state

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"

	badger "github.com/dgraph-io/badger/v4"
)

// Above engine.max_entities, every entity not in memory is looked up in
// Badger before it is created, and most of those lookups miss: a customer
// seen for the first time cannot be stored. The misses cost a Badger read
// each (4-6% of the pipeline's CPU in `detector bench`). A Bloom filter of
// the stored entity hashes answers "certainly not stored" from memory.
//
// It is blocked (the bits of one entity share a 512-bit block, one cache
// line) and lock-free: shards look up and checkpoints add concurrently, with
// atomic word operations. Deleted entities keep their bits (a false
// positive costs only the Badger read it would have cost anyway). It is
// built from a key scan when the store opens and rebuilt twice as large at
// the start of a checkpoint once it holds more than one entity per
// bitsPerEntity bits, so its false-positive rate stays near 1%.
type filter struct {
	words []uint64 // len a power of two, a multiple of 8
	mask  uint64   // blocks - 1
	added atomic.Int64
}

const (
	bitsPerEntity = 12
	minFilterBits = 1 << 23 // 1 MiB
	blockWords    = 8       // 512 bits
)

func newFilter(entities int64) *filter {
	n := max(uint64(entities)*2*bitsPerEntity, minFilterBits)
	n = 1 << bits.Len64(n-1) // a power of two
	words := n / 64
	return &filter{words: make([]uint64, words), mask: words/blockWords - 1}
}

// probe returns the block's first word and the four bit positions of h.
func (f *filter) probe(h uint64) (base uint64, b [4]uint16) {
	base = (h & f.mask) * blockWords
	x := h>>32 | h<<32
	x *= 0x9e3779b97f4a7c15
	for i := range b {
		b[i] = uint16(x>>(16*i)) & 511
	}
	return base, b
}

func (f *filter) add(h uint64) {
	base, b := f.probe(h)
	for _, p := range b {
		atomic.OrUint64(&f.words[base+uint64(p>>6)], 1<<(p&63))
	}
	f.added.Add(1)
}

func (f *filter) mayContain(h uint64) bool {
	base, b := f.probe(h)
	for _, p := range b {
		if atomic.LoadUint64(&f.words[base+uint64(p>>6)])&(1<<(p&63)) == 0 {
			return false
		}
	}
	return true
}

// full reports whether the filter holds more entities than it was sized
// for.
func (f *filter) full() bool { return f.added.Load()*bitsPerEntity > int64(len(f.words))*64 }

// buildFilter scans the stored entity keys as of the newest checkpoint
// into a new filter sized for twice as many, and installs it.
func (s *Store) buildFilter() error {
	var keys []uint64
	if ts := s.readTs.Load(); ts != 0 {
		txn := s.db.NewTransactionAt(ts, false)
		defer txn.Discard()
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixEntity}})
		for it.Rewind(); it.Valid(); it.Next() {
			if k := it.Item().Key(); len(k) == 9 {
				keys = append(keys, binary.BigEndian.Uint64(k[1:]))
			}
		}
		it.Close()
		// Task spaces (space.go), spread by their space.
		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixSpace}})
		for it.Rewind(); it.Valid(); it.Next() {
			if k := it.Item().Key(); len(k) == 13 {
				keys = append(keys, filterKey(Space(binary.BigEndian.Uint32(k[1:])), binary.BigEndian.Uint64(k[5:])))
			}
		}
		it.Close()
	}
	f := newFilter(int64(len(keys)))
	for _, h := range keys {
		f.add(h)
	}
	s.filter.Store(f)
	return nil
}
