package event

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

// base is the smallest valid message; most cases extend it.
const base = `{"ts":"2024-01-02T03:04:05Z","principal":"alice"`

var baseTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()

func baseEvent() Event { return Event{Time: baseTime, Principal: "alice"} }

func ids(ss ...string) []uint64 {
	out := make([]uint64, len(ss))
	for i, s := range ss {
		out[i] = xxhash.Sum64String(s)
	}
	return out
}

// normalize makes empty and nil slices compare equal.
func normalize(e Event) Event {
	if len(e.RecordIDs) == 0 {
		e.RecordIDs = nil
	}
	if len(e.RecordNums) == 0 {
		e.RecordNums = nil
	}
	return e
}

func TestNativeDecode(t *testing.T) {
	ms := func(v int64) int64 { return v * int64(time.Millisecond) }
	tests := []struct {
		name   string
		limits Limits
		input  string
		// want edits the base event into the expected one; unused when
		// wantReason is set.
		want       func(e *Event)
		wantReason Reason
		wantField  string
	}{
		{name: "minimal", input: base + `}`, want: func(*Event) {}},
		{
			name: "all fields",
			input: `{"ts":"2024-01-02T03:04:05.250+01:00","principal":"cs-0042","principal_type":"user",` +
				`"credential":"kid-7","role":"cs_agent","source_ip":"203.0.113.9","client":"crm/1.2",` +
				`"session":"s-1","database":"shop","object":"public.customers","action":"export",` +
				`"rows":12,"bytes":3456,"record_ids":["cust-000123","cust-000124"],"status":"denied"}`,
			want: func(e *Event) {
				*e = Event{
					Time:          time.Date(2024, 1, 2, 2, 4, 5, 250e6, time.UTC).UnixNano(),
					Principal:     "cs-0042",
					PrincipalType: PrincipalUser,
					Credential:    "kid-7",
					Role:          "cs_agent",
					SourceIP:      netip.MustParseAddr("203.0.113.9"),
					Client:        "crm/1.2",
					Session:       xxhash.Sum64String("s-1"),
					Database:      "shop",
					Object:        "public.customers",
					Action:        ActionExport,
					Status:        StatusDenied,
					Rows:          12,
					HasRows:       true,
					Bytes:         3456,
					RecordIDs:     ids("cust-000123", "cust-000124"),
					RecordNums:    []uint64{123, 124},
					RecordCount:   2,
				}
			},
		},
		{
			name:  "pretty printed with every kind of whitespace",
			input: " \r\n\t{ \"ts\" :\t\"2024-01-02T03:04:05Z\" ,\n  \"principal\"\r\n:\"alice\" , \"record_ids\" : [ \"a1\" , 2 ] }\n\n",
			want: func(e *Event) {
				e.RecordIDs, e.RecordNums, e.RecordCount = ids("a1", "2"), []uint64{1, 2}, 2
			},
		},
		{name: "keys in any order", input: `{"principal":"alice","ts":"2024-01-02T03:04:05Z"}`, want: func(*Event) {}},

		// ts
		{name: "ts offset", input: `{"ts":"2024-01-02T05:34:05+02:30","principal":"alice"}`, want: func(*Event) {}},
		{name: "ts negative offset", input: `{"ts":"2024-01-01T22:04:05-05:00","principal":"alice"}`, want: func(*Event) {}},
		{name: "ts space and lower case", input: `{"ts":"2024-01-02 03:04:05z","principal":"alice"}`, want: func(*Event) {}},
		{name: "ts lower t", input: `{"ts":"2024-01-02t03:04:05Z","principal":"alice"}`, want: func(*Event) {}},
		{name: "ts nanoseconds", input: `{"ts":"2024-01-02T03:04:05.123456789Z","principal":"alice"}`, want: func(e *Event) { e.Time += 123456789 }},
		{name: "ts one fraction digit", input: `{"ts":"2024-01-02T03:04:05.5Z","principal":"alice"}`, want: func(e *Event) { e.Time += 5e8 }},
		{name: "ts leap second", input: `{"ts":"2016-12-31T23:59:60Z","principal":"alice"}`, want: func(e *Event) {
			e.Time = time.Date(2016, 12, 31, 23, 59, 59, 0, time.UTC).UnixNano()
		}},
		{name: "ts leap day", input: `{"ts":"2024-02-29T00:00:00Z","principal":"alice"}`, want: func(e *Event) {
			e.Time = time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC).UnixNano()
		}},
		{name: "ts epoch millis", input: `{"ts":1700000000123,"principal":"alice"}`, want: func(e *Event) { e.Time = ms(1700000000123) }},
		{name: "ts epoch millis string", input: `{"ts":"1700000000123","principal":"alice"}`, want: func(e *Event) { e.Time = ms(1700000000123) }},
		{name: "ts epoch millis fraction", input: `{"ts":1700000000123.5,"principal":"alice"}`, want: func(e *Event) { e.Time = ms(1700000000123) + 500000 }},
		{name: "ts epoch zero", input: `{"ts":0,"principal":"alice"}`, want: func(e *Event) { e.Time = 0 }},
		{name: "ts escaped", input: `{"ts":"2024-01-02T03:04:05\u005a","principal":"alice"}`, want: func(*Event) {}},
		{name: "ts missing", input: `{"principal":"alice"}`, wantReason: ReasonMissingTime},
		{name: "ts null", input: `{"ts":null,"principal":"alice"}`, wantReason: ReasonMissingTime},
		{name: "ts null after value", input: base + `,"ts":null}`, wantReason: ReasonMissingTime},
		{name: "ts no zone", input: `{"ts":"2024-01-02T03:04:05","principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},
		{name: "ts offset without colon", input: `{"ts":"2024-01-02T03:04:05+0200","principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},
		{name: "ts month 13", input: `{"ts":"2024-13-02T03:04:05Z","principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},
		{name: "ts feb 29 non leap", input: `{"ts":"2023-02-29T03:04:05Z","principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},
		{name: "ts hour 24", input: `{"ts":"2024-01-02T24:00:00Z","principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},
		{name: "ts ten fraction digits", input: `{"ts":"2024-01-02T03:04:05.1234567890Z","principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},
		{name: "ts empty", input: `{"ts":"","principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},
		{name: "ts exponent", input: `{"ts":1.7e12,"principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},
		{name: "ts bool", input: `{"ts":true,"principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},
		{name: "ts object", input: `{"ts":{"s":1},"principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},
		{name: "ts overflow", input: `{"ts":99999999999999999,"principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},
		{name: "ts year 9999 overflows int64", input: `{"ts":"9999-01-01T00:00:00Z","principal":"alice"}`, wantReason: ReasonBadTime, wantField: "ts"},

		// principal
		{name: "principal missing", input: `{"ts":"2024-01-02T03:04:05Z"}`, wantReason: ReasonMissingPrincipal},
		{name: "principal empty", input: `{"ts":"2024-01-02T03:04:05Z","principal":""}`, wantReason: ReasonMissingPrincipal},
		{name: "principal null", input: `{"ts":"2024-01-02T03:04:05Z","principal":null}`, wantReason: ReasonMissingPrincipal},
		{name: "principal number", input: `{"ts":"2024-01-02T03:04:05Z","principal":12345}`, want: func(e *Event) { e.Principal = "12345" }},
		{name: "principal float text kept", input: `{"ts":"2024-01-02T03:04:05Z","principal":-1.50e3}`, want: func(e *Event) { e.Principal = "-1.50e3" }},
		{name: "principal bool", input: `{"ts":"2024-01-02T03:04:05Z","principal":true}`, wantReason: ReasonBadValue, wantField: "principal"},
		{name: "principal array", input: `{"ts":"2024-01-02T03:04:05Z","principal":["a"]}`, wantReason: ReasonBadValue, wantField: "principal"},
		{name: "principal object", input: `{"ts":"2024-01-02T03:04:05Z","principal":{}}`, wantReason: ReasonBadValue, wantField: "principal"},
		{name: "principal unicode", input: `{"ts":"2024-01-02T03:04:05Z","principal":"jürgen.müller@例え.jp"}`, want: func(e *Event) { e.Principal = "jürgen.müller@例え.jp" }},
		{
			name:  "principal short escapes",
			input: `{"ts":"2024-01-02T03:04:05Z","principal":"a\"b\\c\/d\be\ff\ng\rh\ti"}`,
			want:  func(e *Event) { e.Principal = "a\"b\\c/d\be\ff\ng\rh\ti" },
		},
		{name: "principal unicode escape", input: `{"ts":"2024-01-02T03:04:05Z","principal":"j\u00fcrgen\u4F8B"}`, want: func(e *Event) { e.Principal = "jürgen例" }},
		{name: "principal surrogate pair", input: `{"ts":"2024-01-02T03:04:05Z","principal":"x\ud83d\ude00y"}`, want: func(e *Event) { e.Principal = "x😀y" }},
		{name: "principal lone high surrogate", input: `{"ts":"2024-01-02T03:04:05Z","principal":"x\ud83dy"}`, want: func(e *Event) { e.Principal = "x\uFFFDy" }},
		{name: "principal lone low surrogate", input: `{"ts":"2024-01-02T03:04:05Z","principal":"x\ude00y"}`, want: func(e *Event) { e.Principal = "x\uFFFDy" }},
		{name: "principal high surrogate then escape", input: `{"ts":"2024-01-02T03:04:05Z","principal":"\ud83d\u0041"}`, want: func(e *Event) { e.Principal = "\uFFFDA" }},
		{name: "principal two high surrogates", input: `{"ts":"2024-01-02T03:04:05Z","principal":"\ud83d\ud83d\ude00"}`, want: func(e *Event) { e.Principal = "\uFFFD😀" }},
		{name: "principal escaped NUL", input: `{"ts":"2024-01-02T03:04:05Z","principal":"a\u0000b"}`, want: func(e *Event) { e.Principal = "a\x00b" }},
		{name: "principal long", input: `{"ts":"2024-01-02T03:04:05Z","principal":"` + strings.Repeat("p", 5000) + `"}`, want: func(e *Event) { e.Principal = strings.Repeat("p", 5000) }},
		{name: "escaped key", input: `{"ts":"2024-01-02T03:04:05Z","princip\u0061l":"bob"}`, want: func(e *Event) { e.Principal = "bob" }},
		{name: "keys are case sensitive", input: `{"ts":"2024-01-02T03:04:05Z","Principal":"bob"}`, wantReason: ReasonMissingPrincipal},

		// other strings
		{name: "principal_type service", input: base + `,"principal_type":"service"}`, want: func(e *Event) { e.PrincipalType = PrincipalService }},
		{name: "principal_type api_key", input: base + `,"principal_type":"api_key"}`, want: func(e *Event) { e.PrincipalType = PrincipalAPIKey }},
		{name: "principal_type customer", input: base + `,"principal_type":"customer"}`, want: func(e *Event) { e.PrincipalType = PrincipalCustomer }},
		{name: "principal_type unknown", input: base + `,"principal_type":"robot"}`, want: func(*Event) {}},
		{name: "credential number", input: base + `,"credential":7}`, want: func(e *Event) { e.Credential = "7" }},
		{name: "credential null", input: base + `,"credential":null}`, want: func(*Event) {}},
		{name: "credential bool", input: base + `,"credential":false}`, wantReason: ReasonBadValue, wantField: "credential"},
		{name: "role", input: base + `,"role":"analyst"}`, want: func(e *Event) { e.Role = "analyst" }},
		{name: "client escaped", input: base + `,"client":"Mozilla\/5.0 (X11)"}`, want: func(e *Event) { e.Client = "Mozilla/5.0 (X11)" }},
		{name: "database", input: base + `,"database":"shop"}`, want: func(e *Event) { e.Database = "shop" }},
		{name: "object", input: base + `,"object":"public.customers"}`, want: func(e *Event) { e.Object = "public.customers" }},
		{name: "session", input: base + `,"session":"abc"}`, want: func(e *Event) { e.Session = xxhash.Sum64String("abc") }},
		{name: "session number", input: base + `,"session":42}`, want: func(e *Event) { e.Session = xxhash.Sum64String("42") }},
		{name: "session escaped hashes unescaped bytes", input: base + `,"session":"\u0061bc"}`, want: func(e *Event) { e.Session = xxhash.Sum64String("abc") }},
		{name: "session empty", input: base + `,"session":""}`, want: func(*Event) {}},
		{name: "session array", input: base + `,"session":[]}`, wantReason: ReasonBadValue, wantField: "session"},

		// source_ip
		{name: "source_ip v4", input: base + `,"source_ip":"192.0.2.1"}`, want: func(e *Event) { e.SourceIP = netip.MustParseAddr("192.0.2.1") }},
		{name: "source_ip v6", input: base + `,"source_ip":"2001:db8::1"}`, want: func(e *Event) { e.SourceIP = netip.MustParseAddr("2001:db8::1") }},
		{name: "source_ip v4 mapped", input: base + `,"source_ip":"::ffff:192.0.2.1"}`, want: func(e *Event) { e.SourceIP = netip.MustParseAddr("192.0.2.1") }},
		{name: "source_ip zone", input: base + `,"source_ip":"fe80::1%eth0"}`, want: func(e *Event) { e.SourceIP = netip.MustParseAddr("fe80::1") }},
		{name: "source_ip invalid ignored", input: base + `,"source_ip":"not-an-ip"}`, want: func(*Event) {}},
		{name: "source_ip with port ignored", input: base + `,"source_ip":"192.0.2.1:5432"}`, want: func(*Event) {}},
		{name: "source_ip number ignored", input: base + `,"source_ip":12345}`, want: func(*Event) {}},
		{name: "source_ip later invalid clears", input: base + `,"source_ip":"192.0.2.1","source_ip":"x"}`, want: func(*Event) {}},
		{name: "source_ip object", input: base + `,"source_ip":{}}`, wantReason: ReasonBadValue, wantField: "source_ip"},

		// action and status
		{name: "action read", input: base + `,"action":"read"}`, want: func(*Event) {}},
		{name: "action write", input: base + `,"action":"write"}`, want: func(e *Event) { e.Action = ActionWrite }},
		{name: "action delete", input: base + `,"action":"delete"}`, want: func(e *Event) { e.Action = ActionDelete }},
		{name: "action login", input: base + `,"action":"login"}`, want: func(e *Event) { e.Action = ActionLogin }},
		{name: "action ddl", input: base + `,"action":"ddl"}`, want: func(e *Event) { e.Action = ActionDDL }},
		{name: "action unknown", input: base + `,"action":"truncate"}`, want: func(e *Event) { e.Action = ActionOther }},
		{name: "action empty", input: base + `,"action":""}`, want: func(*Event) {}},
		{name: "action null", input: base + `,"action":null}`, want: func(*Event) {}},
		{name: "status denied", input: base + `,"status":"denied"}`, want: func(e *Event) { e.Status = StatusDenied }},
		{name: "status error", input: base + `,"status":"error"}`, want: func(e *Event) { e.Status = StatusError }},
		{name: "status unknown", input: base + `,"status":"timeout"}`, want: func(e *Event) { e.Status = StatusError }},
		{name: "status empty", input: base + `,"status":""}`, want: func(*Event) {}},
		{name: "status number", input: base + `,"status":403}`, want: func(e *Event) { e.Status = StatusError }},

		// rows and bytes
		{name: "rows", input: base + `,"rows":42}`, want: func(e *Event) { e.Rows, e.HasRows = 42, true }},
		{name: "rows zero", input: base + `,"rows":0}`, want: func(e *Event) { e.HasRows = true }},
		{name: "rows string", input: base + `,"rows":"42"}`, want: func(e *Event) { e.Rows, e.HasRows = 42, true }},
		{name: "rows string leading zeros", input: base + `,"rows":"007"}`, want: func(e *Event) { e.Rows, e.HasRows = 7, true }},
		{name: "rows float zero fraction", input: base + `,"rows":42.0}`, want: func(e *Event) { e.Rows, e.HasRows = 42, true }},
		{name: "rows string float zero fraction", input: base + `,"rows":"42.00"}`, want: func(e *Event) { e.Rows, e.HasRows = 42, true }},
		{name: "rows max int64", input: base + `,"rows":9223372036854775807}`, want: func(e *Event) { e.Rows, e.HasRows = 1<<63-1, true }},
		{name: "rows null", input: base + `,"rows":null}`, want: func(*Event) {}},
		{name: "rows null after value", input: base + `,"rows":5,"rows":null}`, want: func(*Event) {}},
		{name: "rows overflow", input: base + `,"rows":9223372036854775808}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "rows huge", input: base + `,"rows":123456789012345678901234567890}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "rows negative", input: base + `,"rows":-1}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "rows negative string", input: base + `,"rows":"-1"}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "rows fraction", input: base + `,"rows":1.5}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "rows exponent", input: base + `,"rows":1e3}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "rows string words", input: base + `,"rows":"many"}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "rows string empty", input: base + `,"rows":""}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "rows string spaces", input: base + `,"rows":" 4"}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "rows string trailing dot", input: base + `,"rows":"4."}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "rows bool", input: base + `,"rows":true}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "rows array", input: base + `,"rows":[1]}`, wantReason: ReasonBadValue, wantField: "rows"},
		{name: "bytes", input: base + `,"bytes":1048576}`, want: func(e *Event) { e.Bytes = 1 << 20 }},
		{name: "bytes string", input: base + `,"bytes":"10"}`, want: func(e *Event) { e.Bytes = 10 }},
		{name: "bytes null", input: base + `,"bytes":5,"bytes":null}`, want: func(*Event) {}},
		{name: "bytes negative", input: base + `,"bytes":-10}`, wantReason: ReasonBadValue, wantField: "bytes"},
		{name: "bytes overflow", input: base + `,"bytes":99999999999999999999}`, wantReason: ReasonBadValue, wantField: "bytes"},

		// record_ids
		{
			name:  "record_ids numbers and strings",
			input: base + `,"record_ids":["cust-000123",42,"acct-7-x","no-digits",""]}`,
			want: func(e *Event) {
				e.RecordIDs = ids("cust-000123", "42", "acct-7-x", "no-digits", "")
				e.RecordNums = []uint64{123, 42, 7}
				e.RecordCount = 5
			},
		},
		{
			name:  "record_ids escaped",
			input: base + `,"record_ids":["cust-\u00301","\u0063ust-9"]}`,
			want: func(e *Event) {
				e.RecordIDs, e.RecordNums, e.RecordCount = ids("cust-01", "cust-9"), []uint64{1, 9}, 2
			},
		},
		{
			name:  "record_ids long digit run keeps last 19",
			input: base + `,"record_ids":["id-12345678901234567890123"]}`,
			want: func(e *Event) {
				e.RecordIDs, e.RecordNums, e.RecordCount = ids("id-12345678901234567890123"), []uint64{5678901234567890123}, 1
			},
		},
		{
			name:  "record_ids max uint64 digits",
			input: base + `,"record_ids":["9999999999999999999"]}`,
			want: func(e *Event) {
				e.RecordIDs, e.RecordNums, e.RecordCount = ids("9999999999999999999"), []uint64{9999999999999999999}, 1
			},
		},
		{
			name:  "record_ids number text is hashed as written",
			input: base + `,"record_ids":[-1.5e3]}`,
			want: func(e *Event) {
				e.RecordIDs, e.RecordNums, e.RecordCount = ids("-1.5e3"), []uint64{3}, 1
			},
		},
		{
			name:   "record_ids over the limit are counted only",
			limits: Limits{MaxRecordIDs: 2},
			input:  base + `,"record_ids":["a1","a2","a3","a4"]}`,
			want: func(e *Event) {
				e.RecordIDs, e.RecordNums, e.RecordCount = ids("a1", "a2"), []uint64{1, 2}, 4
			},
		},
		{name: "record_ids empty", input: base + `,"record_ids":[]}`, want: func(*Event) {}},
		{name: "record_ids empty with space", input: base + `,"record_ids":[ ]}`, want: func(*Event) {}},
		{name: "record_ids null", input: base + `,"record_ids":null}`, want: func(*Event) {}},
		{
			name:  "record_ids duplicate key last wins",
			input: base + `,"record_ids":["a1","a2"],"record_ids":["b3"]}`,
			want: func(e *Event) {
				e.RecordIDs, e.RecordNums, e.RecordCount = ids("b3"), []uint64{3}, 1
			},
		},
		{name: "record_ids then null", input: base + `,"record_ids":["a1"],"record_ids":null}`, want: func(*Event) {}},
		{name: "record_ids string", input: base + `,"record_ids":"a1"}`, wantReason: ReasonBadValue, wantField: "record_ids"},
		{name: "record_ids object", input: base + `,"record_ids":{"a":1}}`, wantReason: ReasonBadValue, wantField: "record_ids"},
		{name: "record_ids bool element", input: base + `,"record_ids":["a",true]}`, wantReason: ReasonBadValue, wantField: "record_ids"},
		{name: "record_ids null element", input: base + `,"record_ids":[null]}`, wantReason: ReasonBadValue, wantField: "record_ids"},
		{name: "record_ids nested array", input: base + `,"record_ids":[["a"]]}`, wantReason: ReasonBadValue, wantField: "record_ids"},
		{name: "record_ids trailing comma", input: base + `,"record_ids":["a",]}`, wantReason: ReasonMalformedJSON},
		{name: "record_ids missing comma", input: base + `,"record_ids":["a" "b"]}`, wantReason: ReasonMalformedJSON},
		{name: "record_ids unterminated", input: base + `,"record_ids":["a"`, wantReason: ReasonMalformedJSON},

		// duplicates
		{name: "duplicate principal last wins", input: base + `,"principal":"bob"}`, want: func(e *Event) { e.Principal = "bob" }},
		{name: "duplicate principal emptied", input: base + `,"principal":""}`, wantReason: ReasonMissingPrincipal},
		{name: "duplicate ts last wins", input: base + `,"ts":0}`, want: func(e *Event) { e.Time = 0 }},
		{name: "duplicate action reset by null", input: base + `,"action":"write","action":null}`, want: func(*Event) {}},

		// unknown fields
		{
			name: "unknown fields of every kind are skipped",
			input: base + `,"query":"SELECT \"x\" FROM t\nWHERE id = '\u00e9'","n":-0.5e-3,"ok":true,"no":false,"z":null,` +
				`"nested":{"a":[1,{"b":[[],{}]},"s\\"],"c":{"d":{"e":"f"}}},"arr":[ ],"obj":{ },"rows":3}`,
			want: func(e *Event) { e.Rows, e.HasRows = 3, true },
		},
		{name: "unknown nested to the limit", input: base + `,"x":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`, want: func(*Event) {}},
		{name: "unknown nested past the limit", input: base + `,"x":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, wantReason: ReasonMalformedJSON},
		{name: "unknown objects nested past the limit", input: base + `,"x":` + strings.Repeat(`{"a":`, 64) + `1` + strings.Repeat("}", 64) + `}`, wantReason: ReasonMalformedJSON},
		{name: "unknown mismatched brackets", input: base + `,"x":[1}}`, wantReason: ReasonMalformedJSON},
		{name: "unknown bad escape", input: base + `,"x":"\x"}`, wantReason: ReasonMalformedJSON},
		{name: "unknown bad unicode escape", input: base + `,"x":"\u12G4"}`, wantReason: ReasonMalformedJSON},
		{name: "unknown short unicode escape", input: base + `,"x":"\u12"}`, wantReason: ReasonMalformedJSON},
		{name: "unknown key not string", input: base + `,"x":{a:1}}`, wantReason: ReasonMalformedJSON},
		{name: "unknown object missing colon", input: base + `,"x":{"a" 1}}`, wantReason: ReasonMalformedJSON},
		{name: "unknown object trailing comma", input: base + `,"x":{"a":1,}}`, wantReason: ReasonMalformedJSON},
		{name: "unknown control character", input: base + ",\"x\":\"a\tb\"}", wantReason: ReasonMalformedJSON},
		{name: "unknown leading zero", input: base + `,"x":01}`, wantReason: ReasonMalformedJSON},
		{name: "unknown lone minus", input: base + `,"x":-}`, wantReason: ReasonMalformedJSON},
		{name: "unknown bare dot", input: base + `,"x":1.}`, wantReason: ReasonMalformedJSON},
		{name: "unknown bare exponent", input: base + `,"x":1e}`, wantReason: ReasonMalformedJSON},
		{name: "unknown plus sign", input: base + `,"x":+1}`, wantReason: ReasonMalformedJSON},
		{name: "unknown truncated literal", input: base + `,"x":tru}`, wantReason: ReasonMalformedJSON},
		{name: "unknown literal with suffix", input: base + `,"x":nullx}`, wantReason: ReasonMalformedJSON},

		// malformed and not objects
		{name: "empty", input: ``, wantReason: ReasonMalformedJSON},
		{name: "whitespace only", input: " \n", wantReason: ReasonMalformedJSON},
		{name: "open brace only", input: `{`, wantReason: ReasonMalformedJSON},
		{name: "empty object", input: `{}`, wantReason: ReasonMissingTime},
		{name: "missing value", input: `{"ts":}`, wantReason: ReasonMalformedJSON},
		{name: "missing colon", input: `{"ts" "x"}`, wantReason: ReasonMalformedJSON},
		{name: "trailing comma", input: base + `,}`, wantReason: ReasonMalformedJSON},
		{name: "leading comma", input: `{,"ts":0}`, wantReason: ReasonMalformedJSON},
		{name: "missing comma", input: `{"ts":0 "principal":"a"}`, wantReason: ReasonMalformedJSON},
		{name: "unterminated string", input: `{"ts":"2024`, wantReason: ReasonMalformedJSON},
		{name: "unterminated key", input: `{"ts`, wantReason: ReasonMalformedJSON},
		{name: "backslash at end", input: `{"ts":"\`, wantReason: ReasonMalformedJSON},
		{name: "escaped string backslash at end", input: `{"principal":"a\n\`, wantReason: ReasonMalformedJSON},
		{name: "escaped string unterminated", input: `{"principal":"a\n`, wantReason: ReasonMalformedJSON},
		{name: "escaped string control character", input: "{\"principal\":\"a\\n\x01\"}", wantReason: ReasonMalformedJSON},
		{name: "control character in value", input: "{\"principal\":\"a\x1fb\"}", wantReason: ReasonMalformedJSON},
		{name: "single quotes", input: `{'ts':0}`, wantReason: ReasonMalformedJSON},
		{name: "trailing garbage", input: base + `} x`, wantReason: ReasonMalformedJSON},
		{name: "two objects", input: base + `}` + base + `}`, wantReason: ReasonMalformedJSON},
		{name: "garbage", input: `hello`, wantReason: ReasonMalformedJSON},
		{name: "not object array", input: `[{"ts":0,"principal":"a"}]`, wantReason: ReasonNotObject},
		{name: "not object string", input: `"x"`, wantReason: ReasonNotObject},
		{name: "not object number", input: ` 42`, wantReason: ReasonNotObject},
		{name: "not object null", input: `null`, wantReason: ReasonNotObject},
		{name: "not object bool", input: `true`, wantReason: ReasonNotObject},
		{name: "too large", limits: Limits{MaxMessageBytes: 10}, input: base + `}`, wantReason: ReasonTooLarge},
		{name: "at the size limit", limits: Limits{MaxMessageBytes: len(base) + 1}, input: base + `}`, want: func(*Event) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewNative(tt.limits)
			// Start from a full event, to catch anything Decode fails to reset.
			ev := Event{Principal: "stale", Role: "stale", Rows: 99, HasRows: true, Session: 1,
				SourceIP: netip.MustParseAddr("198.51.100.1"), RecordIDs: []uint64{1, 2, 3}, RecordNums: []uint64{4}, RecordCount: 3}
			err := d.Decode([]byte(tt.input), &ev)
			if tt.wantReason != 0 {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("Decode() error = %v, want a *DecodeError with reason %v", err, tt.wantReason)
				}
				if de.Reason != tt.wantReason || de.Field != tt.wantField {
					t.Fatalf("Decode() error = %v, want reason %v field %q", err, tt.wantReason, tt.wantField)
				}
				if de.Offset < -1 || de.Offset > len(tt.input) {
					t.Fatalf("Decode() error offset %d outside the message of %d bytes", de.Offset, len(tt.input))
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode() error = %v", err)
			}
			want := baseEvent()
			tt.want(&want)
			if got := normalize(ev); !reflect.DeepEqual(got, normalize(want)) {
				t.Errorf("Decode() =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestNativeDecodeResetsBetweenMessages(t *testing.T) {
	d := NewNative(Limits{})
	var ev Event
	full := `{"ts":1,"principal":"a","principal_type":"user","credential":"c","role":"r","source_ip":"192.0.2.1",` +
		`"client":"cl","session":"s","database":"db","object":"o","action":"write","rows":1,"bytes":2,` +
		`"record_ids":["x1"],"status":"denied"}`
	if err := d.Decode([]byte(full), &ev); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode([]byte(base+`}`), &ev); err != nil {
		t.Fatal(err)
	}
	if got, want := normalize(ev), baseEvent(); !reflect.DeepEqual(got, want) {
		t.Errorf("second Decode() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestNativeDecodeDoesNotAliasMessage(t *testing.T) {
	d := NewNative(Limits{})
	var ev Event
	msg := []byte(`{"ts":1,"principal":"alice","credential":"c\u0031","role":"r","client":"cl","database":"db","object":"o"}`)
	if err := d.Decode(msg, &ev); err != nil {
		t.Fatal(err)
	}
	want := ev
	for i := range msg {
		msg[i] = 'X'
	}
	if err := d.Decode([]byte(`{"ts":1,"principal":"zz\u0032zz"}`), &Event{}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ev, want) || ev.Principal != "alice" || ev.Credential != "c1" {
		t.Errorf("event changed after the message buffer was reused: %+v", ev)
	}
}

func TestNativeDecodeAllocs(t *testing.T) {
	d := NewNative(Limits{})
	msg := []byte(realistic + `,"record_ids":["cust-000123","cust-000124","cust-000125","cust-000126","cust-000127"]}`)
	var ev Event
	if err := d.Decode(msg, &ev); err != nil { // interns the strings, grows the slices
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := d.Decode(msg, &ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode() allocates %v times per message, want 0", allocs)
	}
	if ev.RecordCount != 5 || len(ev.RecordNums) != 5 || !ev.SourceIP.IsValid() || ev.Session == 0 {
		t.Errorf("Decode() = %+v, want every field of the realistic message", ev)
	}
}

func TestDecodeErrorKeepsContentOut(t *testing.T) {
	secret := "cust-4242-secret"
	msgs := []string{
		`{"ts":"` + secret + `","principal":"a"}`,
		`{"ts":1,"principal":{"` + secret + `":1}}`,
		`{"ts":1,"principal":"a","rows":"` + secret + `"}`,
		`{"ts":1,"principal":"a","record_ids":["` + secret + `",true]}`,
		`{"ts":1,"` + secret + `":"\q"}`,
		`{"ts":1,"principal":"a"} ` + secret,
		`"` + secret + `"`,
	}
	d := NewNative(Limits{})
	for _, m := range msgs {
		err := d.Decode([]byte(m), &Event{})
		if err == nil {
			t.Fatalf("Decode(%q) succeeded, want an error", m)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "4242") {
			t.Errorf("error %q quotes the message", err)
		}
	}
}
