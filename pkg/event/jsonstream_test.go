package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// jsonValuesAll reads every value of in through r's wrapper, a value the
// reader skipped as too long showing as "<too long>".
func jsonValuesAll(t testing.TB, r io.Reader, max int) ([]string, error) {
	t.Helper()
	j := NewJSONValues(r, max)
	var out []string
	for range 1 << 20 {
		rec, tooLong, err := j.Next()
		if err != nil {
			return out, err
		}
		if tooLong {
			if rec != nil {
				t.Fatalf("too long value returned as %q", rec)
			}
			out = append(out, "<too long>")
			continue
		}
		if len(rec) == 0 || len(rec) > max {
			t.Fatalf("Next returned %q (max %d)", rec, max)
		}
		out = append(out, string(rec))
	}
	t.Fatal("Next never ended")
	return nil, nil
}

// jsonValuesReaders gives the same input in one piece, a byte at a time
// (every value crosses reads) and in halves with errors at the end of data.
func jsonValuesReaders(in string) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"whole":   func() io.Reader { return strings.NewReader(in) },
		"bytes":   func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
		"dataerr": func() io.Reader { return iotest.DataErrReader(iotest.HalfReader(strings.NewReader(in))) },
	}
}

func TestJSONValues(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"pretty array", "[\n  {\n    \"timestamp\": \"2019-10-03 13:50:01\",\n    \"class\": \"audit\"\n  },\n  {\n    \"a\": [1, {\"b\": \"]}\"}],\n    \"s\": \"q\\\"uote\\\\\"\n  }\n]\n",
			[]string{"{\n    \"timestamp\": \"2019-10-03 13:50:01\",\n    \"class\": \"audit\"\n  }", "{\n    \"a\": [1, {\"b\": \"]}\"}],\n    \"s\": \"q\\\"uote\\\\\"\n  }"}},
		{"open array", "[\n{\"a\":1},\n{\"b\":2},\n", []string{`{"a":1}`, `{"b":2}`}},
		{"objects", "{\"a\":1}\n{\"b\":2} {\"c\":3}\r\n\n", []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}},
		{"line fragments", "{\"a\":1},\n{\"b\":2},\n", []string{`{"a":1}`, `{"b":2}`}},
		{"concatenated files", "[{\"a\":1}]\n[{\"b\":2},{\"c\":3}]", []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}},
		{"nested arrays", `[[1,2],[],{"x":[[]]}]`, []string{`[1,2]`, `[]`, `{"x":[[]]}`}},
		{"scalars", `[1, -2.5e3, "s,]", true, null]`, []string{`1`, `-2.5e3`, `"s,]"`, `true`, `null`}},
		{"top-level scalars", "12 \"x\" false", []string{`12`, `"x"`, `false`}},
		{"stray closers", "]{\"a\":1}]],{\"b\":2}", []string{`{"a":1}`, `{"b":2}`}},
		{"garbage is passed on", "[{\"a\":1}, oops, }{\"b\":2}]", []string{`{"a":1}`, `oops`, `}`, `{"b":2}`}},
		{"bom", "\xEF\xBB\xBF[{\"a\":1}]", []string{`{"a":1}`}},
		{"not a bom", "\xEF{\"a\":1}", []string{"\xEF", `{"a":1}`}},
		{"empty", "", nil},
		{"empty array", " [ ] ", nil},
		{"escape at the end of a string", `["\\", "\"", {"k\\":"v\\\""}]`, []string{`"\\"`, `"\""`, `{"k\\":"v\\\""}`}},
	} {
		for rname, r := range jsonValuesReaders(tc.in) {
			got, err := jsonValuesAll(t, r(), 1<<10)
			if !errors.Is(err, io.EOF) {
				t.Errorf("%s/%s: err %v, want EOF", tc.name, rname, err)
			}
			if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") {
				t.Errorf("%s/%s:\n got %q\nwant %q", tc.name, rname, got, tc.want)
			}
		}
	}
}

func TestJSONValuesTooLong(t *testing.T) {
	huge := `{"q":"` + strings.Repeat(`x\"]}`, 100_000) + `","n":[` + strings.Repeat(`[1],`, 1000) + `0]}`
	in := "[\n{\"a\":1},\n" + huge + ",\n{\"b\":2},\n\"" + strings.Repeat("y", 5000) + "\",\n" + strings.Repeat("7", 5000) + ",{\"c\":3}\n]"
	want := []string{`{"a":1}`, "<too long>", `{"b":2}`, "<too long>", "<too long>", `{"c":3}`}
	for rname, r := range jsonValuesReaders(in) {
		got, err := jsonValuesAll(t, r(), 4096)
		if !errors.Is(err, io.EOF) {
			t.Errorf("%s: err %v, want EOF", rname, err)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: got %q, want %q", rname, got, want)
		}
	}
	// With a max that holds it, the huge value comes out whole.
	got, err := jsonValuesAll(t, strings.NewReader(in), 1<<20)
	if !errors.Is(err, io.EOF) || len(got) != 6 || got[1] != huge {
		t.Fatalf("huge value not read whole: err %v, %d values", err, len(got))
	}
	// Exactly max is not too long; one more is.
	for _, tc := range []struct {
		max     int
		tooLong bool
	}{{7, false}, {6, true}} {
		j := NewJSONValues(strings.NewReader(`{"a":1}`), tc.max)
		rec, tooLong, err := j.Next()
		if err != nil || tooLong != tc.tooLong || (!tooLong && string(rec) != `{"a":1}`) {
			t.Errorf("max %d: %q %v %v", tc.max, rec, tooLong, err)
		}
	}
}

func TestJSONValuesTruncated(t *testing.T) {
	for _, in := range []string{
		"[\n{\"a\":1},\n{\"b\":",
		"[{\"a\":1},{\"b\":\"unterminated",
		"[{\"a\":1},{\"b\":\"escape at the end\\",
		"[{\"a\":1},{\"b\":[1,2",
		"[{\"a\":1},\"" + strings.Repeat("x", 10_000),
	} {
		for rname, r := range jsonValuesReaders(in) {
			j := NewJSONValues(r(), 4096)
			rec, _, err := j.Next()
			if err != nil || string(rec) != `{"a":1}` {
				t.Fatalf("%q/%s: first value %q, %v", in, rname, rec, err)
			}
			_, _, err = j.Next()
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%q/%s: err %v, want one wrapping io.ErrUnexpectedEOF", in, rname, err)
			}
			if _, _, again := j.Next(); again != err {
				t.Fatalf("%q/%s: error not sticky: %v then %v", in, rname, err, again)
			}
		}
	}
}

type jsonValuesErrReader struct {
	data []byte
	err  error
}

func (r *jsonValuesErrReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestJSONValuesReadError(t *testing.T) {
	boom := errors.New("boom")
	j := NewJSONValues(&jsonValuesErrReader{data: []byte(`[{"a":1},{"b"`), err: boom}, 0)
	if rec, _, err := j.Next(); err != nil || string(rec) != `{"a":1}` {
		t.Fatalf("first value %q, %v", rec, err)
	}
	if _, _, err := j.Next(); err != boom {
		t.Fatalf("err %v, want the reader's", err)
	}
	j = NewJSONValues(&jsonValuesErrReader{data: []byte(`[{"a":1}`)}, 0)
	j.Next()
	if _, _, err := j.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("a reader making no progress: err %v", err)
	}
}

// TestJSONValuesMySQLFile reads audit files the way replay does, a value
// at a time, and decodes them as the same files split whole do.
func TestJSONValuesMySQLFile(t *testing.T) {
	for _, name := range []string{"percona_filter.input", "percona_jsonl.input", "enterprise.log"} {
		data, err := os.ReadFile(filepath.Join("testdata", "mysql_audit", name))
		if err != nil {
			t.Fatal(err)
		}
		d := NewMySQLAudit(Limits{})
		var want []Event
		recs, _ := d.Split(nil, data)
		for _, rec := range recs {
			var ev Event
			if d.Decode(rec, &ev) == nil {
				want = append(want, ev)
			}
		}
		var got []Event
		j := NewJSONValues(iotest.HalfReader(bytes.NewReader(data)), 0)
		for {
			rec, tooLong, err := j.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || tooLong {
				t.Fatalf("%s: %v %v", name, tooLong, err)
			}
			var ev Event
			if d.Decode(rec, &ev) == nil {
				got = append(got, ev)
			}
		}
		if len(got) == 0 || len(got) != len(want) {
			t.Fatalf("%s: %d events read as a stream, %d split whole", name, len(got), len(want))
		}
		for i := range got {
			if renderRecord(&got[i], nil).Time != renderRecord(&want[i], nil).Time || got[i].Principal != want[i].Principal || got[i].Action != want[i].Action {
				t.Fatalf("%s: event %d differs: %+v, %+v", name, i, got[i], want[i])
			}
		}
	}
}

// jsonValuesRepeat yields a record and its comma forever.
type jsonValuesRepeat struct {
	rec []byte
	at  int
}

func (r *jsonValuesRepeat) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.rec[r.at:])
		n += c
		r.at = (r.at + c) % len(r.rec)
	}
	return n, nil
}

func TestJSONValuesAllocs(t *testing.T) {
	rec := []byte("{ \"timestamp\": \"2024-03-14 09:26:51\", \"class\": \"table_access\", \"event\": \"read\", \"connection_id\": 4711,\n  \"login\": { \"user\": \"jdoe\", \"ip\": \"10.20.7.19\" }, \"table_access_data\": { \"db\": \"shop\", \"table\": \"customers\" } },\n")
	j := NewJSONValues(io.MultiReader(strings.NewReader("[\n"), &jsonValuesRepeat{rec: rec}), 0)
	for range 1000 {
		if _, _, err := j.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if a := testing.AllocsPerRun(10_000, func() {
		if r, _, err := j.Next(); err != nil || len(r) != len(rec)-2 {
			t.Fatalf("%q %v", r, err)
		}
	}); a != 0 {
		t.Fatalf("Next allocates %v per value", a)
	}
}

func BenchmarkJSONValues(b *testing.B) {
	rec := []byte("  {\n    \"timestamp\": \"2024-03-14 09:26:51\",\n    \"class\": \"table_access\",\n    \"event\": \"read\",\n    \"connection_id\": 4711,\n    \"login\": { \"user\": \"jdoe\", \"ip\": \"10.20.7.19\" },\n    \"table_access_data\": { \"db\": \"shop\", \"table\": \"customers\", \"query\": \"SELECT id, email, phone FROM customers WHERE created_at > '2024-01-01'\" }\n  },\n")
	j := NewJSONValues(&jsonValuesRepeat{rec: rec}, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, _, err := j.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzJSONValues(f *testing.F) {
	for _, s := range []string{
		"[\n{\"a\":1},\n{\"b\":[1,2]}\n]", "{\"a\":1}\n{\"b\":2}", "[{\"a\":\"\\\"]\"},", "[1,[2],\"3\"]", "\xEF\xBB\xBF[]", "]]}{", "[{\"a\":",
	} {
		f.Add([]byte(s), uint16(8))
		f.Add([]byte(s), uint16(4096))
	}
	for _, s := range mysqlSamples(f, "mysql_audit") {
		f.Add(s, uint16(300))
	}
	f.Fuzz(func(t *testing.T, in []byte, max16 uint16) {
		max := int(max16%4096) + 1
		for _, r := range []io.Reader{bytes.NewReader(in), iotest.OneByteReader(bytes.NewReader(in))} {
			j := NewJSONValues(r, max)
			var got [][]byte
			var err error
			// Every call consumes at least a byte or ends the stream.
			for range len(in) + 2 {
				var rec []byte
				var tooLong bool
				if rec, tooLong, err = j.Next(); err != nil {
					break
				}
				if tooLong {
					got = append(got, nil)
					continue
				}
				if len(rec) == 0 || len(rec) > max || !bytes.Contains(in, rec) {
					t.Fatalf("Next returned %q (max %d) from %q", rec, max, in)
				}
				got = append(got, bytes.Clone(rec))
			}
			if err == nil {
				t.Fatalf("no end after %d values from %q", len(got), in)
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v from a bytes.Reader", err)
			}
			// A valid array comes out as its elements.
			var elems []json.RawMessage
			trimmed := bytes.TrimLeft(in, " \t\r\n")
			if len(trimmed) > 0 && trimmed[0] == '[' && json.Unmarshal(in, &elems) == nil {
				if !errors.Is(err, io.EOF) || len(got) != len(elems) {
					t.Fatalf("array %q read as %d values (%v), want %d", in, len(got), err, len(elems))
				}
				for i, e := range elems {
					if got[i] == nil {
						if len(e) <= max {
							t.Fatalf("element %q of %q skipped as too long (max %d)", e, in, max)
						}
						continue
					}
					if !bytes.Equal(got[i], e) {
						t.Fatalf("element %d of %q read as %q, want %q", i, in, got[i], e)
					}
				}
			}
		}
	})
}
