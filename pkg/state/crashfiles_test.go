package state

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenAfterACrashLeftAnEmptyMemtable: a kill -9 between Badger's
// creation of a memtable file and its first write leaves it empty, which
// Badger cannot open (dgraph-io/badger#2207); the store opens anyway, with
// what was checkpointed.
func TestOpenAfterACrashLeftAnEmptyMemtable(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, MemTableBytes: 1 << 20, BlockCacheBytes: 1 << 20, IndexCacheBytes: 1 << 20}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Begin()
	if err := c.PutEntity(7, 1, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, "00099.mem"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(opts); err != nil {
		t.Fatalf("open after an empty memtable file was left: %v", err)
	}
	defer s.Close()
	if _, ok, err := s.LoadEntity(7, nil); !ok || err != nil {
		t.Errorf("checkpointed entity lost: %v %v", ok, err)
	}
}
