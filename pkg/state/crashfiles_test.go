package state

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenAfterACrashLeftEmptyLogs: a kill -9 between Badger's creation
// of a memtable or value log file and its first write leaves it empty,
// which Badger cannot open (dgraph-io/badger#2207); the store opens
// anyway, with what was checkpointed.
func TestOpenAfterACrashLeftEmptyLogs(t *testing.T) {
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
	for _, f := range []string{"00099.mem", "000099.vlog"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if s, err = Open(opts); err != nil {
		t.Fatalf("open after empty log files were left: %v", err)
	}
	defer s.Close()
	if _, ok, err := s.LoadEntity(7, nil); !ok || err != nil {
		t.Errorf("checkpointed entity lost: %v %v", ok, err)
	}
}
