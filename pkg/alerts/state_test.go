package alerts

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// TestStateContinuesIncidents: a builder restored from a checkpoint
// continues the same incidents with the same ids as one that never
// stopped.
func TestStateContinuesIncidents(t *testing.T) {
	cfg := config.Default().Alerts
	mk := func(h uint64, rule models.Rule, t int64, sev models.Severity, exp float64) *models.Detection {
		return &models.Detection{Hash: h, Rule: rule, Time: t, Severity: sev, Exposure: exp, Key: "k", Kind: models.KindPrincipal}
	}
	first := []*models.Detection{mk(1, 0, 1e9, models.SeverityMedium, 10), mk(2, 1, 2e9, models.SeverityLow, 5), mk(1, 0, 3e9, models.SeverityMedium, 12)}
	then := []*models.Detection{mk(1, 0, 4e9, models.SeverityMedium, 100), mk(2, 1, 5e9, models.SeverityHigh, 5), mk(3, 0, 6e9, models.SeverityLow, 1)}

	a := newB(cfg, nil, nil)
	for _, d := range first {
		build(a, d)
	}
	blob := a.AppendState(nil)
	b := newB(cfg, nil, nil)
	if err := b.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	if again := b.AppendState(nil); !bytes.Equal(again, blob) {
		t.Fatal("state does not round-trip")
	}
	for _, d := range then {
		x, okx := build(a, d)
		y, oky := build(b, d)
		if okx != oky || (okx && (x.ID != y.ID || !reflect.DeepEqual(x.Incident, y.Incident))) {
			t.Errorf("after restore: %v %+v, want %v %+v", oky, y, okx, x)
		}
	}
	if a.Suppressed != b.Suppressed {
		t.Errorf("suppressed %d, want %d", b.Suppressed, a.Suppressed)
	}
}

func FuzzRestoreState(f *testing.F) {
	b := newB(config.Default().Alerts, nil, nil)
	build(b, &models.Detection{Hash: 1, Time: 1, Exposure: 3})
	f.Add(b.AppendState(nil))
	f.Add([]byte{1, 0, 0, 0, 255, 255, 255, 255, 15})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = newB(config.Default().Alerts, nil, nil).RestoreState(data)
	})
}
