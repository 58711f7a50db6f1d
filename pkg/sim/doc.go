// Package sim generates the synthetic access traffic of a mid-sized
// e-commerce company as native-contract JSON lines (DESIGN.md, "Native
// event"), in event-time order, with optional injected attacks and their
// ground truth. It feeds replay benchmarks, `detector demo`, `detector gen`
// and `detector eval`.
//
// # Properties
//
//   - Deterministic: equal Options give byte-identical output; the order of
//     events with equal timestamps is fixed by actor index.
//   - Benign traffic does not depend on the scenarios: every actor draws
//     from its own PCG stream, seeded from (Seed, actor kind, index);
//     scenarios use their own streams, only read the benign population and
//     act through actors ranked after every benign one. Removing the attack
//     lines (Generator.Scenario() != "") from a run with scenarios gives
//     exactly the run without them.
//   - Streaming: memory is one small state per actor plus a heap of
//     next-event times (about 350 KB at Scale 1), whatever Days is.
//   - Fast: about 3 million events/s on one core (BenchmarkNext), with no
//     allocation per event, so generation is not what a replay measures.
//
// # The company at Scale 1
//
// Times are UTC, which is also the company's local time. Measured rates for
// seed 1, 7 days from Monday 2026-01-05 (weekdays; weekend where it
// differs):
//
//	actors                                  principal            events/day
//	5 application services                  svc-storefront, ...  240k (Sat 276k, Sun 288k)
//	customers (2M population, ~24k sessions) cust-0001000000...   62k (70-74k)
//	10 partner API keys                     pk_live_...          25k (15k)
//	200 customer-service agents             cs-0001...           22-30k (5k)
//	30 engineers + on-call rotation         eng-001...           2.5k (on-call only)
//	20 analysts                             an-001...            1.4k (x3-5 at month end)
//	3 nightly ETL accounts                  svc-etl-customers    ~11
//	total                                                        355-380k
//
// That is 2.55 million events per 7 days (2,551,107 for seed 1); 9 days or
// Scale 1.2 give the 3 million of a replay benchmark. A 7-day run names
// about 160,000 distinct principals (almost all customers), 461 IPv4 /24
// networks plus about 27,000 IPv6 /64s of customers' homes, and 269
// credentials. Scale multiplies every actor count (each pool keeps a small
// minimum), the customer population and the volume of customer and
// application traffic.
//
// Behaviour, per role:
//
//   - Agents (role cs_agent) work shifts: 72% Monday-Friday day shift from
//     the office, 14% weekday evening shift from home over the VPN, 14%
//     Wednesday-Sunday. A ticket every ~7 minutes reads one customer via
//     public.customers and often public.addresses / public.orders (1-3 rows,
//     that customer's record id); some start with a name search returning
//     2-8 customers. Tool cs-console.
//   - Analysts (role analyst) query analytics.daily_sales, analytics.sessions
//     and analytics.funnels (medians 1,800, 7,000 and 250 rows) in office
//     hours; 3-5 times as often in the last three days of a month.
//   - Engineers (role engineer) query non-sensitive tables in office hours;
//     the on-call engineer of the week handles about one night incident in
//     four over the VPN, a third of which look at 1-5 customer rows.
//   - ETL service accounts (role etl) read a whole table (public.customers,
//     public.orders, public.addresses) at about 02:00 in 1-8 requests with no
//     record ids, then write the warehouse copy; one night in fifty the
//     first read fails and is retried.
//   - Application services (role app) read one row of one customer per
//     logged request (a sampled audit log), following the website's curve
//     (quiet at 04:00, peak at 20:00, busier at weekends), from a few pods.
//   - Partners (principal_type api_key, role partner) call /api/v1/orders
//     steadily (0.5-3 a minute) from fixed addresses.
//   - Customers (principal_type customer) use their own account
//     (/api/v1/me/...) a few requests at a time, record_ids their own id,
//     from their home network (stable per customer) or a mobile carrier's
//     shared /24s; all their tokens are signed by one key, credential
//     jwt-kid-2024a, as in real deployments.
//   - Six agents join and six leave during the period, two engineers leave
//     (one at 30% of the period) and one joins, one analyst joins.
//   - Status is about 0.15% denied and 0.15% error; bytes are about 300 per
//     row.
//
// Addresses are only strings, taken from ranges that cannot collide with
// real hosts: 10.20.0.0/16 office, 10.30.0.0/23 VPN, 10.0.0.0/16 datacenter,
// 192.0.2.0/24 partners, 198.51.100.0/24, 203.0.113.0/24, 198.19.200-201.0
// and 198.19.210.0 mobile carriers, 198.18.0.0-198.19.191.255 and
// 2001:db8::/32 homes, and 198.19.248.0/21 for attackers only.
//
// # Scenarios
//
// See ScenarioNames and the build functions in scenarios.go; each yields
// one Label per entity (principal, source_net, credential) a detector should
// flag, known as soon as New returns. Generator.Scenario tells which lines
// are attack lines, without marking the lines themselves.
package sim
