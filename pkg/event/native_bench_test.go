package event

import "testing"

// realistic is a typical native event of about 300 bytes.
const realistic = `{"ts":"2025-03-14T09:26:53.589Z","principal":"svc-billing-export","principal_type":"service","credential":"AKIA4EXAMPLE7Q","role":"etl","source_ip":"10.42.7.19","client":"billing-exporter/2.3.1","session":"6f1c2a9e-5b7d-4c1e-9a0f-3e2d1c0b9a87","database":"shop","object":"public.customers","action":"read","rows":5,"bytes":18234,"status":"ok"`

func benchDecode(b *testing.B, msg []byte) {
	d := NewNative(Limits{})
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
}

func BenchmarkNativeDecode(b *testing.B) {
	b.Run("ids=0", func(b *testing.B) { benchDecode(b, []byte(realistic+`}`)) })
	b.Run("ids=5", func(b *testing.B) {
		benchDecode(b, []byte(realistic+`,"record_ids":["cust-000123","cust-000124","cust-000125","cust-000126","cust-000127"]}`))
	})
}
