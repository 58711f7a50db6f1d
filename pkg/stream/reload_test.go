package stream

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/telemetry"
)

// TestReloadUnderARunningPipeline: a reload that changes detectors and
// incident settings applies between batches without losing state or
// positions; one that changes the connections or the state's shape, or is
// invalid, is refused whole and the running config stays. Over HTTP,
// POST /-/reload answers 200 or 400 with the reason.
func TestReloadUnderARunningPipeline(t *testing.T) {
	lines := sampleLines(t)
	half := len(lines) / 2
	c := cluster(t, 1, []string{"audit"})
	produce(t, c.ListenAddrs(), "audit", lines[:half])
	cfg := testConfig(c.ListenAddrs(), "audit", t.TempDir())
	cfg.Kafka.GroupID = "reload"
	r := start(t, cfg, uint64(half))
	r.wait(t)

	next := *cfg
	next.Detectors.VolumeSpike.Ratio = 20
	next.Detectors.BulkRead.Enabled = false
	next.Alerts.QuietPeriod = config.Duration(48 * 3600e9)
	if err := r.p.Reload(context.Background(), &next); err != nil {
		t.Fatalf("valid reload refused: %v", err)
	}
	if r.p.cfg.Detectors.VolumeSpike.Ratio != 20 || r.p.cfg.Alerts.QuietPeriod != next.Alerts.QuietPeriod {
		t.Error("reload did not apply")
	}
	refused := []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"kafka", func(c *config.Config) { c.Kafka.GroupID = "other" }, "kafka section changed"},
		{"engine", func(c *config.Config) { c.Engine.MaxEntities = 7 }, "engine section changed"},
		{"invalid", func(c *config.Config) { c.Alerts.EscalationStep = 0.5 }, "invalid config"},
	}
	for _, x := range refused {
		bad := next
		x.edit(&bad)
		if err := r.p.Reload(context.Background(), &bad); err == nil || !strings.Contains(err.Error(), x.want) {
			t.Errorf("%s: reload error %v, want %q", x.name, err, x.want)
		}
	}
	if r.p.cfg.Detectors.VolumeSpike.Ratio != 20 {
		t.Error("a refused reload changed the running config")
	}

	// Over HTTP.
	calls := 0
	srv, addr, err := telemetry.Serve("127.0.0.1:0", telemetry.Endpoints{Reload: func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return r.p.Reload(ctx, &next)
		}
		bad := next
		bad.Kafka.GroupID = "other"
		return r.p.Reload(ctx, &bad)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for i, want := range []int{http.StatusOK, http.StatusBadRequest} {
		resp, err := http.Post("http://"+addr.String()+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST /-/reload #%d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}

	// Nothing lost across the reloads: the rest is processed exactly once.
	produce(t, c.ListenAddrs(), "audit", lines[half:])
	deadline := time.Now().Add(3 * time.Minute) // a hang, not a timing assumption
	for r.p.Stats().Events < uint64(len(lines)) {
		select {
		case err := <-r.done:
			t.Fatalf("pipeline stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("stuck after the reloads: %+v", r.p.Stats())
		}
	}
	st := r.stop(t)
	if st.Events != uint64(len(lines)) {
		t.Errorf("processed %d events, want exactly %d", st.Events, len(lines))
	}
	if err := r.p.Reload(context.Background(), &next); err != errNotRunning {
		t.Errorf("reload after stop: %v, want %v", err, errNotRunning)
	}
}
