package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// world holds what every actor shares: the period, the scale and the
// customer population. It is read-only once New returns.
type world struct {
	seed       uint64
	start, end int64
	days       int
	scale      float64
	custN      uint64 // customer population size
	custKey    uint64 // keys stable per-customer attributes (home, device)
}

// Customer numbers run from custBase; record ids are cust-%010d.
const custBase = 1_000_000

// cust draws a customer uniformly from the population. Uniform draws keep
// consecutive ids rare in benign traffic, as real work is (enumeration is
// the exception the detector looks for).
func (w *world) cust(r *rand.Rand) uint64 { return custBase + r.Uint64N(w.custN) }

// day returns the day number of the period's day i (0-based).
func (w *world) day(i int) int64 { return floorDiv(w.start, msDay) + int64(i) }

// frac returns the time at fraction f of the period.
func (w *world) frac(f float64) int64 {
	return w.start + int64(f*float64(w.end-w.start))
}

func (w *world) scaled(n float64, least int) int {
	return max(least, int(math.Round(n*w.scale)))
}

// Traffic curves; the company's local time is UTC.
var (
	// webCurve: website traffic, quiet at 04:00, peaking at 20:00, busier at
	// weekends.
	webCurve = newCurve(
		[24]float64{0.45, 0.3, 0.2, 0.15, 0.13, 0.17, 0.3, 0.5, 0.7, 0.85, 0.95, 1.0,
			1.05, 1.0, 0.95, 0.95, 1.0, 1.1, 1.25, 1.4, 1.5, 1.4, 1.1, 0.75},
		[7]float64{1.2, 1, 1, 1, 1, 1.05, 1.15}, true)
	// partnerCurve: machine-to-machine traffic, steady with a mild
	// business-hours bump and quieter weekends.
	partnerCurve = newCurve(
		[24]float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.9, 1.3, 1.3, 1.3, 1.3,
			1.3, 1.3, 1.3, 1.3, 1.3, 1.3, 1.0, 1.0, 1.0, 0.8, 0.8, 0.8},
		[7]float64{0.6, 1, 1, 1, 1, 1, 0.6}, true)
	// nightCurve: 1 from 22:00 to 06:00, 0 otherwise (on-call incidents).
	nightCurve = newCurve(
		[24]float64{1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1},
		[7]float64{1, 1, 1, 1, 1, 1, 1}, false)
	// flatCurve: constant rate.
	flatCurve = newCurve(
		[24]float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		[7]float64{1, 1, 1, 1, 1, 1, 1}, true)
)

// population is the benign company, kept for scenarios that act as (or
// against) one of its members.
type population struct {
	agents      []*worker
	analysts    []*worker
	engineers   []*worker
	apps        []*app
	earlyLeaver int // engineers index of the engineer who leaves at ~30%
}

// Working-day bit masks (bit 0 = Sunday).
const (
	monFri uint8 = 0b0111110
	wedSun uint8 = 0b1111001
)

// buildPopulation creates the benign actors. Who works which shift, who
// joins or leaves and every credential come from one population stream;
// each actor then draws its events from its own stream.
func buildPopulation(w *world, g *Generator) *population {
	pr := newRand(deriveSeed(w.seed, "population", 0))
	w.custN = uint64(w.scaled(2_000_000, 10_000))
	w.custKey = pr.Uint64()
	pop := &population{}
	period := float64(w.end - w.start)
	at := func(lo, hi float64) int64 { return w.start + int64((lo+(hi-lo)*pr.Float64())*period) }

	// Customer-service agents: tickets about one customer each.
	nAgents := w.scaled(200, 2)
	for i := range nAgents {
		seed := deriveSeed(w.seed, "agent", i)
		a := &worker{w: w, r: newRand(seed), kind: roleAgent, join: math.MinInt64, leave: never,
			gap: float64(7*msMinute) * (0.8 + 0.45*pr.Float64()), intra: float64(15 * msSecond)}
		a.id = ident{principal: fmt.Appendf(nil, "cs-%04d", i+1), ptype: "user", role: "cs_agent",
			cred: fmt.Sprintf("kid-%012x", pr.Uint64()>>16), client: "cs-console/4.2", db: "shop", sessPre: "pg-",
			ip: ipv4(10, 20, byte(1+3*(i/250)), byte(5+i%250)), seed: seed}
		a.sch = schedule{seed: seed, length: 8*msHour + 30*msMinute, jitter: 20 * msMinute, absentPM: 60}
		switch u := pr.IntN(100); {
		case u < 72: // weekday day shift, in the office
			a.sch.weekdays, a.sch.start = monFri, 8*msHour+int64(pr.IntN(4))*15*msMinute
		case u < 86: // weekday evening shift, from home over the VPN
			a.sch.weekdays, a.sch.start, a.sch.length = monFri, 14*msHour+30*msMinute, 8*msHour
			a.vpn = true
		default: // Wednesday to Sunday, in the office
			a.sch.weekdays, a.sch.start = wedSun, 9*msHour
		}
		pop.agents = append(pop.agents, a)
	}
	joinLeave(pr, pop.agents, int(math.Round(0.03*float64(nAgents))), int(math.Round(0.03*float64(nAgents))), at)

	// Analysts: aggregate reads of non-sensitive tables, month-end peak.
	analystClients := []string{"DBeaver 24.1", "psql 16.2", "Tableau 2024.2", "jupyter (psycopg 3.1)"}
	nAnalysts := w.scaled(20, 1)
	for i := range nAnalysts {
		seed := deriveSeed(w.seed, "analyst", i)
		a := &worker{w: w, r: newRand(seed), kind: roleAnalyst, join: math.MinInt64, leave: never,
			gap: float64(9*msMinute) * (0.8 + 0.4*pr.Float64()), intra: float64(60 * msSecond),
			boostF: 3 + 2*pr.Float64()}
		a.id = ident{principal: fmt.Appendf(nil, "an-%03d", i+1), ptype: "user", role: "analyst",
			cred: fmt.Sprintf("kid-%012x", pr.Uint64()>>16), client: analystClients[pr.IntN(len(analystClients))],
			db: "warehouse", sessPre: "pg-", ip: ipv4(10, 20, 2, byte(10+i%240)), seed: seed}
		a.sch = schedule{seed: seed, weekdays: monFri, start: 9 * msHour, length: 8*msHour + 30*msMinute,
			jitter: 45 * msMinute, absentPM: 80}
		pop.analysts = append(pop.analysts, a)
	}
	if nAnalysts >= 4 {
		joinLeave(pr, pop.analysts, 1, 0, at)
	}

	// Engineers: mostly non-sensitive tables; one leaves early in the period
	// (the departed_credential scenario brings that credential back), one
	// leaves later, one joins.
	engClients := []string{"psql 16.2", "DataGrip 2024.1", "DBeaver 24.1"}
	nEng := w.scaled(30, 3)
	for i := range nEng {
		seed := deriveSeed(w.seed, "engineer", i)
		a := &worker{w: w, r: newRand(seed), kind: roleEngineer, join: math.MinInt64, leave: never,
			gap: float64(14*msMinute) * (0.7 + 0.6*pr.Float64()), intra: float64(40 * msSecond)}
		a.id = ident{principal: fmt.Appendf(nil, "eng-%03d", i+1), ptype: "user", role: "engineer",
			cred: fmt.Sprintf("kid-%012x", pr.Uint64()>>16), client: engClients[pr.IntN(len(engClients))],
			db: "shop", sessPre: "pg-", ip: ipv4(10, 20, 3, byte(10+i%240)), seed: seed}
		a.sch = schedule{seed: seed, weekdays: monFri, start: 9*msHour + 30*msMinute, length: 9 * msHour,
			jitter: 60 * msMinute, absentPM: 100}
		pop.engineers = append(pop.engineers, a)
	}
	perm := pr.Perm(nEng)
	pop.earlyLeaver = perm[0]
	// The early leaver's last day ends at ~30% of the period.
	pop.engineers[perm[0]].leave = (w.day(int(0.3*float64(w.days))) * msDay) + 18*msHour
	pop.engineers[perm[1]].leave = at(0.5, 0.8)
	pop.engineers[perm[2]].join = at(0.3, 0.6)

	// Nightly ETL: each account copies one whole table to the warehouse.
	nETL := w.scaled(3, 1)
	for i := range nETL {
		seed := deriveSeed(w.seed, "etl", i)
		spec := etlSpecs[i%len(etlSpecs)]
		name := "svc-etl-" + spec.name
		if i >= len(etlSpecs) {
			name += fmt.Sprintf("-%d", i/len(etlSpecs)+1)
		}
		e := &etl{w: w, r: newRand(seed), spec: spec}
		e.id = ident{principal: []byte(name), ptype: "service", role: "etl", cred: akia(pr),
			client: "airflow/2.9 (psycopg2)", db: "shop", sessPre: "pg-", ip: ipv4(10, 0, 7, byte(10+i%240)), seed: seed}
		g.add(e, e.first(), "")
	}

	// Application services: the bulk of the events.
	nApps := w.scaled(5, 1)
	full, have := 0.0, 0.0
	for _, s := range appSpecs {
		full += s.perDay
	}
	for i := range nApps {
		have += appSpecs[i%len(appSpecs)].perDay
	}
	appFactor := full * w.scale / have
	for i := range nApps {
		seed := deriveSeed(w.seed, "app", i)
		spec := appSpecs[i%len(appSpecs)]
		name := "svc-" + spec.name
		if i >= len(appSpecs) {
			name += fmt.Sprintf("-%d", i/len(appSpecs)+1)
		}
		// Per-app rates are adjusted so that total app traffic is
		// proportional to Scale even when the count is rounded.
		a := &app{w: w, r: newRand(seed), spec: spec, perDay: spec.perDay * appFactor}
		a.id = ident{principal: []byte(name), ptype: "service", role: "app", cred: akia(pr),
			client: spec.name + "/3.14 (pgx)", db: "shop", sessPre: "pg-", seed: seed}
		for p := range spec.pods {
			a.pods = append(a.pods, ipv4(10, 0, byte(5+i/25), byte(10+(i%25)*8+p)))
		}
		pop.apps = append(pop.apps, a)
	}

	// Staff processes go in after ETL and before the rest, in a fixed order.
	for _, ws := range [][]*worker{pop.agents, pop.analysts, pop.engineers} {
		for _, a := range ws {
			g.add(a, a.first(), "")
		}
	}
	for _, a := range pop.apps {
		g.add(a, a.first(), "")
	}
	oc := &oncall{w: w, r: newRand(deriveSeed(w.seed, "oncall", 0)), engs: pop.engineers}
	g.add(oc, oc.first(), "")

	// Partners' API keys.
	nPartners := w.scaled(10, 1)
	for i := range nPartners {
		seed := deriveSeed(w.seed, "partner", i)
		key := fmt.Sprintf("pk_live_%012x", pr.Uint64()>>16)
		p := &partner{w: w, r: newRand(seed), perDay: (0.5 + 2.5*pr.Float64()) * 1440}
		p.id = ident{principal: []byte(key), ptype: "api_key", role: "partner", cred: key,
			client: partnerClients[pr.IntN(len(partnerClients))]}
		for k := range 1 + pr.IntN(2) {
			p.ips = append(p.ips, ipv4(192, 0, 2, byte(10+(3*i+k)%240)))
		}
		g.add(p, p.first(), "")
	}

	// Customers: session slots, each a renewal process of short sessions by
	// a random customer from the population.
	nSlots := w.scaled(256, 2)
	perSlot := 24000 * w.scale / float64(nSlots)
	for i := range nSlots {
		s := &custSlot{w: w, r: newRand(deriveSeed(w.seed, "customers", i)), perDay: perSlot}
		g.add(s, s.first(), "")
	}
	return pop
}

// joinLeave marks nj workers as joining and nl as leaving during the period.
func joinLeave(pr *rand.Rand, ws []*worker, nj, nl int, at func(lo, hi float64) int64) {
	perm := pr.Perm(len(ws))
	for k, i := range perm {
		switch {
		case k < nj:
			ws[i].join = at(0.2, 0.6)
		case k < nj+nl:
			ws[i].leave = at(0.4, 0.85)
		}
	}
}

// akia returns an AWS-access-key-like credential id for a service account.
func akia(r *rand.Rand) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := []byte("AKIA")
	for range 16 {
		b = append(b, alpha[r.IntN(len(alpha))])
	}
	return string(b)
}

var partnerClients = []string{"okhttp/4.12", "Go-http-client/1.1", "python-requests/2.31", "partner-sync/2.0", "Apache-HttpClient/5.2"}
