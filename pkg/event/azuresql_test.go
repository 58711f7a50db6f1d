package event

// The samples in testdata/azure_sql follow Microsoft's "SQL Database audit
// log format" (MicrosoftDocs/azure-docs,
// articles/azure-sql/database/audit-log-format.md) and the Event Hubs and
// Log Analytics records public collectors and queries read;
// testdata/azure_sql/SOURCES.md says which shape each file follows.

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

func TestAzureSQLGolden(t *testing.T) {
	goldenDir(t, "azure_sql", registeredDecoder("azure_sql"))
}

// azureSQLBatchRecord is a realistic Event Hubs record of a batch, about 1.1 KB.
const azureSQLBatchRecord = `{"time":"2024-05-14T13:00:02.4410000Z","resourceId":"/SUBSCRIPTIONS/6B2B3E76-0000-4C5D-9E8F-000000000001/RESOURCEGROUPS/PROD-RG/PROVIDERS/MICROSOFT.SQL/SERVERS/SALES-SQL/DATABASES/SALESDB","category":"SQLSecurityAuditEvents","operationName":"AuditEvent","properties":{"sequence_number":1,"event_time":"2024-05-14T13:00:02.1234567Z","action_id":"BCM","action_name":"BATCH COMPLETED","succeeded":"true","is_column_permission":"false","session_id":87,"server_principal_id":0,"database_principal_id":5,"object_id":0,"class_type":"DB","class_type_description":"DATABASE","duration_milliseconds":38,"response_rows":420,"affected_rows":420,"client_ip":"10.60.1.15","permission_bitmask":"00000000000000000000000000000000","sequence_group_id":"A1B2C3D4-0000-4E5F-8A9B-0C1D2E3F4A5B","server_principal_name":"app-payments@contoso.com","database_principal_name":"app-payments@contoso.com","server_instance_name":"sales-sql","database_name":"salesdb","schema_name":"","object_name":"","statement":"SELECT c.id, c.email, c.iban FROM dbo.customers c WHERE c.country = @p1","additional_information":"","application_name":"payments-api","data_sensitivity_information":"","is_server_level_audit":"true"}}`

func TestAzureSQLDecode(t *testing.T) {
	var ev Event
	if err := NewAzureSQL(Limits{}).Decode([]byte(azureSQLBatchRecord), &ev); err != nil {
		t.Fatal(err)
	}
	want := Event{
		Time:      time.Date(2024, 5, 14, 13, 0, 2, 123456700, time.UTC).UnixNano(),
		Principal: "app-payments@contoso.com",
		SourceIP:  netip.MustParseAddr("10.60.1.15"),
		Client:    "payments-api",
		Session:   xxhash.Sum64String("sales-sql/87"),
		Database:  "salesdb",
		Action:    ActionRead,
		Rows:      420,
		HasRows:   true,
	}
	if fmt.Sprint(normalize(ev)) != fmt.Sprint(normalize(want)) {
		t.Errorf("got  %+v\nwant %+v", ev, want)
	}
}

// TestAzureSQLKey checks that the three spellings of a field meet.
func TestAzureSQLKey(t *testing.T) {
	for in, want := range map[string]string{
		"server_principal_name":   "serverprincipalname",
		"server_principal_name_s": "serverprincipalname",
		"ServerPrincipalName":     "serverprincipalname",
		"event_time_t":            "eventtime",
		"EventTime":               "eventtime",
		"response_rows_d":         "responserows",
		"ClientIp":                "clientip",
		"action_id":               "actionid",
		"x_s":                     "x",
		"_s":                      "s",
	} {
		var buf [40]byte
		if got := string(azureSQLKey(&buf, []byte(in))); got != want {
			t.Errorf("azureSQLKey(%q) = %q, want %q", in, got, want)
		}
	}
	var buf [40]byte
	if got := azureSQLKey(&buf, []byte("a_very_long_field_name_that_no_audit_record_has_ever_had")); got != nil {
		t.Errorf("long key folded to %q", got)
	}
}

// TestAzureSQLDecodeEnvelope covers Decode given an envelope rather than
// the records Split hands out.
func TestAzureSQLDecodeEnvelope(t *testing.T) {
	other := `{"time":"2024-05-14T13:03:00Z","category":"SQLInsights","properties":{"count_executions":14}}`
	tests := []struct {
		msg    string
		reason Reason
	}{
		{`{"records":[` + azureSQLBatchRecord + `]}`, 0},
		{`{"records":[` + other + `,` + azureSQLBatchRecord + `]}`, 0},
		{`[` + azureSQLBatchRecord + `]`, 0},
		{`{"records":[` + azureSQLBatchRecord + `,` + azureSQLBatchRecord + `]}`, ReasonBadValue},
		{`{"records":[` + other + `]}`, ReasonNotAudit},
		{`{"records":[]}`, ReasonNotAudit},
		{`{"records":[{"records":[` + azureSQLBatchRecord + `]}]}`, ReasonBadValue},
	}
	for _, tt := range tests {
		var ev Event
		err := NewAzureSQL(Limits{}).Decode([]byte(tt.msg), &ev)
		if tt.reason == 0 {
			if err != nil || ev.Rows != 420 {
				t.Errorf("Decode(%.40s) = %v, %+v", tt.msg, err, ev)
			}
			continue
		}
		if r, _ := ReasonOf(err); r != tt.reason {
			t.Errorf("Decode(%.40s) error %v, want %v", tt.msg, err, tt.reason)
		}
	}
}

func TestAzureSQLAllocs(t *testing.T) {
	for _, msg := range dasSeeds(t, filepath.Join("testdata", "azure_sql")) {
		dasAllocs(t, NewAzureSQL(Limits{}), msg)
	}
}

func FuzzAzureSQL(f *testing.F) {
	for _, s := range dasSeeds(f, filepath.Join("testdata", "azure_sql")) {
		f.Add(s)
	}
	f.Add([]byte(azureSQLBatchRecord))
	f.Fuzz(func(t *testing.T, msg []byte) {
		dasFuzzCheck(t, NewAzureSQL(Limits{MaxMessageBytes: 1 << 16}), msg)
	})
}

func BenchmarkAzureSQLDecode(b *testing.B) {
	dasBench(b, NewAzureSQL(Limits{}), []byte(azureSQLBatchRecord))
}
