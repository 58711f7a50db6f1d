package sim

import "math/rand/v2"

type roleKind uint8

const (
	roleAgent roleKind = iota
	roleAnalyst
	roleEngineer
)

// Task steps of a worker.
const (
	stSearch uint8 = iota // agent: search customers by name, a few candidates
	stCustomer
	stAddresses
	stOrders
	stAddrWrite
	stQuery // analyst or engineer query
)

// worker is a member of staff: tasks arrive as a Poisson process inside the
// working windows of a schedule, and each task is a short burst of queries
// (a ticket for an agent, a query and its refinements for an analyst).
type worker struct {
	w      *world
	r      *rand.Rand
	id     ident
	sch    schedule
	kind   roleKind
	gap    float64 // mean ms between tasks
	intra  float64 // mean ms between the queries of a task
	boostF float64 // analysts: month-end rate multiplier
	vpn    bool    // works remotely: a VPN address per shift
	join   int64
	leave  int64

	winEnd int64
	day    int64
	boost  float64
	sess   uint64
	n, cur int
	steps  [6]uint8
	cust   uint64
	ids    []uint64
	ipbuf  [2][]byte
	flip   int
}

func (k *worker) first() int64 {
	from := max(k.w.start, k.join)
	if from >= k.leave || from >= k.w.end {
		return never
	}
	st, en := k.sch.next(from)
	k.setWindow(st, en)
	if st >= k.leave || st >= k.w.end {
		return never
	}
	return k.nextTask(st)
}

func (k *worker) setWindow(st, en int64) {
	k.winEnd = en
	k.day = floorDiv(st, msDay)
	k.sess = sessionOf(k.id.seed, k.day)
	k.boost = 1
	if k.kind == roleAnalyst && monthEnd(k.day) {
		k.boost = k.boostF
	}
	if k.vpn {
		h := splitmix(k.id.seed ^ uint64(k.day))
		// The window may change after the step has filled its event but
		// before it is written: alternate two buffers.
		k.flip ^= 1
		k.ipbuf[k.flip] = appendIPv4(k.ipbuf[k.flip][:0], 10, 30, byte(h&1), byte(2+(h>>8)%250))
		k.id.ip = k.ipbuf[k.flip]
	}
}

// sessionOf is the database session id of a person's working day; a scenario
// acting inside that person's session derives the same id.
func sessionOf(seed uint64, day int64) uint64 {
	return splitmix(seed ^ 0x5e55 ^ uint64(day)*golden)
}

// nextTask returns the start of the next task after t: inside the current
// window, or in the next working window, or never after leaving.
func (k *worker) nextTask(t int64) int64 {
	for {
		nt := t + 1 + expMs(k.r, k.gap/k.boost)
		if nt < k.winEnd {
			if nt >= k.leave {
				return never
			}
			return nt
		}
		st, en := k.sch.next(k.winEnd)
		if st >= k.leave || st >= k.w.end {
			return never
		}
		k.setWindow(st, en)
		t = st
	}
}

func (k *worker) step(e *event, t int64) int64 {
	if k.cur == 0 {
		k.plan()
	}
	k.id.fill(e)
	e.sess = k.sess
	switch k.kind {
	case roleAgent:
		k.emitAgent(e)
	case roleAnalyst:
		k.emitAnalyst(e)
	default:
		k.emitEngineer(e)
	}
	k.cur++
	if k.cur < k.n {
		nt := t + 3*msSecond + expMs(k.r, k.intra)
		if nt < k.winEnd+30*msMinute && nt < k.leave {
			return nt
		}
	}
	k.cur = 0
	return k.nextTask(t)
}

// plan lays out the steps of a new task.
func (k *worker) plan() {
	r := k.r
	n := 0
	switch k.kind {
	case roleAgent:
		k.cust = k.w.cust(r)
		if r.IntN(100) < 12 {
			k.steps[n] = stSearch
			n++
		}
		k.steps[n] = stCustomer
		n++
		if r.IntN(100) < 60 {
			k.steps[n] = stAddresses
			n++
		}
		if r.IntN(100) < 50 {
			k.steps[n] = stOrders
			n++
		}
		if r.IntN(100) < 6 {
			k.steps[n] = stAddrWrite
			n++
		}
	case roleAnalyst:
		n = 1
		if u := r.IntN(100); u < 10 {
			n = 3
		} else if u < 30 {
			n = 2
		}
	default:
		n = 1 + r.IntN(4)
	}
	k.n = n
}

func (k *worker) emitAgent(e *event) {
	r := k.r
	k.ids = append(k.ids[:0], k.cust)
	e.object = "public.customers"
	switch k.steps[k.cur] {
	case stSearch:
		e.rows = int64(2 + r.IntN(7))
		for i := int64(1); i < e.rows; i++ {
			k.ids = append(k.ids, k.w.cust(r))
		}
		// the customer sits anywhere in the result list
		j := r.IntN(len(k.ids))
		k.ids[0], k.ids[j] = k.ids[j], k.ids[0]
	case stCustomer:
		e.rows = 1
	case stAddresses:
		e.object, e.rows = "public.addresses", int64(1+r.IntN(3))
	case stOrders:
		e.object, e.rows = "public.orders", int64(1+r.IntN(3))
	case stAddrWrite:
		e.object, e.action, e.rows = "public.addresses", "write", 1
	}
	e.ids = k.ids
	e.status = status(r, 3, 2)
	if e.status != "ok" {
		e.rows, e.ids = 0, nil
	}
	e.bytes = bytesFor(r, e.rows)
}

func (k *worker) emitAnalyst(e *event) {
	r := k.r
	switch u := r.IntN(100); {
	case u < 45:
		e.object, e.rows = "analytics.daily_sales", lognormal(r, 1800, 0.7)
	case u < 85:
		e.object, e.rows = "analytics.sessions", lognormal(r, 7000, 0.9)
	default:
		e.object, e.rows = "analytics.funnels", lognormal(r, 250, 0.6)
	}
	e.status = status(r, 2, 10)
	if e.status != "ok" {
		e.rows = 0
	}
	e.bytes = bytesFor(r, e.rows)
}

// engObjects are what engineers look at by day: none of it customer data.
var engObjects = []struct {
	obj, db string
	weight  int
	median  float64
}{
	{"public.products", "shop", 20, 40},
	{"public.inventory", "shop", 15, 120},
	{"public.feature_flags", "shop", 10, 12},
	{"public.jobs", "shop", 15, 30},
	{"public.schema_migrations", "shop", 5, 20},
	{"pg_catalog.pg_stat_activity", "shop", 15, 40},
	{"analytics.sessions", "warehouse", 15, 2000},
	{"analytics.daily_sales", "warehouse", 5, 300},
}

func pickEngObject(r *rand.Rand) int {
	u := r.IntN(100)
	for i, o := range engObjects {
		if u < o.weight {
			return i
		}
		u -= o.weight
	}
	return 0
}

func (k *worker) emitEngineer(e *event) {
	r := k.r
	o := engObjects[pickEngObject(r)]
	e.object, e.db = o.obj, o.db
	switch u := r.IntN(100); {
	case u < 90:
		e.rows = lognormal(r, o.median, 0.8)
	case u < 96:
		e.action, e.rows = "write", int64(1+r.IntN(20))
	case u < 98:
		e.action, e.rows = "ddl", 0
	default:
		e.action, e.rows = "other", 1
	}
	e.status = status(r, 3, 15)
	if e.status != "ok" {
		e.rows = 0
	}
	e.bytes = bytesFor(r, e.rows)
}

// oncall is the engineers' night rotation: one engineer a week (Monday to
// Monday) is on call; incidents arrive about one night in four, and a third
// of them make the engineer look at a few customer rows over the VPN.
type oncall struct {
	w    *world
	r    *rand.Rand
	engs []*worker

	eng   *worker
	left  int
	cust  int // remaining steps before the customers query (-1: none)
	id    ident
	sess  uint64
	ipbuf [2][]byte
	flip  int
	ids   []uint64
}

const oncallPerNight = 0.25

func (o *oncall) first() int64 { return o.nextIncident(o.w.start) }

func (o *oncall) nextIncident(t int64) int64 {
	for {
		t = arrival(o.r, t, oncallPerNight*3, nightCurve, o.w.end) // 8 night hours of 24
		if t == never {
			return never
		}
		day := floorDiv(t, msDay)
		if floorDiv(t, msHour)%24 < 12 {
			day-- // after midnight the incident belongs to the previous evening's week
		}
		week := floorDiv(day-4, 7) // weeks start on Monday (day 4 was a Monday)
		n := len(o.engs)
		o.eng = nil
		for j := range n {
			c := o.engs[(int(splitmix(o.w.seed^uint64(week))%uint64(n))+j)%n]
			if c.join <= t && t < c.leave {
				o.eng = c
				break
			}
		}
		if o.eng == nil {
			continue
		}
		o.left = 3 + o.r.IntN(6)
		o.cust = -1
		if o.r.IntN(100) < 35 {
			o.cust = 1 + o.r.IntN(o.left-1)
		}
		o.id = o.eng.id
		o.flip ^= 1 // the previous incident's last event may still be unwritten
		o.ipbuf[o.flip] = appendIPv4(o.ipbuf[o.flip][:0], 10, 30, byte(o.r.IntN(2)), byte(2+o.r.IntN(250)))
		o.id.ip = o.ipbuf[o.flip]
		o.id.client = "psql 16.2"
		o.sess = o.r.Uint64()
		return t
	}
}

func (o *oncall) step(e *event, t int64) int64 {
	r := o.r
	o.id.fill(e)
	e.sess = o.sess
	if o.cust == 0 {
		o.ids = o.ids[:0]
		e.object, e.rows = "public.customers", int64(1+r.IntN(5))
		for range e.rows {
			o.ids = append(o.ids, o.w.cust(r))
		}
		e.ids = o.ids
	} else {
		switch u := r.IntN(4); u {
		case 0:
			e.object, e.rows = "pg_catalog.pg_stat_activity", int64(5+r.IntN(100))
		case 1:
			e.object, e.rows = "public.jobs", lognormal(r, 20, 0.8)
		case 2:
			e.object, e.rows = "public.inventory", lognormal(r, 30, 0.8)
		default:
			e.object, e.rows = "pg_catalog.pg_locks", int64(1+r.IntN(50))
		}
	}
	e.status = "ok"
	e.bytes = bytesFor(r, e.rows)
	o.cust--
	o.left--
	if o.left > 0 {
		return t + uniMs(r, msMinute, 6*msMinute)
	}
	return o.nextIncident(t)
}

// etlSpec is one nightly table copy.
type etlSpec struct {
	name, table, dst string
	rows             float64 // table size at scale 1 relative to the customer population
	maxChunks        int
}

var etlSpecs = []etlSpec{
	{"customers", "public.customers", "analytics.customers_dim", 1, 4},
	{"orders", "public.orders", "analytics.orders_fact", 3.8, 8},
	{"addresses", "public.addresses", "analytics.addresses_dim", 1.3, 3},
}

// tableRows is the size of a customer-keyed table on a day of the period: it
// grows by 0.06% a day.
func (w *world) tableRows(rel float64, day int64) int64 {
	d := float64(day - w.day(0))
	return int64(rel * float64(w.custN) * (1 + 0.0006*d))
}

// etl reads its whole table once a night at about 02:00 in a few big chunks
// (no record ids: nobody logs two million ids), then writes the warehouse
// copy. About one night in fifty the first read fails and the job retries.
type etl struct {
	w    *world
	r    *rand.Rand
	id   ident
	spec etlSpec

	night        int64
	fail         bool
	chunks, cur  int
	total, chunk int64
	sess         uint64
}

func (x *etl) first() int64 {
	for d := floorDiv(x.w.start, msDay) - 1; ; d++ {
		if t := x.plan(d); t >= x.w.start {
			return t
		}
	}
}

// plan prepares the run of the night of day d and returns its start.
func (x *etl) plan(d int64) int64 {
	r := x.r
	x.night = d
	x.fail = r.IntN(50) == 0
	x.chunks = 1 + r.IntN(x.spec.maxChunks)
	x.cur = 0
	x.total = x.w.tableRows(x.spec.rows, d)
	x.chunk = x.total / int64(x.chunks)
	x.sess = sessionOf(x.id.seed, d)
	return d*msDay + 2*msHour + uniMs(r, 0, 15*msMinute)
}

func (x *etl) step(e *event, t int64) int64 {
	r := x.r
	x.id.fill(e)
	e.sess = x.sess
	e.object = x.spec.table
	switch {
	case x.fail:
		x.fail = false
		e.status = "error"
		return t + uniMs(r, 10*msMinute, 20*msMinute)
	case x.cur < x.chunks:
		rows := x.chunk
		if x.cur == x.chunks-1 {
			rows = x.total - x.chunk*int64(x.chunks-1)
		}
		x.cur++
		e.rows, e.bytes = rows, bytesFor(r, rows)
		return t + rows/3 + uniMs(r, 5*msSecond, 30*msSecond) // ~3,000 rows/s
	}
	e.db, e.object, e.action = "warehouse", x.spec.dst, "write"
	e.rows, e.bytes = x.total, bytesFor(r, x.total)
	return x.plan(x.night + 1)
}

// appSpec is one application's mix of single-customer reads.
type appSpec struct {
	name            string
	perDay          float64 // logged requests per day at weekly factor 1
	custPct, ordPct int     // the rest reads public.addresses
	writePct        int
	pods            int
}

var appSpecs = []appSpec{
	{"storefront", 84000, 55, 40, 0, 6},
	{"checkout", 36000, 30, 55, 8, 4},
	{"account", 48000, 45, 25, 3, 4},
	{"mobile-bff", 60000, 50, 35, 2, 5},
	{"support-portal", 12000, 60, 30, 1, 2},
}

// app is a website backend: many small requests, each reading one row of
// one customer, following the website's day/night curve. The audit pipeline
// samples the application's queries, so one logged event stands for several
// served requests.
type app struct {
	w      *world
	r      *rand.Rand
	id     ident
	spec   appSpec
	perDay float64
	pods   [][]byte
	ids    [1]uint64
}

func (a *app) first() int64 { return arrival(a.r, a.w.start-1, a.perDay, webCurve, a.w.end) }

// podSession is the pooled connection a pod uses; pools recycle every 4 h.
func (a *app) podSession(pod int, t int64) uint64 {
	return splitmix(a.id.seed ^ uint64(pod)<<48 ^ uint64(floorDiv(t, 4*msHour)))
}

func (a *app) step(e *event, t int64) int64 {
	r := a.r
	a.id.fill(e)
	pod := r.IntN(len(a.pods))
	e.ip = a.pods[pod]
	e.sess = a.podSession(pod, t)
	switch u := r.IntN(100); {
	case u < a.spec.custPct:
		e.object = "public.customers"
	case u < a.spec.custPct+a.spec.ordPct:
		e.object = "public.orders"
	default:
		e.object = "public.addresses"
	}
	if r.IntN(100) < a.spec.writePct {
		e.action = "write"
	}
	a.ids[0] = a.w.cust(r)
	e.rows, e.ids = 1, a.ids[:]
	if e.status = status(r, 0, 1); e.status != "ok" {
		e.rows, e.ids = 0, nil
	}
	e.bytes = bytesFor(r, e.rows)
	return arrival(r, t, a.perDay, webCurve, a.w.end)
}

// partner is a partner's API key calling /api/v1/orders steadily from one
// or two fixed addresses; each call lists a few orders and their customers.
type partner struct {
	w      *world
	r      *rand.Rand
	id     ident
	perDay float64
	ips    [][]byte
	ids    []uint64
}

func (p *partner) first() int64 { return arrival(p.r, p.w.start-1, p.perDay, partnerCurve, p.w.end) }

func (p *partner) step(e *event, t int64) int64 {
	r := p.r
	p.id.fill(e)
	e.ip = p.ips[r.IntN(len(p.ips))]
	e.object = "/api/v1/orders"
	e.rows = min(20, 1+int64(r.ExpFloat64()*2))
	p.ids = p.ids[:0]
	for range e.rows {
		p.ids = append(p.ids, p.w.cust(r))
	}
	e.ids = p.ids
	if e.status = status(r, 4, 3); e.status != "ok" {
		e.rows, e.ids = 0, nil
	}
	e.bytes = 200 + bytesFor(r, e.rows)
	return arrival(r, t, p.perDay, partnerCurve, p.w.end)
}

// Customer networks. Homes are stable per customer: an IPv4 address in one
// of 448 residential /24s (198.18.0.0–198.19.191.255, the benchmarking
// range) or, for 30% of homes, an IPv6 /64 in 2001:db8::/32. Mobile sessions
// come from a carrier's few shared /24s: thousands of customers a day each.
var carriers = [][][3]byte{
	{{198, 51, 100}},
	{{203, 0, 113}},
	{{198, 19, 200}, {198, 19, 201}},
	{{198, 19, 210}},
}

var (
	homeClients   = []string{"Mozilla/5.0 (Windows)", "Mozilla/5.0 (Macintosh)", "Mozilla/5.0 (iPhone)", "Mozilla/5.0 (Android)"}
	homeClientPct = []int{45, 20, 20, 15}
)

func appendHome(b []byte, h uint64) []byte {
	if h%10 < 3 {
		b = append(b, "2001:db8:"...)
		b = appendHexGroup(b, 1+(h>>8)%0xffff)
		b = append(b, ':')
		b = appendHexGroup(b, (h>>24)&0xffff)
		b = append(b, ':')
		b = appendHexGroup(b, 1+(h>>40)%0xffff)
		b = append(b, "::"...)
		return appendHexGroup(b, 1+(h>>52)%0xfff)
	}
	n := (h >> 8) % 448
	return appendIPv4(b, 198, byte(18+n/256), byte(n%256), byte(2+(h>>32)%252))
}

func appendHexGroup(b []byte, v uint64) []byte {
	started := false
	for s := 12; s >= 0; s -= 4 {
		d := (v >> uint(s)) & 15
		if d != 0 || started || s == 0 {
			b = append(b, hexDigits[d])
			started = true
		}
	}
	return b
}

// custSlot is one stream of customer sessions: a session is a random
// customer (so each customer is active rarely) using their own account from
// home or from a mobile carrier, a few requests a few seconds apart; the next
// session starts after a Poisson gap following the website curve.
type custSlot struct {
	w      *world
	r      *rand.Rand
	perDay float64

	left      int
	login     bool
	cust      uint64
	principal []byte
	ip        []byte
	client    string
	sess      uint64
	ids       [1]uint64
}

func (s *custSlot) first() int64 { return arrival(s.r, s.w.start-1, s.perDay, webCurve, s.w.end) }

func (s *custSlot) begin() {
	r := s.r
	s.cust = s.w.cust(r)
	s.principal = appendCust(s.principal[:0], s.cust)
	h := splitmix(s.w.custKey ^ s.cust)
	s.ip = s.ip[:0]
	if r.IntN(100) < 45 {
		nets := carriers[(h>>40)%uint64(len(carriers))]
		n := nets[r.IntN(len(nets))]
		s.ip = appendIPv4(s.ip, n[0], n[1], n[2], byte(1+r.IntN(254)))
		switch u := (h >> 56) % 100; {
		case u < 50:
			s.client = "ShopApp/7.3 (iOS)"
		case u < 88:
			s.client = "ShopApp/7.3 (Android)"
		default:
			s.client = "ShopApp/7.2 (Android)"
		}
	} else {
		s.ip = appendHome(s.ip, h)
		u := int((h >> 48) % 100)
		for i, p := range homeClientPct {
			if u < p {
				s.client = homeClients[i]
				break
			}
			u -= p
		}
	}
	s.sess = r.Uint64()
	s.left = 1 + r.IntN(3)
	if r.IntN(3) == 0 {
		s.left += r.IntN(4)
	}
	s.login = r.IntN(100) < 25
	if s.login {
		s.left++
	}
}

func (s *custSlot) step(e *event, t int64) int64 {
	r := s.r
	if s.left == 0 {
		s.begin()
	}
	e.principal, e.ptype, e.role, e.cred = s.principal, "customer", "customer", customerSigningKey
	e.ip, e.client, e.sessPre, e.sess = s.ip, s.client, "sess-", s.sess
	s.ids[0] = s.cust
	e.ids = s.ids[:]
	if s.login {
		s.login = false
		e.object, e.action, e.rows = "/api/v1/login", "login", 0
	} else {
		switch u := r.IntN(100); {
		case u < 22:
			e.object, e.rows = "/api/v1/me", 1
		case u < 55:
			e.object, e.rows = "/api/v1/me/orders", int64(r.IntN(9))
		case u < 82:
			e.object, e.rows = "/api/v1/me/addresses", int64(1+r.IntN(3))
		case u < 90:
			e.object, e.rows = "/api/v1/me/payment-methods", int64(r.IntN(3))
		case u < 95:
			e.object, e.action, e.rows = "/api/v1/me/addresses", "write", 1
		default:
			e.object, e.action, e.rows = "/api/v1/orders", "write", 1
		}
	}
	if e.status = status(r, 5, 2); e.status != "ok" {
		e.rows, e.ids = 0, nil
	}
	e.bytes = 200 + bytesFor(r, e.rows)
	s.left--
	if s.left > 0 {
		return t + 2*msSecond + expMs(r, float64(25*msSecond))
	}
	return arrival(r, t, s.perDay, webCurve, s.w.end)
}

// customerSigningKey is the key id that signs every customer's access token:
// one credential shared by all customers, as in real deployments.
const customerSigningKey = "jwt-kid-2024a"
