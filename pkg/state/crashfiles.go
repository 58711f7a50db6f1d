package state

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
)

// Badger creates a memtable's write-ahead file (NNNNN.mem) empty and only
// then sizes and writes it. A kill -9 between the two leaves a 0-byte file,
// and the next Open fails with "while opening fid: N err: Create a new
// file" (the sentinel z.NewFile, treated as fatal: dgraph-io/badger#2207,
// unfixed in v4). A 0-byte memtable file holds nothing, so it is removed
// before Open. Our own kill -9 test met it on CI.

// RemoveEmptyMemtables deletes the 0-byte *.mem files of a Badger
// directory, logging each; a missing directory is no error.
func RemoveEmptyMemtables(dir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".mem") {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() != 0 {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil {
			return err
		}
		if log != nil {
			log.Warn("removed an empty memtable file left by a crash", "file", p)
		}
	}
	return nil
}

// OpenBadger opens a Badger store after removing what a crash can leave
// that Badger itself cannot open (see RemoveEmptyMemtables).
func OpenBadger(opts badger.Options, managed bool, log *slog.Logger) (*badger.DB, error) {
	if opts.Dir != "" {
		if err := RemoveEmptyMemtables(opts.Dir, log); err != nil {
			return nil, err
		}
	}
	if managed {
		return badger.OpenManaged(opts)
	}
	return badger.Open(opts)
}
