package models

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/sim"
)

var update = flag.Bool("update", false, "rewrite testdata/state-v<current>/ from the current encoder (only on a deliberate change of the state format or of what the engine computes)")

// The state goldens are a checkpoint written by the encoder of one format
// version, in testdata/state-v<version>/: engine.bin, the engine-global
// state, and entities.bin, every entity as hash (8 bytes LE), length
// (uvarint) and encoding. They are taken halfway through goldenEvents.
// Goldens of earlier versions are kept: a newer binary must read state an
// older one wrote.

// goldenEvents is four days of a small company's staff, services and
// partners (customers are left out to keep the goldens small), with the
// attacks that do not need customers' accounts.
func goldenEvents(t *testing.T) (evs []event.Event, mid int) {
	all := simEvents(t, sim.Options{Seed: 21, Days: 4, Scale: 0.05, Scenarios: []string{"bulk_dump", "slow_insider", "service_new_table", "huge_export", "scraper_key", "denied_probe"}})
	for _, ev := range all {
		if ev.PrincipalType != event.PrincipalCustomer {
			evs = append(evs, ev)
		}
	}
	return evs, len(evs) / 2
}

func goldenDir(version int) string {
	return filepath.Join("testdata", fmt.Sprintf("state-v%d", version))
}

func writeGolden(t *testing.T, s *memStore) {
	dir := goldenDir(stateVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hs := make([]uint64, 0, len(s.entities))
	for h := range s.entities {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	var b []byte
	for _, h := range hs {
		b = binary.LittleEndian.AppendUint64(b, h)
		b = binary.AppendUvarint(b, uint64(len(s.entities[h])))
		b = append(b, s.entities[h]...)
	}
	if err := os.WriteFile(filepath.Join(dir, "entities.bin"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "engine.bin"), s.engine, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readGolden(t *testing.T, dir string) *memStore {
	t.Helper()
	s := newMemStore()
	var err error
	if s.engine, err = os.ReadFile(filepath.Join(dir, "engine.bin")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "entities.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatal("entities.bin: truncated")
		}
		h := binary.LittleEndian.Uint64(b)
		n, k := binary.Uvarint(b[8:])
		if k <= 0 || n > uint64(len(b)-8-k) {
			t.Fatal("entities.bin: bad length")
		}
		s.entities[h] = b[8+k : 8+k+int(n)]
		b = b[8+k+int(n):]
	}
	return s
}

// TestStateGoldensDecode: the state of every format version decodes, and
// that of the current version encodes again to the same bytes.
func TestStateGoldensDecode(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "state-v*"))
	if len(dirs) == 0 {
		t.Fatal("no state goldens")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			s := readGolden(t, dir)
			e, _ := New(config.Default(), nil)
			if err := e.Restore(s.engine); err != nil {
				t.Fatal(err)
			}
			current := dir == goldenDir(stateVersion)
			if current && !bytes.Equal(e.appendEngine(nil), s.engine) {
				t.Error("engine state encodes to other bytes")
			}
			for h, b := range s.entities {
				ent, err := e.decodeEntity(h, b)
				if err != nil {
					t.Fatalf("entity %016x: %v", h, err)
				}
				if current && !bytes.Equal(e.appendEntity(nil, ent), b) {
					t.Errorf("entity %016x (%s/%s) encodes to other bytes", h, ent.kind, ent.key)
				}
			}
		})
	}
}

// TestStateGoldenContinues: an engine restored from the goldens computes
// what an engine that never stopped computes: the same detections, and
// the same state at the end. (A change of what the engine computes breaks
// this until the goldens are rewritten with -update; a change of the
// format must keep the old goldens decoding, TestStateGoldensDecode.)
func TestStateGoldenContinues(t *testing.T) {
	evs, mid := goldenEvents(t)
	cfg := config.Default()
	var want []Detection
	fresh, err := New(cfg, func(d *Detection) { want = append(want, *d) })
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs[:mid] {
		fresh.Process(&evs[i])
	}
	if *update {
		s := newMemStore()
		if _, err := fresh.Checkpoint(s); err != nil {
			t.Fatal(err)
		}
		writeGolden(t, s)
	}
	before := len(want)
	for i := range evs[mid:] {
		fresh.Process(&evs[mid+i])
	}
	want = want[before:]

	s := readGolden(t, goldenDir(stateVersion))
	var got []Detection
	e, _ := New(cfg, func(d *Detection) { got = append(got, *d) })
	if err := e.Restore(s.engine); err != nil {
		t.Fatal(err)
	}
	e.SetStore(s)
	for i := range evs[mid:] {
		e.Process(&evs[mid+i])
	}
	t.Logf("%d entities in the goldens, %d loaded; %d detections after the restart", len(s.entities), e.StoreStats().Loaded, len(want))
	if len(want) < 5 {
		t.Fatalf("only %d detections after the checkpoint: the goldens test little", len(want))
	}
	compareDetections(t, want, got)

	// The state at the end is the same, entity by entity.
	if !bytes.Equal(e.appendEngine(nil), fresh.appendEngine(nil)) {
		t.Error("engine state differs at the end")
	}
	for h, ent := range e.entities {
		if !bytes.Equal(e.appendEntity(nil, ent), fresh.appendEntity(nil, fresh.entities[h])) {
			t.Errorf("%s/%s differs at the end", ent.kind, ent.key)
		}
	}
}
