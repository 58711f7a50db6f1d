package event

// The samples in testdata/ocsf follow the OCSF schema (ocsf/ocsf-schema:
// events/application/datastore_activity.json, objects/actor.json,
// objects/user.json, objects/query_info.json, objects/table.json,
// objects/database.json); testdata/ocsf/SOURCES.md says which attributes
// each file exercises.

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

func TestOCSFGolden(t *testing.T) {
	goldenDir(t, "ocsf", registeredDecoder("ocsf"))
}

// ocsfQuery is a realistic Datastore Activity Query event, about 800 bytes.
const ocsfQuery = `{"activity_id":4,"activity_name":"Query","actor":{"user":{"name":"svc_billing","uid":"arn:aws:iam::111122223333:role/billing-exporter","type_id":4,"type":"Service"},"session":{"uid":"66431a93.2f4c","created_time":1715673731402},"app_name":"billing-exporter"},"category_name":"Application Activity","category_uid":6,"class_name":"Datastore Activity","class_uid":6005,"database":{"name":"shop","type":"PostgreSQL"},"dst_endpoint":{"ip":"10.20.1.5","port":5432},"metadata":{"product":{"name":"Aurora PostgreSQL","vendor_name":"AWS"},"version":"1.1.0"},"query_info":{"query_string":"SELECT id, email, card_last4 FROM customers WHERE region = $1","bytes":48213},"severity_id":1,"src_endpoint":{"ip":"10.20.4.17","port":51234},"status":"Success","status_id":1,"table":{"name":"public.customers"},"time":1715673732087,"time_dt":"2024-05-14T08:02:12.087Z","type_uid":600504,"unmapped":{"rows_returned":250}}`

func TestOCSFDecode(t *testing.T) {
	var ev Event
	if err := NewOCSF(Limits{}).Decode([]byte(ocsfQuery), &ev); err != nil {
		t.Fatal(err)
	}
	want := Event{
		Time:          time.Date(2024, 5, 14, 8, 2, 12, 87e6, time.UTC).UnixNano(),
		Principal:     "svc_billing",
		PrincipalType: PrincipalService,
		SourceIP:      netip.MustParseAddr("10.20.4.17"),
		Client:        "billing-exporter",
		Session:       xxhash.Sum64String("66431a93.2f4c"),
		Database:      "shop",
		Object:        "public.customers",
		Action:        ActionRead,
		Rows:          250,
		HasRows:       true,
		Bytes:         48213,
	}
	if fmt.Sprint(normalize(ev)) != fmt.Sprint(normalize(want)) {
		t.Errorf("got  %+v\nwant %+v", ev, want)
	}
}

// TestOCSFDecodeArray covers Decode given an array rather than the events
// Split hands out.
func TestOCSFDecodeArray(t *testing.T) {
	auth := `{"class_uid":3002,"time":1715680804000,"user":{"name":"x"}}`
	tests := []struct {
		msg    string
		reason Reason
	}{
		{`[` + ocsfQuery + `]`, 0},
		{`[` + auth + `,` + ocsfQuery + `]`, ReasonNotObject}, // the 3002 event is a failure of its own
		{`[` + ocsfQuery + `,` + ocsfQuery + `]`, ReasonNotObject},
		{`[` + auth + `]`, ReasonUnrecognized},
		{`[]`, ReasonNotAudit},
		{`[[` + ocsfQuery + `]]`, ReasonNotObject},
	}
	for _, tt := range tests {
		var ev Event
		err := NewOCSF(Limits{}).Decode([]byte(tt.msg), &ev)
		if tt.reason == 0 {
			if err != nil || ev.Principal != "svc_billing" {
				t.Errorf("Decode(%.40s) = %v, %+v", tt.msg, err, ev)
			}
			continue
		}
		if r, _ := ReasonOf(err); r != tt.reason {
			t.Errorf("Decode(%.40s) error %v, want %v", tt.msg, err, tt.reason)
		}
	}
}

func TestOCSFAllocs(t *testing.T) {
	for _, msg := range dasSeeds(t, filepath.Join("testdata", "ocsf")) {
		dasAllocs(t, NewOCSF(Limits{}), msg)
	}
}

func FuzzOCSF(f *testing.F) {
	for _, s := range dasSeeds(f, filepath.Join("testdata", "ocsf")) {
		f.Add(s)
	}
	f.Add([]byte(ocsfQuery))
	f.Fuzz(func(t *testing.T, msg []byte) {
		dasFuzzCheck(t, NewOCSF(Limits{MaxMessageBytes: 1 << 16}), msg)
	})
}

func BenchmarkOCSFDecode(b *testing.B) {
	dasBench(b, NewOCSF(Limits{}), []byte(ocsfQuery))
}
