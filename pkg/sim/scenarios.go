package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"
)

// Attack scenarios. Each is built from its own random stream, acts through
// its own actors (added after every benign actor), and only reads the
// benign population: benign events are identical with or without it. Timing
// is derived from Start and Days, mostly in the last third of the period so
// that a detector has a baseline first.
var scenarios = []struct {
	name  string
	build func(b *builder)
}{
	{"bulk_dump", buildBulkDump},
	{"forged_token_crawl", buildForgedTokenCrawl},
	{"departed_credential", buildDepartedCredential},
	{"slow_insider", buildSlowInsider},
	{"service_new_table", buildServiceNewTable},
	{"huge_export", buildHugeExport},
	{"scraper_key", buildScraperKey},
	{"denied_probe", buildDeniedProbe},
	{"distributed_leak", buildDistributedLeak},
}

// recordScenarios are the scenarios whose events name the customer
// records they read (record ids): their exposure is counted in distinct
// records; the others' (database dumps without ids) in rows.
var recordScenarios = map[string]bool{
	"forged_token_crawl": true, "slow_insider": true, "service_new_table": true,
	"scraper_key": true, "distributed_leak": true,
}

func scenarioByName(name string) func(*builder) {
	for _, s := range scenarios {
		if s.name == name {
			return s.build
		}
	}
	return nil
}

// builder is what a scenario builds with.
type builder struct {
	w    *world
	pop  *population
	g    *Generator
	r    *rand.Rand
	name string
}

func (b *builder) add(p proc, first int64) { b.g.add(p, first, b.name) }

func (b *builder) label(kind, entity string, start, end int64, format string, args ...any) {
	if start >= b.w.end {
		return // the attack does not happen inside the period
	}
	start = max(start, b.w.start)
	end = min(max(end, start), b.w.end)
	unit := "rows"
	if recordScenarios[b.name] {
		unit = "records"
	}
	b.g.labels = append(b.g.labels, Label{
		Scenario: b.name, EntityKind: kind, Entity: entity, Unit: unit,
		Start: time.UnixMilli(start).UTC(), End: time.UnixMilli(end).UTC(),
		Description: fmt.Sprintf(format, args...),
	})
}

// dayAt returns the day number at fraction f of the period; with weekday
// set, the nearest working day (Monday to Friday) inside the period.
func (b *builder) dayAt(f float64, weekdayOnly bool) int64 {
	i := min(int(f*float64(b.w.days)), b.w.days-1)
	if !weekdayOnly {
		return b.w.day(i)
	}
	for j := i; j < b.w.days; j++ {
		if !isWeekend(b.w.day(j)) {
			return b.w.day(j)
		}
	}
	for j := i - 1; j >= 0; j-- {
		if !isWeekend(b.w.day(j)) {
			return b.w.day(j)
		}
	}
	return b.w.day(i)
}

// at returns the time at clock ms after midnight on day, or on the next
// day when that is before Start (a period need not start at midnight). A
// scenario whose time falls at or after the end of the period produces no
// events and no label.
func (b *builder) at(day, clock int64) int64 {
	t := day*msDay + clock
	if t < b.w.start {
		t += msDay
	}
	return t
}

// stable reports whether a worker is present through the whole period.
func stable(k *worker) bool { return k.join == math.MinInt64 && k.leave == never }

// pickAgent picks a day-shift agent present all period, of index parity p
// (bulk_dump and denied_probe use different parities, so they never pick the
// same agent whichever of them is enabled).
func (b *builder) pickAgent(parity int) *worker {
	var c []*worker
	for i, a := range b.pop.agents {
		if i%2 == parity && stable(a) && a.sch.weekdays == monFri && !a.vpn {
			c = append(c, a)
		}
	}
	if len(c) == 0 {
		for i, a := range b.pop.agents {
			if i%2 == parity || len(b.pop.agents) == 1 {
				c = append(c, a)
			}
		}
	}
	return c[b.r.IntN(len(c))]
}

// netOf returns the /24 of an IPv4 address.
func netOf(ip []byte) string {
	p, _ := netip.MustParseAddr(string(ip)).Prefix(24)
	return p.String()
}

// scriptEv is one event of a scripted attack.
type scriptEv struct {
	t                      int64
	object, action, status string
	rows                   int64
}

// script replays a short, precomputed list of events with one identity.
type script struct {
	id   ident
	sess uint64
	evs  []scriptEv
	i    int
	r    *rand.Rand
}

func (s *script) first() int64 { return s.evs[0].t }
func (s *script) last() int64  { return s.evs[len(s.evs)-1].t }

func (s *script) step(e *event, t int64) int64 {
	v := &s.evs[s.i]
	s.id.fill(e)
	e.sess = s.sess
	e.object, e.action, e.status, e.rows = v.object, v.action, v.status, v.rows
	e.bytes = bytesFor(s.r, v.rows)
	s.i++
	if s.i < len(s.evs) {
		return s.evs[s.i].t
	}
	return never
}

// bulk_dump: a day-shift agent's credential dumps public.customers (and
// then public.addresses) in a few huge reads at night, with psql, from an
// address in a network the company has never seen.
func buildBulkDump(b *builder) {
	r := b.r
	a := b.pickAgent(0)
	ip := ipv4(198, 19, 250, byte(10+r.IntN(200)))
	s := &script{id: a.id, sess: r.Uint64(), r: r}
	s.id.ip, s.id.client = ip, "psql 16.2"
	t := b.at(b.dayAt(2.0/3, false), 1*msHour+40*msMinute+uniMs(r, 0, 60*msMinute))
	s.evs = append(s.evs, scriptEv{t: t, object: "public.customers", rows: 1}) // select count(*)
	// 30-60% of the customers table (600,000-1,200,000 rows at Scale 1) in
	// 3-6 pages, then 10-15% of the addresses.
	day := floorDiv(t, msDay)
	n := 3 + r.IntN(4)
	page := int64(float64(b.w.tableRows(1, day)) * (0.3 + 0.3*r.Float64()) / float64(n))
	total := int64(0)
	for range n {
		t += uniMs(r, msMinute, 3*msMinute)
		rows := page + int64(r.IntN(1000))
		s.evs = append(s.evs, scriptEv{t: t, object: "public.customers", rows: rows})
		total += rows
		t += rows / 2
	}
	t += uniMs(r, msMinute, 3*msMinute)
	addr := int64(float64(b.w.tableRows(1.3, day)) * (0.1 + 0.05*r.Float64()))
	s.evs = append(s.evs, scriptEv{t: t, object: "public.addresses", rows: addr})
	b.add(s, s.first())
	desc := fmt.Sprintf("%s's credential dumps public.customers (%d rows) and public.addresses (%d rows) in %d requests at night with psql from never-seen %s",
		a.id.principal, total, addr, len(s.evs), ip)
	st, en := s.first(), s.last()+1
	b.label(KindPrincipal, string(a.id.principal), st, en, "%s", desc)
	b.label(KindCredential, a.id.cred, st, en, "%s", desc)
	b.label(KindSourceNet, netOf(ip), st, en, "%s", desc)
}

// forged_token_crawl: the 2025 case. Someone holding the customer token
// signing key forges a token for a different customer on every request and
// reads their delivery addresses, each account only 1-3 times, tens of
// requests a minute, day and night, from 2-3 hosting networks with one
// mobile-app client string (an older version real customers also use), from
// two thirds into the period to its end. No single request is abnormal.
// The accounts come from a shuffled list of the whole population, so none is
// crawled twice unless the crawl outlasts the population (about 40,000
// accounts a day: some 50 days at Scale 1).
type crawler struct {
	w         *world
	r         *rand.Rand
	nets      [][]byte // host addresses
	perDay    float64
	order     shuffle // the crawler's list of accounts, in random order
	n         uint64  // accounts crawled so far
	left      int
	principal []byte
	sess      uint64
	ip        []byte
	ids       [1]uint64
}

const crawlerClient = "ShopApp/7.2 (Android)"

func (c *crawler) step(e *event, t int64) int64 {
	r := c.r
	if c.left == 0 {
		c.ids[0] = custBase + c.order.at(c.n)
		c.n++
		c.principal = appendCust(c.principal[:0], c.ids[0])
		c.sess = r.Uint64()
		c.ip = c.nets[r.IntN(len(c.nets))]
		c.left = 1
		if u := r.IntN(100); u >= 85 {
			c.left = 3
		} else if u >= 55 {
			c.left = 2
		}
	}
	e.principal, e.ptype, e.role, e.cred = c.principal, "customer", "customer", customerSigningKey
	e.ip, e.client, e.sessPre, e.sess = c.ip, crawlerClient, "sess-", c.sess
	e.object, e.rows, e.ids = "/api/v1/me/addresses", int64(1+r.IntN(3)), c.ids[:]
	if c.left == 2 && r.IntN(2) == 0 {
		e.object, e.rows = "/api/v1/me", 1
	}
	if e.status = status(r, 10, 2); e.status != "ok" {
		e.rows, e.ids = 0, nil
	}
	e.bytes = 200 + bytesFor(r, e.rows)
	c.left--
	return arrival(r, t, c.perDay, flatCurve, c.w.end)
}

func buildForgedTokenCrawl(b *builder) {
	r := b.r
	c := &crawler{w: b.w, r: r, perDay: float64(30+r.IntN(31)) * 1440, order: newShuffle(b.w.custN, r.Uint64())}
	nn := 2 + r.IntN(2)
	var nets []string
	for i := range nn {
		third := byte(251 + i)
		nets = append(nets, fmt.Sprintf("198.19.%d.0/24", third))
		for range 1 + r.IntN(3) {
			c.nets = append(c.nets, ipv4(198, 19, third, byte(10+r.IntN(240))))
		}
	}
	t0 := b.at(b.dayAt(2.0/3, false), 13*msHour+17*msMinute+uniMs(r, 0, 30*msMinute))
	first := arrival(r, t0, c.perDay, flatCurve, b.w.end)
	b.add(c, first)
	desc := fmt.Sprintf("a crawler holding the customer signing key %s forges a token for a different customer on each request (1-3 requests per account), reading /api/v1/me/addresses about %.0f times a minute with client %q from %d networks until the end of the period",
		customerSigningKey, c.perDay/1440, crawlerClient, nn)
	b.label(KindCredential, customerSigningKey, t0, b.w.end, "%s", desc)
	for _, n := range nets {
		b.label(KindSourceNet, n, t0, b.w.end, "%s", desc)
	}
}

// departed_credential: the engineer who left at ~30% of the period (silent
// since; weeks of silence need Days of about 30 or more) comes back late one
// evening over the VPN and reads customer tables in thousands-row pages.
func buildDepartedCredential(b *builder) {
	r := b.r
	eng := b.pop.engineers[b.pop.earlyLeaver]
	ip := ipv4(10, 30, 1, byte(150+r.IntN(100)))
	s := &script{id: eng.id, sess: r.Uint64(), r: r}
	s.id.ip = ip
	t := b.at(b.dayAt(0.85, false), 21*msHour+30*msMinute+uniMs(r, 0, 90*msMinute))
	if t <= eng.leave {
		t = eng.leave + 3*msHour
	}
	n := 12 + r.IntN(9)
	total := int64(0)
	for i := range n {
		v := scriptEv{t: t}
		switch u := r.IntN(100); {
		case i < 2:
			v.object, v.rows = "pg_catalog.pg_tables", int64(50+r.IntN(150))
		case u < 70:
			v.object, v.rows = "public.customers", int64(1000+r.IntN(7000))
			total += v.rows
		default:
			v.object, v.rows = "public.addresses", int64(1000+r.IntN(4000))
			total += v.rows
		}
		s.evs = append(s.evs, v)
		t += uniMs(r, 2*msMinute, 8*msMinute)
	}
	b.add(s, s.first())
	silent := time.Duration(s.first()-eng.leave) * time.Millisecond
	desc := fmt.Sprintf("%s left (last activity before %s) and, silent for %s, comes back over the VPN from %s reading %d customer and address rows in %d queries",
		eng.id.principal, time.UnixMilli(eng.leave).UTC().Format(time.RFC3339), silent.Round(time.Hour), ip, total, n)
	st, en := s.first(), s.last()+1
	b.label(KindPrincipal, string(eng.id.principal), st, en, "%s", desc)
	b.label(KindCredential, eng.id.cred, st, en, "%s", desc)
}

// slow_insider: an analyst starts reading public.customers (and addresses)
// from a third into the period, inside their normal hours, session and
// address; each working day a little more (x1.5 a day, from 150 rows up to
// 12,000), in 20-80 row queries with record ids, so no hour is more than
// mildly high.
type insider struct {
	w      *world
	r      *rand.Rand
	id     ident
	sch    schedule
	k      int
	winEnd int64
	gap    float64
	quota  int64 // rows still to read today
	sess   uint64
	ids    []uint64
}

func (s *insider) window(from int64) int64 {
	for {
		st, en := s.sch.next(from)
		st, en = max(st, floorDiv(st, msDay)*msDay+10*msHour), min(en, floorDiv(st, msDay)*msDay+17*msHour)
		if en <= st || isWeekend(floorDiv(st, msDay)) {
			from = max(en, from+msHour)
			continue
		}
		rows := min(150*math.Pow(1.5, float64(s.k)), 12000)
		s.k++
		s.quota = int64(rows)
		s.gap = float64(en-st) / (rows/50 + 1)
		s.winEnd = en
		s.sess = sessionOf(s.id.seed, floorDiv(st, msDay))
		return st
	}
}

func (s *insider) next(t int64) int64 {
	for {
		// Evenly spread, so the day's quota fits in the working hours.
		nt := t + 1 + uniMs(s.r, int64(s.gap/2), int64(s.gap*3/2))
		if nt < s.winEnd && s.quota > 0 {
			return nt
		}
		t = s.window(s.winEnd)
		if t >= s.w.end {
			return never
		}
	}
}

func (s *insider) step(e *event, t int64) int64 {
	r := s.r
	s.id.fill(e)
	e.sess = s.sess
	e.object = "public.customers"
	if r.IntN(100) < 20 {
		e.object = "public.addresses"
	}
	e.rows = min(int64(20+r.IntN(61)), max(s.quota, 1))
	s.quota -= e.rows
	s.ids = s.ids[:0]
	for range e.rows {
		s.ids = append(s.ids, s.w.cust(r))
	}
	e.ids = s.ids
	e.bytes = bytesFor(r, e.rows)
	return s.next(t)
}

func buildSlowInsider(b *builder) {
	r := b.r
	var c []*worker
	for _, a := range b.pop.analysts {
		if stable(a) {
			c = append(c, a)
		}
	}
	if len(c) == 0 {
		c = b.pop.analysts
	}
	a := c[r.IntN(len(c))]
	s := &insider{w: b.w, r: r, id: a.id, sch: a.sch}
	start := b.w.day(max(1, b.w.days/3)) * msDay
	if b.w.days == 1 {
		start = b.w.day(0) * msDay
	}
	st := s.window(start)
	first := s.next(st)
	b.add(s, first)
	b.label(KindPrincipal, string(a.id.principal), st, b.w.end,
		"%s starts reading public.customers and public.addresses inside their working hours, 150 rows on the first day and 1.5 times more each working day (up to 12,000 a day), in 20-80 row queries, until the end of the period",
		a.id.principal)
}

// service_new_table: an application service account starts reading
// public.payment_cards, a sensitive table it never used, one card at a time
// (about 4 a minute) mixed into its normal traffic, until the end.
type newTable struct {
	a      *app
	r      *rand.Rand
	perDay float64
	ids    [1]uint64
}

func (n *newTable) step(e *event, t int64) int64 {
	r := n.r
	a := n.a
	a.id.fill(e)
	pod := r.IntN(len(a.pods))
	e.ip, e.sess = a.pods[pod], a.podSession(pod, t)
	n.ids[0] = a.w.cust(r)
	e.object, e.rows, e.ids = "public.payment_cards", 1, n.ids[:]
	e.bytes = bytesFor(r, 1)
	return arrival(r, t, n.perDay, flatCurve, a.w.end)
}

func buildServiceNewTable(b *builder) {
	r := b.r
	a := b.pop.apps[r.IntN(len(b.pop.apps))]
	n := &newTable{a: a, r: r, perDay: 4 * 1440}
	t0 := b.at(b.dayAt(2.0/3, false), 10*msHour+40*msMinute+uniMs(r, 0, 20*msMinute))
	b.add(n, arrival(r, t0, n.perDay, flatCurve, b.w.end))
	b.label(KindPrincipal, string(a.id.principal), t0, b.w.end,
		"service account %s, which never read it before, starts reading public.payment_cards one card at a time (about 4 a minute) until the end of the period",
		a.id.principal)
}

// huge_export: an engineer exports the whole customers table in one request
// (action export, about two million rows at scale 1) with pg_dump, from the
// office, one weekday afternoon.
func buildHugeExport(b *builder) {
	r := b.r
	var c []*worker
	for i, e := range b.pop.engineers {
		if i != b.pop.earlyLeaver && stable(e) {
			c = append(c, e)
		}
	}
	if len(c) == 0 { // tiny scales: anyone but the engineer who left early
		for i, e := range b.pop.engineers {
			if i != b.pop.earlyLeaver {
				c = append(c, e)
			}
		}
	}
	eng := c[r.IntN(len(c))]
	day := b.dayAt(0.8, true)
	rows := b.w.tableRows(1, day)
	s := &script{id: eng.id, sess: r.Uint64(), r: r}
	s.id.client = "pg_dump 16.2"
	t := b.at(day, 16*msHour+5*msMinute+uniMs(r, 0, 40*msMinute))
	s.evs = []scriptEv{{t: t, object: "public.customers", action: "export", rows: rows}}
	b.add(s, t)
	b.label(KindPrincipal, string(eng.id.principal), t, t+1,
		"%s exports the whole public.customers table (%d rows) in one request with pg_dump", eng.id.principal, rows)
}

// scraper_key: a never-seen API key walks customer ids in sequence on
// /api/v1/customers, about 3 requests a second for 8 hours from one hosting
// address with a scripting client.
type scraper struct {
	w      *world
	r      *rand.Rand
	id     ident
	next   uint64
	perDay float64
	until  int64
	ids    [1]uint64
}

func (s *scraper) step(e *event, t int64) int64 {
	r := s.r
	s.id.fill(e)
	s.ids[0] = s.next
	s.next++
	e.object, e.rows, e.ids = "/api/v1/customers", 1, s.ids[:]
	if r.IntN(100) < 4 || s.ids[0]-custBase >= s.w.custN { // closed or no such account
		e.rows = 0
	}
	e.bytes = 200 + bytesFor(r, e.rows)
	return arrival(r, t, s.perDay, flatCurve, s.until)
}

func buildScraperKey(b *builder) {
	r := b.r
	key := fmt.Sprintf("pk_live_%012x", r.Uint64()>>16)
	ip := ipv4(198, 19, 254, byte(10+r.IntN(240)))
	s := &scraper{w: b.w, r: r, perDay: 3 * 86400}
	s.id = ident{principal: []byte(key), ptype: "api_key", role: "partner", cred: key, client: "python-requests/2.31", ip: ip}
	s.next = custBase + r.Uint64N(b.w.custN/2)
	t0 := b.at(b.dayAt(0.7, false), 20*msHour+30*msMinute+uniMs(r, 0, 20*msMinute))
	s.until = min(t0+8*msHour, b.w.end)
	b.add(s, arrival(r, t0, s.perDay, flatCurve, s.until))
	desc := fmt.Sprintf("never-seen API key %s walks customer ids in sequence from cust-%010d on /api/v1/customers, about 3 requests a second for 8 hours from %s",
		key, s.next, ip)
	b.label(KindPrincipal, key, t0, s.until, "%s", desc)
	b.label(KindCredential, key, t0, s.until, "%s", desc)
	b.label(KindSourceNet, netOf(ip), t0, s.until, "%s", desc)
}

// denied_probe: during a working day a day-shift agent probes tables they
// may not read, with DBeaver from their own desk: 150-250 requests in 20-30
// minutes, nearly all denied.
var probeObjects = []string{"public.payment_cards", "public.staff_credentials", "public.entrance_codes",
	"admin.users", "public.api_keys", "pg_catalog.pg_authid", "public.customers_export", "public.refunds"}

func buildDeniedProbe(b *builder) {
	r := b.r
	a := b.pickAgent(1)
	day := b.dayAt(0.9, true)
	st, _, ok := a.sch.window(day)
	if !ok {
		st = day*msDay + a.sch.start
	}
	t := b.at(day, st-day*msDay+90*msMinute+uniMs(r, 0, 3*msHour))
	s := &script{id: a.id, sess: r.Uint64(), r: r}
	s.id.client = "DBeaver 24.1"
	n := 150 + r.IntN(101)
	span := uniMs(r, 20*msMinute, 30*msMinute)
	denied := 0
	for range n {
		v := scriptEv{t: t, object: probeObjects[r.IntN(len(probeObjects))], status: "denied"}
		switch u := r.IntN(100); {
		case u < 8:
			v.status = "error" // relation does not exist
		case u < 12:
			v.object, v.status, v.rows = "public.customers", "ok", 1
		default:
			denied++
		}
		s.evs = append(s.evs, v)
		t += 1 + expMs(r, float64(span)/float64(n))
	}
	b.add(s, s.first())
	desc := fmt.Sprintf("%s probes tables it may not read with DBeaver: %d requests in about %d minutes, %d denied",
		a.id.principal, n, (s.last()-s.first())/msMinute, denied)
	b.label(KindPrincipal, string(a.id.principal), s.first(), s.last()+1, "%s", desc)
	b.label(KindCredential, a.id.cred, s.first(), s.last()+1, "%s", desc)
}

// distributed_leak: several customer-service accounts each leak a little
// at once. Malware on a shared jump host (one never-seen address) drives
// 5-8 day-shift agents' sessions on one weekday afternoon: each reads
// 40-70 pages of 10-30 customer records over about three hours, a few
// hundred to two thousand records each, inside their working hours and
// with their own client, so no single account reads much more than a busy
// agent. Together they read several thousand records from one address.
type leaker struct {
	id   ident
	sess uint64
	r    *rand.Rand
	w    *world
	ts   []int64
	i    int
	ids  []uint64
}

func (l *leaker) step(e *event, t int64) int64 {
	r := l.r
	l.id.fill(e)
	e.sess = l.sess
	e.object = "public.customers"
	e.rows = int64(10 + r.IntN(21))
	l.ids = l.ids[:0]
	for range e.rows {
		l.ids = append(l.ids, l.w.cust(r))
	}
	e.ids = l.ids
	e.bytes = bytesFor(r, e.rows)
	l.i++
	if l.i < len(l.ts) {
		return l.ts[l.i]
	}
	return never
}

func buildDistributedLeak(b *builder) {
	r := b.r
	ip := ipv4(198, 19, 248, byte(10+r.IntN(240)))
	var c []*worker
	for _, a := range b.pop.agents {
		if stable(a) && a.sch.weekdays == monFri && !a.vpn {
			c = append(c, a)
		}
	}
	if len(c) == 0 {
		c = b.pop.agents
	}
	k := min(5+r.IntN(4), len(c))
	day := b.dayAt(3.0/4, true)
	start := b.at(day, 13*msHour+uniMs(r, 0, 30*msMinute))
	end := start
	var names []string
	total := 0
	for _, i := range r.Perm(len(c))[:k] {
		a := c[i]
		l := &leaker{id: a.id, sess: r.Uint64(), r: r, w: b.w}
		l.id.ip = ip
		t := start + uniMs(r, 0, 20*msMinute)
		pages := 40 + r.IntN(31)
		for range pages {
			l.ts = append(l.ts, t)
			t += uniMs(r, 90*msSecond, 4*msMinute)
		}
		total += pages * 20
		end = max(end, l.ts[len(l.ts)-1]+1)
		b.add(l, l.ts[0])
		names = append(names, string(a.id.principal))
	}
	desc := fmt.Sprintf("%d customer-service accounts (%s) each read 40-70 pages of 10-30 customer records in one afternoon through one never-seen address %s, about %d records in all",
		k, strings.Join(names, ", "), ip, total)
	for _, n := range names {
		b.label(KindPrincipal, n, start, end, "%s", desc)
	}
	b.label(KindSourceNet, netOf(ip), start, end, "%s", desc)
}
