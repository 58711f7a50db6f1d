package stream

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/pkg/alerts"
)

// TestTracing: with a tracer, every fetch, batch, checkpoint and delivery
// is a span; a producer's W3C traceparent on a message becomes a link of
// the fetch span; a batch's span is a child of its fetch's; and every
// alert carries the trace of the batch that raised it, which its delivery
// span continues.
func TestTracing(t *testing.T) {
	lines := sampleLines(t)[:80000]
	c := cluster(t, 1, []string{"audit"})
	// The producer's trace, as an instrumented shipper would send it.
	producer := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c},
		SpanID:  trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}, TraceFlags: trace.FlagsSampled})
	traceparent := "00-" + producer.TraceID().String() + "-" + producer.SpanID().String() + "-01"
	kafkatest.Produce(t, c.ListenAddrs(), "audit", lines[:1])
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("audit"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Value: lines[1], Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte(traceparent)}}}
	if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	kafkatest.Produce(t, c.ListenAddrs(), "audit", lines[2:])

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	cfg := testConfig(c.ListenAddrs(), "audit", t.TempDir())
	cfg.Kafka.GroupID = "tracing"
	cfg.State.CheckpointEvents = 40000
	r := start(t, cfg, uint64(len(lines)), func(o *Options) { o.Tracer = tp.Tracer("test"); o.TraceHeaders = true })
	r.wait(t)
	r.stop(t)

	byName := map[string][]tracetest.SpanStub{}
	spans := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byName[s.Name] = append(byName[s.Name], s)
		spans[s.SpanContext.SpanID()] = s
	}
	for _, name := range []string{"fetch batch", "process batch", "checkpoint", "deliver alerts"} {
		if len(byName[name]) == 0 {
			t.Errorf("no %q span", name)
		}
	}
	linked := false
	for _, s := range byName["fetch batch"] {
		for _, l := range s.Links {
			if l.SpanContext.TraceID() == producer.TraceID() {
				linked = true
			}
		}
	}
	if !linked {
		t.Error("no fetch span links to the producer's trace from the message's traceparent")
	}
	for _, s := range byName["process batch"] {
		parent, ok := spans[s.Parent.SpanID()]
		if !ok || parent.Name != "fetch batch" || parent.SpanContext.TraceID() != s.SpanContext.TraceID() {
			t.Fatalf("process batch span's parent is %q, want its fetch", parent.Name)
		}
	}

	var as []alerts.Alert
	for _, line := range alertLines(t, r.alerts.Bytes()) {
		b, _ := json.Marshal(line)
		var a alerts.Alert
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatal(err)
		}
		as = append(as, a)
	}
	if len(as) == 0 {
		t.Fatal("no alerts to follow")
	}
	deliveries := map[string]bool{} // trace ids of delivery spans
	for _, s := range byName["deliver alerts"] {
		deliveries[s.SpanContext.TraceID().String()] = true
	}
	for _, a := range as {
		s, ok := spans[mustSpanID(t, a.SpanID)]
		if !ok || s.Name != "process batch" || s.SpanContext.TraceID().String() != a.TraceID {
			t.Errorf("alert %s carries span %s/%s, not a process batch span", a.ID, a.TraceID, a.SpanID)
			continue
		}
		if !deliveries[a.TraceID] {
			t.Errorf("alert %s: no delivery span in its trace %s", a.ID, a.TraceID)
		}
	}
}

func mustSpanID(t *testing.T, s string) trace.SpanID {
	id, err := trace.SpanIDFromHex(s)
	if err != nil {
		t.Fatalf("span id %q: %v", s, err)
	}
	return id
}
