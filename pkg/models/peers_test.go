package models

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
)

// peerTeam is two weeks of eight agents (640 member-hours, past the 500
// the engine wants before it trusts a group's hours) working weekdays 9-17 on customers
// and addresses, so the cs_agent group knows its objects and its hours.
func peerTeam(t *testing.T, e *Engine) {
	for d := 0; d < 14; d++ {
		if !weekday(d) {
			continue
		}
		// Time moves forward across the team: the engine drops events
		// further behind the newest one than the allowed lateness.
		for h := 9; h < 17; h++ {
			for k := 0; k < 6; k++ {
				for a := 0; a < 8; a++ {
					name := fmt.Sprintf("agent-%d", a)
					for _, obj := range []string{"public.customers", "public.addresses"} {
						e.Process(&event.Event{Time: at(d, h, k*10).UnixNano(), Principal: name, Role: "cs_agent", Credential: "kid-" + name,
							SourceIP: netip.MustParseAddr(fmt.Sprintf("10.1.0.%d", a+1)), Object: obj, Rows: 2, HasRows: true})
					}
				}
			}
		}
	}
	if late := e.Stats().Late; late != 0 {
		t.Fatalf("fixture produced %d late events: it must move forward in time", late)
	}
}

func collect(t *testing.T) (*Engine, *[]Detection) {
	var dets []Detection
	e, err := New(config.Default(), func(d *Detection) { dets = append(dets, *d) })
	if err != nil {
		t.Fatal(err)
	}
	return e, &dets
}

func find(dets []Detection, rule Rule, key string) *Detection {
	for i := range dets {
		if dets[i].Rule == rule && dets[i].Key == key {
			return &dets[i]
		}
	}
	return nil
}

// A new agent, days old, reads a sensitive table none of its peers read:
// its own history is too short to say the table is new to it, its peers'
// says the table is foreign to the role.
func TestYoungEntityJudgedByPeers_FirstObject(t *testing.T) {
	e, dets := collect(t)
	peerTeam(t, e)
	for k := 0; k < 3; k++ { // day one of the new hire: ordinary work
		e.Process(&event.Event{Time: at(14, 9, k).UnixNano(), Principal: "new-hire", Role: "cs_agent", Object: "public.customers", Rows: 1, HasRows: true})
	}
	for k := 0; k < 150; k++ {
		e.Process(&event.Event{Time: at(14, 10, 0).Add(time.Duration(k) * 10 * time.Second).UnixNano(), Principal: "new-hire", Role: "cs_agent", Object: "public.payment_cards", Rows: 1, HasRows: true})
	}
	d := find(*dets, RuleFirstSensitiveObject, "new-hire")
	if d == nil {
		t.Fatal("no first_sensitive_object for a new hire reading what no peer reads")
	}
	if d.Basis != BasisPeers || !d.Learning {
		t.Errorf("basis %s learning %v, want peers and learning", d.Basis, d.Learning)
	}
	// The same new hire reading what peers read is ordinary.
	if x := find(*dets, RuleFirstSensitiveObject, "agent-0"); x != nil {
		t.Errorf("false alert on a peer: %s", describe(x))
	}
}

// A new agent reads customers on a Sunday at 03:00, an hour nobody of its
// role ever works.
func TestYoungEntityJudgedByPeers_OffHours(t *testing.T) {
	e, dets := collect(t)
	peerTeam(t, e)
	e.Process(&event.Event{Time: at(14, 9, 0).UnixNano(), Principal: "new-hire", Role: "cs_agent", Object: "public.customers", Rows: 1, HasRows: true})
	for k := 0; k < 30; k++ {
		e.Process(&event.Event{Time: at(20, 3, k).UnixNano(), Principal: "new-hire", Role: "cs_agent", Object: "public.customers", Rows: 10, HasRows: true})
	}
	d := find(*dets, RuleOffHours, "new-hire")
	if d == nil {
		t.Fatal("no off_hours for a new hire working when its peers never do")
	}
	if d.Basis != BasisPeers {
		t.Errorf("basis %s, want peers", d.Basis)
	}
}
