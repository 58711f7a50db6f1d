package state

import (
	"bytes"
	"testing"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, MemTableBytes: 1 << 20, BlockCacheBytes: 1 << 20, IndexCacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func load(t *testing.T, s *Store, h uint64) (string, bool) {
	t.Helper()
	b, ok, err := s.LoadEntity(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), ok
}

func TestCheckpointSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if s.Checkpointed() {
		t.Fatal("new store says it holds a checkpoint")
	}
	c := s.Begin()
	for h := uint64(1); h <= 1000; h++ {
		if err := c.PutEntity(h, int64(h), bytes.Repeat([]byte{byte(h)}, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.PutEngine([]byte("engine-1")); err != nil {
		t.Fatal(err)
	}
	if err := c.PutAlerts([]byte("alerts-1")); err != nil {
		t.Fatal(err)
	}
	p0, p1 := Partition{"audit", 0}, Partition{"audit", 1}
	if err := c.Commit(map[Partition]int64{p0: 10, p1: 20}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir)
	defer s.Close()
	if !s.Checkpointed() {
		t.Fatal("reopened store lost its checkpoint")
	}
	if v, ok := load(t, s, 7); !ok || v != string(bytes.Repeat([]byte{7}, 100)) {
		t.Errorf("entity 7 = %q, %v", v, ok)
	}
	if _, ok := load(t, s, 5000); ok {
		t.Error("entity never written was found")
	}
	if b, _ := s.Blob("engine"); string(b) != "engine-1" {
		t.Errorf("engine blob = %q", b)
	}
	if b, _ := s.Blob("alerts"); string(b) != "alerts-1" {
		t.Errorf("alerts blob = %q", b)
	}
	pos, err := s.Positions()
	if err != nil {
		t.Fatal(err)
	}
	if pos[p0] != 10 || pos[p1] != 20 || len(pos) != 2 {
		t.Errorf("positions = %v", pos)
	}
}

// TestInterruptedCheckpointIsInvisible: a crash after a checkpoint flushed
// part of its entities but before its marker leaves the previous
// checkpoint's state and positions, and the next checkpoint supersedes the
// orphaned writes.
func TestInterruptedCheckpointIsInvisible(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	p := Partition{"audit", 0}
	c := s.Begin()
	_ = c.PutEntity(1, 1, []byte("one@1"))
	_ = c.PutEngine([]byte("engine@1"))
	if err := c.Commit(map[Partition]int64{p: 100}); err != nil {
		t.Fatal(err)
	}

	// The interrupted checkpoint: entities flushed and synced, no marker.
	c = s.Begin()
	_ = c.PutEntity(1, 2, []byte("one@2"))
	_ = c.PutEntity(2, 2, []byte("two@2"))
	_ = c.PutEngine([]byte("engine@2"))
	if err := c.wb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, dir)
	if v, _ := load(t, s, 1); v != "one@1" {
		t.Errorf("entity 1 after interrupted checkpoint = %q, want one@1", v)
	}
	if _, ok := load(t, s, 2); ok {
		t.Error("entity 2 of the interrupted checkpoint is visible")
	}
	if b, _ := s.Blob("engine"); string(b) != "engine@1" {
		t.Errorf("engine = %q, want engine@1", b)
	}
	if pos, _ := s.Positions(); pos[p] != 100 {
		t.Errorf("position = %d, want 100", pos[p])
	}

	// The next checkpoint, which does not write entity 2 again.
	c = s.Begin()
	_ = c.PutEntity(1, 3, []byte("one@3"))
	if err := c.Commit(map[Partition]int64{p: 150}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if v, _ := load(t, s, 1); v != "one@3" {
		t.Errorf("entity 1 = %q, want one@3", v)
	}
	if v, ok := load(t, s, 2); ok {
		t.Errorf("orphaned entity 2 = %q became visible", v)
	}
	if pos, _ := s.Positions(); pos[p] != 150 {
		t.Errorf("position = %d, want 150", pos[p])
	}
}

func TestSweepForgetsStaleEntities(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	c := s.Begin()
	for h := uint64(1); h <= 100; h++ {
		_ = c.PutEntity(h, int64(h), []byte("x"))
	}
	if err := c.Commit(map[Partition]int64{{"a", 0}: 7}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Sweep(func(last int64) bool { return last < 51 })
	if err != nil || n != 50 {
		t.Fatalf("Sweep = %d, %v; want 50", n, err)
	}
	if _, ok := load(t, s, 50); ok {
		t.Error("entity 50 survived the sweep")
	}
	if _, ok := load(t, s, 51); !ok {
		t.Error("entity 51 was swept")
	}
	if pos, _ := s.Positions(); pos[Partition{"a", 0}] != 7 {
		t.Errorf("sweep changed positions: %v", pos)
	}
	st, err := s.Stats()
	if err != nil || st.Entities != 50 {
		t.Errorf("Stats = %+v, %v", st, err)
	}
}
