package alerts

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// lineSize is the size of one numberedAlerts line in a format.
func lineSize(t *testing.T, format string) int64 {
	t.Helper()
	b, err := Render(format, numberedAlerts(0, 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b) + 1)
}

func newFileSink(t *testing.T, path string, maxBytes int64, maxFiles int, format string) *File {
	t.Helper()
	s, err := NewFile(config.Sink{Name: "file", Type: config.SinkFile, Path: path, MaxBytes: maxBytes, MaxFiles: maxFiles, Format: format}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func notify(t *testing.T, s Sink, as []*Alert) {
	t.Helper()
	if retry, err := s.Notify(context.Background(), as...); err != nil {
		t.Fatalf("Notify: %v (retry %v)", err, retry)
	}
}

// fileSet reads path and its rotated files, oldest first, checking that
// each ends with a whole line and is within maxBytes unless it holds a
// single line.
func fileSet(t *testing.T, path string, maxBytes int64) (files []string, ids [][]string) {
	t.Helper()
	var names []string
	for i := 1; ; i++ {
		n := fmt.Sprintf("%s.%d", path, i)
		if _, err := os.Stat(n); err != nil {
			break
		}
		names = append(names, n)
	}
	slices.Reverse(names)
	names = append(names, path)
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			t.Errorf("%s ends inside a line", filepath.Base(n))
		}
		got := alertIDs(t, data)
		if int64(len(data)) > maxBytes && len(got) > 1 {
			t.Errorf("%s is %d bytes with %d lines, over max_bytes %d", filepath.Base(n), len(data), len(got), maxBytes)
		}
		files = append(files, filepath.Base(n))
		ids = append(ids, got)
	}
	return files, ids
}

func TestFileRotation(t *testing.T) {
	for _, format := range []string{config.FormatNative, config.FormatOCSF} {
		t.Run(format, func(t *testing.T) {
			line := lineSize(t, format)
			maxBytes := 3*line + line/2 // three lines a file
			path := filepath.Join(t.TempDir(), "alerts.jsonl")
			s := newFileSink(t, path, maxBytes, 2, format)

			// Batches of several sizes, crossing file boundaries inside a
			// batch and at its edges.
			var sent []*Alert
			for _, n := range []int{1, 2, 4, 1, 3, 5} {
				batch := numberedAlerts(len(sent), n)
				notify(t, s, batch)
				sent = append(sent, batch...)
			}

			files, ids := fileSet(t, path, maxBytes)
			if want := []string{"alerts.jsonl.2", "alerts.jsonl.1", "alerts.jsonl"}; !slices.Equal(files, want) {
				t.Fatalf("files %v, want %v (two rotated kept)", files, want)
			}
			// 16 alerts in files of 3: 5 full files and 1 alert; the
			// oldest three files were removed.
			want := [][]string{idsOf(sent[9:12]), idsOf(sent[12:15]), idsOf(sent[15:])}
			for i := range want {
				if !slices.Equal(ids[i], want[i]) {
					t.Errorf("%s holds %v, want %v", files[i], ids[i], want[i])
				}
			}
		})
	}
}

// TestFileEveryAlertOnce checks that with room for every file, the set
// holds each alert exactly once, in order.
func TestFileEveryAlertOnce(t *testing.T) {
	line := lineSize(t, config.FormatNative)
	maxBytes := 2*line + 1
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	s := newFileSink(t, path, maxBytes, 100, config.FormatNative)
	var sent []*Alert
	for _, n := range []int{3, 1, 7, 2, 2, 5} {
		batch := numberedAlerts(len(sent), n)
		notify(t, s, batch)
		sent = append(sent, batch...)
	}
	files, ids := fileSet(t, path, maxBytes)
	if got, want := slices.Concat(ids...), idsOf(sent); !slices.Equal(got, want) {
		t.Errorf("files %v hold %v, want %v", files, got, want)
	}
	for i, f := range ids[:len(ids)-1] {
		if len(f) != 2 {
			t.Errorf("%s holds %d alerts, want 2: it was rotated before it was full", files[i], len(f))
		}
	}
}

// TestFileOversizedAlert checks that an alert larger than max_bytes is
// written anyway, in a file of its own.
func TestFileOversizedAlert(t *testing.T) {
	line := lineSize(t, config.FormatNative)
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	s := newFileSink(t, path, 2*line+1, 5, config.FormatNative)
	batch := numberedAlerts(0, 3)
	batch[1].Summary = strings.Repeat("x", int(3*line))
	notify(t, s, batch)
	_, ids := fileSet(t, path, 2*line+1)
	want := [][]string{{"alert-0000"}, {"alert-0001"}, {"alert-0002"}}
	if !slices.EqualFunc(ids, want, slices.Equal) {
		t.Errorf("files hold %v, want %v", ids, want)
	}
}

// TestFileRestartAppends checks that a new sink on the same path appends
// and counts what is already there toward max_bytes.
func TestFileRestartAppends(t *testing.T) {
	line := lineSize(t, config.FormatNative)
	maxBytes := 3*line + 1
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	s := newFileSink(t, path, maxBytes, 3, config.FormatNative)
	notify(t, s, numberedAlerts(0, 2))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if retry, err := s.Notify(context.Background(), numberedAlerts(9, 1)...); err == nil || !retry {
		t.Errorf("Notify after Close: err %v, retry %v; want a retryable error", err, retry)
	}

	s = newFileSink(t, path, maxBytes, 3, config.FormatNative)
	notify(t, s, numberedAlerts(2, 2))
	files, ids := fileSet(t, path, maxBytes)
	want := [][]string{{"alert-0000", "alert-0001", "alert-0002"}, {"alert-0003"}}
	if !slices.EqualFunc(ids, want, slices.Equal) {
		t.Errorf("files %v hold %v, want %v", files, ids, want)
	}
}

// TestFileEndsCutLine checks that a line cut by a crash is ended before
// the next alert, which must not be glued to it.
func TestFileEndsCutLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	if err := os.WriteFile(path, []byte("{\"id\":\"alert-0000\"}\n{\"id\":\"alert-00"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newFileSink(t, path, 1<<20, 1, config.FormatNative)
	notify(t, s, numberedAlerts(1, 1))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || lines[1] != "{\"id\":\"alert-00" {
		t.Fatalf("lines %q, want the cut line alone", lines)
	}
	if got := alertIDs(t, []byte(lines[2])); !slices.Equal(got, []string{"alert-0001"}) {
		t.Errorf("last line holds %v", got)
	}
}

// TestFileRetriesAfterWriteError checks that a failed write is retryable
// and that the next attempt reopens the file and goes on appending.
func TestFileRetriesAfterWriteError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	s := newFileSink(t, path, 1<<20, 1, config.FormatNative)
	notify(t, s, numberedAlerts(0, 1))
	_ = s.f.Close() // the descriptor goes bad under the sink
	if retry, err := s.Notify(context.Background(), numberedAlerts(1, 1)...); err == nil || !retry {
		t.Fatalf("err %v, retry %v; want a retryable error", err, retry)
	}
	notify(t, s, numberedAlerts(1, 1))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := alertIDs(t, data); !slices.Equal(got, []string{"alert-0000", "alert-0001"}) {
		t.Errorf("file holds %v", got)
	}
}

func TestFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "exfilguard")
	path := filepath.Join(dir, "alerts.jsonl")
	line := lineSize(t, config.FormatNative)
	s := newFileSink(t, path, line+1, 2, config.FormatNative)
	notify(t, s, numberedAlerts(0, 2)) // one rotation
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %o, want 600: alerts name people and tables", filepath.Base(p), m)
		}
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.Mode().Perm(); m != 0o700 {
			t.Errorf("directory %s has mode %o, want 700", d, m)
		}
	}
}

// TestFileRemovesLeftoverRotations checks that lowering max_files removes
// the rotated files beyond it at the next rotation.
func TestFileRemovesLeftoverRotations(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.jsonl")
	for i := 1; i <= 5; i++ {
		if err := os.WriteFile(fmt.Sprintf("%s.%d", path, i), []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path+".keep", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	line := lineSize(t, config.FormatNative)
	s := newFileSink(t, path, line+1, 2, config.FormatNative)
	notify(t, s, numberedAlerts(0, 2))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"alerts.jsonl", "alerts.jsonl.1", "alerts.jsonl.2", "alerts.jsonl.keep"}; !slices.Equal(names, want) {
		t.Errorf("directory holds %v, want %v", names, want)
	}
}

func TestFileConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  config.Sink
	}{
		{"no path", config.Sink{MaxBytes: 4096, MaxFiles: 1}},
		{"no max_bytes", config.Sink{Path: filepath.Join(dir, "a"), MaxFiles: 1}},
		{"unknown format", config.Sink{Path: filepath.Join(dir, "a"), MaxBytes: 4096, MaxFiles: 1, Format: "cef"}},
		{"path is a directory", config.Sink{Path: dir, MaxBytes: 4096, MaxFiles: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := NewFile(tt.cfg, Deps{}); err == nil {
				_ = s.Close()
				t.Fatal("NewFile accepted it")
			}
		})
	}
}
