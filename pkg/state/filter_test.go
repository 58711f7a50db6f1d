package state

import (
	"math/rand/v2"
	"testing"
)

// TestFilterNeverMissesAStoredEntity: every entity added is reported as
// maybe stored, and of entities never added few are (the rate the filter
// is sized for, about 1%, checked loosely).
func TestFilterNeverMissesAStoredEntity(t *testing.T) {
	const n = 200_000
	f := newFilter(n)
	rng := rand.New(rand.NewPCG(1, 2))
	added := make([]uint64, n)
	for i := range added {
		added[i] = rng.Uint64()
		f.add(added[i])
	}
	for _, h := range added {
		if !f.mayContain(h) {
			t.Fatalf("stored entity %016x reported absent", h)
		}
	}
	fp := 0
	for range n {
		if f.mayContain(rng.Uint64()) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.02 {
		t.Errorf("false-positive rate %.4f, want about 0.01 or less", rate)
	}
	if f.full() {
		t.Error("full at the size it was made for")
	}
}

// TestStoreLoadsThroughTheFilter: an entity written by a checkpoint is
// loaded after a reopen (the filter is rebuilt from the keys), one never
// written is answered absent, and a filter grown past its size is rebuilt
// at the next checkpoint without losing an entity.
func TestStoreLoadsThroughTheFilter(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, MemTableBytes: 1 << 20, BlockCacheBytes: 1 << 20, IndexCacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Begin()
	for h := uint64(1); h <= 1000; h++ {
		if err := c.PutEntity(h*0x9e3779b97f4a7c15, 1, []byte{byte(h)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Commit(nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(Options{Dir: dir, MemTableBytes: 1 << 20, BlockCacheBytes: 1 << 20, IndexCacheBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func() {
		t.Helper()
		for h := uint64(1); h <= 1000; h++ {
			b, ok, err := s.LoadEntity(h*0x9e3779b97f4a7c15, nil)
			if err != nil || !ok || len(b) != 1 || b[0] != byte(h) {
				t.Fatalf("entity %d: %v %v %v", h, b, ok, err)
			}
		}
	}
	check()
	if _, ok, _ := s.LoadEntity(42, nil); ok {
		t.Error("an entity never written was loaded")
	}
	s.filter.Load().added.Store(1 << 40) // pretend it overflowed
	old := s.filter.Load()
	c = s.Begin()
	if s.filter.Load() == old {
		t.Fatal("a full filter was not rebuilt")
	}
	c.Abort()
	check()
}
