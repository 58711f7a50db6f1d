// Package telemetry is how the detector is observed: the Prometheus
// registry with build and config-reload metrics, the one HTTP server that
// serves /metrics, /healthz, /readyz and (behind a flag) /debug/pprof, and
// OpenTelemetry tracing set up from the standard OTEL_* environment.
// Subsystems register their own metrics on the injected registry; nothing
// here is global.
package telemetry
