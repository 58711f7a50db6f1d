package state

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
)

// Badger creates a memtable's write-ahead file (NNNNN.mem) and a value log
// file (NNNNNN.vlog) empty and only then sizes and writes them. A kill -9
// between the two leaves a 0-byte file, and the next Open fails with
// "while opening fid: N err: Create a new file" or "Open existing file:
// ... Create a new file" (the sentinel z.NewFile, treated as fatal:
// dgraph-io/badger#2207, unfixed in v4). A 0-byte log file holds nothing
// (no key can point into it), so it is removed before Open. Our own kill -9
// test met the memtable case on CI.

// RemoveEmptyLogs deletes the 0-byte *.mem and *.vlog files of a Badger
// directory, logging each; a missing directory is no error.
func RemoveEmptyLogs(dir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".mem") || strings.HasSuffix(e.Name(), ".vlog")) {
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
			log.Warn("removed an empty log file left by a crash", "file", p)
		}
	}
	return nil
}

// OpenBadger opens a Badger store after removing what a crash can leave
// that Badger itself cannot open (see RemoveEmptyLogs).
func OpenBadger(opts badger.Options, managed bool, log *slog.Logger) (*badger.DB, error) {
	if opts.Dir != "" {
		if err := RemoveEmptyLogs(opts.Dir, log); err != nil {
			return nil, err
		}
	}
	if managed {
		return badger.OpenManaged(opts)
	}
	return badger.Open(opts)
}
