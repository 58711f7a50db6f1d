package sketch

import (
	"runtime"
	"slices"
	"testing"
)

// TestAddWithPoolSameAsAdd: where a sketch's buffer comes from (a pool, a
// buffer given back by Recycle, a fresh allocation) never changes what it
// holds, estimates or encodes, through fills of every form and recycling
// between them.
func TestAddWithPoolSameAsAdd(t *testing.T) {
	p := NewPool(1 << 20)
	var pooled, next Distinct
	s := splitmix(7)
	for round, n := range []int{3, 5, 40, 300, 2, 0, 190, 193, 7, 1000, 4, 60, 5} {
		plain := new(Distinct)
		hs := make([]uint64, n)
		for i := range hs {
			if i%5 == 4 {
				hs[i] = hs[i/2] // repeats
			} else {
				hs[i] = s.next()
			}
		}
		for _, h := range hs {
			if got, want := pooled.AddWith(h, p), plain.Add(h); got != want {
				t.Fatalf("round %d: AddWith reported %v, Add %v", round, got, want)
			}
		}
		check(t, &pooled, hs)
		if !same(&pooled, plain) || pooled.Estimate() != plain.Estimate() {
			t.Fatalf("round %d (n=%d): pooled sketch differs from a plain one", round, n)
		}
		if got, want := pooled.AppendBinary(nil), plain.AppendBinary(nil); !slices.Equal(got, want) {
			t.Fatalf("round %d (n=%d): encodings differ", round, n)
		}
		// Alternate the predictor between this fill and nothing.
		if round%2 == 0 {
			pooled.Recycle(p, &next)
		} else {
			pooled.Recycle(p, plain)
		}
		if pooled.Estimate() != 0 {
			t.Fatalf("round %d: Recycle left estimate %v", round, pooled.Estimate())
		}
	}
	if st := p.Stats(); st.Reused == 0 || st.Kept == 0 {
		t.Errorf("the pool was not used: %+v", st)
	}
}

func TestRecycle(t *testing.T) {
	for _, c := range []struct {
		fill, next int
		keep       bool // the buffer stays with the sketch
	}{
		{fill: 1000, next: 0, keep: true},  // dense: 1 KiB, all used
		{fill: 150, next: 0, keep: true},   // 256 slots, more than a quarter
		{fill: 40, next: 0, keep: false},   // a 64-slot table would do
		{fill: 40, next: 1000, keep: true}, // but the neighbour was dense
		{fill: 48, next: 0, keep: false},   // 64 slots: exactly a quarter
		{fill: 49, next: 0, keep: true},    // 128 slots, more than a quarter
		{fill: 3, next: 3, keep: false},    // inline fills need no buffer
		{fill: 3, next: 6, keep: true},     // 8 slots, kept for a fill of 6
	} {
		p := NewPool(1 << 20)
		var d Distinct
		for _, h := range hashes(1, 300) { // grow the buffer to 1 KiB
			d.AddWith(h, p)
		}
		d.Reset()
		if c.fill <= 4 { // shrink it to 8 slots first, to see inline fills release it
			d.Recycle(p, nil)
			for _, h := range hashes(2, 5) {
				d.AddWith(h, p)
			}
			d.Reset()
		}
		for _, h := range hashes(3, c.fill) {
			d.AddWith(h, p)
		}
		next := sketchOf(hashes(4, c.next))
		size, held := d.SizeBytes(), p.Held()
		d.Recycle(p, next)
		if d.Estimate() != 0 || d.inlineLen() != 0 {
			t.Fatalf("fill %d, next %d: not empty after Recycle", c.fill, c.next)
		}
		switch kept := d.SizeBytes() == size; {
		case kept != c.keep:
			t.Errorf("fill %d, next %d: buffer of %d bytes kept %v, want %v", c.fill, c.next, size, kept, c.keep)
		case !kept && (d.SizeBytes() != 0 || p.Held() != held+size):
			t.Errorf("fill %d, next %d: released %d bytes, pool grew by %d", c.fill, c.next, size, p.Held()-held)
		}
	}
	// Without a pool, Recycle is Reset.
	d := sketchOf(hashes(1, 40))
	size := d.SizeBytes()
	d.Recycle(nil, nil)
	if d.SizeBytes() != size || d.Estimate() != 0 {
		t.Errorf("Recycle without a pool: size %d (was %d), estimate %v", d.SizeBytes(), size, d.Estimate())
	}
}

func TestFree(t *testing.T) {
	p := NewPool(1 << 20)
	d := sketchOf(hashes(1, 1000))
	d.Free(p)
	if d.SizeBytes() != 0 || d.Estimate() != 0 || p.Held() != 4*denseWords {
		t.Errorf("after Free: %d bytes, estimate %v; pool holds %d", d.SizeBytes(), d.Estimate(), p.Held())
	}
	d = sketchOf(hashes(1, 1000))
	d.Free(nil)
	if d.SizeBytes() != 0 || d.Estimate() != 0 {
		t.Errorf("after Free(nil): %d bytes, estimate %v", d.SizeBytes(), d.Estimate())
	}
}

// TestPoolSteadyNoAllocs is the pool's point: sketches whose fills come
// and go, each meeting more values than it ever held now and then, stop
// allocating once the pool has served them all for a while.
func TestPoolSteadyNoAllocs(t *testing.T) {
	p := NewPool(1 << 20)
	ds := make([]Distinct, 64)
	s := splitmix(1)
	round := func(r int) {
		for i := range ds {
			// A fill between 0 and ~1000 distinct values, its size drawn
			// afresh each round: sketches take turns being busy.
			n := int(s.next() % 1024 >> (s.next() % 11))
			for range n {
				ds[i].AddWith(s.next(), p)
			}
			ds[i].Recycle(p, &ds[(i+1)%len(ds)])
		}
	}
	for r := range 50 {
		round(r)
	}
	if allocs := testing.AllocsPerRun(200, func() { round(0) }); allocs != 0 {
		t.Errorf("%v allocations per round of 64 fills", allocs)
	}
	st := p.Stats()
	if st.Reused == 0 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
	// Misses are few: each allocates half as many buffers as were made.
	if st.Misses > 6*12 {
		t.Errorf("%d misses for %d buffers", st.Misses, st.Made)
	}
}

func TestPoolBuffers(t *testing.T) {
	p := NewPool(1 << 20)
	// Buffers handed out are of the size asked, and never overlap: fill
	// every one with its own mark and read them all back.
	var bufs [][]uint32
	for i := range 400 {
		size := minTable << (i % numClasses)
		b := p.get(size)
		if len(b) != 0 || cap(b) != size {
			t.Fatalf("get(%d): len %d cap %d", size, len(b), cap(b))
		}
		b = b[:size]
		for j := range b {
			b[j] = uint32(i)
		}
		bufs = append(bufs, b)
	}
	for i, b := range bufs {
		for _, x := range b {
			if x != uint32(i) {
				t.Fatalf("buffer %d overwritten by buffer %d", i, x)
			}
		}
	}
	// Given back, they are handed out again, by size, without allocating.
	for _, b := range bufs {
		p.put(b)
	}
	held := p.Held()
	if allocs := testing.AllocsPerRun(100, func() {
		for c := range numClasses {
			b := p.get(minTable << c)
			p.put(b)
		}
	}); allocs != 0 {
		t.Errorf("%v allocations reusing buffers", allocs)
	}
	if p.Held() != held {
		t.Errorf("held %d, was %d", p.Held(), held)
	}
	// Buffers of sizes sketches do not use, and buffers beyond the limit,
	// are left to the GC; others the pool did not make are kept.
	before := p.Stats()
	p.put(make([]uint32, 0, 12))
	p.put(make([]uint32, 0, 64))
	if st := p.Stats(); st.Dropped != before.Dropped+1 || st.Kept != before.Kept+1 {
		t.Errorf("dropped %d, kept %d", st.Dropped-before.Dropped, st.Kept-before.Kept)
	}
	small := NewPool(4 * denseWords)
	small.put(small.get(denseWords))
	small.put(make([]uint32, 0, denseWords))
	if small.Held() != 4*denseWords || small.Stats().Dropped != 1 {
		t.Errorf("small pool holds %d, dropped %d", small.Held(), small.Stats().Dropped)
	}
}

// TestPoolMissesAtLimit: a pool at its limit allocates one buffer a miss,
// and what it allocates stays linear in the buffers (its free list grows
// by doubling, not by one at every miss).
func TestPoolMissesAtLimit(t *testing.T) {
	p := NewPool(4 * denseWords)
	const n = 100_000
	keep := make([][]uint32, 0, n)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		keep = append(keep, p.get(minTable))
	}
	runtime.ReadMemStats(&m1)
	if per := float64(m1.TotalAlloc-m0.TotalAlloc) / n; per > 4*minTable+32 {
		t.Errorf("%.0f bytes allocated per buffer of %d", per, 4*minTable)
	}
	runtime.KeepAlive(keep)
}

// TestPoolNil: sketches without a pool allocate and give nothing back.
func TestPoolNil(t *testing.T) {
	var p *Pool
	if b := p.get(64); cap(b) != 64 {
		t.Errorf("nil pool get: cap %d", cap(b))
	}
	p.put(make([]uint32, 0, 64)) // must not panic
	var d Distinct
	for _, h := range hashes(1, 500) {
		d.AddWith(h, nil)
	}
	d.Recycle(nil, nil)
	d.Free(nil)
}
