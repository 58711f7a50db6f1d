package models

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
)

func ev(ts time.Time, principal string) *event.Event {
	return &event.Event{Time: ts.UnixNano(), Principal: principal, Object: "public.customers", Rows: 10, HasRows: true,
		Credential: "kid-" + principal, SourceIP: netip.MustParseAddr("203.0.113.7")}
}

func TestLateEventsAreCountedAndKeptOut(t *testing.T) {
	e, _ := New(config.Default(), nil) // lateness 1m
	base := at(3, 10, 30)
	e.Process(ev(base, "alice"))
	e.Process(ev(base.Add(30*time.Second), "bob"))
	// 40s behind the newest event: within the lateness, lands in the
	// previous 1m bucket of alice, which is still held.
	e.Process(ev(base.Add(-10*time.Second), "alice"))
	// 2 minutes behind: late.
	e.Process(ev(base.Add(-90*time.Second), "alice"))
	st := e.Stats()
	if st.Late != 1 || st.Events != 3 {
		t.Fatalf("late=%d events=%d, want 1 and 3", st.Late, st.Events)
	}
	a := e.Lookup(KindPrincipal, "alice")
	w := &a.win[0]
	if w.cur.requests != 1 || w.prev.requests != 1 {
		t.Errorf("1m buckets cur=%d prev=%d, want 1 and 1: the in-lateness event belongs to the previous minute", w.cur.requests, w.prev.requests)
	}
	if h := &a.win[2]; h.cur.requests != 2 {
		t.Errorf("1h bucket holds %d requests, want 2", h.cur.requests)
	}
}

func TestEntityKinds(t *testing.T) {
	tests := []struct {
		name  string
		kinds config.EntityKinds
		ev    *event.Event
		want  []string // kind/key
	}{
		{name: "defaults", kinds: config.Default().Engine.Entities, ev: ev(at(0, 9, 0), "alice"),
			want: []string{"principal/alice", "source_net/203.0.113.0/24", "credential/kid-alice"}},
		{name: "no address, no credential", kinds: config.Default().Engine.Entities,
			ev:   &event.Event{Time: at(0, 9, 0).UnixNano(), Principal: "bob"},
			want: []string{"principal/bob"}},
		{name: "address and client switched on", kinds: config.EntityKinds{Principal: true, SourceIP: true, Client: true},
			ev:   &event.Event{Time: at(0, 9, 0).UnixNano(), Principal: "carol", Client: "psql", SourceIP: netip.MustParseAddr("2001:db8::1")},
			want: []string{"principal/carol", "source_ip/2001:db8::1", "client/psql"}},
		{name: "IPv6 network is a /64", kinds: config.EntityKinds{SourceNet: true},
			ev:   &event.Event{Time: at(0, 9, 0).UnixNano(), Principal: "dave", SourceIP: netip.MustParseAddr("2001:db8:1:2:3::9")},
			want: []string{"source_net/2001:db8:1:2::/64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Engine.Entities = tt.kinds
			e, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			e.Process(tt.ev)
			if e.Entities() != len(tt.want) {
				t.Errorf("%d entities, want %d", e.Entities(), len(tt.want))
			}
			for _, w := range tt.want {
				var kind Kind
				var key string
				for k := Kind(0); k < numKinds; k++ {
					if p := k.String() + "/"; len(w) > len(p) && w[:len(p)] == p {
						kind, key = k, w[len(p):]
					}
				}
				if e.Lookup(kind, key) == nil {
					t.Errorf("no entity %s", w)
				}
			}
		})
	}
}

func TestSlotOf(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want int
	}{
		{time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), 0},      // Monday 00:00
		{time.Date(2026, 1, 5, 13, 30, 0, 0, time.UTC), 13},   // Monday 13:30
		{time.Date(2026, 1, 11, 23, 59, 0, 0, time.UTC), 167}, // Sunday 23:59
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 72},     // Thursday
	} {
		if got := slotOf(tc.t.UnixNano()); got != tc.want {
			t.Errorf("slotOf(%v) = %d, want %d", tc.t, got, tc.want)
		}
	}
}

func TestRememberForgetsLeastRecent(t *testing.T) {
	var s []uint64
	for _, h := range []uint64{1, 2, 3} {
		if remember(&s, h, 3) {
			t.Fatalf("%d known before it was seen", h)
		}
	}
	if !remember(&s, 1, 3) { // 1 becomes most recent: order 2,3,1
		t.Fatal("1 forgotten")
	}
	remember(&s, 4, 3) // forgets 2
	if remember(&s, 2, 3) {
		t.Error("2 should have been forgotten")
	}
	if !remember(&s, 1, 3) {
		t.Error("1 should be known")
	}
}

// TestAnomalousWindowsDoNotFeedBaselines: an entity that keeps attacking
// keeps being judged against its pre-attack normal.
func TestAnomalousWindowsDoNotFeedBaselines(t *testing.T) {
	e, _ := New(config.Default(), nil)
	// Two weeks of 20 sensitive rows an hour, 9-17 on weekdays.
	for d := 0; d < 14; d++ {
		if !weekday(d) {
			continue
		}
		for h := 9; h < 17; h++ {
			for k := 0; k < 4; k++ {
				x := ev(at(d, h, k*15), "alice")
				x.Rows = 5
				e.Process(x)
			}
		}
	}
	a := e.Lookup(KindPrincipal, "alice")
	// Three hours of dumping; the first event closes Friday's last normal
	// hour, so the baseline is read after it.
	var before ewma
	for h := 9; h < 12; h++ {
		for k := 0; k < 60; k++ {
			x := ev(at(14, h, k), "alice")
			x.Rows = 1000
			e.Process(x)
			if h == 9 && k == 0 {
				before = a.hist[2].base[mSensitive]
			}
		}
	}
	e.Process(ev(at(14, 13, 0), "alice")) // close the last dumping hour
	after := a.hist[2].base[mSensitive]
	if after.n != before.n || after.mu != before.mu {
		t.Errorf("1h baseline moved during the attack: before %+v after %+v", before, after)
	}
	if e.Stats().Detections[RuleVolumeSpike] == 0 {
		t.Error("the dump was not detected")
	}
}

func TestPeerGroupsAreBounded(t *testing.T) {
	e, _ := New(config.Default(), nil)
	for i := 0; i < maxGroups+100; i++ {
		x := ev(at(0, 9, 0).Add(time.Duration(i)*time.Millisecond), "p")
		x.Principal = fmt.Sprintf("p-%d", i)
		x.Role = fmt.Sprintf("role-%d", i)
		e.Process(x)
	}
	if len(e.groups) != maxGroups {
		t.Errorf("%d groups, want the cap %d", len(e.groups), maxGroups)
	}
	if ent := e.Lookup(KindPrincipal, fmt.Sprintf("p-%d", maxGroups+50)); ent == nil || ent.group != nil {
		t.Errorf("an entity past the cap should have no group")
	}
}

// TestBrokenClockDoesNotBlind: one event from a host whose clock says 2099
// must not move event time, or every later event would be late.
func TestBrokenClockDoesNotBlind(t *testing.T) {
	e, _ := New(config.Default(), nil)
	base := at(3, 10, 0)
	e.Process(ev(base, "alice"))
	e.Process(ev(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), "mallory"))
	for k := 1; k <= 10; k++ {
		e.Process(ev(base.Add(time.Duration(k)*time.Second), "alice"))
	}
	st := e.Stats()
	if st.Future != 1 || st.Late != 0 || st.Events != 11 {
		t.Errorf("future=%d late=%d events=%d, want 1, 0, 11", st.Future, st.Late, st.Events)
	}
}

// TestRealGapIsAccepted: logs that resume after a two-week shutdown move
// event time once enough events agree; a weekend's silence is ordinary.
func TestRealGapIsAccepted(t *testing.T) {
	cfg := config.Default()
	e, _ := New(cfg, nil)
	e.Process(ev(at(3, 10, 0), "alice"))
	e.Process(ev(at(6, 10, 0), "alice")) // after a weekend: no confirmation needed
	if st := e.Stats(); st.Future != 0 || st.Events != 2 {
		t.Fatalf("weekend gap: future=%d events=%d", st.Future, st.Events)
	}
	n := cfg.Engine.ClockJumpConfirmations
	for k := 0; k < n+10; k++ {
		e.Process(ev(at(20, 10, 0).Add(time.Duration(k)*time.Second), "alice"))
	}
	st := e.Stats()
	if st.Future != uint64(n-1) || st.Events != 2+11 {
		t.Errorf("future=%d events=%d, want %d and %d", st.Future, st.Events, n-1, 13)
	}
}

// TestEventRuleDetectionsAreNotLearned: a bulk dump that fires must not
// raise the learned peaks that the next dump would be judged against,
// even when no window rule fires on it (volume rules are off here).
func TestEventRuleDetectionsAreNotLearned(t *testing.T) {
	cfg := config.Default()
	cfg.Detectors.VolumeSpike.Enabled = false
	cfg.Detectors.SensitiveVolumeSpike.Enabled = false
	cfg.Detectors.LowAndSlow.Enabled = false
	e, _ := New(cfg, nil)
	for d := 0; d < 10; d++ {
		for k := 0; k < 20; k++ {
			x := ev(at(d, 10, k), "alice")
			x.Rows = 5
			e.Process(x)
		}
	}
	dump := ev(at(10, 10, 30), "alice")
	dump.Rows = 300_000
	e.Process(dump)
	if e.Stats().Detections[RuleBulkRead] != 1 {
		t.Fatalf("bulk_read detections = %d, want 1", e.Stats().Detections[RuleBulkRead])
	}
	e.Process(ev(at(11, 10, 0), "alice")) // closes the dump's day
	a := e.Lookup(KindPrincipal, "alice")
	if p := a.hist[e.dayIdx].peak[mSensitive]; p >= 300_000 {
		t.Errorf("daily peak learned the dump: %v", p)
	}
	if a.maxRequest >= 300_000 {
		t.Errorf("largest request learned the dump: %v", a.maxRequest)
	}
}

// TestLowAndSlowIgnoresOneDaySpike: a dump on one day is the volume and
// bulk detectors' business; neither that day nor the ordinary days after
// it are a slow leak.
func TestLowAndSlowIgnoresOneDaySpike(t *testing.T) {
	e, _ := New(config.Default(), nil)
	for d := 0; d < 14; d++ {
		for k := 0; k < 20; k++ {
			x := ev(at(d, 10, k), "alice")
			x.Rows = 5
			if d == 10 && k == 10 {
				x.Rows = 300_000
			}
			e.Process(x)
		}
	}
	st := e.Stats()
	if st.Detections[RuleBulkRead] == 0 {
		t.Fatal("the dump was not detected")
	}
	if n := st.Detections[RuleLowAndSlow]; n != 0 {
		t.Errorf("%d low_and_slow detections for a one-day dump", n)
	}
}
