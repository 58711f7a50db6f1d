package models

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/exfilguard/exfilguard/pkg/event"
)

// The test company: a month of ordinary work by a few kinds of staff,
// services and customers, with attacks layered on top. Built directly as
// Events (the decoder has its own tests) and kept small enough to run
// under -race in seconds.

var day0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday

func at(day int, hour, minute int) time.Time {
	return day0.Add(time.Duration(day)*24*time.Hour + time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute)
}

type company struct {
	rng    *rand.Rand
	events []event.Event
}

func newCompany(seed uint64) *company {
	return &company{rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
}

func cust(n int) string { return fmt.Sprintf("cust-%010d", n) }

// add appends one event; ids are customer numbers.
func (c *company) add(ts time.Time, principal, role, cred, ip, client, object string, rows int64, ids ...int) *event.Event {
	ev := event.Event{Time: ts.UnixNano(), Principal: principal, Role: role, Credential: cred, Client: client, Object: object, Rows: rows, HasRows: true}
	if ip != "" {
		ev.SourceIP = netip.MustParseAddr(ip)
	}
	for _, id := range ids {
		s := cust(id)
		ev.RecordIDs = append(ev.RecordIDs, xxhash.Sum64String(s))
		ev.RecordNums = append(ev.RecordNums, uint64(id))
	}
	ev.RecordCount = len(ids)
	c.events = append(c.events, ev)
	return &c.events[len(c.events)-1]
}

func (c *company) jitter(ts time.Time, spread time.Duration) time.Time {
	return ts.Add(time.Duration(c.rng.Int64N(int64(spread))))
}

func weekday(day int) bool {
	return at(day, 0, 0).Weekday() != time.Saturday && at(day, 0, 0).Weekday() != time.Sunday
}

// background is `days` of ordinary work.
func (c *company) background(days int) {
	for d := 0; d < days; d++ {
		// Customer-service agents: weekday shifts, one customer per ticket.
		for a := 0; a < 12; a++ {
			if !weekday(d) {
				continue
			}
			name := fmt.Sprintf("cs-%04d", a)
			ip := fmt.Sprintf("10.1.0.%d", 10+a)
			if a == 11 && d >= 16 {
				ip = "100.70.3.9" // works from home for the last weeks: new network, normal work
			}
			for h := 9; h < 17; h++ {
				for k := 0; k < 20; k++ {
					ts := c.jitter(at(d, h, 0), time.Hour)
					id := c.rng.IntN(2_000_000)
					c.add(ts, name, "cs_agent", "kid-"+name, ip, "crm-web", "public.customers", 1, id)
					c.add(ts.Add(2*time.Second), name, "cs_agent", "kid-"+name, ip, "crm-web", "public.addresses", int64(1+c.rng.IntN(2)), id)
				}
			}
		}
		// A new agent joins on day 10 with an ordinary workload.
		if d >= 10 && weekday(d) {
			for h := 9; h < 17; h++ {
				for k := 0; k < 20; k++ {
					ts := c.jitter(at(d, h, 0), time.Hour)
					id := c.rng.IntN(2_000_000)
					c.add(ts, "cs-new", "cs_agent", "kid-cs-new", "10.1.0.99", "crm-web", "public.customers", 1, id)
					c.add(ts.Add(2*time.Second), "cs-new", "cs_agent", "kid-cs-new", "10.1.0.99", "crm-web", "public.addresses", 1, id)
				}
			}
		}
		// Analysts: non-sensitive tables, month-end peak four times the usual.
		for a := 0; a < 4; a++ {
			if !weekday(d) {
				continue
			}
			name := fmt.Sprintf("analyst-%d", a)
			mult := int64(1)
			if t := at(d, 0, 0); t.AddDate(0, 0, 3).Month() != t.Month() {
				mult = 4
			}
			for h := 10; h < 16; h++ {
				for k := 0; k < 10; k++ {
					c.add(c.jitter(at(d, h, 0), time.Hour), name, "analyst", "kid-"+name, fmt.Sprintf("10.1.1.%d", a), "dbeaver", "analytics.daily_sales", mult*int64(500+c.rng.IntN(4500)))
				}
			}
		}
		// Nightly ETL: whole tables, every night.
		for a := 0; a < 2; a++ {
			name := fmt.Sprintf("svc-etl-%d", a)
			c.add(at(d, 2, 5*a), name, "etl", "kid-"+name, "10.2.0.5", "airflow", "public.customers", 2_000_000)
			c.add(at(d, 2, 30+5*a), name, "etl", "kid-"+name, "10.2.0.5", "airflow", "public.orders", 800_000)
		}
		// Application services: one order per request, a day/night curve.
		for a := 0; a < 2; a++ {
			name := fmt.Sprintf("svc-app-%d", a)
			for h := 0; h < 24; h++ {
				n := 40
				if h >= 8 && h < 22 {
					n = 200
				}
				for k := 0; k < n; k++ {
					c.add(c.jitter(at(d, h, 0), time.Hour), name, "app", "kid-"+name, "10.3.0.7", "shop-api", "public.orders", 1, c.rng.IntN(2_000_000))
				}
			}
		}
		// Engineers: non-sensitive work by day; one rare on-call night query.
		for a := 0; a < 3; a++ {
			name := fmt.Sprintf("eng-%d", a)
			if weekday(d) {
				for h := 10; h < 17; h++ {
					for k := 0; k < 4; k++ {
						c.add(c.jitter(at(d, h, 0), time.Hour), name, "engineer", "kid-"+name, fmt.Sprintf("10.1.2.%d", a), "psql", "public.schema_migrations", int64(1+c.rng.IntN(20)))
					}
				}
			}
		}
		if d == 20 {
			c.add(at(d, 3, 12), "eng-1", "engineer", "kid-eng-1", "100.80.1.1", "psql", "public.customers", 5, 42, 4242, 424242, 77, 7777)
		}
		// Customers: their own account, from home or a shared mobile network,
		// every few days; all customer tokens are signed by one key.
		for cu := 0; cu < 3000; cu++ {
			if c.rng.IntN(3) != 0 {
				continue
			}
			ip := fmt.Sprintf("100.%d.%d.%d", 64+cu/250%60, cu%250, 1+cu%200)
			if cu%3 == 0 {
				ip = fmt.Sprintf("198.51.100.%d", 1+c.rng.IntN(250)) // mobile carrier NAT
			}
			ts := c.jitter(at(d, 7, 0), 15*time.Hour)
			for k := 0; k < 1+c.rng.IntN(3); k++ {
				ev := c.add(ts.Add(time.Duration(k)*time.Minute), cust(cu), "customer", "jwt-kid-2024a", ip, "Mozilla/5.0 (iPhone)", "/api/v1/me/addresses", 1, cu)
				ev.PrincipalType = event.PrincipalCustomer
			}
		}
	}
	// A customer-service agent left on day 3 (events before stay: history).
	// Denied requests happen now and then.
	for d := 0; d < days; d++ {
		if weekday(d) {
			c.add(at(d, 11, 7), "cs-0003", "cs_agent", "kid-cs-0003", "10.1.0.13", "crm-web", "public.payment_cards", 0).Status = event.StatusDenied
		}
	}
}

// sorted returns the events in time order (stable, so equal times keep
// their generation order and runs are deterministic).
func (c *company) sorted() []event.Event {
	slices.SortStableFunc(c.events, func(a, b event.Event) int {
		switch {
		case a.Time < b.Time:
			return -1
		case a.Time > b.Time:
			return 1
		}
		return 0
	})
	return c.events
}
