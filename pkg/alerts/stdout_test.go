package alerts

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// numberedAlerts are n alerts that differ by id, in the order raised.
func numberedAlerts(from, n int) []*Alert {
	out := make([]*Alert, n)
	for i := range out {
		a := exfilFixture(StatusOpened)
		a.ID = fmt.Sprintf("alert-%04d", from+i)
		out[i] = a
	}
	return out
}

// alertIDs parses JSON lines (native or OCSF) and returns their alert ids,
// failing on any line that is not one whole JSON object.
func alertIDs(t *testing.T, data []byte) []string {
	t.Helper()
	if len(data) == 0 {
		return nil
	}
	var ids []string
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var v struct {
			ID       string `json:"id"`
			ClassUID int    `json:"class_uid"`
			Metadata struct {
				UID string `json:"uid"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %d is not one JSON object: %v\n%q", i+1, err, line)
		}
		if v.ClassUID != 0 {
			if v.ClassUID != 2004 {
				t.Fatalf("line %d: class_uid %d, want 2004", i+1, v.ClassUID)
			}
			v.ID = v.Metadata.UID
		}
		ids = append(ids, v.ID)
	}
	return ids
}

func idsOf(as []*Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func TestStdoutWritesJSONLines(t *testing.T) {
	for _, format := range []string{"", config.FormatNative, config.FormatOCSF} {
		t.Run("format="+format, func(t *testing.T) {
			var out bytes.Buffer
			s, err := NewStdout(config.Sink{Name: "out", Type: config.SinkStdout, Format: format}, Deps{Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			first, second := numberedAlerts(0, 3), numberedAlerts(3, 2)
			for _, batch := range [][]*Alert{first, second} {
				if retry, err := s.Notify(context.Background(), batch...); err != nil {
					t.Fatalf("Notify: %v (retry %v)", err, retry)
				}
			}
			if got, want := alertIDs(t, out.Bytes()), idsOf(append(first, second...)); !slices.Equal(got, want) {
				t.Errorf("ids = %v, want %v", got, want)
			}
			if format == config.FormatOCSF && !bytes.Contains(out.Bytes(), []byte(`"class_uid":2004`)) {
				t.Errorf("ocsf lines are not Detection Findings:\n%s", out.Bytes())
			}
		})
	}
}

func TestStdoutUnknownFormat(t *testing.T) {
	if _, err := NewStdout(config.Sink{Format: "cef"}, Deps{}); err == nil {
		t.Fatal("NewStdout accepted format cef")
	}
}

// TestStdoutFlushesBufferedWriter checks that an acknowledged alert has
// left a writer that buffers.
func TestStdoutFlushesBufferedWriter(t *testing.T) {
	var out bytes.Buffer
	s, err := NewStdout(config.Sink{Format: config.FormatNative}, Deps{Stdout: bufio.NewWriterSize(&out, 1<<20)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Notify(context.Background(), numberedAlerts(0, 1)...); err != nil {
		t.Fatal(err)
	}
	if got := alertIDs(t, out.Bytes()); !slices.Equal(got, []string{"alert-0000"}) {
		t.Errorf("after Notify the writer holds %v, want the alert flushed", got)
	}
}

// failingWriter accepts the first ok bytes of the next write, then fails
// it; ok < 0 accepts everything.
type failingWriter struct {
	bytes.Buffer
	ok int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.ok < 0 {
		return w.Buffer.Write(p)
	}
	n, _ := w.Buffer.Write(p[:min(w.ok, len(p))])
	w.ok = -1
	return n, errors.New("broken pipe")
}

// TestStdoutRetriesWriteErrors checks that a failed write is retryable and
// that a line the failure cut is ended before the retry, so that it costs
// one unreadable line and not two.
func TestStdoutRetriesWriteErrors(t *testing.T) {
	w := &failingWriter{ok: 100}
	s, err := NewStdout(config.Sink{Format: config.FormatNative}, Deps{Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	batch := numberedAlerts(0, 2)
	retry, err := s.Notify(context.Background(), batch...)
	if err == nil || !retry {
		t.Fatalf("failed write: err %v, retry %v; want a retryable error", err, retry)
	}
	if retry, err := s.Notify(context.Background(), batch...); err != nil {
		t.Fatalf("retry: %v (retry %v)", err, retry)
	}
	lines := strings.Split(w.String(), "\n")
	if len(lines[0]) != 100 {
		t.Fatalf("first line is %d bytes, want the 100 written before the failure, alone", len(lines[0]))
	}
	if got := alertIDs(t, []byte(strings.Join(lines[1:], "\n"))); !slices.Equal(got, idsOf(batch)) {
		t.Errorf("after the cut line: %v, want %v", got, idsOf(batch))
	}
}

// TestStdoutBadAlertIsFinal checks that an alert that cannot be encoded
// does not hold back the rest of its batch and is not retried.
func TestStdoutBadAlertIsFinal(t *testing.T) {
	var out bytes.Buffer
	s, err := NewStdout(config.Sink{Format: config.FormatNative}, Deps{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	batch := numberedAlerts(0, 3)
	batch[1].Score = math.NaN()
	retry, err := s.Notify(context.Background(), batch...)
	if err == nil || retry {
		t.Fatalf("err %v, retry %v; want a final error", err, retry)
	}
	if got, want := alertIDs(t, out.Bytes()), []string{"alert-0000", "alert-0002"}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
}

func TestStdoutCanceled(t *testing.T) {
	var out bytes.Buffer
	s, err := NewStdout(config.Sink{Format: config.FormatNative}, Deps{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if retry, err := s.Notify(ctx, numberedAlerts(0, 1)...); err == nil || !retry {
		t.Fatalf("err %v, retry %v; want a retryable error", err, retry)
	}
	if out.Len() != 0 {
		t.Errorf("wrote %q under a canceled context", out.String())
	}
}
