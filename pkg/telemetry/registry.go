package telemetry

import (
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Version is the detector's version: the module version when built from a
// tagged module, else "devel" and the VCS revision.
func Version() (version, revision string) {
	version, revision = "devel", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, revision
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		version = v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			revision = s.Value
		}
	}
	return version, revision
}

// NewRegistry returns a registry with the Go runtime and process
// collectors and exfilguard_build_info.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	version, revision := Version()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "exfilguard_build_info",
		Help:        "A metric with a constant 1 value labeled by the detector's version, revision and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), info)
	return reg
}

// ConfigStatus reports config loads the way Prometheus does
// (..._config_last_reload_successful), so that one alert rule covers a
// detector running on a config it could not apply.
type ConfigStatus struct {
	ok   prometheus.Gauge
	last prometheus.Gauge
}

// NewConfigStatus registers the config status metrics on reg.
func NewConfigStatus(reg prometheus.Registerer) *ConfigStatus {
	c := &ConfigStatus{
		ok:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "exfilguard_config_last_reload_successful", Help: "Whether the last config load succeeded."}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "exfilguard_config_last_reload_success_timestamp_seconds", Help: "Unix time of the last successful config load."}),
	}
	reg.MustRegister(c.ok, c.last)
	return c
}

// Loaded records a config load and its outcome.
func (c *ConfigStatus) Loaded(ok bool, at time.Time) {
	if ok {
		c.ok.Set(1)
		c.last.Set(float64(at.UnixNano()) / 1e9)
	} else {
		c.ok.Set(0)
	}
}
