package models

import (
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
)

// TestOverrideResolution: the first matching override judges an entity,
// by kind, role and key; a role change resolves it again; its horizons
// switch the other horizons' window checks off; its learning period
// replaces the engine's.
func TestOverrideResolution(t *testing.T) {
	cfg := config.Default()
	det := cfg.Detectors
	cfg.Overrides = []config.Override{
		{Name: "etl-one", Match: config.OverrideMatch{Entities: []string{"svc-etl-1"}}, Detectors: det, LearningPeriod: config.Duration(30 * 24 * time.Hour)},
		{Name: "etl-role", Match: config.OverrideMatch{Kinds: []string{"principal"}, Roles: []string{"etl*"}}, Detectors: det,
			Horizons: []config.Duration{config.Duration(time.Hour), config.Duration(24 * time.Hour)}},
		{Name: "nets", Match: config.OverrideMatch{Kinds: []string{"source_net"}}, Detectors: det},
	}
	cfg.Overrides[1].Detectors.VolumeSpike.Min = 1e9
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := at(0, 9, 0)
	send := func(p, role string) {
		x := ev(t0, p)
		x.Role = role
		e.Process(x)
	}
	send("svc-etl-1", "etl")
	send("svc-etl-2", "etl")
	send("alice", "analyst")
	for _, tt := range []struct {
		kind Kind
		key  string
		want string
	}{
		{KindPrincipal, "svc-etl-1", "etl-one"}, // first match wins over the role
		{KindPrincipal, "svc-etl-2", "etl-role"},
		{KindPrincipal, "alice", ""},
		{KindSourceNet, "203.0.113.0/24", "nets"},
		{KindCredential, "kid-alice", ""}, // roles never match other kinds
	} {
		ent := e.Lookup(tt.kind, tt.key)
		if ent == nil {
			t.Fatalf("%s/%s not found", tt.kind, tt.key)
		}
		if got := e.profileOf(ent).name; got != tt.want {
			t.Errorf("%s/%s judged by %q, want %q", tt.kind, tt.key, got, tt.want)
		}
	}
	one := e.Lookup(KindPrincipal, "svc-etl-1")
	if e.profileOf(one).learning != int64(30*24*time.Hour) {
		t.Errorf("learning period %v", time.Duration(e.profileOf(one).learning))
	}
	two := e.Lookup(KindPrincipal, "svc-etl-2")
	for hi, h := range cfg.Engine.Horizons {
		judged := h.D() == time.Hour || h.D() == 24*time.Hour
		if got := two.win[hi].thr[mRows] < never; got != judged {
			t.Errorf("horizon %s judged=%v, want %v", h, got, judged)
		}
		if judged && two.win[hi].thr[mRows] != 1e9 {
			t.Errorf("horizon %s threshold %v, want the override's min", h, two.win[hi].thr[mRows])
		}
	}
	// Alice changes role into etl: the role override judges her from her
	// next event.
	send("alice", "etl-nightly")
	if got := e.profileOf(e.Lookup(KindPrincipal, "alice")).name; got != "etl-role" {
		t.Errorf("after a role change alice is judged by %q", got)
	}
	// A reload re-resolves every entity.
	cfg2 := *cfg
	cfg2.Overrides = cfg.Overrides[2:]
	if err := e.Reconfigure(&cfg2); err != nil {
		t.Fatal(err)
	}
	if got := e.profileOf(e.Lookup(KindPrincipal, "svc-etl-1")).name; got != "" {
		t.Errorf("after reload svc-etl-1 is judged by %q", got)
	}
}

// TestRowlessSourceCountsRequests: an access without a row count is not
// zero rows: it counts as one request (or its record ids), the entity is
// marked, and its detections say so.
func TestRowlessSourceCountsRequests(t *testing.T) {
	cfg := config.Default()
	cfg.Engine.Warmup = 0
	cfg.Detectors.SensitiveVolumeSpike.Min = 500
	var got []Detection
	e, _ := New(cfg, func(d *Detection) { got = append(got, *d) })
	read := func(ts time.Time) {
		e.Process(&event.Event{Time: ts.UnixNano(), Principal: "maria", Object: "shop.customers", Action: event.ActionRead})
	}
	// Two weeks of a few lookups an hour, then a dump through the same
	// rowless source: 3000 requests in ten minutes.
	for d := range 14 {
		for h := 9; h < 17; h++ {
			for m := 0; m < 60; m += 12 {
				read(at(d, h, m))
			}
		}
	}
	t0 := at(14, 10, 0)
	for i := range 3000 {
		read(t0.Add(time.Duration(i) * 200 * time.Millisecond))
	}
	login := &event.Event{Time: t0.Add(700 * time.Second).UnixNano(), Principal: "maria", Action: event.ActionLogin}
	e.Process(login)
	ent := e.Lookup(KindPrincipal, "maria")
	if !ent.rowless {
		t.Fatal("entity not marked as seen through a rowless source")
	}
	if n := ent.win[2].cur.sensitive; n != 3000 {
		t.Errorf("sensitive rows in the hour %d, want 3000: one per request, none for the login", n)
	}
	if len(got) == 0 {
		t.Fatal("3000 reads of customer data without row counts raised nothing")
	}
	for _, d := range got {
		if !d.RowsUnknown {
			t.Errorf("%s detection does not say the rows were unknown", d.Rule)
		}
	}
}
