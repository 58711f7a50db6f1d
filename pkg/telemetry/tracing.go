package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracerName is the instrumentation scope of the detector's spans.
const TracerName = "github.com/exfilguard/exfilguard"

// Tracing is the tracer provider the standard OTEL_* environment asks
// for. Tracing is off unless OTEL_TRACES_EXPORTER is "otlp": then spans go
// to the OTLP endpoint of OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT over the
// protocol of OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL ("grpc" or
// "http/protobuf", the default), sampled per OTEL_TRACES_SAMPLER, named
// per OTEL_SERVICE_NAME (default "exfilguard") and
// OTEL_RESOURCE_ATTRIBUTES. Off, the provider is a no-op that costs
// nothing per span.
type Tracing struct {
	Provider trace.TracerProvider
	// Enabled says whether spans are exported: the pipeline then reads
	// message headers for trace context, which costs an allocation per
	// message, and not otherwise.
	Enabled  bool
	shutdown func(context.Context) error
}

// Tracer returns the detector's tracer.
func (t *Tracing) Tracer() trace.Tracer { return t.Provider.Tracer(TracerName) }

// Shutdown flushes spans still buffered.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// NewTracing sets tracing up from getenv (os.Getenv when nil).
func NewTracing(ctx context.Context, getenv func(string) string) (*Tracing, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "", "none":
		return &Tracing{Provider: noop.NewTracerProvider()}, nil
	case "otlp":
	default:
		return nil, fmt.Errorf("set up tracing: OTEL_TRACES_EXPORTER %q is not supported (otlp or none)", exp)
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exporter *otlptrace.Exporter
	var err error
	switch proto {
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("set up tracing: OTLP protocol %q is not supported (grpc or http/protobuf)", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("set up tracing: create OTLP exporter: %w", err)
	}
	version, _ := Version()
	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(semconv.ServiceName("exfilguard"), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, fmt.Errorf("set up tracing: resource: %w", err)
	}
	// The environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) wins
	// over the defaults above.
	if env, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, env); err == nil {
			res = merged
		}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	return &Tracing{Provider: tp, Enabled: true, shutdown: tp.Shutdown}, nil
}
