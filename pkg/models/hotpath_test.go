package models

import (
	"fmt"
	"math/bits"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
)

// steadyEvents is a realistic mix for the hot path: many principals on a
// few networks and credentials, a few record ids each, time moving forward
// by 50 ms per event so that buckets roll as they do in production.
func steadyEvents(n, principals int) []event.Event {
	evs := make([]event.Event, n)
	objects := []string{"public.customers", "public.orders", "public.addresses", "analytics.daily_sales"}
	names := make([]string, principals)
	for i := range names {
		names[i] = fmt.Sprintf("user-%06d", i)
	}
	t0 := day0.UnixNano()
	for i := range evs {
		p := (i * 7919) % principals
		id := (i * 104729) % 2_000_000
		evs[i] = event.Event{
			Time: t0 + int64(i)*int64(50*time.Millisecond), Principal: names[p], Role: "cs_agent",
			Credential: "kid-" + names[p%64], SourceIP: netip.AddrFrom4([4]byte{10, 1, byte(p % 16), byte(p)}),
			Object: objects[i%len(objects)], Rows: int64(1 + i%3), HasRows: true,
			RecordIDs: []uint64{xxhash.Sum64String(cust(id)), xxhash.Sum64String(cust(id + 1))}, RecordNums: []uint64{uint64(id), uint64(id + 1)}, RecordCount: 2,
		}
	}
	return evs
}

// TestProcessAllocatesNothing proves the hot path's contract: once the
// entities exist and their sketches have grown, processing an event
// allocates nothing, including across bucket rollovers.
func TestProcessAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("warms several days of state")
	}
	evs := steadyEvents(400_000, 500)
	e, err := New(config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Warm: the first 300k events (~4 hours) create every entity, grow
	// sketches and roll every short bucket at least once.
	for i := range evs[:300_000] {
		e.Process(&evs[i])
	}
	n, by, total := processAllocs(func() {
		for i := range evs[300_000:] {
			e.Process(&evs[300_000+i])
		}
	})
	if n != 0 {
		t.Errorf("%d allocations in 100000 events, want 0: %v", n, by)
	} else if total != 0 {
		t.Logf("%d allocations elsewhere in the process meanwhile", total)
	}
}

// growthEvents is a workload whose distinct sketches keep changing size,
// as real traffic's do: principals take turns being busy. Each event is a
// pseudo-random principal's; in each hour a hash of (principal, hour)
// draws how busy the principal is, heavy-tailed: quiet half the time (one
// of three familiar records an event), else 1, 2, 4, 8 or 16 records never
// read before an event, each level half as likely as the one before. New
// records come from a counter, so the record sketches grow, a busy hour's
// to dense and the day's and week's with them, and those of its network
// and credential (shared with other principals); a principal busy this
// hour may be quiet the next. Events are spread evenly over span.
func growthEvents(n, principals int, span time.Duration) []event.Event {
	evs := make([]event.Event, n)
	ids := make([]uint64, 0, 4*n)
	objects := []string{"public.customers", "public.orders", "public.addresses", "public.payments", "crm.contacts", "analytics.daily_sales"}
	names := make([]string, principals)
	for i := range names {
		names[i] = fmt.Sprintf("agent-%03d", i)
	}
	step := int64(span) / int64(n)
	t0 := day0.UnixNano()
	next := uint64(0)
	for i := range evs {
		p := int(mix(uint64(i)) % uint64(principals))
		t := t0 + int64(i)*step
		hour := uint64(t / int64(time.Hour))
		k := len(ids)
		if lvl := bits.TrailingZeros64(mix(uint64(p)<<32|hour) | 1<<5); lvl == 0 {
			ids = append(ids, xxhash.Sum64String(fmt.Sprintf("%s-fav-%d", names[p], i%3)))
		} else {
			for range 1 << (lvl - 1) {
				ids = append(ids, mix(next+1))
				next++
			}
		}
		evs[i] = event.Event{
			Time: t, Principal: names[p], Role: "cs_agent", Credential: fmt.Sprintf("kid-%d", p%4),
			SourceIP: netip.AddrFrom4([4]byte{10, 2, byte(p % 8), byte(p)}),
			Object:   objects[(i/principals+p)%len(objects)], Rows: int64(len(ids) - k), HasRows: true,
			RecordIDs: ids[k:len(ids):len(ids)], RecordCount: len(ids) - k,
		}
	}
	return evs
}

// TestProcessAllocatesNothingAsSketchesGrow holds the hot path to zero
// allocations where sketches grow: with growthEvents, a bucket's record
// sketch keeps meeting more distinct records than that sketch ever held
// (a principal busy in an hour where it was quiet before, a new bucket
// alignment), which, when each sketch kept its own largest buffer, was an
// allocation in sketch.(*Distinct).spill or grow each time, passes after
// the entities were created. The engine's pool of sketch buffers serves
// them from the buffers of sketches whose fills shrank.
//
// The same nine days of events (every bucket up to the week rolls) run
// three times, each pass moved past the one before by a span that is no
// multiple of any horizon, as detector bench does: the first creates the
// entities, the second grows what still grows, the third is counted.
func TestProcessAllocatesNothingAsSketchesGrow(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 27 days of events")
	}
	const n = 300_000
	span := 9 * 24 * time.Hour
	evs := growthEvents(n, 2000, span)
	e, err := New(config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	shift := int64(span + 7*time.Minute + 13*time.Second)
	for pass := range 2 {
		for i := range evs {
			if pass > 0 {
				evs[i].Time += shift
			}
			e.Process(&evs[i])
		}
	}
	for i := range evs {
		evs[i].Time += shift
	}
	before := e.pool.Stats()
	k, by, total := processAllocs(func() {
		for i := range evs {
			e.Process(&evs[i])
		}
	})
	if k != 0 {
		t.Errorf("%d allocations in %d events, want 0: %v", k, n, by)
	} else if total != 0 {
		t.Logf("%d allocations elsewhere in the process meanwhile", total)
	}
	// The workload must exercise what it is about: sketches taking
	// buffers as they grow, and giving them back as they shrink.
	st := e.pool.Stats()
	if st.Reused-before.Reused < 1000 || st.Kept-before.Kept < 1000 {
		t.Errorf("the counted pass reused %d sketch buffers and gave back %d: the workload no longer makes sketches grow and shrink",
			st.Reused-before.Reused, st.Kept-before.Kept)
	}
}

// processAllocs returns the heap allocations made under Engine.Process
// while f runs, by the function that made each (the innermost frame in
// pkg/models), and all allocations of the process meanwhile. Every
// allocation is sampled (MemProfileRate 1), so the count is exact, and
// only the engine's count: the runtime may allocate meanwhile (a finalizer
// queued by a GC of the warm-up, say), and so may other goroutines.
// (testing.AllocsPerRun counts the whole process, and divides by the runs
// in integers, so that fewer allocations than runs read as none.)
func processAllocs(f func()) (n int64, by map[string]int64, total uint64) {
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1
	snapshot := func() map[string]int64 {
		// The profile is published by GC cycles, up to two behind.
		for range 3 {
			runtime.GC()
		}
		n, _ := runtime.MemProfile(nil, true)
		recs := make([]runtime.MemProfileRecord, n+64)
		n, _ = runtime.MemProfile(recs, true)
		out := map[string]int64{}
		for _, r := range recs[:n] {
			site, inProcess := "", false
			frames := runtime.CallersFrames(r.Stack())
			for {
				fr, more := frames.Next()
				if site == "" && strings.HasPrefix(fr.Function, "github.com/exfilguard/exfilguard/pkg/models") {
					site = strings.TrimPrefix(fr.Function, "github.com/exfilguard/exfilguard/pkg/")
				}
				if fr.Function == "github.com/exfilguard/exfilguard/pkg/models.(*Engine).Process" {
					inProcess = true
				}
				if !more {
					break
				}
			}
			if inProcess {
				out[site] += r.AllocObjects
			}
		}
		return out
	}
	before := snapshot()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	after := snapshot()
	by = map[string]int64{}
	for site, k := range after {
		if d := k - before[site]; d > 0 {
			by[site] = d
			n += d
		}
	}
	return n, by, m1.Mallocs - m0.Mallocs
}

func BenchmarkProcess(b *testing.B) {
	for _, principals := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("principals=%d", principals), func(b *testing.B) {
			evs := steadyEvents(1<<20, principals)
			e, _ := New(config.Default(), nil)
			for i := range evs {
				e.Process(&evs[i])
			}
			// Keep time moving past the warm-up set.
			shift := evs[len(evs)-1].Time - evs[0].Time + int64(time.Second)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ev := &evs[i&(len(evs)-1)]
				if i&(len(evs)-1) == 0 && i > 0 {
					for j := range evs {
						evs[j].Time += shift
					}
				}
				e.Process(ev)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestBytesPerEntity measures heap per tracked entity with a realistic
// mix: most entities are customer accounts that touch a record or two, a
// few are staff and services that touch many. Run with -v to see the
// figure; the 1M-entity measurement is BenchmarkMemoryPerEntity.
func TestBytesPerEntity(t *testing.T) {
	per := measureBytesPerEntity(t, 50_000)
	t.Logf("%.0f bytes per entity", per)
	if per > 4096 {
		t.Errorf("%.0f bytes per entity, want at most 4096", per)
	}
}

func BenchmarkMemoryPerEntity(b *testing.B) {
	for i := 0; i < b.N; i++ {
		per := measureBytesPerEntity(b, 1_000_000)
		b.ReportMetric(per, "bytes/entity")
	}
}

func measureBytesPerEntity(t testing.TB, customers int) float64 {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	e, _ := New(config.Default(), nil)
	ev := event.Event{HasRows: true, RecordIDs: make([]uint64, 0, 64), RecordNums: make([]uint64, 0, 64)}
	t0 := day0.UnixNano()
	names := make([]string, customers)
	for i := range names {
		names[i] = cust(i)
	}
	// Customers: 1-3 visits over two days from one of many home networks
	// or a few mobile ones, all with the customers' signing key.
	for i := 0; i < customers; i++ {
		for v := 0; v < 1+i%3; v++ {
			ev.Time = t0 + int64(i)*int64(time.Second)/int64(max(1, customers/100_000)) + int64(v)*int64(17*time.Hour)
			ev.Principal, ev.PrincipalType, ev.Role, ev.Credential = names[i], event.PrincipalCustomer, "customer", "jwt-kid-2024a"
			ev.SourceIP = netip.AddrFrom4([4]byte{100, byte(64 + i%60), byte(i / 60 % 256), 1})
			ev.Object, ev.Rows = "/api/v1/me/addresses", 1
			ev.RecordIDs = append(ev.RecordIDs[:0], xxhash.Sum64String(names[i]))
			ev.RecordNums = ev.RecordNums[:0]
			e.Process(&ev)
		}
	}
	// Staff and services: 1% of entities, each touching many records.
	staff := customers / 100
	for i := 0; i < staff*200; i++ {
		p := i % staff
		ev.Time = t0 + int64(i)*int64(time.Millisecond)
		ev.Principal, ev.PrincipalType, ev.Role, ev.Credential = fmt.Sprintf("staff-%d", p), event.PrincipalUser, "cs_agent", fmt.Sprintf("kid-staff-%d", p)
		ev.SourceIP = netip.AddrFrom4([4]byte{10, 1, byte(p / 256), byte(p)})
		ev.Object, ev.Rows = "public.customers", 1
		ev.RecordIDs = append(ev.RecordIDs[:0], uint64(i)*0x9e3779b97f4a7c15)
		e.Process(&ev)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	n := e.Entities()
	runtime.KeepAlive(e)
	runtime.KeepAlive(names)
	namesBytes := float64(customers) * (16 + 15)
	return (float64(after.HeapAlloc-before.HeapAlloc) - namesBytes) / float64(n)
}
