package stream

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/exfilguard/exfilguard/pkg/telemetry"
)

// scrape GETs /metrics and parses the text exposition.
func scrape(t *testing.T, addr string) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse scrape: %v\n%s", err, body)
	}
	return fams, body
}

// value is the value of the sample of family name whose labels include
// the given pairs; ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func sum(fams map[string]*dto.MetricFamily, name string) float64 {
	var s float64
	if f := fams[name]; f != nil {
		for _, m := range f.Metric {
			s += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return s
}

// promtool returns the promtool binary: EXFILGUARD_PROMTOOL or the
// cache .ci/promtool.sh fills; missing, the check is skipped, or fails
// under CI.
func promtool(t *testing.T) string {
	if p := os.Getenv("EXFILGUARD_PROMTOOL"); p != "" {
		return p
	}
	cache := os.Getenv("EXFILGUARD_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "exfilguard")
	}
	p := filepath.Join(cache, "bin", "promtool-v0.316.0")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("EXFILGUARD_CI") != "" {
		t.Fatal("promtool missing: run bash .ci/promtool.sh")
	}
	return ""
}

// TestMetricsOverHTTP: after a known input (the sample and three bad
// messages), /metrics scraped over HTTP counts exactly that: messages by
// topic, events, decode failures by reason, alerts and their deliveries,
// checkpoints; and promtool's linter accepts the exposition.
func TestMetricsOverHTTP(t *testing.T) {
	lines := sampleLines(t)
	bad := [][]byte{[]byte("not json"), []byte(`{"ts":`), []byte("{")}
	c := cluster(t, 1, []string{"audit"})
	produce(t, c.ListenAddrs(), "audit", append(append([][]byte{}, lines...), bad...))
	cfg := testConfig(c.ListenAddrs(), "audit", t.TempDir())
	cfg.Kafka.GroupID = "metrics"

	r := start(t, cfg, uint64(len(lines)))
	reg := telemetry.NewRegistry()
	if err := r.p.Register(reg); err != nil {
		t.Fatal(err)
	}
	srv, addr, err := telemetry.Serve("127.0.0.1:0", telemetry.Endpoints{Gatherer: reg, Ready: r.p.Ready})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r.wait(t)
	live, _ := scrape(t, addr.String())
	if v, _ := value(live, "exfilguard_partitions_assigned"); v != 1 {
		t.Errorf("partitions assigned %v, want 1", v)
	}
	if v, ok := value(live, "exfilguard_consumer_lag", "topic", "audit", "partition", "0"); !ok || v > float64(len(bad)) {
		t.Errorf("consumer lag %v (present %v), want at most the %d bad messages at the end", v, ok, len(bad))
	}
	if v, ok := value(live, "exfilguard_event_time_lag_seconds"); !ok || v <= 0 {
		t.Errorf("event-time lag %v (%v)", v, ok)
	}

	// Stopped, everything is counted and delivered: the numbers are exact.
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	defer r.store.Close()
	fams, body := scrape(t, addr.String())
	alertsOut := len(alertLines(t, r.alerts.Bytes()))
	exact := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"exfilguard_messages_consumed_total", []string{"topic", "audit", "format", "native"}, float64(len(lines) + len(bad))},
		{"exfilguard_events_processed_total", nil, float64(len(lines))},
		{"exfilguard_sink_deliveries_total", []string{"sink", "stdout", "type", "stdout"}, float64(alertsOut)},
		{"exfilguard_sink_failing", []string{"sink", "stdout"}, 0},
		{"exfilguard_outbox_depth", nil, 0},
		{"exfilguard_checkpoint_failures_total", nil, 0},
		{"exfilguard_build_info", nil, 1},
	}
	for _, e := range exact {
		if v, ok := value(fams, e.name, e.labels...); !ok || v != e.want {
			t.Errorf("%s%v = %v (present %v), want %v", e.name, e.labels, v, ok, e.want)
		}
	}
	if got := sum(fams, "exfilguard_decode_failures_total"); got != float64(len(bad)) {
		t.Errorf("decode failures sum to %v, want %d", got, len(bad))
	}
	if v, _ := value(fams, "exfilguard_decode_failures_total", "reason", "malformed_json"); v == 0 {
		t.Error("no malformed_json failure counted")
	}
	if got := sum(fams, "exfilguard_alerts_total"); got != float64(alertsOut) || got == 0 {
		t.Errorf("alerts_total sums to %v; %d alerts were written", got, alertsOut)
	}
	if v, _ := value(fams, "exfilguard_alerts_total", "rule", "enumeration", "status", "opened"); v == 0 {
		t.Error("no opened enumeration alert counted; the sample's crawler walks ids")
	}
	if sum(fams, "exfilguard_detections_total") <= sum(fams, "exfilguard_alerts_total") {
		t.Error("detections do not exceed alerts: incidents fold nothing?")
	}
	for _, name := range []string{"exfilguard_checkpoints_total", "exfilguard_processing_latency_seconds", "exfilguard_checkpoint_duration_seconds",
		"exfilguard_entities", "exfilguard_checkpoint_last_success_timestamp_seconds", "exfilguard_open_incidents"} {
		if v, ok := value(fams, name); !ok || v <= 0 {
			t.Errorf("%s = %v (present %v), want > 0", name, v, ok)
		}
	}
	if _, ok := value(fams, "exfilguard_entities", "where", "store"); !ok {
		t.Error("no count of stored entities")
	}
	for _, store := range []string{"state", "outbox"} {
		_, lsm := value(fams, "exfilguard_badger_lsm_bytes", "store", store)
		_, vlog := value(fams, "exfilguard_badger_vlog_bytes", "store", store)
		if !lsm || !vlog {
			t.Errorf("badger sizes of the %s store missing", store)
		}
	}
	for name := range fams {
		if !strings.HasPrefix(name, "exfilguard_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("unexpected family %s", name)
		}
	}
	if strings.Contains(string(body), "cust-") || strings.Contains(string(body), "svc-storefront") {
		t.Error("an entity key or customer id appears in the metrics")
	}

	if pt := promtool(t); pt != "" {
		cmd := exec.CommandContext(context.Background(), pt, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
}
