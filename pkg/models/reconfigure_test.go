package models

import (
	"strings"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// TestReconfigure: a reloaded config's detector switches apply at once,
// and a change to what shapes the state is refused with the engine
// unchanged.
func TestReconfigure(t *testing.T) {
	var bulk int
	e, err := New(config.Default(), func(d *Detection) {
		if d.Rule == RuleBulkRead {
			bulk++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	base := at(3, 10, 30)
	huge := func(ts time.Time, p string) {
		x := ev(ts, p)
		x.Rows = 200_000
		e.Process(x)
	}
	huge(base, "alice")
	if bulk != 1 {
		t.Fatalf("%d bulk reads before the reload, want 1", bulk)
	}
	next := config.Default()
	next.Detectors.BulkRead.Enabled = false
	if err := e.Reconfigure(next); err != nil {
		t.Fatal(err)
	}
	huge(base.Add(time.Minute), "bob")
	if bulk != 1 {
		t.Errorf("bulk_read fired after it was disabled by a reload")
	}
	shape := config.Default()
	shape.Engine.Horizons = shape.Engine.Horizons[:4]
	if err := e.Reconfigure(shape); err == nil || !strings.Contains(err.Error(), "engine section changed") {
		t.Errorf("a horizon change was not refused: %v", err)
	}
	if e.cfg != next {
		t.Error("a refused reconfigure changed the engine's config")
	}
}
