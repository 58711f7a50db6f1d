// Package models is the detection engine: per-entity multi-horizon windows,
// baselines (own, peer group, population) and the detectors that judge
// them. It is the hot path: processing an event of known entities
// allocates nothing.
package models

import (
	"fmt"
	"math"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models/sketch"
)

// Stats counts what the engine did.
type Stats struct {
	Events uint64 // events processed into windows
	Late   uint64 // events older than the allowed lateness, kept out
	// Future counts events too far ahead of event time to be believed
	// (until enough agree on the jump), kept out.
	Future     uint64
	Detections [numRules]uint64
}

// Engine processes events in event time and calls its callback for every
// detection. It is not safe for concurrent use: one goroutine owns an
// engine and all of its entities (the "one owner per entity" invariant).
type Engine struct {
	cfg      *config.Config
	horizons []int64 // ns
	hourIdx  int     // index of the 1h horizon, -1 if none
	dayIdx   int     // index of the 1d horizon, -1 if none

	kinds [numKinds]bool
	// owns is the kinds this engine keeps entities of: all enabled ones,
	// or a shard's share (see NewShard).
	owns               [numKinds]bool
	partial            bool // owns is not every enabled kind
	netBits4, netBits6 int
	lateness           int64
	warmup             int64

	// profiles are the detector settings: [0] the top-level ones, then one
	// per override (profile.go).
	profiles []*profile
	prior    [numMeasures]float64
	// invMemory and invGroupMemory are 1/baseline.memory and
	// 1/baseline.group_memory (see ewma.addLog).
	invMemory, invGroupMemory float64

	entities map[uint64]*Entity
	// pool holds the sketch buffers entities gave back, for the next that
	// needs one (see sketch.Pool): the engine's alone, like its entities.
	pool   *sketch.Pool
	groups map[string]*group
	pop    [numKinds]*group
	sens   *classifier

	watermark int64 // newest event time seen
	// jumpAt and jumpVotes track a candidate jump of event time beyond
	// max_clock_jump until enough events confirm it.
	jumpAt    int64
	jumpVotes int
	first     int64 // event time of the first event ever processed
	warm      bool  // the current event is within the warm-up

	// bucketAt is, per horizon, the start of the bucket of the latest
	// event processed (see Process).
	bucketAt [config.MaxHorizons]int64

	emit func(*Detection)
	det  Detection
	// cur is the event being processed, for the samples of a detection.
	cur   *event.Event
	stats Stats
	sink  int64 // see Entity.touch

	ttl int64 // engine.entity_ttl
	// Durability and eviction (store.go): where evicted and checkpointed
	// entities are found, the entities changed since the last checkpoint,
	// and reused buffers.
	store       EntityStore
	maxEntities int
	dirty       []*Entity
	loadBuf     []byte
	encBuf      []byte
	evictBuf    []*Entity
	nextSweep   int64
	storeStats  StoreStats
	err         error
}

// sketchPoolLimit bounds the free sketch buffers an engine keeps (see
// sketch.Pool): 32 bytes for each entity it may hold (engine.max_entities;
// 1% of an entity's memory), at least 1 MiB and at most 16 MiB (also
// without a cap). The sim's mix keeps about 330 KB free for 74,000
// entities; a workload of sketches that only grow would fill any bound
// with the small tables growth leaves behind, which the GC took before
// there was a pool.
func sketchPoolLimit(maxEntities int) int {
	const perEntity, least, most = 32, 1 << 20, 16 << 20
	if maxEntities <= 0 {
		return most
	}
	return min(max(perEntity*maxEntities, least), most)
}

// New builds an engine for cfg (which must be valid) calling emit for each
// detection. emit runs on the engine's goroutine and must not keep the
// *Detection.
func New(cfg *config.Config, emit func(*Detection)) (*Engine, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("new engine: invalid config: %v", errs[0])
	}
	if emit == nil {
		emit = func(*Detection) {}
	}
	e := &Engine{
		cfg:      cfg,
		hourIdx:  -1,
		dayIdx:   -1,
		netBits4: cfg.Engine.SourceNetBitsV4,
		netBits6: cfg.Engine.SourceNetBitsV6,
		lateness: int64(cfg.Engine.AllowedLateness),
		warmup:   int64(cfg.Engine.Warmup),
		ttl:      int64(cfg.Engine.EntityTTL),
		entities: make(map[uint64]*Entity),
		pool:     sketch.NewPool(sketchPoolLimit(cfg.Engine.MaxEntities)),
		groups:   make(map[string]*group),
		sens:     newClassifier(cfg.Sensitive),
		emit:     emit,

		maxEntities: cfg.Engine.MaxEntities,
	}
	for i, h := range cfg.Engine.Horizons {
		e.horizons = append(e.horizons, int64(h))
		switch h.D() {
		case time.Hour:
			e.hourIdx = i
		case 24 * time.Hour:
			e.dayIdx = i
		}
	}
	k := cfg.Engine.Entities
	e.kinds = [numKinds]bool{k.Principal, k.SourceNet, k.Credential, k.SourceIP, k.Client}
	e.owns = e.kinds
	for i := range e.pop {
		e.pop[i] = newGroup(len(e.horizons))
	}
	e.profiles = newProfiles(cfg)
	p := cfg.Baseline.Prior
	e.invMemory, e.invGroupMemory = 1/float64(cfg.Baseline.Memory), 1/float64(cfg.Baseline.GroupMemory)
	e.prior = [numMeasures]float64{p.Rows, p.SensitiveRows, p.Requests, p.Denied, p.DistinctRecords, p.DistinctPrincipals, p.DistinctObjects}
	return e, nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats { return e.stats }

// Watermark is the newest event time processed: incidents quiet for the
// quiet period as of it resolve.
func (e *Engine) Watermark() int64 { return e.watermark }

// Entities returns the number of entities held in memory (see Resident);
// with a store, evicted entities are not counted.
func (e *Engine) Entities() int { return len(e.entities) }

// Lookup returns the entity of kind and key if it is in memory, or nil: an
// entity evicted to the store is not loaded for it.
func (e *Engine) Lookup(kind Kind, key string) *Entity {
	var h uint64
	switch kind {
	case KindSourceNet, KindSourceIP:
		r, ok := parseNetKey(kind, key)
		if !ok {
			return nil
		}
		h = r
	default:
		h = keyHash(kind, key)
	}
	return e.entities[h]
}

// Process runs one event through every entity it names. Events older than
// the allowed lateness behind the newest one are counted and kept out of
// windows.
func (e *Engine) Process(ev *event.Event) {
	t := ev.Time
	if e.watermark != 0 && t-e.watermark > int64(e.cfg.Engine.MaxClockJump) && !e.confirmJump(t) {
		e.stats.Future++
		return
	}
	if t > e.watermark {
		e.watermark = t
	}
	if t < e.watermark-e.lateness {
		e.stats.Late++
		return
	}
	if e.first == 0 {
		e.first = t
	}
	e.warm = t-e.first < e.warmup
	e.stats.Events++

	e.cur = ev // every detection is raised inside Process
	cl := e.sens.class(ev.Object)
	x := eventFacts{ev: ev, sensitive: cl != 0, rows: ev.Rows}
	switch {
	case !readsOut(ev.Action):
		// Rows written, deleted or altered are not data taken: an ETL
		// loading the customers table must not look like a dump of it.
		x.rows = 0
	case !ev.HasRows:
		x.rows, x.rowless = rowsUnknown(ev)
	}
	if x.sensitive {
		x.sensRows = e.sens.weighted(x.rows, cl)
	}
	if ev.Object != "" {
		x.objHash = xxhash.Sum64String(ev.Object)
	}
	// Events come nearly in order, so the bucket of the event before is
	// almost always this one's: a comparison instead of a division per
	// horizon. (Unsigned, so that t before b, or too far after it to
	// subtract, computes the bucket.)
	for hi, w := range e.horizons {
		if b := e.bucketAt[hi]; uint64(t-b) >= uint64(w) {
			e.bucketAt[hi] = floorTo(t, w)
		}
		x.bucket[hi] = e.bucketAt[hi]
	}
	var refs [numKinds]entityRef
	n := e.refs(&x, &refs)
	// The primary entity (the first named) gets the event rules; a shard
	// that does not own it keeps only its own kinds' entities, none of
	// them primary.
	primary := true
	if e.partial {
		m := 0
		for i := 0; i < n; i++ {
			if e.owns[refs[i].kind] {
				refs[m] = refs[i]
				m++
			} else if i == 0 {
				primary = false
			}
		}
		n = m
	}
	// Find every entity first and touch the cache lines each will need,
	// then update them: on a large entity set nearly every entity is a
	// cache miss, and issued together the misses overlap instead of
	// queueing one entity after another. (Creating an entity only counts
	// it in its own kind's population, which no other entity of the event
	// reads, so the order does not change what is computed.)
	var ents [numKinds]*Entity
	for i := 0; i < n; i++ {
		ents[i] = e.entity(&refs[i], t)
	}
	for i := 0; i < n; i++ {
		e.sink += ents[i].touch(len(e.horizons))
	}
	for i := 0; i < n; i++ {
		x.primary = i == 0 && primary
		e.observe(ents[i], &x)
	}
}

// touch reads one word of each cache line of ent that an event reads, so
// that their misses are in flight together (see Process). The sum is kept
// in Engine.sink only so that the compiler cannot drop the loads.
func (ent *Entity) touch(horizons int) int64 {
	s := ent.last + int64(ent.recentN) + int64(len(ent.knownSrc)) + int64(ent.newSrc.since)
	for hi := 0; hi < horizons; hi++ {
		w := &ent.win[hi]
		s += w.start + int64(w.enumThr)
	}
	return s
}

// eventFacts is what Process derives once per event and every entity
// shares.
type eventFacts struct {
	ev        *event.Event
	sensitive bool
	// rows is the rows the event counts for: the source's count, or for a
	// source that reports none, one per request (rowless; see rowsUnknown).
	rows    int64
	rowless bool
	// sensRows is the rows of a sensitive object, weighted by its class
	// (sensitive.classes).
	sensRows            int64
	objHash, prinHash   uint64
	srcHash, clientHash uint64
	primary             bool
	// bucket is the start of the bucket holding the event, per horizon:
	// the same for every entity of the event.
	bucket [config.MaxHorizons]int64
}

// entity returns the entity of ref: in memory, else loaded from the store,
// else created at time t.
func (e *Engine) entity(ref *entityRef, t int64) *Entity {
	if ent, ok := e.entities[ref.hash]; ok {
		return ent
	}
	if e.store != nil {
		if ent := e.load(ref.hash); ent != nil {
			return ent
		}
	}
	ent := &Entity{}
	e.start(ent, ref.kind, ref.hash, ref.key(), t)
	e.entities[ref.hash] = ent
	return ent
}

// start makes ent a new entity of kind, hash and key first seen at t, and
// counts it in its population. It reuses ent's per-horizon slices and
// keeps its dirty mark (it stays on the dirty list).
func (e *Engine) start(ent *Entity, kind Kind, hash uint64, key string, t int64) {
	win, hist, prin := ent.win, ent.hist, ent.prin
	if win == nil {
		win, hist = make([]window, len(e.horizons)), make([]history, len(e.horizons))
	} else {
		for hi := range hist {
			hist[hi].records.free(e.pool)
			hist[hi].objects.free(e.pool)
		}
		clear(win)
		clear(hist)
	}
	for hi := range prin {
		prin[hi].free(e.pool)
	}
	switch {
	case kind == KindPrincipal:
		prin = nil
	case prin == nil:
		prin = make([]pair, len(e.horizons))
	default:
		clear(prin)
	}
	*ent = Entity{kind: kind, hash: hash, key: key, first: t, last: t, lsThr: never, offThr: never, win: win, hist: hist, prin: prin, dirty: ent.dirty}
	e.pop[kind].members++
}

// maxGroups bounds the peer groups: roles are a handful in a real
// organisation, but the field comes from the logs, and a feed that puts an
// id in it must not grow the engine without bound.
const maxGroups = 4096

// confirmJump reports whether an event at t, far ahead of the watermark,
// is one of enough events agreeing on a jump of event time (logs resuming
// after a real gap) rather than a lone broken clock.
func (e *Engine) confirmJump(t int64) bool {
	jump := int64(e.cfg.Engine.MaxClockJump)
	if e.jumpVotes == 0 || t < e.jumpAt-jump || t > e.jumpAt+jump {
		e.jumpAt, e.jumpVotes = t, 0
	}
	e.jumpVotes++
	if e.jumpVotes < e.cfg.Engine.ClockJumpConfirmations {
		return false
	}
	e.jumpVotes = 0
	return true
}

// groupOf returns the peer group of role, or nil once maxGroups exist and
// role is not one of them (the entity is then judged on the population).
func (e *Engine) groupOf(role string) *group {
	g, ok := e.groups[role]
	if !ok && len(e.groups) < maxGroups {
		g = newGroup(len(e.horizons))
		e.groups[role] = g
	}
	return g
}

// observe updates one entity with the event and runs its detectors.
func (e *Engine) observe(ent *Entity, x *eventFacts) {
	ev := x.ev
	t := ev.Time

	// An entity silent for longer than the TTL is forgotten: it starts
	// afresh, as it would had its state been deleted already, so that
	// what is computed does not depend on when memory and store are
	// swept. Its old peer-group and population memberships stay counted,
	// as they do for an entity created again after its state was deleted.
	if t-ent.last > e.ttl {
		e.start(ent, ent.kind, ent.hash, ent.key, t)
		e.storeStats.Forgotten++
	}
	if !ent.dirty {
		ent.dirty = true
		e.dirty = append(e.dirty, ent)
	}

	cfg := e.profileOf(ent).det
	// Dormancy is judged on the gap before this event, so before last moves.
	if cfg.Dormant.Enabled && (ent.kind == KindPrincipal || ent.kind == KindCredential) && t-ent.last >= int64(cfg.Dormant.DormantFor) && e.dormantEligible(ent) && !e.warm {
		ent.revived = novelty{since: t, gap: t - ent.last, thr: float64(cfg.Dormant.MinRows)}
	}
	if t > ent.last {
		ent.last = t
	}
	if ent.kind == KindPrincipal && ev.Role != "" && ev.Role != ent.role {
		if ent.group != nil {
			ent.group.members--
		}
		ent.role = ev.Role
		if ent.group = e.groupOf(ev.Role); ent.group != nil {
			ent.group.members++
		}
		ent.prof = nil // an override may match by role
	}

	e.roll(ent, &x.bucket)

	// Enumeration: how many of this event's numeric ids continue a run in
	// this entity's recent ids.
	var ids, seq uint32
	for _, n := range ev.RecordNums {
		ids++
		for j := uint8(0); j < ent.recentN; j++ {
			if r := ent.recentIDs[j]; r == n+1 || r+1 == n {
				seq++
				break
			}
		}
		if int(ent.recentN) < len(ent.recentIDs) {
			ent.recentIDs[ent.recentN] = n
			ent.recentN++
		} else {
			copy(ent.recentIDs[:], ent.recentIDs[1:])
			ent.recentIDs[len(ent.recentIDs)-1] = n
		}
	}

	if x.rowless {
		ent.rowless = true
	}
	rows := uint64(max(x.rows, 0))
	sens := uint64(max(x.sensRows, 0))
	denied := ev.Status != event.StatusOK
	// side[hi] is where the event lands in horizon hi: 1 the current
	// bucket, 2 the previous one, 0 neither (older than the horizon keeps,
	// possible only across an idle gap).
	var side [config.MaxHorizons]uint8
	for hi := range e.horizons {
		w := &ent.win[hi]
		width := e.horizons[hi]
		var bk *bucket
		switch x.bucket[hi] {
		case w.start:
			bk, side[hi] = &w.cur, 1
		case w.start - width:
			bk, side[hi] = &w.prev, 2
		default:
			continue
		}
		bk.rows += rows
		bk.sensitive += sens
		bk.requests++
		if denied {
			bk.denied++
		}
		bk.ids += ids
		bk.seq += seq
	}
	// Buckets nest (horizons are multiples of each other), so a hash that
	// does not change a shorter horizon's sketch cannot change a longer
	// one's: each cascade stops at the first horizon it leaves unchanged.
	// A customer seen again, or a principal behind a network seen again,
	// costs one Add instead of one per horizon.
	// The depths (one past the longest horizon whose sketch changed) also
	// bound where a distinct count can have crossed a threshold.
	var recDepth, prinDepth, objDepth int
	for _, h := range ev.RecordIDs {
		for hi := range e.horizons {
			if side[hi] == 0 {
				continue
			}
			if !ent.hist[hi].records.side(side[hi] == 2).AddWith(h, e.pool) {
				break
			}
			recDepth = max(recDepth, hi+1)
		}
	}
	if ent.prin != nil {
		for hi := range ent.prin {
			if side[hi] == 0 {
				continue
			}
			if !ent.prin[hi].side(side[hi] == 2).AddWith(x.prinHash, e.pool) {
				break
			}
			prinDepth = max(prinDepth, hi+1)
		}
	}
	// The object an entity touched last, in the same shortest bucket, is
	// already in every current bucket (longer ones contain the shortest):
	// the common case of a service or a person working on one table costs
	// one comparison.
	if x.objHash != 0 && (x.objHash != ent.lastObj || x.bucket[0] != ent.lastObjAt) {
		ent.lastObj, ent.lastObjAt = x.objHash, x.bucket[0]
		for hi := range e.horizons {
			if side[hi] == 0 {
				continue
			}
			if !ent.hist[hi].objects.side(side[hi] == 2).AddWith(x.objHash, e.pool) {
				break
			}
			objDepth = max(objDepth, hi+1)
		}
	}

	if ent.kind != KindPrincipal {
		// Weighted by customer data, not all rows: the analyst behind a
		// network's customer reads must not be hidden by a colleague's
		// big reports.
		offer(&ent.topPrincipal, ev.Principal, x.prinHash, float64(sens)+float64(len(ev.RecordIDs))+0.01, ev.PrincipalType)
	} else if ev.PrincipalType != event.PrincipalUnknown {
		ent.ptype = ev.PrincipalType
	}
	if x.sensitive {
		offer(&ent.topObject, ev.Object, x.objHash, float64(sens)+1, 0)
	}

	if x.primary {
		e.checkBulk(ent, x)
		e.checkFirstObject(ent, x)
		e.checkOffHours(ent, x)
	}
	if ent.kind == KindPrincipal || ent.kind == KindCredential {
		e.checkNewSource(ent, x)
		e.checkDormant(ent, x)
	}
	var tm touched
	if rows > 0 {
		tm |= 1 << mRows
	}
	if sens > 0 {
		tm |= 1 << mSensitive
	}
	if denied {
		tm |= 1 << mDenied
	}
	e.checkWindows(ent, t, tm, recDepth, prinDepth, objDepth)
	e.checkLowAndSlow(ent, t)
}

// floorTo is the start of the bucket of width w holding t.
func floorTo(t, w int64) int64 {
	r := t % w
	if r < 0 {
		r += w
	}
	return t - r
}

// roll advances every window of ent to the bucket holding t, closing the
// buckets it leaves.
//
// Every window was last rolled to the buckets of the entity's newest
// event, and buckets nest, so when the shortest window need not move
// (most events: the entity's minute is not over) no window need: a
// longer bucket holding t is the one holding its shortest bucket.
func (e *Engine) roll(ent *Entity, starts *[config.MaxHorizons]int64) {
	if w := &ent.win[0]; w.start != 0 && starts[0] <= w.start {
		return
	}
	hourRolled := false
	for hi := range e.horizons {
		w := &ent.win[hi]
		width := e.horizons[hi]
		b := starts[hi]
		if w.start == 0 {
			w.start = b
			e.open(ent, hi)
			continue
		}
		if b <= w.start {
			continue
		}
		e.close(ent, hi)
		var prin *pair
		if ent.prin != nil {
			prin = &ent.prin[hi]
		}
		if b == w.start+width {
			w.prev = w.cur
			ent.hist[hi].records.rotate(e.pool)
			ent.hist[hi].objects.rotate(e.pool)
			if prin != nil {
				prin.rotate(e.pool)
			}
		} else {
			w.prev = bucket{}
			ent.hist[hi].records.reset(e.pool)
			ent.hist[hi].objects.reset(e.pool)
			if prin != nil {
				prin.reset(e.pool)
			}
		}
		w.cur = bucket{}
		w.start = b
		w.anomalous = false
		w.fired = 0
		e.open(ent, hi)
		if hi == e.hourIdx {
			hourRolled = true
		}
	}
	// Baselines learn as short buckets close; the long buckets opened days
	// ago must see it, or a 7d threshold set on day one holds a week.
	if hourRolled {
		for hi := e.hourIdx + 1; hi < len(e.horizons); hi++ {
			e.thresholds(ent, hi)
		}
	}
}

// close ends the current bucket of horizon hi: an active bucket that was
// not judged anomalous (or any during warm-up) feeds the entity's, its
// peers' and its population's baselines.
func (e *Engine) close(ent *Entity, hi int) {
	w, h := &ent.win[hi], &ent.hist[hi]
	if hi == e.dayIdx {
		e.closeDay(ent, w, h)
	}
	if w.cur.requests == 0 {
		return
	}
	var prin *pair
	if ent.prin != nil {
		prin = &ent.prin[hi]
	}
	if hi == e.hourIdx {
		e.closeHour(ent, w, h)
	}
	// A bucket that began in the warm-up feeds whatever it was judged:
	// nothing had been learned to judge it by.
	if w.anomalous && w.start >= e.first+e.warmup {
		return
	}
	bc := &e.cfg.Baseline
	var pop, peer *[numMeasures]ewma
	if g := e.pop[ent.kind]; sampled(g, ent.hash, w.start) {
		pop = &g.base[hi]
	}
	if g := ent.group; g != nil && sampled(g, ent.hash, w.start) {
		peer = &g.base[hi]
	}
	if ent.group != nil {
		ent.group.decayPeaks(w.start / dayNs)
	}
	vals := w.closedValues(h, prin)
	for m, v := range vals {
		if m == mPrincipals && prin == nil {
			continue
		}
		lv := log1p(v) // once for the three baselines
		h.peak[m] = max(h.peak[m], float32(v))
		if ent.group != nil {
			ent.group.peak[hi][m] = max(ent.group.peak[hi][m], float32(v))
		}
		// While a slow leak is suspected, the daily sensitive baseline is
		// frozen: the leak must not teach the detector that it is normal.
		if !(hi == e.dayIdx && m == mSensitive && ent.cusum > 0) {
			h.base[m].addLog(lv, bc.Memory, e.invMemory)
		}
		if pop != nil {
			pop[m].addLog(lv, bc.GroupMemory, e.invGroupMemory)
		}
		if peer != nil {
			peer[m].addLog(lv, bc.GroupMemory, e.invGroupMemory)
		}
	}
}

// groupSample is the number of members whose windows a group baseline
// needs: its memory is a few thousand windows, so beyond this a
// deterministic sample of members' windows says the same at a fraction of
// the cost (the population of customer accounts has millions).
const groupSample = 512

// sampled reports whether the window of entity h starting at start feeds
// group g's baselines; the choice is a hash, so replays agree.
func sampled(g *group, h uint64, start int64) bool {
	if g.members <= groupSample {
		return true
	}
	return mix(h^uint64(start))%uint64(g.members) < groupSample
}

// closeHour updates the hour-of-week profiles with a closed active hour.
func (e *Engine) closeHour(ent *Entity, w *window, h *history) {
	if !e.cfg.Baseline.Rhythm && !e.profileOf(ent).det.OffHours.Enabled {
		return
	}
	s := slotOf(w.start)
	if ent.rhythm == nil {
		ent.rhythm = &rhythm{}
	}
	diff := 0.0
	if b := &h.base[mRequests]; b.n > 0 {
		diff = log1p(float64(w.cur.requests)) - float64(b.mu)
	}
	ent.rhythm.observe(s, diff)
	if g := ent.group; g != nil {
		g.hours[s]++
		g.memberHours++
	}
}

// closeDay runs the daily bookkeeping: active days, the low-and-slow CUSUM
// and the decay of learned maxima.
func (e *Engine) closeDay(ent *Entity, w *window, h *history) {
	decayHeavy(&ent.topPrincipal)
	decayHeavy(&ent.topObject)
	ent.maxRequest *= peakDecay
	for hi := range e.horizons {
		for m := range ent.hist[hi].peak {
			ent.hist[hi].peak[m] *= peakDecay
		}
	}
	if w.cur.requests == 0 {
		return
	}
	ent.activeDays++
	ls := &e.profileOf(ent).det.LowAndSlow
	// A day a detector already flagged is explained; only days that
	// passed unremarked may add up to a slow leak.
	if !ls.Enabled || e.warm || w.anomalous {
		return
	}
	b := &h.base[mSensitive]
	if b.n < 5 {
		return // not enough days of its own to know what a normal day is
	}
	x := float64(w.cur.sensitive)
	dev := max(float64(b.dev), e.cfg.Baseline.MinDeviation)
	z := (math.Log1p(x) - float64(b.mu)) / dev
	ent.cusum = max(0, ent.cusum+z-ls.Slack)
	if ent.cusum > 0 {
		ent.excess += max(0, x-math.Expm1(float64(b.mu)))
		ent.suspectDays++
	} else {
		ent.excess, ent.suspectDays = 0, 0
	}
}

// open fixes the thresholds of a new current bucket of horizon hi from
// the baselines as they stand.
func (e *Engine) open(ent *Entity, hi int) {
	w := &ent.win[hi]
	slot := slotOf(w.start)
	e.thresholds(ent, hi)
	w.enumThr = e.defaultEnumThr(ent, hi)
	if hi == e.hourIdx {
		ent.offThr = e.offHoursThreshold(ent, slot)
	}
	if hi == e.dayIdx {
		ent.lsThr = e.lowAndSlowThreshold(ent, &ent.hist[hi])
	}
}

// thresholds resets the spike thresholds of the current bucket of horizon
// hi to their cheap lower bound, the detector's absolute minimum: nothing
// can fire below it, and most entities never reach it, so the baseline is
// consulted (exactThreshold) only for the few that do. A measure that
// already fired keeps its raised threshold.
func (e *Engine) thresholds(ent *Entity, hi int) {
	w := &ent.win[hi]
	w.exact = 0
	p := e.profileOf(ent)
	judged := p.judged&(1<<hi) != 0
	for m := 0; m < numMeasures; m++ {
		sp := p.spikes[m]
		switch {
		case sp == nil || !judged || (m == mPrincipals && ent.prin == nil):
			w.thr[m] = never
		case w.fired&(1<<m) == 0:
			w.thr[m] = float32(sp.Min)
		}
	}
}

// exactThreshold sets the threshold of measure m from the baselines as
// they stand.
func (e *Engine) exactThreshold(ent *Entity, hi, m int) {
	w := &ent.win[hi]
	sp := e.profileOf(ent).spikes[m]
	x := e.expect(ent, hi, m, slotOf(w.start))
	thr := float32(min(never, max(sp.Min, sp.Ratio*math.Expm1(x.mu), math.Expm1(x.mu+sp.K*x.dev), e.cfg.Baseline.PeakMargin*e.peakOf(ent, hi, m))))
	if w.fired&(1<<m) != 0 {
		thr = max(thr, w.thr[m])
	}
	w.thr[m] = thr
	w.exact |= 1 << m
}

// expect is the baseline of measure m at horizon hi for ent in slot.
func (e *Engine) expect(ent *Entity, hi, m, slot int) expectation {
	var peer *ewma
	if ent.group != nil {
		peer = &ent.group.base[hi][m]
	}
	own, pop := &ent.hist[hi].base[m], &e.pop[ent.kind].base[hi][m]
	if hi > 0 && own.n == 0 && pop.n == 0 && (peer == nil || peer.n == 0) {
		// Nothing has lived through a whole bucket of this horizon yet (the
		// first week of a 7d horizon): extrapolate the next shorter one,
		// which overestimates bursty activity and so errs on the quiet side.
		x := e.expect(ent, hi-1, m, slot)
		x.mu += math.Log(float64(e.horizons[hi]) / float64(e.horizons[hi-1]))
		return x
	}
	// Priors are per hour; a window of h hours expects h times as much.
	prior := e.prior[m] * float64(e.horizons[hi]) / float64(hourNs)
	x := e.blend(own, peer, pop, prior)
	if e.cfg.Baseline.Rhythm && ent.rhythm != nil && e.horizons[hi] <= hourNs && ent.historyCovers(weekNs) {
		x.mu = max(0, x.mu+ent.rhythm.offset(slot, e.cfg.Baseline.RhythmCredibility))
	}
	return x
}

// peakOf is the largest bucket of measure m at horizon hi learned as
// normal for ent or its peers.
func (e *Engine) peakOf(ent *Entity, hi, m int) float64 {
	p := float64(ent.hist[hi].peak[m])
	if g := ent.group; g != nil {
		p = max(p, float64(g.peak[hi][m]))
	}
	return p
}

// weeks is the length of the entity's history in weeks.
func (ent *Entity) weeks() float64 { return float64(ent.last-ent.first) / float64(weekNs) }

func (e *Engine) dormantEligible(ent *Entity) bool {
	d := &e.profileOf(ent).det.Dormant
	if !ent.historyCovers(int64(d.MinHistory)) {
		return false
	}
	days := float64(ent.last-ent.first) / float64(dayNs)
	return float64(ent.activeDays) >= d.MinActiveShare*days
}

// rowsUnknown is what an access counts for when its source reports no row
// count (MariaDB's audit plugin, some API gateways): unknown is not zero,
// or a dump through such a source would count as nothing. A data access
// counts as its record ids when it names them, else as one request, so
// the volume detectors judge request counts for that source; the entity
// is marked and its alerts say so.
func rowsUnknown(ev *event.Event) (int64, bool) {
	return max(int64(ev.RecordCount), 1), true
}

// readsOut reports whether an action can carry data out: reads, exports,
// and actions the source did not name (counted, to be safe).
func readsOut(a event.Action) bool {
	return a == event.ActionRead || a == event.ActionExport || a == event.ActionOther
}
