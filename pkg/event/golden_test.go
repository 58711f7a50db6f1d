package event

// The golden harness every decoder's tests share. A sample file is decoded
// the way the pipeline decodes it (split with the decoder's Splitter when it
// has one, then every record decoded) and each record rendered as one line
// of JSON in a .golden file: where it starts (line, and its index when
// several records start on that line) and either the event or the reason
// it was rejected. Regenerate with go test ./pkg/event/ -update.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files of the decoder tests")

// goldenRecord is the readable rendering of one decoded record.
type goldenRecord struct {
	Line          int    `json:"line"`
	Record        int    `json:"record,omitempty"`
	Error         string `json:"error,omitempty"`
	Field         string `json:"field,omitempty"`
	Time          string `json:"time,omitempty"`
	Principal     string `json:"principal,omitempty"`
	PrincipalType string `json:"principal_type,omitempty"`
	SourceIP      string `json:"source_ip,omitempty"`
	Client        string `json:"client,omitempty"`
	Session       string `json:"session,omitempty"`
	Database      string `json:"database,omitempty"`
	Object        string `json:"object,omitempty"`
	Action        string `json:"action,omitempty"`
	Status        string `json:"status,omitempty"`
	Rows          *int64 `json:"rows,omitempty"`
	Bytes         int64  `json:"bytes,omitempty"`
}

// renderRecord renders the outcome of one Decode (or of a failed Split, ev
// nil): the DecodeError's reason and field, or the event.
func renderRecord(ev *Event, err error) goldenRecord {
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			return goldenRecord{Error: "not a DecodeError: " + err.Error()}
		}
		return goldenRecord{Error: de.Reason.String(), Field: de.Field}
	}
	g := goldenRecord{
		Time:          time.Unix(0, ev.Time).UTC().Format(time.RFC3339Nano),
		Principal:     ev.Principal,
		PrincipalType: ev.PrincipalType.String(),
		Client:        ev.Client,
		Database:      ev.Database,
		Object:        ev.Object,
		Action:        ev.Action.String(),
		Status:        ev.Status.String(),
		Bytes:         ev.Bytes,
	}
	if ev.SourceIP.IsValid() {
		g.SourceIP = ev.SourceIP.String()
	}
	if ev.Session != 0 {
		g.Session = fmt.Sprintf("%016x", ev.Session)
	}
	if ev.HasRows {
		rows := ev.Rows
		g.Rows = &rows
	}
	return g
}

// decodeSample decodes a sample: data whole as one message, or, perLine,
// every line of it as a message of its own. Every decoded event must have a
// time and a principal, every error must be a *DecodeError.
func decodeSample(t testing.TB, d Decoder, data []byte, perLine bool) []goldenRecord {
	t.Helper()
	if !perLine {
		return decodeMessage(t, d, data, 1)
	}
	var out []goldenRecord
	for i, msg := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		out = append(out, decodeMessage(t, d, msg, i+1)...)
	}
	return out
}

// decodeMessage splits msg, which starts on line first of its sample, and
// decodes every record.
func decodeMessage(t testing.TB, d Decoder, msg []byte, first int) []goldenRecord {
	t.Helper()
	recs := [][]byte{msg}
	if sp, ok := d.(Splitter); ok {
		var err error
		if recs, err = sp.Split(nil, msg); err != nil {
			g := renderRecord(nil, err)
			if strings.HasPrefix(g.Error, "not a DecodeError") {
				t.Errorf("line %d: Split: %s", first, g.Error)
			}
			g.Line = first
			return []goldenRecord{g}
		}
	}
	out := make([]goldenRecord, 0, len(recs))
	perLine := map[int]int{}
	var ev Event
	for _, rec := range recs {
		line := first
		if off := offsetIn(msg, rec); off > 0 {
			line += bytes.Count(msg[:off], []byte{'\n'})
		}
		err := d.Decode(rec, &ev)
		g := renderRecord(&ev, err)
		switch {
		case strings.HasPrefix(g.Error, "not a DecodeError"):
			t.Errorf("line %d: Decode: %s", line, g.Error)
		case err == nil && (ev.Time == 0 || ev.Principal == ""):
			t.Errorf("line %d: decoded without a time or a principal: %+v", line, ev)
		}
		g.Line = line
		perLine[line]++
		g.Record = perLine[line]
		out = append(out, g)
	}
	for i := range out {
		if perLine[out[i].Line] == 1 {
			out[i].Record = 0
		}
	}
	return out
}

// offsetIn returns where sub, a sub-slice of b, starts in b, or -1.
func offsetIn(b, sub []byte) int {
	if len(sub) == 0 {
		return -1
	}
	for i := range b {
		if &b[i] == &sub[0] {
			return i
		}
	}
	return -1
}

// checkGolden compares the rendered records with the golden file, or
// rewrites it under -update.
func checkGolden(t *testing.T, golden string, got []goldenRecord) {
	t.Helper()
	var buf bytes.Buffer
	for _, g := range got {
		b, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if bytes.Equal(want, buf.Bytes()) {
		return
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(buf.String(), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			t.Fatalf("%s differs at line %d:\nwant %s\ngot  %s\n(run with -update if the change is intended)", golden, i+1, w, g)
		}
	}
}

// goldenFile decodes one sample with a fresh decoder and checks it against
// its golden file.
func goldenFile(t *testing.T, sample, golden string, perLine bool, d Decoder) {
	t.Helper()
	data, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, golden, decodeSample(t, d, data, perLine))
}

// goldenDir runs goldenFile over the samples of testdata/dir: a *.input is
// one message, a *.jsonl or *.log one message a line; each has its .golden
// next to it.
func goldenDir(t *testing.T, dir string, newDec func(t *testing.T) Decoder) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, path := range paths {
		ext := filepath.Ext(path)
		if ext != ".input" && ext != ".jsonl" && ext != ".log" {
			continue
		}
		n++
		t.Run(filepath.Base(path), func(t *testing.T) {
			goldenFile(t, path, strings.TrimSuffix(path, ext)+".golden", ext != ".input", newDec(t))
		})
	}
	if n == 0 {
		t.Fatalf("no samples in testdata/%s", dir)
	}
}

// registeredDecoder returns a constructor of the registered format.
func registeredDecoder(format string) func(t *testing.T) Decoder {
	return func(t *testing.T) Decoder {
		d, err := NewDecoder(format, Limits{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
}

// sameRecord reports whether a and b render the same.
func sameRecord(a, b goldenRecord) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
