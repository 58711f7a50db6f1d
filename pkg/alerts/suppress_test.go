package alerts

import (
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// TestMutingFollowsReload: an allowlist entry mutes the detections it
// covers and counts them; a reload that drops it lets the next ones
// alert; a reload that keeps an entry keeps its count; a maintenance
// window mutes only inside [start, end).
func TestMutingFollowsReload(t *testing.T) {
	cfg := config.Default()
	cfg.Allowlist = []config.AllowEntry{{Name: "office-nat", Entities: []string{"203.0.113.*"}, Objects: []string{"/api/v1/me/*"},
		Owner: "soc@example.com", Expires: config.Date{Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}}}
	b := NewBuilder(cfg, nil, nil)
	if as := b.Build(det(0, models.SeverityHigh, 500)); len(as) != 0 {
		t.Fatalf("an allowed detection alerted: %+v", as)
	}
	if m := b.Muted(); len(m) != 1 || m[0].N != 1 || m[0].Reason != "allowlist" || m[0].Name != "office-nat" {
		t.Fatalf("muted counts %+v", m)
	}
	// Another object: not covered.
	d := det(1, models.SeverityHigh, 500)
	d.Objects[0] = "/api/v1/admin/export"
	if _, ok := build(b, d); !ok {
		t.Error("a detection on an object outside the entry was muted")
	}

	keep := *cfg
	keep.Maintenance = []config.Maintenance{{Name: "dr-test", Start: time.Unix(0, t0).Add(time.Hour), End: time.Unix(0, t0).Add(2 * time.Hour)}}
	b.Reconfigure(&keep)
	if m := b.Muted(); m[0].N != 1 {
		t.Errorf("the kept entry's count was reset by the reload: %+v", m)
	}
	d = det(90, models.SeverityHigh, 500)
	d.Objects[0] = "/api/v1/admin/export"
	if as := b.Build(d); len(as) != 0 {
		t.Error("a detection inside the maintenance window alerted")
	}
	d = det(121, models.SeverityCritical, 5000)
	d.Objects[0] = "/api/v1/admin/export"
	if _, ok := build(b, d); !ok {
		t.Error("a detection after the maintenance window was muted")
	}

	b.Reconfigure(config.Default())
	if len(b.Muted()) != 0 {
		t.Errorf("entries survive a reload that removed them: %+v", b.Muted())
	}
	if as := b.Build(det(200, models.SeverityCritical, 50000)); len(as) == 0 {
		t.Error("after the entry was removed, its entity is still muted")
	}
}
