package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"maps"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustNew(t testing.TB, o Options) *Generator {
	t.Helper()
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// digest hashes the first n lines of o's traffic.
func digest(t *testing.T, o Options, n int) [32]byte {
	g := mustNew(t, o)
	h := sha256.New()
	var buf []byte
	for i := 0; i < n; i++ {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			t.Fatalf("traffic ended after %d lines", i)
		}
		h.Write(append(buf, '\n'))
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

func TestDeterminism(t *testing.T) {
	t.Parallel()
	o := Options{Seed: 42, Days: 3, Scale: 0.5, Scenarios: ScenarioNames()}
	a, b := digest(t, o, 100_000), digest(t, o, 100_000)
	if a != b {
		t.Fatal("same options gave different traffic")
	}
	o.Seed = 43
	if digest(t, o, 100_000) == a {
		t.Fatal("a different seed gave the same traffic")
	}
	// Scenario order and repetition do not matter.
	o.Seed = 42
	o.Scenarios = append(slices.Clone(ScenarioNames()), "bulk_dump")
	slices.Reverse(o.Scenarios)
	if digest(t, o, 100_000) != a {
		t.Fatal("scenario order changed the traffic")
	}
}

var (
	recordID      = regexp.MustCompile(`^cust-\d{10}$`)
	actions       = []string{"read", "write", "delete", "export", "login", "ddl", "other"}
	statuses      = []string{"ok", "denied", "error"}
	principalType = []string{"user", "service", "api_key", "customer"}
	entityKinds   = []string{KindPrincipal, KindSourceNet, KindCredential}
)

// checkLine validates one line against the native event contract.
func checkLine(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("invalid JSON %v: %s", err, line)
	}
	ts, _ := m["ts"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", ts); err != nil {
		t.Fatalf("ts %q: %v", ts, err)
	}
	if p, _ := m["principal"].(string); p == "" {
		t.Fatalf("no principal: %s", line)
	}
	str := func(k string, valid []string) {
		if v, ok := m[k]; ok {
			s, _ := v.(string)
			if !slices.Contains(valid, s) {
				t.Fatalf("%s %q: %s", k, s, line)
			}
		}
	}
	str("action", actions)
	str("status", statuses)
	str("principal_type", principalType)
	for _, k := range []string{"rows", "bytes"} {
		v, ok := m[k].(float64)
		if !ok || v < 0 || v != math.Trunc(v) {
			t.Fatalf("%s not a non-negative integer: %s", k, line)
		}
	}
	if ip, ok := m["source_ip"].(string); ok {
		if _, err := netip.ParseAddr(ip); err != nil {
			t.Fatalf("source_ip: %v: %s", err, line)
		}
	}
	if ids, ok := m["record_ids"]; ok {
		l, ok := ids.([]any)
		if !ok || len(l) == 0 {
			t.Fatalf("record_ids: %s", line)
		}
		for _, id := range l {
			if s, _ := id.(string); !recordID.MatchString(s) {
				t.Fatalf("record id %v: %s", id, line)
			}
		}
	}
	return m
}

// TestContract decodes every line of a short run with every scenario and
// checks the time order, the required fields on every line and the whole
// contract on a sample.
func TestContract(t *testing.T) {
	t.Parallel()
	g := mustNew(t, Options{Seed: 7, Days: 2, Scale: 0.05, Scenarios: ScenarioNames()})
	var buf []byte
	prev, n := "", 0
	for {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			break
		}
		n++
		var e struct{ TS, Principal string }
		if err := json.Unmarshal(buf, &e); err != nil || e.Principal == "" {
			t.Fatalf("line %d: %v: %s", n, err, buf)
		}
		if e.TS < prev { // fixed width: string order is time order
			t.Fatalf("line %d: ts %s before %s", n, e.TS, prev)
		}
		prev = e.TS
		if n%16 == 0 {
			checkLine(t, buf)
		}
	}
	if n < 10_000 {
		t.Fatalf("only %d events", n)
	}
	if _, ok := g.Next(nil); ok {
		t.Fatal("Next after the end returned an event")
	}
}

// TestBenignUnchanged: adding scenarios adds lines but does not change,
// drop or reorder a single benign line.
func TestBenignUnchanged(t *testing.T) {
	t.Parallel()
	base := Options{Seed: 3, Days: 3, Scale: 0.05}
	for _, sc := range [][]string{ScenarioNames(), {"departed_credential"}} {
		o := base
		o.Scenarios = sc
		g0, g1 := mustNew(t, base), mustNew(t, o)
		var b0, b1 []byte
		n, attacks := 0, 0
		for {
			var ok0, ok1 bool
			b0, ok0 = g0.Next(b0[:0])
			for {
				b1, ok1 = g1.Next(b1[:0])
				if !ok1 || g1.Scenario() == "" {
					break
				}
				attacks++
			}
			if ok0 != ok1 {
				t.Fatalf("%v: benign traffic length differs after %d lines", sc, n)
			}
			if !ok0 {
				break
			}
			if !bytes.Equal(b0, b1) {
				t.Fatalf("%v: line %d differs:\n%s\n%s", sc, n, b0, b1)
			}
			n++
		}
		if attacks == 0 {
			t.Fatalf("%v: no attack lines", sc)
		}
	}
}

// attackEvent is the part of an attack event the scenario checks look at,
// taken from the generator's own record (TestContract checks the JSON).
type attackEvent struct {
	TS, Principal, Credential, SourceIP, Client, Role, Object, Action, Status string
	Rows                                                                      int64
	RecordIDs                                                                 []uint64
}

// attackRun collects the attack events of a run by scenario, and the lines
// of one scenario.
func attackRun(t *testing.T, o Options, keep string) (map[string][]attackEvent, []string, *Generator) {
	g := mustNew(t, o)
	got := map[string][]attackEvent{}
	var raw []string
	var buf []byte
	for {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			break
		}
		if s := g.Scenario(); s != "" {
			e := &g.e
			got[s] = append(got[s], attackEvent{
				TS: string(buf[7:31]), Principal: string(e.principal), Credential: e.cred, SourceIP: string(e.ip),
				Client: e.client, Role: e.role, Object: e.object, Action: e.action, Status: e.status,
				Rows: e.rows, RecordIDs: slices.Clone(e.ids),
			})
			if s == keep {
				raw = append(raw, string(buf))
			}
		}
	}
	return got, raw, g
}

func net24(ip string) string {
	a := netip.MustParseAddr(ip)
	p, _ := a.Prefix(24)
	return p.String()
}

func TestScenarios(t *testing.T) {
	t.Parallel()
	const days = 4
	o := Options{Seed: 11, Days: days, Scale: 0.05, Scenarios: ScenarioNames()}
	got, raw, g := attackRun(t, o, "bulk_dump")
	labels := g.Labels()
	start, end := defaultStart, defaultStart.Add(days*24*time.Hour)
	for _, name := range ScenarioNames() {
		evs := got[name]
		var ls []Label
		for _, l := range labels {
			if l.Scenario == name {
				ls = append(ls, l)
			}
		}
		if len(evs) == 0 || len(ls) == 0 {
			t.Errorf("%s: %d events, %d labels", name, len(evs), len(ls))
			continue
		}
		// Every attack event names a labelled entity inside its window.
		for _, e := range evs {
			ts, _ := time.Parse(time.RFC3339, e.TS)
			hit := false
			for _, l := range ls {
				var v string
				switch l.EntityKind {
				case KindPrincipal:
					v = e.Principal
				case KindCredential:
					v = e.Credential
				case KindSourceNet:
					if e.SourceIP != "" {
						v = net24(e.SourceIP)
					}
				}
				if v == l.Entity && !ts.Before(l.Start) && ts.Before(l.End.Add(time.Millisecond)) {
					hit = true
				}
			}
			if !hit {
				t.Fatalf("%s: event outside every label: %+v", name, e)
			}
		}
		for _, l := range ls {
			if !slices.Contains(entityKinds, l.EntityKind) || l.Entity == "" || l.Description == "" ||
				l.Start.Before(start) || l.End.After(end) || l.End.Before(l.Start) {
				t.Errorf("bad label %+v", l)
			}
		}
	}

	rows := func(name string) (n int64) {
		for _, e := range got[name] {
			n += e.Rows
		}
		return n
	}
	if r := rows("bulk_dump"); r < 100_000*0.3 { // 30-60% of 100,000 customers, and addresses
		t.Errorf("bulk_dump read only %v rows", r)
	}
	if e := got["huge_export"]; len(e) != 1 || e[0].Action != "export" || e[0].Rows < 100_000 || e[0].RecordIDs != nil {
		t.Errorf("huge_export: %+v", e)
	}
	denied := 0
	for _, e := range got["denied_probe"] {
		if e.Status == "denied" {
			denied++
		}
	}
	if denied < 100 {
		t.Errorf("denied_probe: %d denied", denied)
	}
	// The crawler touches each forged account 1-3 times, from 2-3 networks,
	// with one client and the customers' signing key.
	per := map[string]int{}
	nets, clients := map[string]bool{}, map[string]bool{}
	for _, e := range got["forged_token_crawl"] {
		per[e.Principal]++
		nets[net24(e.SourceIP)] = true
		clients[e.Client] = true
		if e.Credential != customerSigningKey || e.Role != "customer" || len(e.RecordIDs) == 1 && e.Principal != string(appendCust(nil, e.RecordIDs[0])) {
			t.Fatalf("crawler event %+v", e)
		}
	}
	for p, n := range per {
		if n > 3 {
			t.Fatalf("crawler touched %s %d times", p, n)
		}
	}
	if len(per) < 10_000 || len(nets) < 2 || len(nets) > 3 || len(clients) != 1 {
		t.Errorf("crawler: %d accounts, %d networks, %d clients", len(per), len(nets), len(clients))
	}
	// The scraper walks ids in sequence.
	prev, seq := uint64(0), 0
	for _, e := range got["scraper_key"] {
		id := e.RecordIDs[0]
		if id == prev+1 {
			seq++
		}
		prev = id
	}
	if n := len(got["scraper_key"]); n < 50_000 || seq < n-1 {
		t.Errorf("scraper: %d of %d ids in sequence", seq, n)
	}
	// The insider reads a little more each working day.
	perDay := map[string]int64{}
	for _, e := range got["slow_insider"] {
		perDay[e.TS[:10]] += e.Rows
	}
	dayKeys := slices.Sorted(maps.Keys(perDay))
	if len(dayKeys) < 3 {
		t.Errorf("slow_insider active on %d days", len(dayKeys))
	}
	for i := 1; i < len(dayKeys); i++ {
		if perDay[dayKeys[i]] <= perDay[dayKeys[i-1]] {
			t.Errorf("slow_insider does not ramp up: %v", perDay)
		}
	}
	for _, e := range got["service_new_table"] {
		if e.Object != "public.payment_cards" || e.Role != "app" {
			t.Fatalf("service_new_table: %+v", e)
		}
	}

	// A scenario produces the same lines alone as together with the others.
	o.Scenarios = []string{"bulk_dump"}
	byScenario, alone, _ := attackRun(t, o, "bulk_dump")
	if !slices.Equal(alone, raw) || len(byScenario) != 1 {
		t.Error("bulk_dump differs when run alone")
	}
}

// TestBenignBaselines checks that the attacks are unusual for their entity
// in the benign traffic: the attacking addresses and the scraper key never
// appear, no benign app reads payment cards.
func TestBenignBaselines(t *testing.T) {
	g := mustNew(t, Options{Seed: 5, Days: 3, Scale: 0.05})
	var buf []byte
	for {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			break
		}
		e := &g.e
		if a, err := netip.ParseAddr(string(e.ip)); err == nil && a.Is4() && a.As4()[0] == 198 && a.As4()[1] == 19 && a.As4()[2] >= 248 {
			t.Fatalf("benign event from an attacker network: %s", buf)
		}
		if e.object == "public.payment_cards" {
			t.Fatalf("benign payment card read: %s", buf)
		}
		if e.action == "export" {
			t.Fatalf("benign export: %s", buf)
		}
	}
}

// TestRates checks the documented event rates per role.
func TestRates(t *testing.T) {
	t.Parallel()
	const scale = 0.1
	g := mustNew(t, Options{Seed: 9, Days: 7, Scale: scale})
	count := map[string]int{}
	actorDays := map[string]map[string]bool{} // role -> principal+day
	var buf []byte
	total := 0
	for {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			break
		}
		total++
		e := &g.e
		count[e.role]++
		if actorDays[e.role] == nil {
			actorDays[e.role] = map[string]bool{}
		}
		actorDays[e.role][string(e.principal)+"@"+string(buf[7:17])] = true
	}
	perActorDay := func(role string) float64 { return float64(count[role]) / float64(len(actorDays[role])) }
	check := func(what string, v, lo, hi float64) {
		t.Logf("%s: %.0f (want %.0f-%.0f)", what, v, lo, hi)
		if v < lo || v > hi {
			t.Errorf("%s = %.0f, want %.0f-%.0f", what, v, lo, hi)
		}
	}
	t.Logf("%d events in 7 days at scale %v", total, scale)
	check("cs_agent events per agent-day", perActorDay("cs_agent"), 100, 250)
	check("analyst events per analyst-day", perActorDay("analyst"), 40, 110)
	check("engineer events per engineer-day", perActorDay("engineer"), 40, 140)
	check("etl events per account-night", perActorDay("etl"), 2, 12)
	check("partner events per key-day", perActorDay("partner"), 600, 5000)
	check("customer events per day", float64(count["customer"])/7, 0.8*64_000*scale, 1.2*64_000*scale)
	check("app events per day", float64(count["app"])/7, 0.9*240_000*1.057*scale, 1.1*240_000*1.057*scale)
}

// TestFullScaleDay counts a Monday at scale 1: about 350,000 events.
func TestFullScaleDay(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("short")
	}
	g := mustNew(t, Options{Seed: 4, Days: 1})
	buf := make([]byte, 0, 4096)
	n := 0
	for {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			break
		}
		n++
	}
	if n < 300_000 || n > 420_000 {
		t.Errorf("%d events on a Monday at scale 1", n)
	}
}

// TestMonthEnd: analysts read 3-5 times more in the last three days of a
// month.
func TestMonthEnd(t *testing.T) {
	t.Parallel()
	g := mustNew(t, Options{Seed: 2, Start: time.Date(2026, 1, 27, 0, 0, 0, 0, time.UTC), Days: 4, Scale: 0.3})
	perDay := map[string]int{}
	var buf []byte
	for {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			break
		}
		if g.e.role == "analyst" {
			perDay[string(buf[7:17])]++
		}
	}
	// Tue 27 and Wed 28 are normal, Thu 29 and Fri 30 are month end.
	normal := float64(perDay["2026-01-27"]+perDay["2026-01-28"]) / 2
	peak := float64(perDay["2026-01-29"]+perDay["2026-01-30"]) / 2
	if r := peak / normal; r < 2.5 || r > 5.5 {
		t.Errorf("month-end ratio %.1f (%v)", r, perDay)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Scenarios: []string{"bulk_dump", "nope"}})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("err = %v", err)
	}
	for _, n := range ScenarioNames() {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error does not list %s: %v", n, err)
		}
	}
	for _, o := range []Options{{Days: -1}, {Scale: -1}, {Scale: math.NaN()}, {Start: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)}} {
		if _, err := New(o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	// Any start, short periods and tiny scales work with every scenario.
	for days := 1; days <= 2; days++ {
		st := time.Date(2026, 3, 14, 9, 26, 53, 589e6, time.FixedZone("x", 3600))
		g := mustNew(t, Options{Seed: int64(days), Start: st, Days: days, Scale: 0.01, Scenarios: ScenarioNames()})
		var buf []byte
		first := ""
		for {
			var ok bool
			if buf, ok = g.Next(buf[:0]); !ok {
				break
			}
			if first == "" {
				first = string(buf[7:31])
			}
		}
		if ts, _ := time.Parse(time.RFC3339, first); ts.Before(st.Truncate(time.Millisecond)) {
			t.Errorf("first event %s before start", first)
		}
		if len(g.Labels()) < len(ScenarioNames()) {
			t.Errorf("days %d: %d labels", days, len(g.Labels()))
		}
	}
}

func TestWriteJSONL(t *testing.T) {
	var out bytes.Buffer
	n, err := WriteJSONL(&out, Options{Seed: 1, Days: 1, Scale: 0.02})
	if err != nil || n == 0 {
		t.Fatal(n, err)
	}
	if c := bytes.Count(out.Bytes(), []byte("\n")); c != n {
		t.Fatalf("%d lines, %d events", c, n)
	}
	if _, err := WriteJSONL(io.Discard, Options{Scenarios: []string{"x"}}); err == nil {
		t.Fatal("no error for an unknown scenario")
	}
}

func TestNoAllocs(t *testing.T) {
	g := mustNew(t, Options{Seed: 1, Days: 3, Scale: 0.1, Scenarios: ScenarioNames()})
	buf := make([]byte, 0, 64<<10)
	for range 50_000 {
		buf, _ = g.Next(buf[:0])
	}
	if a := testing.AllocsPerRun(20_000, func() { buf, _ = g.Next(buf[:0]) }); a != 0 {
		t.Errorf("%v allocations per event", a)
	}
}

func TestAppendStr(t *testing.T) {
	got := appendStr(nil, "a\"b\\c\n\x01é")
	var s string
	if err := json.Unmarshal(got, &s); err != nil || s != "a\"b\\c\n\x01é" {
		t.Fatalf("%s: %q %v", got, s, err)
	}
}

// BenchmarkNext measures generation at scale 1 (all scenarios on); the
// events/s metric is what a replay benchmark can be fed at most from one
// core.
func BenchmarkNext(b *testing.B) {
	o := Options{Seed: 1, Days: 60, Scenarios: ScenarioNames()}
	g := mustNew(b, o)
	buf := make([]byte, 0, 64<<10)
	size := 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var ok bool
		if buf, ok = g.Next(buf[:0]); !ok {
			g = mustNew(b, o)
		}
		size += len(buf)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(size)/float64(b.N), "bytes/event")
}
