package models

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
)

// The state encoding: what a checkpoint writes, per entity and for the
// engine as a whole, and what a later run (possibly of a newer binary)
// reads back.
//
// A blob is a format version byte (stateVersion) followed by sections,
// each a tag (uvarint), a payload length (uvarint) and the payload. A
// decoder skips tags it does not know and leaves the state of a missing
// section at its default (a fresh entity, an empty group), so a later
// version may add sections, and drop them, without a new format version.
// A section's own layout never changes: a new field goes into a new
// section. Within a payload, integers are uvarints (signed ones zigzag
// varints), floats their IEEE bits little-endian (float32 as float32, so
// they come back bit for bit), hashes 8 bytes little-endian, strings and
// sketches a uvarint length and their bytes (sketches in their own
// versioned encoding). Fields that are usually zero or at their default
// are left out behind a presence mask, so a customer seen twice costs a
// few hundred bytes rather than kilobytes.
//
// Decoding checks every length and count against the bytes that remain,
// so corrupt input fails with an error instead of panicking or allocating
// beyond its own size.
const stateVersion = 1

// Entity sections.
const (
	secCore    = 1 // kind, key, times, scalars, role
	secWindows = 2 // per-horizon buckets, thresholds and flags
	secHistory = 3 // per-horizon baselines, peaks, record and object sketches
	secPrin    = 4 // per-horizon distinct-principal sketches (non-principals)
	secHeavy   = 5 // heavy hitters
	secKnown   = 6 // known sources and sensitive objects
	secNovelty = 7 // new-source, new-object and dormancy watches
	secRhythm  = 8 // hour-of-week profile; present iff the entity has one
	numEntSecs = 9
)

// Engine sections.
const (
	secClock      = 1 // watermark, first event, clock-jump votes
	secStats      = 2
	secHorizons   = 3 // the horizons the state was kept for
	secPopulation = 4 // one per entity kind: kind, group
	secGroup      = 5 // one per peer group: role, group
	numEngSecs    = 6
)

// Group sections.
const (
	secGroupBase    = 1
	secGroupPeak    = 2
	secGroupMisc    = 3 // peak day, member hours, largest request, members
	secGroupHours   = 4
	secGroupObjects = 5
	numGroupSecs    = 6
)

var errCorrupt = errors.New("corrupt state")

// enc appends an encoding to b.
type enc struct{ b []byte }

func (w *enc) uv(x uint64)  { w.b = binary.AppendUvarint(w.b, x) }
func (w *enc) iv(x int64)   { w.b = binary.AppendVarint(w.b, x) }
func (w *enc) u64(x uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, x) }
func (w *enc) f32(x float32) {
	w.b = binary.LittleEndian.AppendUint32(w.b, math.Float32bits(x))
}
func (w *enc) f64(x float64) { w.u64(math.Float64bits(x)) }
func (w *enc) str(s string) {
	w.uv(uint64(len(s)))
	w.b = append(w.b, s...)
}

// begin starts section tag and returns where its payload starts; end
// writes the payload's length in front of it. One byte is reserved for the
// length, the usual case; a longer payload is moved to make room.
func (w *enc) begin(tag uint64) int {
	w.uv(tag)
	w.b = append(w.b, 0)
	return len(w.b)
}

func (w *enc) end(start int) {
	n := len(w.b) - start
	if n < 0x80 {
		w.b[start-1] = byte(n)
		return
	}
	var tmp [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(tmp[:], uint64(n))
	w.b = append(w.b, tmp[:k-1]...)
	copy(w.b[start-1+k:], w.b[start:start+n])
	copy(w.b[start-1:], tmp[:k])
}

// dec reads an encoding. The first problem sticks: later reads return
// zeros, and err says what was wrong.
type dec struct {
	b   []byte
	err error
}

func (r *dec) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errCorrupt, what)
	}
	r.b = nil
}

func (r *dec) uv() uint64 {
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *dec) iv() int64 {
	x, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *dec) u64() uint64 {
	if len(r.b) < 8 {
		r.fail("truncated")
		return 0
	}
	x := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return x
}

func (r *dec) f32() float32 {
	if len(r.b) < 4 {
		r.fail("truncated")
		return 0
	}
	x := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return math.Float32frombits(x)
}

func (r *dec) f64() float64 { return math.Float64frombits(r.u64()) }

// small reads a uvarint that must be at most max.
func (r *dec) small(max uint64, what string) uint64 {
	x := r.uv()
	if x > max {
		r.fail(what + " out of range")
		return 0
	}
	return x
}

// count reads a count of items each taking at least size bytes, which
// must fit in what remains (so that no count allocates beyond the input)
// and not exceed max.
func (r *dec) count(size, max int, what string) int {
	n := r.uv()
	if n > uint64(max) || n > uint64(len(r.b)/size) {
		r.fail("bad " + what + " count")
		return 0
	}
	return int(n)
}

func (r *dec) bytes() []byte {
	n := r.uv()
	if n > uint64(len(r.b)) {
		r.fail("truncated")
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *dec) str() string { return string(r.bytes()) }

// done fails unless the payload was read to its end.
func (r *dec) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	return r.err
}

// sections splits a blob's body into its sections by tag, the known ones
// (tags below len(out)) into out, where a repeated tag keeps its last
// payload; each calls each for every section in order instead when not
// nil (for repeated sections). Unknown tags are skipped.
func sections(b []byte, out [][]byte, each func(tag uint64, p []byte) error) error {
	r := dec{b: b}
	for len(r.b) > 0 {
		tag := r.uv()
		p := r.bytes()
		if r.err != nil {
			return r.err
		}
		if each != nil {
			if err := each(tag, p); err != nil {
				return err
			}
			continue
		}
		if tag < uint64(len(out)) {
			out[tag] = p
		}
	}
	return nil
}

// checkVersion returns the body of a blob of the supported version.
func checkVersion(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", errCorrupt)
	}
	if b[0] != stateVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", errCorrupt, b[0])
	}
	return b[1:], nil
}

// nameHash is the hash offer is given with a name: heavy hitters store
// names, not hashes.
func nameHash(name string) uint64 {
	if name == "" {
		return 0
	}
	return xxhash.Sum64String(name)
}

// zigzag maps a signed delta to an unsigned one.
func zigzag(x int64) uint64   { return uint64(x<<1) ^ uint64(x>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// defaultThr is the threshold of measure m that thresholds() sets before
// any baseline is consulted; only thresholds that differ are stored.
func (e *Engine) defaultThr(ent *Entity, hi, m int) float32 {
	p := e.profileOf(ent)
	if sp := p.spikes[m]; sp != nil && p.judged&(1<<hi) != 0 && !(m == mPrincipals && ent.prin == nil) {
		return float32(sp.Min)
	}
	return never
}

// defaultEnumThr is the enumeration threshold of a new bucket of horizon hi.
func (e *Engine) defaultEnumThr(ent *Entity, hi int) float32 {
	p := e.profileOf(ent)
	if en := &p.det.Enumeration; en.Enabled && p.judged&(1<<hi) != 0 {
		return float32(en.MinIDs)
	}
	return never
}

// Core scalar presence bits.
const (
	coreOffThr = 1 << iota
	coreLsThr
	coreCusum
	coreExcess
	coreMaxRequest
	coreLastObj
)

// Window flag bits; the threshold mask, fired and exact follow.
const (
	winAnomalous = 1 << iota
	winEnumThr
	winThrShift   = 2
	winFiredShift = 10
	winExactShift = 18
)

// appendEntity appends the encoding of ent to b.
func (e *Engine) appendEntity(b []byte, ent *Entity) []byte {
	w := enc{b: append(b, stateVersion)}

	s := w.begin(secCore)
	w.uv(uint64(ent.kind))
	w.uv(uint64(ent.ptype))
	w.str(ent.key)
	w.iv(ent.first)
	w.iv(ent.last - ent.first)
	w.uv(uint64(ent.activeDays))
	w.uv(uint64(ent.suspectDays))
	w.uv(uint64(ent.recentN))
	for _, id := range ent.recentIDs[:min(int(ent.recentN), len(ent.recentIDs))] {
		w.uv(id)
	}
	var mask uint64
	if ent.offThr != never {
		mask |= coreOffThr
	}
	if ent.lsThr != never {
		mask |= coreLsThr
	}
	if ent.cusum != 0 {
		mask |= coreCusum
	}
	if ent.excess != 0 {
		mask |= coreExcess
	}
	if ent.maxRequest != 0 {
		mask |= coreMaxRequest
	}
	if ent.lastObj != 0 || ent.lastObjAt != 0 {
		mask |= coreLastObj
	}
	w.uv(mask)
	if mask&coreOffThr != 0 {
		w.f64(ent.offThr)
	}
	if mask&coreLsThr != 0 {
		w.f64(ent.lsThr)
	}
	if mask&coreCusum != 0 {
		w.f64(ent.cusum)
	}
	if mask&coreExcess != 0 {
		w.f64(ent.excess)
	}
	if mask&coreMaxRequest != 0 {
		w.f64(ent.maxRequest)
	}
	if mask&coreLastObj != 0 {
		w.u64(ent.lastObj)
		w.iv(ent.last - ent.lastObjAt)
	}
	w.str(ent.role)
	w.end(s)

	s = w.begin(secWindows)
	w.uv(uint64(len(ent.win)))
	for hi := range ent.win {
		e.appendWindow(&w, ent, hi)
	}
	w.end(s)

	s = w.begin(secHistory)
	w.uv(uint64(len(ent.hist)))
	for hi := range ent.hist {
		h := &ent.hist[hi]
		sk := [4]*pair{&h.records, &h.records, &h.objects, &h.objects}
		var skMask uint64
		for i, p := range sk {
			if p.side(i%2 == 1).Estimate() != 0 {
				skMask |= 1 << i
			}
		}
		w.uv(skMask)
		appendEwmas(&w, &h.base)
		appendPeaks(&w, &h.peak)
		for i, p := range sk {
			if skMask&(1<<i) != 0 {
				appendSketch(&w, p, i%2 == 1)
			}
		}
	}
	w.end(s)

	if ent.prin != nil && slices.ContainsFunc(ent.prin, func(p pair) bool { return p.cur.Estimate() != 0 || p.prev.Estimate() != 0 }) {
		s = w.begin(secPrin)
		w.uv(uint64(len(ent.prin)))
		for i := range ent.prin {
			p := &ent.prin[i]
			var m uint64
			if p.cur.Estimate() != 0 {
				m |= 1
			}
			if p.prev.Estimate() != 0 {
				m |= 2
			}
			w.uv(m)
			if m&1 != 0 {
				appendSketch(&w, p, false)
			}
			if m&2 != 0 {
				appendSketch(&w, p, true)
			}
		}
		w.end(s)
	}

	heavies := [4]*heavy{&ent.topPrincipal[0], &ent.topPrincipal[1], &ent.topObject[0], &ent.topObject[1]}
	mask = 0
	for i, hv := range heavies {
		if *hv != (heavy{}) {
			mask |= 1 << i
		}
	}
	if mask != 0 {
		s = w.begin(secHeavy)
		w.uv(mask)
		for i, hv := range heavies {
			if mask&(1<<i) != 0 {
				// The hash is the name's (see offer) and is not stored.
				w.str(hv.name)
				w.f64(hv.n)
				w.uv(uint64(hv.ptype))
			}
		}
		w.end(s)
	}

	if len(ent.knownSrc) > 0 || len(ent.knownObj) > 0 {
		s = w.begin(secKnown)
		for _, set := range [2][]uint64{ent.knownSrc, ent.knownObj} {
			w.uv(uint64(len(set)))
			for _, h := range set {
				w.u64(h)
			}
		}
		w.end(s)
	}

	novs := [3]*novelty{&ent.newSrc, &ent.newObj, &ent.revived}
	mask = 0
	for i, n := range novs {
		if *n != (novelty{}) {
			mask |= 1 << i
		}
	}
	if mask != 0 {
		s = w.begin(secNovelty)
		w.uv(mask)
		for i, n := range novs {
			if mask&(1<<i) != 0 {
				w.u64(n.hash)
				w.iv(ent.last - n.since)
				w.iv(n.gap)
				w.f64(n.rows)
				w.f64(n.thr)
				w.uv(uint64(n.basis))
			}
		}
		w.end(s)
	}

	if r := ent.rhythm; r != nil {
		s = w.begin(secRhythm)
		n := 0
		for i := range r.active {
			if r.active[i] != 0 || r.level[i] != 0 {
				n++
			}
		}
		w.uv(uint64(n))
		prev := 0
		for i := range r.active {
			if r.active[i] != 0 || r.level[i] != 0 {
				w.uv(uint64(i - prev))
				w.b = append(w.b, r.active[i], byte(r.level[i]))
				prev = i
			}
		}
		w.end(s)
	}
	return w.b
}

// appendWindow encodes window hi of ent. Its start is said in buckets
// from the one holding the entity's newest event (usually 0 buckets: it
// is that bucket), the thresholds only where they differ from what
// thresholds() would set.
func (e *Engine) appendWindow(w *enc, ent *Entity, hi int) {
	win := &ent.win[hi]
	width := e.horizons[hi]
	// Horizons are at least a second, so a count of them fits in 62 bits.
	if d := win.start - floorTo(ent.last, width); d%width == 0 {
		w.uv(zigzag(d/width) << 1)
	} else {
		w.uv(1)
		w.iv(d)
	}
	var thrMask uint64
	for m := range win.thr {
		if math.Float32bits(win.thr[m]) != math.Float32bits(e.defaultThr(ent, hi, m)) {
			thrMask |= 1 << m
		}
	}
	flags := thrMask<<winThrShift | uint64(win.fired)<<winFiredShift | uint64(win.exact)<<winExactShift
	if win.anomalous {
		flags |= winAnomalous
	}
	enumOwn := math.Float32bits(win.enumThr) != math.Float32bits(e.defaultEnumThr(ent, hi))
	if enumOwn {
		flags |= winEnumThr
	}
	w.uv(flags)
	if enumOwn {
		w.f32(win.enumThr)
	}
	for m := range win.thr {
		if thrMask&(1<<m) != 0 {
			w.f32(win.thr[m])
		}
	}
	var vals [14]uint64
	for i, bk := range [2]*bucket{&win.cur, &win.prev} {
		copy(vals[i*7:], []uint64{bk.rows, bk.sensitive, uint64(bk.requests), uint64(bk.denied), uint64(bk.ids), uint64(bk.seq), uint64(bk.newSources)})
	}
	var bm uint64
	for i, v := range vals {
		if v != 0 {
			bm |= 1 << i
		}
	}
	w.uv(bm)
	for _, v := range vals {
		if v != 0 {
			w.uv(v)
		}
	}
}

// appendEwmas encodes one horizon's baselines: masks of the non-zero
// counts, means and spreads, then those values.
func appendEwmas(w *enc, base *[numMeasures]ewma) {
	var nm, mm, dm uint64
	for m := range base {
		if base[m].n != 0 {
			nm |= 1 << m
		}
		if math.Float32bits(base[m].mu) != 0 {
			mm |= 1 << m
		}
		if math.Float32bits(base[m].dev) != 0 {
			dm |= 1 << m
		}
	}
	w.uv(nm | mm<<numMeasures | dm<<(2*numMeasures))
	for m := range base {
		if nm&(1<<m) != 0 {
			w.uv(uint64(base[m].n))
		}
		if mm&(1<<m) != 0 {
			w.f32(base[m].mu)
		}
		if dm&(1<<m) != 0 {
			w.f32(base[m].dev)
		}
	}
}

func appendPeaks(w *enc, peak *[numMeasures]float32) {
	var pm uint64
	for m := range peak {
		if math.Float32bits(peak[m]) != 0 {
			pm |= 1 << m
		}
	}
	w.uv(pm)
	for m := range peak {
		if pm&(1<<m) != 0 {
			w.f32(peak[m])
		}
	}
}

func appendSketch(w *enc, p *pair, prev bool) {
	at := len(w.b)
	w.b = append(w.b, 0)
	w.b = p.side(prev).AppendBinary(w.b)
	// Sketch encodings are short (at most 779 bytes): the length fits in
	// two bytes, and the one reserved byte is usually enough.
	n := len(w.b) - at - 1
	if n < 0x80 {
		w.b[at] = byte(n)
		return
	}
	w.b = append(w.b, 0)
	copy(w.b[at+2:], w.b[at+1:at+1+n])
	binary.PutUvarint(w.b[at:at+2], uint64(n))
}

// decodeEntity decodes the entity of hash h from data. Its peer group is
// resolved from its role without counting it again: it was counted when
// it joined, before it was stored.
func (e *Engine) decodeEntity(h uint64, data []byte) (*Entity, error) {
	body, err := checkVersion(data)
	if err != nil {
		return nil, err
	}
	var secs [numEntSecs][]byte
	if err := sections(body, secs[:], nil); err != nil {
		return nil, err
	}
	if secs[secCore] == nil {
		return nil, fmt.Errorf("%w: no core section", errCorrupt)
	}
	nh := len(e.horizons)
	ent := &Entity{hash: h, lsThr: never, offThr: never, win: make([]window, nh), hist: make([]history, nh)}

	r := dec{b: secs[secCore]}
	kind := Kind(r.small(uint64(numKinds-1), "kind"))
	ent.kind = kind
	ent.ptype = event.PrincipalType(r.small(math.MaxUint8, "principal type"))
	ent.key = r.str()
	ent.first = r.iv()
	ent.last = ent.first + r.iv()
	ent.activeDays = uint32(r.small(math.MaxUint32, "active days"))
	ent.suspectDays = uint16(r.small(math.MaxUint16, "suspect days"))
	ent.recentN = uint8(r.small(uint64(len(ent.recentIDs)), "recent ids"))
	for i := range ent.recentN {
		ent.recentIDs[i] = r.uv()
	}
	mask := r.uv()
	if mask&coreOffThr != 0 {
		ent.offThr = r.f64()
	}
	if mask&coreLsThr != 0 {
		ent.lsThr = r.f64()
	}
	if mask&coreCusum != 0 {
		ent.cusum = r.f64()
	}
	if mask&coreExcess != 0 {
		ent.excess = r.f64()
	}
	if mask&coreMaxRequest != 0 {
		ent.maxRequest = r.f64()
	}
	if mask&coreLastObj != 0 {
		ent.lastObj = r.u64()
		ent.lastObjAt = ent.last - r.iv()
	}
	ent.role = r.str()
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("entity core: %w", err)
	}
	if kind != KindPrincipal {
		ent.prin = make([]pair, nh)
	}
	if ent.role != "" {
		ent.group = e.groups[ent.role]
	}
	for hi := range ent.win {
		ent.win[hi].enumThr = e.defaultEnumThr(ent, hi)
		for m := range ent.win[hi].thr {
			ent.win[hi].thr[m] = e.defaultThr(ent, hi, m)
		}
	}

	if p := secs[secWindows]; p != nil {
		r := dec{b: p}
		if r.uv() != uint64(nh) {
			return nil, fmt.Errorf("%w: windows for other horizons", errCorrupt)
		}
		for hi := range ent.win {
			e.decodeWindow(&r, ent, hi)
		}
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("entity windows: %w", err)
		}
	}

	if p := secs[secHistory]; p != nil {
		r := dec{b: p}
		if r.uv() != uint64(nh) {
			return nil, fmt.Errorf("%w: history for other horizons", errCorrupt)
		}
		for hi := range ent.hist {
			h := &ent.hist[hi]
			skMask := r.small(15, "sketch mask")
			decodeEwmas(&r, &h.base)
			decodePeaks(&r, &h.peak)
			for i, p := range [4]*pair{&h.records, &h.records, &h.objects, &h.objects} {
				if skMask&(1<<i) != 0 {
					decodeSketch(&r, p, i%2 == 1)
				}
			}
		}
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("entity history: %w", err)
		}
	}

	if p := secs[secPrin]; p != nil && ent.prin != nil {
		r := dec{b: p}
		if r.uv() != uint64(nh) {
			return nil, fmt.Errorf("%w: principal sketches for other horizons", errCorrupt)
		}
		for i := range ent.prin {
			m := r.small(3, "sketch mask")
			if m&1 != 0 {
				decodeSketch(&r, &ent.prin[i], false)
			}
			if m&2 != 0 {
				decodeSketch(&r, &ent.prin[i], true)
			}
		}
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("entity principals: %w", err)
		}
	}

	if p := secs[secHeavy]; p != nil {
		r := dec{b: p}
		mask := r.small(15, "heavy mask")
		for i, hv := range [4]*heavy{&ent.topPrincipal[0], &ent.topPrincipal[1], &ent.topObject[0], &ent.topObject[1]} {
			if mask&(1<<i) != 0 {
				hv.name = r.str()
				hv.hash = nameHash(hv.name)
				hv.n = r.f64()
				hv.ptype = event.PrincipalType(r.small(math.MaxUint8, "principal type"))
			}
		}
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("entity heavy hitters: %w", err)
		}
	}

	if p := secs[secKnown]; p != nil {
		r := dec{b: p}
		for i, set := range [2]*[]uint64{&ent.knownSrc, &ent.knownObj} {
			n := r.count(8, math.MaxInt32, "known")
			if n > 0 {
				*set = make([]uint64, n)
				for j := range *set {
					(*set)[j] = r.u64()
				}
			}
			// A config that now remembers fewer keeps the most recent.
			limit := e.cfg.Engine.MaxKnownSources
			if i == 1 {
				limit = e.cfg.Engine.MaxKnownObjects
			}
			if len(*set) > limit {
				*set = slices.Clone((*set)[len(*set)-limit:])
			}
		}
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("entity known sets: %w", err)
		}
	}

	if p := secs[secNovelty]; p != nil {
		r := dec{b: p}
		mask := r.small(7, "novelty mask")
		for i, n := range [3]*novelty{&ent.newSrc, &ent.newObj, &ent.revived} {
			if mask&(1<<i) != 0 {
				n.hash = r.u64()
				n.since = ent.last - r.iv()
				n.gap = r.iv()
				n.rows = r.f64()
				n.thr = r.f64()
				n.basis = Basis(r.small(uint64(BasisPrior), "basis"))
			}
		}
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("entity novelty: %w", err)
		}
	}

	if p := secs[secRhythm]; p != nil {
		r := dec{b: p}
		ent.rhythm = &rhythm{}
		n := r.count(3, slotsPerWeek, "rhythm slot")
		slot := uint64(0)
		for range n {
			slot += r.uv()
			if slot >= slotsPerWeek || len(r.b) < 2 {
				r.fail("bad rhythm slot")
				break
			}
			ent.rhythm.active[slot] = r.b[0]
			ent.rhythm.level[slot] = int8(r.b[1])
			r.b = r.b[2:]
		}
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("entity rhythm: %w", err)
		}
	}
	return ent, nil
}

func (e *Engine) decodeWindow(r *dec, ent *Entity, hi int) {
	win := &ent.win[hi]
	width := e.horizons[hi]
	ref := floorTo(ent.last, width)
	if c := r.uv(); c&1 == 0 {
		win.start = ref + unzigzag(c>>1)*width
	} else {
		win.start = ref + r.iv()
	}
	flags := r.uv()
	win.anomalous = flags&winAnomalous != 0
	win.fired = uint8(flags >> winFiredShift)
	win.exact = uint8(flags >> winExactShift)
	if flags&winEnumThr != 0 {
		win.enumThr = r.f32()
	}
	thrMask := flags >> winThrShift & 0xff
	for m := range win.thr {
		if thrMask&(1<<m) != 0 {
			win.thr[m] = r.f32()
		}
	}
	bm := r.uv()
	var vals [14]uint64
	for i := range vals {
		if bm&(1<<i) != 0 {
			vals[i] = r.uv()
		}
	}
	for i, bk := range [2]*bucket{&win.cur, &win.prev} {
		v := vals[i*7:]
		*bk = bucket{rows: v[0], sensitive: v[1], requests: uint32(v[2]), denied: uint32(v[3]), ids: uint32(v[4]), seq: uint32(v[5]), newSources: uint32(v[6])}
	}
}

func decodeEwmas(r *dec, base *[numMeasures]ewma) {
	masks := r.uv()
	const all = 1<<numMeasures - 1
	nm, mm, dm := masks&all, masks>>numMeasures&all, masks>>(2*numMeasures)&all
	for m := range base {
		if nm&(1<<m) != 0 {
			base[m].n = uint32(r.small(math.MaxUint32, "baseline count"))
		}
		if mm&(1<<m) != 0 {
			base[m].mu = r.f32()
		}
		if dm&(1<<m) != 0 {
			base[m].dev = r.f32()
		}
	}
}

func decodePeaks(r *dec, peak *[numMeasures]float32) {
	pm := r.uv()
	for m := range peak {
		if pm&(1<<m) != 0 {
			peak[m] = r.f32()
		}
	}
}

func decodeSketch(r *dec, p *pair, prev bool) {
	b := r.bytes()
	if r.err != nil {
		return
	}
	if err := p.side(prev).UnmarshalBinary(b); err != nil {
		r.fail(err.Error())
	}
}

// appendGroup appends the encoding of g (its sections, without a version
// byte: it is nested in the engine's blob).
func appendGroup(b []byte, g *group) []byte {
	w := enc{b: b}
	s := w.begin(secGroupBase)
	w.uv(uint64(len(g.base)))
	for i := range g.base {
		appendEwmas(&w, &g.base[i])
	}
	w.end(s)

	s = w.begin(secGroupPeak)
	w.uv(uint64(len(g.peak)))
	for i := range g.peak {
		appendPeaks(&w, &g.peak[i])
	}
	w.end(s)

	s = w.begin(secGroupMisc)
	w.iv(g.peakDay)
	w.uv(uint64(g.memberHours))
	w.f64(g.maxRequest)
	w.uv(uint64(g.members))
	w.end(s)

	s = w.begin(secGroupHours)
	n := 0
	for _, c := range g.hours {
		if c != 0 {
			n++
		}
	}
	w.uv(uint64(n))
	prev := 0
	for i, c := range g.hours {
		if c != 0 {
			w.uv(uint64(i - prev))
			w.uv(uint64(c))
			prev = i
		}
	}
	w.end(s)

	if len(g.objects) > 0 {
		s = w.begin(secGroupObjects)
		objs := make([]uint64, 0, len(g.objects))
		for h := range g.objects {
			objs = append(objs, h)
		}
		slices.Sort(objs)
		w.uv(uint64(len(objs)))
		prev := uint64(0)
		for _, h := range objs {
			w.uv(h - prev)
			prev = h
		}
		w.end(s)
	}
	return w.b
}

// decodeGroup decodes a group kept for horizons horizons.
func decodeGroup(b []byte, horizons int) (*group, error) {
	var secs [numGroupSecs][]byte
	if err := sections(b, secs[:], nil); err != nil {
		return nil, err
	}
	g := newGroup(horizons)
	if p := secs[secGroupBase]; p != nil {
		r := dec{b: p}
		if r.uv() != uint64(horizons) {
			return nil, fmt.Errorf("%w: group baselines for other horizons", errCorrupt)
		}
		for i := range g.base {
			decodeEwmas(&r, &g.base[i])
		}
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("group baselines: %w", err)
		}
	}
	if p := secs[secGroupPeak]; p != nil {
		r := dec{b: p}
		if r.uv() != uint64(horizons) {
			return nil, fmt.Errorf("%w: group peaks for other horizons", errCorrupt)
		}
		for i := range g.peak {
			decodePeaks(&r, &g.peak[i])
		}
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("group peaks: %w", err)
		}
	}
	if p := secs[secGroupMisc]; p != nil {
		r := dec{b: p}
		g.peakDay = r.iv()
		g.memberHours = uint32(r.small(math.MaxUint32, "member hours"))
		g.maxRequest = r.f64()
		g.members = uint32(r.small(math.MaxUint32, "members"))
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("group: %w", err)
		}
	}
	if p := secs[secGroupHours]; p != nil {
		r := dec{b: p}
		n := r.count(2, slotsPerWeek, "hour slot")
		slot := uint64(0)
		for range n {
			slot += r.uv()
			if slot >= slotsPerWeek {
				r.fail("bad hour slot")
				break
			}
			g.hours[slot] = uint32(r.small(math.MaxUint32, "hours"))
		}
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("group hours: %w", err)
		}
	}
	if p := secs[secGroupObjects]; p != nil {
		r := dec{b: p}
		n := r.count(1, math.MaxInt32, "object")
		h := uint64(0)
		for range n {
			h += r.uv()
			g.objects[h] = struct{}{}
		}
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("group objects: %w", err)
		}
	}
	return g, nil
}

// appendEngine appends the encoding of the engine-global state.
func (e *Engine) appendEngine(b []byte) []byte {
	w := enc{b: append(b, stateVersion)}
	s := w.begin(secClock)
	w.iv(e.watermark)
	w.iv(e.first)
	w.iv(e.jumpAt)
	w.uv(uint64(e.jumpVotes))
	if e.warm {
		w.uv(1)
	} else {
		w.uv(0)
	}
	w.end(s)

	s = w.begin(secStats)
	st := &e.stats
	w.uv(st.Events)
	w.uv(st.Late)
	w.uv(st.Future)
	w.uv(uint64(len(st.Detections)))
	for _, n := range st.Detections {
		w.uv(n)
	}
	w.end(s)

	s = w.begin(secHorizons)
	w.uv(uint64(len(e.horizons)))
	for _, h := range e.horizons {
		w.uv(uint64(h))
	}
	w.end(s)

	for k, g := range e.pop {
		s = w.begin(secPopulation)
		w.uv(uint64(k))
		w.b = appendGroup(w.b, g)
		w.end(s)
	}
	roles := make([]string, 0, len(e.groups))
	for r := range e.groups {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	for _, r := range roles {
		s = w.begin(secGroup)
		w.str(r)
		w.b = appendGroup(w.b, e.groups[r])
		w.end(s)
	}
	return w.b
}

// decodeEngine replaces the engine-global state with the one encoded in
// data.
func (e *Engine) decodeEngine(data []byte) error {
	body, err := checkVersion(data)
	if err != nil {
		return err
	}
	nh := len(e.horizons)
	var pop [numKinds]*group
	groups := make(map[string]*group)
	var clock, stats, horizons []byte
	err = sections(body, nil, func(tag uint64, p []byte) error {
		switch tag {
		case secClock:
			clock = p
		case secStats:
			stats = p
		case secHorizons:
			horizons = p
		case secPopulation:
			r := dec{b: p}
			k := r.uv()
			if r.err != nil {
				return fmt.Errorf("population: %w", r.err)
			}
			if k >= uint64(numKinds) {
				return nil // a kind this version does not know
			}
			g, err := decodeGroup(r.b, nh)
			if err != nil {
				return fmt.Errorf("population %s: %w", Kind(k), err)
			}
			pop[k] = g
		case secGroup:
			r := dec{b: p}
			role := r.str()
			if r.err != nil {
				return fmt.Errorf("peer group: %w", r.err)
			}
			g, err := decodeGroup(r.b, nh)
			if err != nil {
				return fmt.Errorf("peer group %q: %w", role, err)
			}
			groups[role] = g
		}
		return nil
	})
	if err != nil {
		return err
	}
	if horizons != nil {
		r := dec{b: horizons}
		n := r.count(1, config.MaxHorizons, "horizon")
		same := n == nh
		for i := range n {
			if h := r.uv(); i < nh && int64(h) != e.horizons[i] {
				same = false
			}
		}
		if err := r.done(); err != nil {
			return fmt.Errorf("horizons: %w", err)
		}
		if !same {
			return fmt.Errorf("state was kept for other horizons than the config's %v", e.cfg.Engine.Horizons)
		}
	}
	var watermark, first, jumpAt int64
	var jumpVotes int
	var warm bool
	if clock != nil {
		r := dec{b: clock}
		watermark, first, jumpAt = r.iv(), r.iv(), r.iv()
		jumpVotes = int(r.small(math.MaxInt32, "clock jump votes"))
		warm = r.small(1, "warm") == 1
		if err := r.done(); err != nil {
			return fmt.Errorf("clock: %w", err)
		}
	}
	var st Stats
	if stats != nil {
		r := dec{b: stats}
		st = Stats{Events: r.uv(), Late: r.uv(), Future: r.uv()}
		n := r.count(1, math.MaxInt32, "rule")
		for i := range n {
			if x := r.uv(); i < len(st.Detections) {
				st.Detections[i] = x
			}
		}
		if err := r.done(); err != nil {
			return fmt.Errorf("stats: %w", err)
		}
	}
	e.watermark, e.first, e.jumpAt, e.jumpVotes, e.warm = watermark, first, jumpAt, jumpVotes, warm
	e.stats = st
	for k, g := range pop {
		if g != nil {
			e.pop[k] = g
		}
	}
	e.groups = groups
	return nil
}
