package telemetry

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestTracingFromEnvironment: off unless OTEL_TRACES_EXPORTER asks for
// OTLP, over gRPC or HTTP; anything else is a usage error naming it.
func TestTracingFromEnvironment(t *testing.T) {
	cases := []struct {
		env     map[string]string
		enabled bool
		err     string
	}{
		{env: nil, enabled: false},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}, enabled: false},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, enabled: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, enabled: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, enabled: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: `"zipkin" is not supported`},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, err: `"http/json" is not supported`},
	}
	for _, c := range cases {
		tr, err := NewTracing(context.Background(), func(k string) string { return c.env[k] })
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: err %v, want %q", c.env, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		if tr.Enabled != c.enabled {
			t.Errorf("%v: enabled %v", c.env, tr.Enabled)
		}
		_, span := tr.Tracer().Start(context.Background(), "x")
		if span.SpanContext().IsValid() != c.enabled {
			t.Errorf("%v: span valid %v", c.env, span.SpanContext().IsValid())
		}
		span.End()
		// No collector listens: bound the flush rather than wait for the
		// exporter's retries.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err = tr.Shutdown(ctx)
		cancel()
		if err != nil && c.enabled {
			t.Logf("shutdown (no collector listening): %v", err)
		}
	}
}
