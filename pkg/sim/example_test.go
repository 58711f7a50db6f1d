package sim_test

import (
	"fmt"

	"github.com/exfilguard/exfilguard/pkg/sim"
)

// Example prints the first event of a week with a bulk dump and the dump's
// labels. The output is fixed: a change to it is a change of the generated
// traffic, which invalidates recorded benchmarks and evaluations.
func Example() {
	g, err := sim.New(sim.Options{Seed: 1, Days: 7, Scenarios: []string{"bulk_dump"}})
	if err != nil {
		panic(err)
	}
	line, _ := g.Next(nil)
	fmt.Println(string(line))
	for _, l := range g.Labels() {
		fmt.Println(l.Scenario, l.EntityKind, l.Entity, l.Start)
	}
	// Output:
	// {"ts":"2026-01-05T00:00:00.232Z","principal":"svc-storefront","principal_type":"service","credential":"AKIAO23QTKH3HCRUDA23","role":"app","source_ip":"10.0.5.14","client":"storefront/3.14 (pgx)","session":"pg-1fceeede6425b4b1","database":"shop","object":"public.customers","action":"read","rows":1,"bytes":318,"record_ids":["cust-0002548873"],"status":"ok"}
	// bulk_dump principal cs-0179 2026-01-09 02:34:40.737 +0000 UTC
	// bulk_dump credential kid-c9fc21ed7d7f 2026-01-09 02:34:40.737 +0000 UTC
	// bulk_dump source_net 198.19.250.0/24 2026-01-09 02:34:40.737 +0000 UTC
}
