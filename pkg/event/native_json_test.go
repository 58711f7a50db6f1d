package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// These tests hold Native to encoding/json, the reference for what a JSON
// message means.

// textFields are the fields Native keeps as text.
var textFields = []string{"principal", "credential", "role", "client", "database", "object"}

func textOf(ev *Event, field string) string {
	switch field {
	case "principal":
		return ev.Principal
	case "credential":
		return ev.Credential
	case "role":
		return ev.Role
	case "client":
		return ev.Client
	case "database":
		return ev.Database
	case "object":
		return ev.Object
	}
	panic(field)
}

// refText is what a text field means to encoding/json: a string's value or
// a number's text; null is absent.
func refText(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("encoding/json cannot read %q: %v", raw, err)
		}
		return s
	}
	if string(raw) == "null" {
		return ""
	}
	return string(raw)
}

var lastDigits = regexp.MustCompile(`(\d{1,19})\D*$`)

func refNumber(id string) (uint64, bool) {
	m := lastDigits.FindStringSubmatch(id)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	return n, err == nil
}

// genString returns a random string and a JSON encoding of it that uses
// every kind of escape.
func genString(rng *rand.Rand) (value string, encoded string) {
	pool := []rune{'a', 'Z', '0', '7', '-', '.', ' ', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', 0, 0x1f, 0x7f,
		'é', 'ü', '例', '😀', '\u2028', '\uFFFD', 0x10FFFF}
	var v strings.Builder
	var e strings.Builder
	e.WriteByte('"')
	for range rng.IntN(24) {
		if rng.IntN(30) == 0 {
			// A lone surrogate escape, which encoding/json reads as U+FFFD.
			fmt.Fprintf(&e, `\u%04x`, 0xD800+rng.IntN(0x800))
			v.WriteRune(utf8.RuneError)
			continue
		}
		r := pool[rng.IntN(len(pool))]
		if rng.IntN(3) == 0 {
			r = 0x20 + rune(rng.IntN(0x5f))
		}
		v.WriteRune(r)
		short := map[rune]string{'"': `\"`, '\\': `\\`, '/': `\/`, '\b': `\b`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`}
		switch {
		case rng.IntN(3) == 0 && short[r] != "":
			e.WriteString(short[r])
		case rng.IntN(3) == 0 || r < 0x20 || r == '"' || r == '\\':
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				fmt.Fprintf(&e, `\u%04X\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(&e, `\u%04x`, r)
			}
		default:
			e.WriteRune(r)
		}
	}
	e.WriteByte('"')
	return v.String(), e.String()
}

func TestNativeMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	d := NewNative(Limits{})
	var ev Event
	ws := []string{"", "", " ", "\n\t", "\r\n  "}
	for i := range 20_000 {
		var msg bytes.Buffer
		w := func() string { return ws[rng.IntN(len(ws))] }
		msg.WriteString(w() + "{" + w() + `"ts"` + w() + ":" + w() + `"2024-01-02T03:04:05Z"`)
		fields := append([]string{"session", "rows", "bytes", "record_ids", "unknown"}, textFields...)
		rng.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
		for _, f := range fields[:1+rng.IntN(len(fields))] {
			fmt.Fprintf(&msg, "%s,%s%q%s:%s", w(), w(), f, w(), w())
			switch f {
			case "rows", "bytes":
				n := rng.Int64()
				if rng.IntN(2) == 0 {
					fmt.Fprintf(&msg, "%d", n)
				} else {
					fmt.Fprintf(&msg, `"%d"`, n)
				}
			case "record_ids":
				msg.WriteString("[" + w())
				for j := range rng.IntN(6) {
					if j > 0 {
						msg.WriteString(w() + "," + w())
					}
					if rng.IntN(4) == 0 {
						fmt.Fprintf(&msg, "%d", rng.Uint64())
					} else {
						_, e := genString(rng)
						msg.WriteString(e)
					}
				}
				msg.WriteString(w() + "]")
			case "unknown":
				_, e := genString(rng)
				fmt.Fprintf(&msg, `{"a":[%s,{"b":%s}],"c":-1.5e-7}`, e, e)
			default:
				if rng.IntN(8) == 0 {
					fmt.Fprintf(&msg, "%d", rng.Int64())
					break
				}
				_, e := genString(rng)
				msg.WriteString(e)
			}
		}
		msg.WriteString(`,"principal":"p` + strconv.Itoa(i) + `"` + w() + "}" + w())

		if err := d.Decode(msg.Bytes(), &ev); err != nil {
			t.Fatalf("Decode(%q) error = %v", msg.Bytes(), err)
		}
		compareWithJSON(t, msg.Bytes(), &ev)
	}
}

// compareWithJSON checks a decoded event against encoding/json's reading of
// the same valid message.
func compareWithJSON(t *testing.T, msg []byte, ev *Event) {
	t.Helper()
	var ref map[string]json.RawMessage
	if err := json.Unmarshal(msg, &ref); err != nil {
		t.Fatalf("encoding/json rejects %q, which Native accepted: %v", msg, err)
	}
	for _, f := range textFields {
		if got, want := textOf(ev, f), refText(t, ref[f]); got != want {
			t.Fatalf("%s = %q, encoding/json reads %q in %q", f, got, want, msg)
		}
	}
	if raw := ref["session"]; raw != nil {
		var want uint64
		if s := refText(t, raw); s != "" {
			want = xxhash.Sum64String(s)
		}
		if ev.Session != want {
			t.Fatalf("session hash = %x, want %x in %q", ev.Session, want, msg)
		}
	}
	tsRaw := ref["ts"]
	if len(tsRaw) > 0 && tsRaw[0] == '"' {
		tsRaw = json.RawMessage(refText(t, tsRaw))
	}
	if want, _ := ParseTime(tsRaw); ev.Time != want {
		t.Fatalf("ts = %d, want %d in %q", ev.Time, want, msg)
	}
	for _, f := range []string{"rows", "bytes"} {
		raw, ok := ref[f]
		if !ok || string(raw) == "null" {
			continue
		}
		want, err := strconv.ParseInt(strings.Trim(string(raw), `"`), 10, 64)
		got := ev.Rows
		if f == "bytes" {
			got = ev.Bytes
		}
		if err == nil && got != want {
			t.Fatalf("%s = %d, want %d in %q", f, got, want, msg)
		}
	}
	var idsRaw []json.RawMessage
	if raw := ref["record_ids"]; raw != nil {
		if err := json.Unmarshal(raw, &idsRaw); err != nil {
			t.Fatalf("encoding/json cannot read record_ids of %q: %v", msg, err)
		}
	}
	if ev.RecordCount != len(idsRaw) {
		t.Fatalf("RecordCount = %d, want %d in %q", ev.RecordCount, len(idsRaw), msg)
	}
	var nums []uint64
	for i, raw := range idsRaw {
		id := refText(t, raw)
		if i < len(ev.RecordIDs) && ev.RecordIDs[i] != xxhash.Sum64String(id) {
			t.Fatalf("record id %d hashed to %x, want the hash of %q in %q", i, ev.RecordIDs[i], id, msg)
		}
		if n, ok := refNumber(id); ok && i < len(ev.RecordIDs) {
			nums = append(nums, n)
		}
	}
	if fmt.Sprint(nums) != fmt.Sprint(ev.RecordNums) {
		t.Fatalf("RecordNums = %v, want %v in %q", ev.RecordNums, nums, msg)
	}
}

func FuzzNative(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) {
		d := NewNative(Limits{MaxMessageBytes: 1 << 16, MaxRecordIDs: 4})
		var ev Event
		err := d.Decode(msg, &ev)
		valid := json.Valid(msg)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode() error %v (%T) is not a *DecodeError", err, err)
			}
			if de.Reason.String() == "unknown" || de.Offset < -1 || de.Offset > len(msg) {
				t.Fatalf("Decode() error %+v is malformed", de)
			}
			if de.Reason == ReasonMalformedJSON && valid && !deep(msg) {
				t.Fatalf("Decode() says malformed_json for valid JSON %q", msg)
			}
			if de.Reason == ReasonNotObject && valid && bytes.TrimLeft(msg, " \t\r\n")[0] == '{' {
				t.Fatalf("Decode() says not_object for an object %q", msg)
			}
			return
		}
		if ev.Principal == "" {
			t.Fatalf("Decode(%q) succeeded without a principal", msg)
		}
		if !valid {
			t.Fatalf("Decode(%q) accepted invalid JSON", msg)
		}
		if len(ev.RecordNums) > len(ev.RecordIDs) || len(ev.RecordIDs) > 4 || len(ev.RecordIDs) > ev.RecordCount {
			t.Fatalf("Decode(%q) record counts are inconsistent: %+v", msg, ev)
		}
		if utf8.Valid(msg) {
			// compareWithJSON also checks that ts was parsed to the value
			// it has in the message.
			compareWithJSON(t, msg, &ev)
		}
		var again Event
		if err := NewNative(Limits{MaxMessageBytes: 1 << 16, MaxRecordIDs: 4}).Decode(msg, &again); err != nil ||
			fmt.Sprint(normalize(again)) != fmt.Sprint(normalize(ev)) {
			t.Fatalf("Decode(%q) is not deterministic", msg)
		}
	})
}

// deep reports whether msg may nest deeper than Native accepts; its syntax
// errors are then not comparable with encoding/json's.
func deep(msg []byte) bool {
	return bytes.Count(msg, []byte("{"))+bytes.Count(msg, []byte("[")) > maxDepth
}
