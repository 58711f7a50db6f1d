package models

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models/sketch"
)

// entityDiff returns where a and b differ, or "" when they hold the same
// state. Sketches are compared by their canonical encoding (a sparse
// sketch's hash table may be laid out differently and be the same set),
// the peer group by identity, and the dirty mark, which is bookkeeping,
// not state, is ignored.
func entityDiff(a, b *Entity) string {
	if a.group != b.group {
		return fmt.Sprintf("group %p, want %p", b.group, a.group)
	}
	strip := func(x *Entity) (*Entity, [][]byte) {
		c := *x
		c.group, c.dirty = nil, false
		c.hist = slices.Clone(x.hist)
		c.prin = slices.Clone(x.prin)
		var sk [][]byte
		for i := range c.hist {
			for _, p := range []*pair{&c.hist[i].records, &c.hist[i].objects} {
				sk = append(sk, p.cur.AppendBinary(nil), p.prev.AppendBinary(nil))
				*p = pair{}
			}
		}
		for i := range c.prin {
			sk = append(sk, c.prin[i].cur.AppendBinary(nil), c.prin[i].prev.AppendBinary(nil))
			c.prin[i] = pair{}
		}
		return &c, sk
	}
	ca, ska := strip(a)
	cb, skb := strip(b)
	for i := range ska {
		if !bytes.Equal(ska[i], skb[i]) {
			return fmt.Sprintf("sketch %d differs", i)
		}
	}
	if !reflect.DeepEqual(ca, cb) {
		return fieldDiff(reflect.ValueOf(ca).Elem(), reflect.ValueOf(cb).Elem())
	}
	return ""
}

// fieldDiff names the first top-level field of two structs that differs.
func fieldDiff(a, b reflect.Value) string {
	for i := range a.NumField() {
		fa, fb := settable(a.Field(i)).Interface(), settable(b.Field(i)).Interface()
		if !reflect.DeepEqual(fa, fb) {
			return fmt.Sprintf("field %s: %+v, want %+v", a.Type().Field(i).Name, fb, fa)
		}
	}
	return "differs"
}

// settable makes an unexported field writable (tests only).
func settable(v reflect.Value) reflect.Value {
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}

// fill sets every field of v, recursively, to a random non-zero value.
// Filling by reflection, not by name, means a field added to Entity later
// is filled too, and this test fails until the encoding keeps it.
func fill(rng *rand.Rand, v reflect.Value) {
	v = settable(v)
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := rng.Int64()
		v.SetInt(x >> (64 - v.Type().Bits()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(rng.Uint64()>>(64-v.Type().Bits()) | 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(float32(rng.NormFloat64() * 1e3)))
	case reflect.String:
		v.SetString(fmt.Sprintf("s-%x", rng.Uint32()))
	case reflect.Array:
		for i := range v.Len() {
			fill(rng, v.Index(i))
		}
	case reflect.Slice:
		n := 1 + rng.IntN(4)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range s.Len() {
			fill(rng, s.Index(i))
		}
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(rng, p.Elem())
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(sketch.Distinct{}) {
			d := v.Addr().Interface().(*sketch.Distinct)
			for range []int{0, 3, 50, 2000}[rng.IntN(4)] {
				d.Add(rng.Uint64())
			}
			return
		}
		for i := range v.NumField() {
			fill(rng, v.Field(i))
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 1 + rng.IntN(4) {
			k := reflect.New(v.Type().Key()).Elem()
			x := reflect.New(v.Type().Elem()).Elem()
			fill(rng, k)
			fill(rng, x)
			m.SetMapIndex(k, x)
		}
		v.Set(m)
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// randomEntity is an entity of e with every field set, within the
// invariants the engine keeps (which the encoding relies on).
func randomEntity(e *Engine, rng *rand.Rand, kind Kind) *Entity {
	ent := &Entity{}
	fill(rng, reflect.ValueOf(ent).Elem())
	nh := len(e.horizons)
	ent.kind = kind
	ent.dirty = false
	ent.recentN = uint8(1 + rng.IntN(len(ent.recentIDs)))
	for i := int(ent.recentN); i < len(ent.recentIDs); i++ {
		ent.recentIDs[i] = 0
	}
	ent.win, ent.hist = make([]window, nh), make([]history, nh)
	for i := range nh {
		fill(rng, reflect.ValueOf(&ent.win[i]).Elem())
		fill(rng, reflect.ValueOf(&ent.hist[i]).Elem())
	}
	ent.prin = nil
	if kind != KindPrincipal {
		ent.prin = make([]pair, nh)
		for i := range nh {
			fill(rng, reflect.ValueOf(&ent.prin[i]).Elem())
		}
	}
	for _, s := range []*[2]heavy{&ent.topPrincipal, &ent.topObject} {
		for i := range s {
			s[i].hash = nameHash(s[i].name)
		}
	}
	ent.knownSrc = ent.knownSrc[:len(ent.knownSrc):len(ent.knownSrc)]
	ent.knownObj = ent.knownObj[:len(ent.knownObj):len(ent.knownObj)]
	for _, n := range []*novelty{&ent.newSrc, &ent.newObj, &ent.revived} {
		n.basis = Basis(rng.IntN(int(BasisPrior) + 1))
	}
	ent.group = e.groupOf(ent.role)
	ent.prof = nil      // resolved from kind, key and role, not stored
	ent.rowless = false // not stored: set again by the source's next event
	e.profileOf(ent)
	return ent
}

// roundTrip encodes ent and decodes it back in e.
func roundTrip(t *testing.T, e *Engine, ent *Entity) *Entity {
	t.Helper()
	b := e.appendEntity(nil, ent)
	got, err := e.decodeEntity(ent.hash, b)
	if err != nil {
		t.Fatalf("decode %s/%s: %v", ent.kind, ent.key, err)
	}
	if again := e.appendEntity(nil, got); !bytes.Equal(again, b) {
		t.Fatalf("%s/%s: encoding not stable", ent.kind, ent.key)
	}
	return got
}

// TestEntityRoundTripEveryField: an entity with every field set comes
// back exactly.
func TestEntityRoundTripEveryField(t *testing.T) {
	e, _ := New(config.Default(), nil)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		ent := randomEntity(e, rng, Kind(i%int(numKinds)))
		if d := entityDiff(ent, roundTrip(t, e, ent)); d != "" {
			t.Fatalf("entity %d (%s): %s", i, ent.kind, d)
		}
	}
}

// TestEntityRoundTripCompany: every entity of the company month (every
// detector fired, dense and sparse sketches, rhythms, watches, peer
// groups) comes back exactly, and the month uses every part of the
// encoding.
func TestEntityRoundTripCompany(t *testing.T) {
	r := defaultCompanyRun(t)
	e := r.engine
	seen := map[string]bool{}
	see := func(what string, ok bool) {
		if ok {
			seen[what] = true
		}
	}
	for _, ent := range e.entities {
		if d := entityDiff(ent, roundTrip(t, e, ent)); d != "" {
			t.Fatalf("%s/%s: %s", ent.kind, ent.key, d)
		}
		see("rhythm", ent.rhythm != nil)
		see("group", ent.group != nil)
		see("cusum", ent.cusum > 0)
		see("offThr", ent.offThr != never)
		see("lsThr", ent.lsThr != never)
		see("newSrc", ent.newSrc != novelty{})
		see("newObj", ent.newObj != novelty{})
		see("knownObj", len(ent.knownObj) > 0)
		see("topPrincipal", ent.topPrincipal[1].name != "")
		for hi := range ent.win {
			w := &ent.win[hi]
			see("fired", w.fired != 0)
			see("exact", w.exact != 0)
			see("anomalous", w.anomalous)
			see("prev", w.prev != bucket{})
			see("dense", ent.hist[hi].records.cur.Estimate() > 200)
		}
	}
	for _, what := range []string{"rhythm", "group", "cusum", "offThr", "lsThr", "newSrc", "knownObj", "topPrincipal", "fired", "exact", "anomalous", "prev", "dense"} {
		if !seen[what] {
			t.Errorf("no entity has %s: the round trip does not cover it", what)
		}
	}
}

// TestEngineStateRoundTrip: the engine-global state comes back exactly.
func TestEngineStateRoundTrip(t *testing.T) {
	r := defaultCompanyRun(t)
	e := r.engine
	b := e.appendEngine(nil)
	f, _ := New(config.Default(), nil)
	if err := f.decodeEngine(b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.appendEngine(nil), b) {
		t.Error("encoding not stable")
	}
	if f.watermark != e.watermark || f.first != e.first || f.jumpAt != e.jumpAt || f.jumpVotes != e.jumpVotes || f.warm != e.warm || f.stats != e.stats {
		t.Error("clock or stats differ")
	}
	if !reflect.DeepEqual(f.pop, e.pop) || !reflect.DeepEqual(f.groups, e.groups) {
		t.Error("groups differ")
	}
	if len(e.groups) < 4 || len(e.groups["cs_agent"].objects) == 0 {
		t.Error("the company month has too few peer groups to test")
	}

	rng := rand.New(rand.NewPCG(5, 6))
	g := &group{}
	fill(rng, reflect.ValueOf(g).Elem())
	g.base, g.peak = make([][numMeasures]ewma, 5), make([][numMeasures]float32, 5)
	for i := range 5 {
		fill(rng, reflect.ValueOf(g.base).Index(i))
		fill(rng, reflect.ValueOf(g.peak).Index(i))
	}
	got, err := decodeGroup(appendGroup(nil, g), 5)
	if err != nil || !reflect.DeepEqual(got, g) {
		t.Errorf("group with every field set: %v\n%+v\n%+v", err, got, g)
	}
}

// TestEngineStateRejectsOtherHorizons: state kept for other horizons cannot
// be continued.
func TestEngineStateRejectsOtherHorizons(t *testing.T) {
	e, _ := New(config.Default(), nil)
	e.Process(ev(at(0, 9, 0), "alice"))
	b := e.appendEngine(nil)
	cfg := config.Default()
	cfg.Engine.Horizons = cfg.Engine.Horizons[:4]
	f, _ := New(cfg, nil)
	if err := f.decodeEngine(b); err == nil {
		t.Error("restored state of five horizons into four")
	}
}

// splitSections returns a blob's sections, each with its tag and length.
func splitSections(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	r := dec{b: b[1:]}
	for len(r.b) > 0 {
		start := r.b
		r.uv()
		r.bytes()
		if r.err != nil {
			t.Fatal(r.err)
		}
		out = append(out, start[:len(start)-len(r.b)])
	}
	return out
}

func section(tag uint64, payload []byte) []byte {
	w := enc{}
	s := w.begin(tag)
	w.b = append(w.b, payload...)
	w.end(s)
	return w.b
}

// TestDecodeSkipsUnknownAndMissingSections: a later version may add
// sections (an older reader skips them) and an earlier one may lack some
// (they keep their defaults).
func TestDecodeSkipsUnknownAndMissingSections(t *testing.T) {
	r := defaultCompanyRun(t)
	e := r.engine
	var ent *Entity
	for _, x := range e.entities {
		if x.rhythm != nil && x.newSrc == (novelty{}) && (ent == nil || x.hash < ent.hash) {
			ent = x
		}
	}
	b := e.appendEntity(nil, ent)
	secs := splitSections(t, b)

	unknown := []byte{stateVersion}
	unknown = append(unknown, section(99, bytes.Repeat([]byte{0xff}, 300))...)
	for _, s := range secs {
		unknown = append(unknown, s...)
	}
	unknown = append(unknown, section(1000, nil)...)
	got, err := e.decodeEntity(ent.hash, unknown)
	if err != nil {
		t.Fatal(err)
	}
	if d := entityDiff(ent, got); d != "" {
		t.Errorf("with unknown sections: %s", d)
	}

	missing := []byte{stateVersion}
	for _, s := range secs {
		if s[0] != secRhythm {
			missing = append(missing, s...)
		}
	}
	got, err = e.decodeEntity(ent.hash, missing)
	if err != nil {
		t.Fatal(err)
	}
	want := *ent
	want.rhythm = nil
	if d := entityDiff(&want, got); d != "" {
		t.Errorf("without the rhythm section: %s", d)
	}

	eb := e.appendEngine(nil)
	esecs := splitSections(t, eb)
	withUnknown := append([]byte{stateVersion}, section(77, []byte("later"))...)
	var noStats []byte
	noStats = append(noStats, stateVersion)
	for _, s := range esecs {
		withUnknown = append(withUnknown, s...)
		if s[0] != secStats {
			noStats = append(noStats, s...)
		}
	}
	f, _ := New(config.Default(), nil)
	if err := f.decodeEngine(withUnknown); err != nil || !bytes.Equal(f.appendEngine(nil), eb) {
		t.Errorf("engine state with an unknown section: %v", err)
	}
	g, _ := New(config.Default(), nil)
	if err := g.decodeEngine(noStats); err != nil || g.stats != (Stats{}) || g.watermark != e.watermark || !reflect.DeepEqual(g.groups, e.groups) {
		t.Errorf("engine state without stats: %v", err)
	}
}

// TestDecodeRejectsCorruptInput: truncations and absurd counts fail with
// an error, without allocating beyond the input's size.
func TestDecodeRejectsCorruptInput(t *testing.T) {
	e, _ := New(config.Default(), nil)
	ent := randomEntity(e, rand.New(rand.NewPCG(9, 9)), KindSourceNet)
	b := e.appendEntity(nil, ent)
	// Every cut decodes or fails, without panicking (a cut between
	// sections is a valid blob that lacks the rest).
	for n := range len(b) {
		_, _ = e.decodeEntity(1, b[:n])
	}
	huge := []byte{stateVersion}
	core := enc{}
	core.uv(0)
	core.uv(0)
	core.uv(1 << 40) // a key of a terabyte
	huge = append(huge, section(secCore, core.b)...)
	known := enc{}
	known.uv(1 << 50)
	huge2 := append(append([]byte{stateVersion}, section(secCore, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0})...), section(secKnown, known.b)...)
	for _, blob := range [][]byte{huge, huge2, {stateVersion + 1}, {}} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := e.decodeEntity(1, blob)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%x decoded", blob)
		}
		if a := after.TotalAlloc - before.TotalAlloc; a > 64<<10 {
			t.Errorf("%x: %d bytes allocated", blob, a)
		}
	}
}

// FuzzDecodeEntity: arbitrary bytes never panic, and whatever decodes
// encodes to a fixed point.
func FuzzDecodeEntity(f *testing.F) {
	e, _ := New(config.Default(), nil)
	rng := rand.New(rand.NewPCG(1, 1))
	// Small seeds: the fuzzer mutates, and minimizes, large inputs slowly.
	for k := range numKinds {
		ent := randomEntity(e, rng, k)
		for hi := range ent.hist {
			ent.hist[hi] = history{}
			ent.hist[hi].records.cur.Add(rng.Uint64())
		}
		ent.prin = nil
		f.Add(e.appendEntity(nil, ent))
	}
	ev := ev(at(0, 9, 0), "alice")
	ev.RecordIDs = []uint64{1, 2, 3}
	e.Process(ev)
	for _, ent := range e.entities {
		f.Add(e.appendEntity(nil, ent))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ent, err := e.decodeEntity(42, b)
		if err != nil {
			return
		}
		once := e.appendEntity(nil, ent)
		again, err := e.decodeEntity(42, once)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if twice := e.appendEntity(nil, again); !bytes.Equal(once, twice) {
			t.Fatalf("encoding is not a fixed point")
		}
	})
}
