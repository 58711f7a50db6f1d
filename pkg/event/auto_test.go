package event

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"

	"testing"
)

// autoSamples are the golden samples of every format: whole messages
// (*.input) or one message a line (*.jsonl, *.log).
var autoSamples = []struct{ glob, format string }{
	{"testdata/aws_das/*", "aws_das"},
	{"testdata/azure_sql/*", "azure_sql"},
	{"testdata/ocsf/*", "ocsf"},
	{"testdata/mysql_audit/*", "mysql_audit"},
	{"testdata/mariadb_audit/*", "mariadb_audit"},
	{"testdata/pgaudit/real/real.json", "pgaudit_jsonlog"},
	{"testdata/pgaudit/real/real.log", "pgaudit_stderr"},
}

func autoMessages(t testing.TB, glob string) [][]byte {
	files, _ := filepath.Glob(glob)
	var msgs [][]byte
	for _, f := range files {
		switch filepath.Ext(f) {
		case ".input":
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, b)
		case ".jsonl", ".log", ".json":
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range bytes.Split(b, []byte("\n")) {
				if len(bytes.TrimSpace(l)) > 0 {
					msgs = append(msgs, l)
				}
			}
		}
	}
	if len(msgs) == 0 {
		t.Fatalf("no samples in %s", glob)
	}
	return msgs
}

// decodeAll splits msg (when d splits) and decodes every record.
func decodeAllWith(d Decoder, msg []byte) ([]Event, []error) {
	recs := [][]byte{msg}
	if s, ok := d.(Splitter); ok {
		var err error
		if recs, err = s.Split(nil, msg); err != nil {
			return nil, []error{err}
		}
	}
	var evs []Event
	var errs []error
	for _, r := range recs {
		var ev Event
		err := d.Decode(r, &ev)
		if err == nil {
			evs = append(evs, ev)
		}
		errs = append(errs, err)
	}
	return evs, errs
}

// TestAutoDecodesLikeTheFormat: every record of every format's samples
// that its own decoder decodes, auto decodes to the same Event.
func TestAutoDecodesLikeTheFormat(t *testing.T) {
	opts := Options{LogLinePrefix: "%m [%p] %q%u@%d "}
	auto, err := NewDecoder("auto", Limits{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, s := range autoSamples {
		own, err := NewDecoder(s.format, Limits{}, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range autoMessages(t, s.glob) {
			// Every message goes to both: a decoder may keep state
			// from one record to the next (mysql_audit joins a
			// statement's table_access and status records).
			want, _ := decodeAllWith(own, msg)
			got, errs := decodeAllWith(auto, msg)
			if len(want) == 0 {
				continue
			}
			if got := Sniff(msg); got != s.format {
				t.Errorf("%s: Sniff = %q for %.80q", s.format, got, msg)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: auto gives %d events (errors %v), the format %d, for %.80q", s.format, len(got), errs, len(want), msg)
			}
			total += len(want)
		}
	}
	t.Logf("%d events decoded alike", total)
}

func TestSniffKeysNotValues(t *testing.T) {
	for msg, want := range map[string]string{
		`{"ts":"2026-01-01T00:00:00Z","principal":"a","object":"class_uid","client":"dbUserName"}`: "native",
		`{"principal":"a","note":"\"class_uid\": 6005"}`:                                           "native",
		`{"class_uid" : 6005, "principal": "x"}`:                                                   "ocsf",
		`2026-11-30 02:43:43.123 UTC,"u","d",1,"",x,1,"",,,,LOG,00000,"AUDIT: ..."`:                "pgaudit_csvlog",
		`20241231 10:11:12,host,user,10.0.0.1,1,2,QUERY,shop,'select 1',0`:                         "mariadb_audit",
		`hello world`:    "",
		`{"foo": "bar"}`: "",
		``:               "",
	} {
		if got := Sniff([]byte(msg)); got != want {
			t.Errorf("Sniff(%.60q) = %q, want %q", msg, got, want)
		}
	}
}

func TestAutoAllocatesNothing(t *testing.T) {
	d, _ := NewDecoder("auto", Limits{}, Options{})
	msg := []byte(realistic + `}`)
	var ev Event
	if err := d.Decode(msg, &ev); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = d.Decode(msg, &ev) }); n != 0 {
		t.Errorf("auto allocates %v per message", n)
	}
}

func FuzzAuto(f *testing.F) {
	for _, s := range autoSamples {
		for _, m := range autoMessages(f, s.glob) {
			f.Add(m)
		}
	}
	d, _ := NewDecoder("auto", Limits{}, Options{LogLinePrefix: "%m [%p] %q%u@%d "})
	f.Fuzz(func(t *testing.T, msg []byte) {
		evs, errs := decodeAllWith(d, msg)
		for _, err := range errs {
			if _, ok := ReasonOf(err); err != nil && !ok {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
		}
		for _, ev := range evs {
			if ev.Time == 0 || ev.Principal == "" {
				t.Fatalf("event without time or principal: %+v", ev)
			}
		}
	})
}

func BenchmarkAutoDecode(b *testing.B) {
	d, _ := NewDecoder("auto", Limits{}, Options{})
	msg := []byte(realistic + `}`)
	var ev Event
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := d.Decode(msg, &ev); err != nil {
			b.Fatal(err)
		}
	}
}
