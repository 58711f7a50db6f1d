package event

// Tests of the internal repartition format. Its samples are not from a
// public source: the format is the detector's own, so the events below are
// shaped after what the other decoders produce (native.go, pgaudit.go,
// mysql.go) and testdata/internal/v1.hex pins the bytes version 1 writes.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// internalEvents cover every field and the edges of each.
func internalEvents() []struct {
	name string
	ev   Event
} {
	ids := func(n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = uint64(i+1) * 0x9e3779b97f4a7c15
		}
		return out
	}
	nums := func(n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = uint64(1_000_000 + i)
		}
		return out
	}
	return []struct {
		name string
		ev   Event
	}{
		{"all_fields_ipv4", Event{
			Time: 1741944413589000000, Principal: "svc-billing-export", PrincipalType: PrincipalService,
			Credential: "AKIA4EXAMPLE7Q", Role: "etl", SourceIP: netip.MustParseAddr("10.42.7.19"),
			Client: "billing-exporter/2.3.1", Session: 0x6f1c2a9e5b7d4c1e, Database: "shop", Object: "public.customers",
			Action: ActionExport, Status: StatusOK, Rows: 5, HasRows: true, Bytes: 18234,
			RecordIDs: ids(5), RecordNums: nums(5), RecordCount: 5,
		}},
		{"ipv6", Event{
			Time: 1, Principal: "alice", PrincipalType: PrincipalUser, SourceIP: netip.MustParseAddr("2001:db8::8a2e:370:7334"),
			Client: "psql", Database: "postgres", Object: "pg_catalog.pg_authid", Action: ActionDDL, Status: StatusDenied,
		}},
		{"ipv4_mapped_ipv6", Event{
			Time: 2, Principal: "bob", SourceIP: netip.MustParseAddr("::ffff:192.0.2.1"), Action: ActionLogin, Status: StatusError,
		}},
		{"no_ip_no_ids", Event{Time: 1700000000000000000, Principal: "root", Action: ActionOther}},
		{"has_rows_zero", Event{Time: 1700000000000000001, Principal: "app", Rows: 0, HasRows: true, Action: ActionDelete}},
		{"rows_without_count", Event{Time: 1700000000000000002, Principal: "app", Rows: 0, HasRows: false, Action: ActionWrite}},
		{"negative_time_and_counts", Event{Time: -1, Principal: "x", Rows: math.MinInt64, Bytes: math.MaxInt64, RecordCount: -3}},
		{"max_record_ids", Event{
			Time: 1700000000000000003, Principal: "crawler", PrincipalType: PrincipalCustomer, Object: "/api/v1/customers",
			RecordIDs: ids(DefaultMaxRecordIDs), RecordNums: nums(DefaultMaxRecordIDs), RecordCount: 100_000,
		}},
		{"ids_without_nums", Event{Time: 3, Principal: "p", RecordIDs: []uint64{0, math.MaxUint64}, RecordCount: 2}},
		{"nums_extremes", Event{Time: 4, Principal: "p", RecordIDs: ids(3), RecordNums: []uint64{0, math.MaxUint64, 127}, RecordCount: 3}},
		{"unicode", Event{
			Time: 5, Principal: "ユーザー-ß-😀", PrincipalType: PrincipalAPIKey, Credential: "ключ", Role: "rôle",
			Client: "客户端", Database: "données", Object: "schéma.\"таблица\"", Session: math.MaxUint64,
		}},
		{"long_string", Event{Time: 6, Principal: strings.Repeat("p", 2000), Object: strings.Repeat("o", 300)}},
	}
}

// sameEvent compares field by field, slices by content (nil and empty are
// the same: Reset keeps capacity).
func sameEvent(a, b *Event) string {
	var diff []string
	check := func(name string, eq bool, x, y any) {
		if !eq {
			diff = append(diff, fmt.Sprintf("%s: %v != %v", name, x, y))
		}
	}
	check("Time", a.Time == b.Time, a.Time, b.Time)
	check("Principal", a.Principal == b.Principal, a.Principal, b.Principal)
	check("PrincipalType", a.PrincipalType == b.PrincipalType, a.PrincipalType, b.PrincipalType)
	check("Credential", a.Credential == b.Credential, a.Credential, b.Credential)
	check("Role", a.Role == b.Role, a.Role, b.Role)
	check("SourceIP", a.SourceIP == b.SourceIP, a.SourceIP, b.SourceIP)
	check("Client", a.Client == b.Client, a.Client, b.Client)
	check("Session", a.Session == b.Session, a.Session, b.Session)
	check("Database", a.Database == b.Database, a.Database, b.Database)
	check("Object", a.Object == b.Object, a.Object, b.Object)
	check("Action", a.Action == b.Action, a.Action, b.Action)
	check("Status", a.Status == b.Status, a.Status, b.Status)
	check("Rows", a.Rows == b.Rows, a.Rows, b.Rows)
	check("HasRows", a.HasRows == b.HasRows, a.HasRows, b.HasRows)
	check("Bytes", a.Bytes == b.Bytes, a.Bytes, b.Bytes)
	check("RecordIDs", slices.Equal(a.RecordIDs, b.RecordIDs), len(a.RecordIDs), len(b.RecordIDs))
	check("RecordNums", slices.Equal(a.RecordNums, b.RecordNums), len(a.RecordNums), len(b.RecordNums))
	check("RecordCount", a.RecordCount == b.RecordCount, a.RecordCount, b.RecordCount)
	return strings.Join(diff, "; ")
}

// randomInternalEvent is a valid Event with every field drawn at random,
// each often left zero, as decoders leave them.
func randomInternalEvent(rng *rand.Rand, maxIDs int) Event {
	str := func() string {
		if rng.IntN(4) == 0 {
			return ""
		}
		const alphabet = "abcXYZ019-_.:/ @\"\\\x00\xffé日😀"
		r := []rune(alphabet)
		n := rng.IntN(40)
		if rng.IntN(50) == 0 {
			n = 200 + rng.IntN(2000)
		}
		var b strings.Builder
		for range n {
			b.WriteRune(r[rng.IntN(len(r))])
		}
		return b.String()
	}
	num := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return rng.Int64N(1000)
		case 2:
			return -rng.Int64()
		}
		return rng.Int64()
	}
	ev := Event{
		Time:          num(),
		Principal:     str(),
		PrincipalType: PrincipalType(rng.IntN(int(PrincipalCustomer) + 1)),
		Credential:    str(),
		Role:          str(),
		Client:        str(),
		Database:      str(),
		Object:        str(),
		Action:        Action(rng.IntN(int(ActionOther) + 1)),
		Status:        Status(rng.IntN(int(StatusError) + 1)),
		Rows:          num(),
		HasRows:       rng.IntN(2) == 0,
		Bytes:         num(),
	}
	for ev.Time == 0 {
		ev.Time = rng.Int64()
	}
	for ev.Principal == "" {
		ev.Principal = str()
	}
	switch rng.IntN(3) {
	case 1:
		var b [4]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		ev.SourceIP = netip.AddrFrom4(b)
	case 2:
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		ev.SourceIP = netip.AddrFrom16(b)
	}
	if rng.IntN(2) == 0 {
		ev.Session = rng.Uint64()
	}
	if rng.IntN(2) == 0 {
		n := rng.IntN(maxIDs + 1)
		for range n {
			ev.RecordIDs = append(ev.RecordIDs, rng.Uint64())
			if rng.IntN(3) > 0 {
				ev.RecordNums = append(ev.RecordNums, rng.Uint64()>>rng.UintN(64))
			}
		}
		ev.RecordCount = n + rng.IntN(3)*rng.IntN(1000)
	}
	return ev
}

func TestInternalRoundTrip(t *testing.T) {
	d := NewInternal(Limits{})
	var buf []byte
	var got Event
	for _, tc := range internalEvents() {
		buf = AppendInternal(buf[:0], &tc.ev)
		if err := d.Decode(buf, &got); err != nil {
			t.Fatalf("%s: Decode: %v", tc.name, err)
		}
		if diff := sameEvent(&tc.ev, &got); diff != "" {
			t.Errorf("%s: round trip differs: %s", tc.name, diff)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10_000 {
		ev := randomInternalEvent(rng, 64)
		buf = AppendInternal(buf[:0], &ev)
		if err := d.Decode(buf, &got); err != nil {
			t.Fatalf("random event %d: Decode: %v", i, err)
		}
		if diff := sameEvent(&ev, &got); diff != "" {
			t.Fatalf("random event %d: round trip differs: %s", i, diff)
		}
	}
}

// TestInternalAppendsToDst: the encoding is appended, not written over
// what dst holds, so a producer can batch records in one buffer.
func TestInternalAppendsToDst(t *testing.T) {
	ev := internalEvents()[0].ev
	one := AppendInternal(nil, &ev)
	two := AppendInternal([]byte("prefix"), &ev)
	if !bytes.Equal(two, append([]byte("prefix"), one...)) {
		t.Fatalf("AppendInternal does not append")
	}
}

// TestInternalWireV1 pins the bytes version 1 writes and reads: a replica
// of a later release must read what an earlier one wrote. A change to this
// golden file is a change of the wire contract (see internal.go).
func TestInternalWireV1(t *testing.T) {
	path := filepath.Join("testdata", "internal", "v1.hex")
	var want bytes.Buffer
	want.WriteString("# AppendInternal of internalEvents(), one per line: name, then the hex of the encoding.\n")
	want.WriteString("# Regenerate with -update only for a new version; version 1 must stay readable.\n")
	for _, tc := range internalEvents() {
		if tc.name == "max_record_ids" || tc.name == "long_string" {
			continue // too long to read; covered by the round trip
		}
		fmt.Fprintf(&want, "%s %s\n", tc.name, hex.EncodeToString(AppendInternal(nil, &tc.ev)))
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, want.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(stored, want.Bytes()) {
		t.Errorf("AppendInternal no longer writes %s: the wire contract changed", path)
	}
	// Decode the stored bytes, not today's encoding: that is what a newer
	// replica meets during a rolling upgrade.
	events := map[string]Event{}
	for _, tc := range internalEvents() {
		events[tc.name] = tc.ev
	}
	d := NewInternal(Limits{})
	var got Event
	sc := bufio.NewScanner(bytes.NewReader(stored))
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, h, _ := strings.Cut(line, " ")
		msg, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ev, ok := events[name]
		if !ok {
			t.Fatalf("%s: no such event", name)
		}
		if err := d.Decode(msg, &got); err != nil {
			t.Fatalf("%s: Decode: %v", name, err)
		}
		if diff := sameEvent(&ev, &got); diff != "" {
			t.Errorf("%s: stored v1 record decodes differently: %s", name, diff)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no records in %s", path)
	}
}

// TestInternalRecordIDLimit: ids beyond the limit are cut, the count keeps
// the total.
func TestInternalRecordIDLimit(t *testing.T) {
	ev := Event{Time: 1, Principal: "p", RecordCount: 10}
	for i := range 10 {
		ev.RecordIDs = append(ev.RecordIDs, uint64(i+1))
		ev.RecordNums = append(ev.RecordNums, uint64(100+i))
	}
	msg := AppendInternal(nil, &ev)
	d := NewInternal(Limits{MaxRecordIDs: 4})
	var got Event
	if err := d.Decode(msg, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.RecordIDs, []uint64{1, 2, 3, 4}) || !slices.Equal(got.RecordNums, []uint64{100, 101, 102, 103}) || got.RecordCount != 10 {
		t.Fatalf("cut to 4: ids %v nums %v count %d", got.RecordIDs, got.RecordNums, got.RecordCount)
	}
	// An event whose count understates its ids (a hand-built one) still
	// says, once cut, how many there were.
	ev.RecordCount = 0
	if err := d.Decode(AppendInternal(nil, &ev), &got); err != nil {
		t.Fatal(err)
	}
	if got.RecordCount != 10 || len(got.RecordIDs) != 4 {
		t.Fatalf("count 0 cut to 4: %d ids, count %d", len(got.RecordIDs), got.RecordCount)
	}
}

func TestInternalErrors(t *testing.T) {
	valid := internalEvents()[0].ev
	enc := func(mod func(*Event)) []byte {
		ev := valid
		ev.RecordIDs, ev.RecordNums = slices.Clone(ev.RecordIDs), slices.Clone(ev.RecordNums)
		if mod != nil {
			mod(&ev)
		}
		return AppendInternal(nil, &ev)
	}
	// header is the prefix up to and including the flags byte.
	header := []byte{internalMagic, internalVersion, 0}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// minimal encodes a valid event with only a time and a principal; its
	// layout is known byte by byte.
	minimal := enc(func(ev *Event) { *ev = Event{Time: 1, Principal: "p"} })
	// offsets in minimal: 0 magic, 1 version, 2 flags, 3 time, 4-5
	// principal, 6 type, 7 credential, 8 role, 9 ip, 10 client, 11
	// database, 12 object, 13 action, 14 status, 15 rows, 16 bytes, 17
	// count, 18 ids, 19 nums.
	if len(minimal) != 20 {
		t.Fatalf("minimal encoding is %d bytes: %x", len(minimal), minimal)
	}
	at := func(i int, b ...byte) []byte {
		m := slices.Clone(minimal[:i])
		m = append(m, b...)
		return append(m, minimal[i+1:]...)
	}
	overlong := bytes.Repeat([]byte{0xff}, 10) // 10 continuation bytes: past 64 bits
	overlong = append(overlong, 0x01)

	cases := []struct {
		name   string
		msg    []byte
		reason Reason
		field  string
	}{
		{"empty", nil, ReasonUnrecognized, ""},
		{"magic_only", []byte{internalMagic}, ReasonUnrecognized, ""},
		{"json", []byte(`{"ts":1,"principal":"p"}`), ReasonUnrecognized, ""},
		{"wrong_magic", at(0, 0xF9), ReasonUnrecognized, ""},
		{"version_0", at(1, 0), ReasonUnrecognized, "version"},
		{"version_2", at(1, 2), ReasonUnrecognized, "version"},
		{"version_255", at(1, 255), ReasonUnrecognized, "version"},
		{"header_only", header[:2], ReasonBadValue, "flags"},
		{"unknown_flag", at(2, 4), ReasonBadValue, "flags"},
		{"session_flag_without_session", at(2, internalHasSession), ReasonBadValue, "session"},
		{"zero_session", cat(minimal[:2], []byte{internalHasSession}, minimal[3:11], make([]byte, 8), minimal[11:]), ReasonBadValue, "session"},
		{"time_overlong", cat(header, overlong), ReasonBadValue, "ts"},
		{"time_truncated", cat(header, []byte{0x80}), ReasonBadValue, "ts"},
		{"principal_length_past_end", at(4, 100), ReasonBadValue, "principal"},
		{"principal_length_overlong", cat(minimal[:4], overlong), ReasonBadValue, "principal"},
		{"principal_length_huge", cat(minimal[:4], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), ReasonBadValue, "principal"},
		{"principal_type_unknown", at(6, byte(PrincipalCustomer)+1), ReasonBadValue, "principal_type"},
		{"credential_past_end", at(7, 50), ReasonBadValue, "credential"},
		{"role_past_end", at(8, 50), ReasonBadValue, "role"},
		{"ip_length_5", at(9, 5), ReasonBadValue, "source_ip"},
		{"ip_length_6", at(9, 6), ReasonBadValue, "source_ip"},
		{"ip_truncated", cat(minimal[:9], []byte{16, 1, 2, 3}), ReasonBadValue, "source_ip"},
		{"client_past_end", at(10, 50), ReasonBadValue, "client"},
		{"database_past_end", at(11, 50), ReasonBadValue, "database"},
		{"object_past_end", at(12, 50), ReasonBadValue, "object"},
		{"action_unknown", at(13, byte(ActionOther)+1), ReasonBadValue, "action"},
		{"status_unknown", at(14, byte(StatusError)+1), ReasonBadValue, "status"},
		{"rows_overlong", cat(minimal[:15], overlong), ReasonBadValue, "rows"},
		{"bytes_truncated", cat(minimal[:16], []byte{0xff}), ReasonBadValue, "bytes"},
		{"count_overlong", cat(minimal[:17], overlong), ReasonBadValue, "record_count"},
		{"ids_past_end", at(18, 3), ReasonBadValue, "record_ids"},
		{"ids_huge", cat(minimal[:18], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []byte{0}), ReasonBadValue, "record_ids"},
		{"nums_past_end", at(19, 2), ReasonBadValue, "record_nums"},
		{"num_truncated", cat(minimal[:19], []byte{1, 0x80}), ReasonBadValue, "record_nums"},
		{"num_overlong", cat(minimal[:19], []byte{1}, overlong), ReasonBadValue, "record_nums"},
		{"trailing_byte", cat(minimal, []byte{0}), ReasonBadValue, "end"},
		{"two_records", cat(minimal, minimal), ReasonBadValue, "end"},
		{"missing_time", enc(func(ev *Event) { ev.Time = 0 }), ReasonMissingTime, ""},
		{"missing_principal", enc(func(ev *Event) { ev.Principal = "" }), ReasonMissingPrincipal, ""},
		{"too_large", enc(func(ev *Event) { ev.Object = strings.Repeat("o", 1<<16) }), ReasonTooLarge, ""},
	}
	d := NewInternal(Limits{MaxMessageBytes: 1 << 16})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := Event{Time: 99, Principal: "stale"}
			err := d.Decode(tc.msg, &ev)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode() = %v, want a *DecodeError", err)
			}
			if de.Reason != tc.reason || de.Field != tc.field {
				t.Fatalf("Decode() = %s field %q, want %s field %q", de.Reason, de.Field, tc.reason, tc.field)
			}
			if de.Offset < -1 || de.Offset > len(tc.msg) {
				t.Fatalf("Decode() offset %d outside the message of %d bytes", de.Offset, len(tc.msg))
			}
			if tc.reason == ReasonTooLarge && (ev.Time != 0 || ev.Principal != "") {
				t.Fatalf("Decode() did not reset the event: %+v", ev)
			}
			// Errors never carry message content.
			if strings.Contains(err.Error(), "svc-billing") {
				t.Fatalf("error %q quotes the message", err)
			}
		})
	}
}

// TestInternalTruncated: every proper prefix of a valid encoding is an
// error, never a panic and never an event of garbage.
func TestInternalTruncated(t *testing.T) {
	d := NewInternal(Limits{})
	var ev Event
	for _, tc := range internalEvents() {
		msg := AppendInternal(nil, &tc.ev)
		for i := range len(msg) {
			err := d.Decode(msg[:i], &ev)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%s cut at %d of %d: Decode() = %v, want a *DecodeError", tc.name, i, len(msg), err)
			}
		}
	}
}

// TestInternalCorrupted: a flipped byte is an error or an event that
// encodes back to a valid record; never a panic.
func TestInternalCorrupted(t *testing.T) {
	d := NewInternal(Limits{})
	var ev, again Event
	msg := AppendInternal(nil, &internalEvents()[0].ev)
	for i := range msg {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			m := slices.Clone(msg)
			m[i] ^= x
			err := d.Decode(m, &ev)
			if err != nil {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("byte %d ^ %#x: Decode() = %v, want a *DecodeError", i, x, err)
				}
				continue
			}
			if err := d.Decode(AppendInternal(nil, &ev), &again); err != nil || sameEvent(&ev, &again) != "" {
				t.Fatalf("byte %d ^ %#x: decoded event does not round trip (%v)", i, x, err)
			}
		}
	}
}

// TestInternalNotInAuto: auto never recognises internal records (they are
// not for producers), and a binary record fed to it is rejected with a
// *DecodeError by whichever decoder its bytes lead auto to, even when its
// strings hold what auto looks for in text formats.
func TestInternalNotInAuto(t *testing.T) {
	if slices.Contains(autoNames[:], "exfilguard_internal") {
		t.Fatal("auto reads the internal format")
	}
	if slices.Contains(Formats(), InternalFormat) {
		t.Fatal("exfilguard_internal is offered as an input format")
	}
	if _, err := NewDecoder(InternalFormat, Limits{}, Options{}); err != nil {
		t.Fatalf("exfilguard_internal is not registered: %v", err)
	}
	a, err := NewDecoder("auto", Limits{}, Options{LogLinePrefix: "%m [%p] %q%u@%d "})
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	for _, tc := range internalEvents() {
		msgs = append(msgs, AppendInternal(nil, &tc.ev))
	}
	// Strings that steer sniff towards a text format.
	for _, s := range []string{
		"LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<not logged>",
		"server_audit", `{"principal":"p","ts":1}`, `"principal":`,
		"2026-11-30 02:43:43.123 UTC,", "20241231 10:11:12,",
	} {
		ev := Event{Time: 1700000000000000000, Principal: s, Object: s, Client: s}
		msgs = append(msgs, AppendInternal(nil, &ev))
		// The same with a leading newline and BOM, which sniff trims.
		msgs = append(msgs, append([]byte("\n\xef\xbb\xbf"), AppendInternal(nil, &ev)...))
	}
	var ev Event
	for i, msg := range msgs {
		if f := Sniff(msg); f == "native" || f == "ocsf" || f == "aws_das" {
			t.Errorf("message %d: sniffed as %s", i, f)
		}
		recs := [][]byte{msg}
		if sp, ok := a.(Splitter); ok {
			if recs, err = sp.Split(nil, msg); err != nil {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("message %d: auto Split() = %v, want a *DecodeError", i, err)
				}
				continue
			}
		}
		for _, rec := range recs {
			err := a.Decode(rec, &ev)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("message %d (sniffed %q): auto Decode() = %v, want a *DecodeError", i, Sniff(msg), err)
			}
		}
	}
}

// TestInternalAllocs: neither side of a repartition allocates per event
// once its buffers have grown and its strings are interned.
func TestInternalAllocs(t *testing.T) {
	src := internalBenchEvent(t)
	buf := AppendInternal(nil, &src)
	if n := testing.AllocsPerRun(100, func() { buf = AppendInternal(buf[:0], &src) }); n != 0 {
		t.Errorf("AppendInternal: %v allocs/op, want 0", n)
	}
	d := NewInternal(Limits{})
	var ev Event
	if err := d.Decode(buf, &ev); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = d.Decode(buf, &ev) }); n != 0 {
		t.Errorf("Decode: %v allocs/op, want 0", n)
	}
	if diff := sameEvent(&src, &ev); diff != "" {
		t.Fatalf("round trip differs: %s", diff)
	}
}

// internalBenchNative is the realistic native event of the benchmarks with
// five record ids.
const internalBenchNative = realistic + `,"record_ids":["cust-000123","cust-000124","cust-000125","cust-000126","cust-000127"]}`

// internalBenchEvent is internalBenchNative decoded: what a replica
// re-produces to a repartition topic.
func internalBenchEvent(tb testing.TB) Event {
	var ev Event
	if err := NewNative(Limits{}).Decode([]byte(internalBenchNative), &ev); err != nil {
		tb.Fatal(err)
	}
	return ev
}

func BenchmarkInternalDecode(b *testing.B) {
	src := internalBenchEvent(b)
	msg := AppendInternal(nil, &src)
	d := NewInternal(Limits{})
	var ev Event
	if err := d.Decode(msg, &ev); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := d.Decode(msg, &ev); err != nil {
			b.Fatal(err)
		}
	}
	// After the loop: its first iteration resets reported metrics.
	b.ReportMetric(float64(len(msg)), "wire-B")
	b.ReportMetric(float64(len(internalBenchNative)), "native-json-B")
}

func BenchmarkInternalAppend(b *testing.B) {
	src := internalBenchEvent(b)
	buf := AppendInternal(nil, &src)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		buf = AppendInternal(buf[:0], &src)
	}
	b.ReportMetric(float64(len(buf)), "wire-B")
	b.ReportMetric(float64(len(internalBenchNative)), "native-json-B")
}

func FuzzInternal(f *testing.F) {
	for _, tc := range internalEvents() {
		// The long ones make the fuzzer spend its time minimizing.
		if tc.name != "max_record_ids" && tc.name != "long_string" {
			f.Add(AppendInternal(nil, &tc.ev))
		}
	}
	f.Add([]byte{})
	f.Add([]byte{internalMagic, internalVersion})
	f.Fuzz(func(t *testing.T, msg []byte) {
		d := NewInternal(Limits{MaxMessageBytes: 1 << 16, MaxRecordIDs: 8})
		var ev Event
		err := d.Decode(msg, &ev)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode() error %v (%T) is not a *DecodeError", err, err)
			}
			if de.Reason.String() == "unknown" || de.Offset < -1 || de.Offset > len(msg) {
				t.Fatalf("Decode() error %+v is malformed", de)
			}
			return
		}
		if ev.Time == 0 || ev.Principal == "" {
			t.Fatalf("Decode() succeeded without a time or a principal: %+v", ev)
		}
		if len(ev.RecordIDs) > 8 || len(ev.RecordNums) > 8 {
			t.Fatalf("Decode() kept %d ids and %d nums, limit 8", len(ev.RecordIDs), len(ev.RecordNums))
		}
		// A fixpoint: the decoded event re-encodes to a record that
		// decodes to the same event.
		re := AppendInternal(nil, &ev)
		var again Event
		if err := d.Decode(re, &again); err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		if diff := sameEvent(&ev, &again); diff != "" {
			t.Fatalf("re-encoded event decodes differently: %s", diff)
		}
	})
}
