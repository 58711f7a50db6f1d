package bench

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
	"github.com/exfilguard/exfilguard/pkg/state"
	"github.com/exfilguard/exfilguard/pkg/stream"
)

// customerNets is the number of /24 networks the customers come from.
const customerNets = 60 * 256

// Memory is the cost of active entities held in memory, and the longest
// checkpoint pause they cause.
type Memory struct {
	// Target is the entity count asked for; Entities those resident.
	Target   int `json:"target_entities"`
	Entities int `json:"entities"`
	// MaxEntities is engine.max_entities for the run: the default cap
	// (100,000) raised so that every entity stays resident.
	MaxEntities int `json:"max_entities"`
	// HeapPerEntity is Go heap in use (after GC) per entity;
	// RSSPerEntity the growth of the process's VmRSS per entity, after GC
	// and returning free pages to the OS.
	HeapPerEntity float64 `json:"heap_bytes_per_entity"`
	RSSPerEntity  float64 `json:"rss_bytes_per_entity"`
	HeapBytes     int64   `json:"heap_bytes"`
	RSSBytes      int64   `json:"rss_bytes"`
	Events        int     `json:"events"`
	EventsPerSec  float64 `json:"fill_events_per_s"`
	// Checkpoint is one checkpoint with every entity dirty (the worst
	// case, as after a restart's catch-up) into Badger on disk: encode,
	// write, commit and sync, during which the pipeline's shards wait.
	CheckpointSeconds float64 `json:"checkpoint_seconds"`
	CheckpointBytes   int64   `json:"checkpoint_bytes"`
	CheckpointWritten int     `json:"checkpoint_entities"`
	// BoundedSeconds is the longest pause `detector run` takes with this
	// many entities resident: a checkpoint of the most entities a shard
	// may change before one is forced (stream.MaxDirty), written on top
	// of the store the all-dirty checkpoint filled.
	BoundedSeconds float64 `json:"bounded_checkpoint_seconds"`
	BoundedWritten int     `json:"bounded_checkpoint_entities"`
}

// measureMemory fills one engine with target entities in the mix of
// BenchmarkMemoryPerEntity (pkg/models), in time order: customer
// accounts (a principal each, 1-3 visits over two days, one record each,
// from one of 15,360 networks, all under the customers' signing key) and
// staff, 1% of the entities (a principal and a credential each, 200
// events touching a different record each, on office networks). Then it checkpoints every entity into
// a Badger store in a temporary directory.
func measureMemory(target int, dir string) (Memory, error) {
	// Entities: customers, their networks (at most 15,360 /24s), the
	// signing key, and per staff member a principal and a credential
	// (their networks are a few /24s).
	staff := max(target/100, 1)
	rest := max(target-2*staff-1, 2)
	customers := rest / 2
	if rest > 2*customerNets {
		customers = rest - customerNets
	}
	m := Memory{Target: target, MaxEntities: max(config.Default().Engine.MaxEntities, target+target/5)}
	cfg := config.Default()
	cfg.Engine.MaxEntities = m.MaxEntities

	runtime.GC()
	debug.FreeOSMemory()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	rss0 := rssBytes()

	e, err := models.New(cfg, nil)
	if err != nil {
		return m, err
	}
	ev := event.Event{HasRows: true, RecordIDs: make([]uint64, 0, 4), RecordNums: make([]uint64, 0, 4)}
	t := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC).UnixNano()
	start := time.Now()
	// Events come in time order (a late event is kept out of windows
	// and names no new entity): three rounds of visits 17 hours apart,
	// customer i visiting 1+i%3 times, then the staff's working hour.
	const round = int64(17 * time.Hour)
	step := round * 9 / 10 / int64(customers)
	var name []byte
	for v := range 3 {
		t0 := t + int64(v)*round
		for i := range customers {
			if i%3 < v {
				continue
			}
			name = strconv.AppendInt(append(name[:0], "cust-"...), int64(1_000_000_000+i), 10)
			principal := string(name)
			ev.Time = t0 + int64(i)*step
			ev.Principal, ev.PrincipalType, ev.Role, ev.Credential = principal, event.PrincipalCustomer, "customer", "jwt-kid-2024a"
			ev.SourceIP = netip.AddrFrom4([4]byte{100, byte(64 + i%60), byte(i / 60 % 256), 1})
			ev.Object, ev.Rows = "/api/v1/me/addresses", 1
			ev.RecordIDs = append(ev.RecordIDs[:0], xxhash.Sum64String(principal))
			ev.RecordNums = append(ev.RecordNums[:0], uint64(1_000_000_000+i))
			e.Process(&ev)
			m.Events++
		}
	}
	t += 3 * round
	names := make([]string, staff)
	for p := range names {
		names[p] = "staff-" + strconv.Itoa(p)
	}
	for i := range staff * 200 {
		p := i % staff
		ev.Time = t + int64(i)*int64(time.Hour)/int64(staff*200)
		ev.Principal, ev.PrincipalType, ev.Role, ev.Credential = names[p], event.PrincipalUser, "cs_agent", "kid-"+names[p]
		ev.SourceIP = netip.AddrFrom4([4]byte{10, 1, byte(p / 256), byte(p)})
		ev.Object, ev.Rows = "public.customers", 1
		ev.RecordIDs = append(ev.RecordIDs[:0], uint64(i)*0x9e3779b97f4a7c15)
		ev.RecordNums = ev.RecordNums[:0]
		e.Process(&ev)
		m.Events++
	}
	if late := e.Stats().Late; late > 0 {
		return m, fmt.Errorf("memory: %d events late", late)
	}
	m.EventsPerSec = float64(m.Events) / time.Since(start).Seconds()
	m.Entities = e.Entities()
	runtime.GC()
	debug.FreeOSMemory()
	var full runtime.MemStats
	runtime.ReadMemStats(&full)
	rss1 := rssBytes()

	d, err := os.MkdirTemp(dir, "memory-")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(d)
	st := config.Default().State
	store, err := state.Open(state.Options{Dir: d, MemTableBytes: st.MemTableBytes, BlockCacheBytes: st.BlockCacheBytes, IndexCacheBytes: st.IndexCacheBytes})
	if err != nil {
		return m, err
	}
	start = time.Now()
	cp := store.Begin()
	cs, err := e.Checkpoint(cp)
	if err != nil {
		cp.Abort()
		store.Close()
		return m, fmt.Errorf("checkpoint: %w", err)
	}
	if err := cp.Commit(nil); err != nil {
		store.Close()
		return m, fmt.Errorf("checkpoint: %w", err)
	}
	m.CheckpointSeconds = time.Since(start).Seconds()
	m.CheckpointBytes, m.CheckpointWritten = cs.Bytes, cs.Written

	// A fourth round of customer visits, an hour after the staff's, dirties
	// up to stream.MaxDirty entities (customers, their networks, the signing key);
	// a checkpoint is forced at that many, so this is the longest pause.
	t += int64(2 * time.Hour)
	visits := min(customers, stream.MaxDirty-min(customers, customerNets)-1)
	for i := range visits {
		name = strconv.AppendInt(append(name[:0], "cust-"...), int64(1_000_000_000+i), 10)
		principal := string(name)
		ev.Time = t + int64(i)*int64(time.Hour)/int64(visits)
		ev.Principal, ev.PrincipalType, ev.Role, ev.Credential = principal, event.PrincipalCustomer, "customer", "jwt-kid-2024a"
		ev.SourceIP = netip.AddrFrom4([4]byte{100, byte(64 + i%60), byte(i / 60 % 256), 1})
		ev.Object, ev.Rows = "/api/v1/me/orders", 1
		ev.RecordIDs = append(ev.RecordIDs[:0], xxhash.Sum64String(principal))
		ev.RecordNums = append(ev.RecordNums[:0], uint64(1_000_000_000+i))
		e.Process(&ev)
	}
	start = time.Now()
	cp = store.Begin()
	cs, err = e.Checkpoint(cp)
	if err == nil {
		err = cp.Commit(nil)
	} else {
		cp.Abort()
	}
	if err != nil {
		store.Close()
		return m, fmt.Errorf("checkpoint: %w", err)
	}
	m.BoundedSeconds, m.BoundedWritten = time.Since(start).Seconds(), cs.Written
	if err := store.Close(); err != nil {
		return m, err
	}
	runtime.KeepAlive(names)

	// The engine's share is what its release frees, or what its filling
	// added, whichever is larger: garbage of earlier phases freed during
	// the fill would make the second smaller, memory still held by
	// something else after the release the first.
	e = nil
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var released runtime.MemStats
	runtime.ReadMemStats(&released)
	rss2 := rssBytes()
	m.HeapBytes = max(int64(full.HeapAlloc)-int64(before.HeapAlloc), int64(full.HeapAlloc)-int64(released.HeapAlloc))
	m.RSSBytes = max(rss1-rss0, rss1-rss2)
	m.HeapPerEntity = float64(m.HeapBytes) / float64(m.Entities)
	m.RSSPerEntity = float64(m.RSSBytes) / float64(m.Entities)
	return m, nil
}
