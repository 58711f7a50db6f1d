package alerts

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/pkg/config"
)

// TestKafkaSink: alerts reach the topic over the real Kafka protocol
// (kfake), keyed by incident id so that an incident stays in order on
// one partition, with id, status and severity headers, in the chosen
// format; every in-sync replica must acknowledge.
func TestKafkaSink(t *testing.T) {
	c := kafkatest.Cluster(t, 3, []string{"alerts"})
	cfg := config.Default()
	cfg.Alerts.Sinks = []config.Sink{{Name: "topic", Type: config.SinkKafka, Topic: "alerts"}, {Name: "ocsf", Type: config.SinkKafka, Topic: "alerts", Format: config.FormatOCSF}}
	cfg.Alerts.FillDefaults()
	d, err := NewDeliverer(DelivererOptions{Config: cfg.Alerts, Dir: t.TempDir(),
		Deps: Deps{KafkaBrokers: c.ListenAddrs(), KafkaDialer: &kafka.Dialer{Timeout: 10 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	if w := d.w[0].sink.(*Kafka).w; w.RequiredAcks != kafka.RequireAll {
		t.Errorf("required acks %v, want all", w.RequiredAcks)
	}
	d.Start()
	open, esc := dtAlert("k1", "high"), dtAlert("k2", "critical")
	esc.Incident.ID, esc.Incident.Status, esc.Incident.Sequence = open.Incident.ID, StatusEscalated, 1
	other := dtAlert("k3", "medium")
	d.Submit(open, esc, other)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st[0].Delivered != 3 || st[1].Delivered != 3 {
		t.Fatalf("stats %+v", st)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("alerts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) < 6 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 6 records: %v", len(recs), err)
		}
		recs = append(recs, fs.Records()...)
	}
	partOf := map[string]int32{}
	native, ocsf := 0, 0
	for _, r := range recs {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		var body map[string]any
		if err := json.Unmarshal(r.Value, &body); err != nil {
			t.Fatal(err)
		}
		if body["class_uid"] != nil {
			ocsf++
		} else {
			native++
			if body["id"] != h[HeaderAlertID] {
				t.Errorf("record id %v, header %s", body["id"], h[HeaderAlertID])
			}
		}
		if h[HeaderStatus] == "" || h[HeaderSeverity] == "" {
			t.Errorf("headers %v", h)
		}
		if p, ok := partOf[string(r.Key)]; ok && p != r.Partition {
			t.Errorf("incident %s on partitions %d and %d", r.Key, p, r.Partition)
		}
		partOf[string(r.Key)] = r.Partition
	}
	if native != 3 || ocsf != 3 || len(partOf) != 2 {
		t.Errorf("%d native, %d ocsf records, %d incident keys", native, ocsf, len(partOf))
	}
}
