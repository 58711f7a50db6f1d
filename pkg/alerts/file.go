package alerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// File appends alerts as JSON lines to a file, rotated by size, for hosts
// where a log shipper tails files. Alerts are on disk (fsynced) when
// Notify acknowledges them, because the outbox forgets an alert once every
// sink has.
type File struct {
	path     string
	maxBytes int64
	maxFiles int
	format   string

	// mu lets Close come from the shutdown path while a Notify runs.
	mu     sync.Mutex
	f      *os.File // nil after a failure: reopened by the next Notify
	size   int64
	buf    []byte
	closed bool
}

// NewFile opens (creating with mode 0600, its directories 0700) the file
// of cfg.Path and appends to what is already there. It fails now rather
// than at the first alert when the path cannot be written.
func NewFile(cfg config.Sink, d Deps) (*File, error) {
	format, err := lineFormat(cfg.Format)
	if err != nil {
		return nil, err
	}
	if cfg.Path == "" {
		return nil, errors.New("open alert file: no path")
	}
	if cfg.MaxBytes <= 0 || cfg.MaxFiles < 0 {
		return nil, fmt.Errorf("open alert file %s: max_bytes must be > 0 and max_files >= 0, got %d and %d", cfg.Path, cfg.MaxBytes, cfg.MaxFiles)
	}
	s := &File{path: cfg.Path, maxBytes: cfg.MaxBytes, maxFiles: cfg.MaxFiles, format: format}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// Notify appends the batch, rotating before a line that would take the
// file past max_bytes (a line larger than that gets a file of its own),
// and fsyncs. A failed write or rotation may be repeated: the file is
// reopened and its size read again, and alerts written before the
// failure are written again (their ids let readers drop them). An alert
// that cannot be encoded never will be: the others are written and the
// error is final.
func (s *File) Notify(ctx context.Context, alerts ...*Alert) (retry bool, err error) {
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("write alerts to %s: %w", s.path, err)
	}
	var renderErr error
	s.buf, renderErr = appendAlertLines(s.buf[:0], s.format, alerts)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true, fmt.Errorf("write alerts to %s: sink closed", s.path)
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			return true, err
		}
	}
	if err := s.write(s.buf); err != nil {
		s.drop()
		return true, err
	}
	if err := s.f.Sync(); err != nil {
		s.drop()
		return true, fmt.Errorf("sync %s: %w", s.path, err)
	}
	if renderErr != nil {
		return false, renderErr
	}
	return false, nil
}

// write appends whole lines, rotating between them so that no line is
// split across files.
func (s *File) write(lines []byte) error {
	start := 0 // of the lines not yet written
	for i := 0; i < len(lines); {
		j := i + bytes.IndexByte(lines[i:], '\n') + 1
		if pending := s.size + int64(i-start); pending > 0 && pending+int64(j-i) > s.maxBytes {
			if err := s.append(lines[start:i]); err != nil {
				return err
			}
			start = i
			if err := s.rotate(); err != nil {
				return err
			}
		}
		i = j
	}
	return s.append(lines[start:])
}

func (s *File) append(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := s.f.Write(b)
	s.size += int64(n)
	if err != nil {
		return fmt.Errorf("write alerts to %s: %w", s.path, err)
	}
	return nil
}

// rotate makes the full file path.1, shifting older ones up and removing
// those past max_files (also any left from a larger max_files), and
// starts an empty file.
func (s *File) rotate() error {
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.path, err)
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	if err := s.removeRotated(s.maxFiles); err != nil {
		return err
	}
	for i := s.maxFiles - 1; i >= 1; i-- {
		if err := os.Rename(s.rotated(i), s.rotated(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate %s: %w", s.path, err)
		}
	}
	if s.maxFiles > 0 {
		err = os.Rename(s.path, s.rotated(1))
	} else {
		err = os.Remove(s.path)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate %s: %w", s.path, err)
	}
	return s.open()
}

func (s *File) rotated(i int) string { return s.path + "." + strconv.Itoa(i) }

// removeRotated removes the rotated files numbered keep or more: the one
// about to be shifted out, and any that a larger max_files left behind.
func (s *File) removeRotated(keep int) error {
	dir, base := filepath.Split(s.path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("rotate %s: %w", s.path, err)
	}
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n < max(keep, 1) || strconv.Itoa(n) != suffix {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate %s: %w", s.path, err)
		}
	}
	return nil
}

// open opens the file for appending and learns its size. A file that ends
// without a newline was cut by a crash or a failed write; the cut line is
// ended so that the next alert starts a line of its own.
func (s *File) open() error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory of %s: %w", s.path, err)
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open alert file: %w", err)
	}
	fail := func(err error) error {
		_ = f.Close()
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("stat %s: %w", s.path, err))
	}
	size := st.Size()
	if size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, size-1); err != nil && err != io.EOF {
			return fail(fmt.Errorf("read %s: %w", s.path, err))
		}
		if last[0] != '\n' {
			n, err := f.Write([]byte{'\n'})
			size += int64(n)
			if err != nil {
				return fail(fmt.Errorf("end the cut line of %s: %w", s.path, err))
			}
		}
	}
	// The file may be new, or renamed by a rotation: its directory entry
	// must be on disk before alerts in it are acknowledged.
	if err := syncDir(dir); err != nil {
		return fail(fmt.Errorf("sync directory of %s: %w", s.path, err))
	}
	s.f, s.size = f, size
	return nil
}

// drop closes the file after a failure, so that the next attempt reopens
// it and reads its size from disk instead of trusting a count that the
// failure may have made wrong.
func (s *File) drop() {
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
}

// Close closes the file; alerts were synced by Notify already.
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) {
		err = nil // file systems that cannot sync a directory order metadata themselves
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
