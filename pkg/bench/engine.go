package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// Engine is the engine alone (pkg/models, one Engine, every entity kind,
// default config but for its horizons) on one goroutine over the
// workload's first events, decoded beforehand: what one core of the
// pipeline's engine shard can do.
type Engine struct {
	// Horizons are the engine's (engine.horizons); Default marks the
	// default set, the one judged.
	Horizons string `json:"horizons"`
	Default  bool   `json:"default"`
	Events   int    `json:"events"`
	Entities int    `json:"entities"`
	// Warm is the first pass, which creates every entity; Steady the
	// third, the same events again with their times moved past the pass
	// before (entities exist and their sketches have grown, buckets
	// roll), as BenchmarkProcess.
	WarmEventsPerSec   float64 `json:"warm_events_per_s"`
	SteadyEventsPerSec float64 `json:"steady_events_per_s"`
	// AllocsPerEvent is heap allocations per event in the steady pass
	// (runtime.MemStats.Mallocs, whole process); AllocsPerEventSecond
	// the same in the second pass, where long horizons' sketches still
	// grow.
	AllocsPerEvent       float64 `json:"allocs_per_event"`
	AllocsPerEventSecond float64 `json:"allocs_per_event_second_pass"`
	// HeapPerEntity is the engine's heap after the passes (after GC) per
	// entity: this traffic's mix, not the memory measurement's.
	HeapPerEntity float64 `json:"heap_bytes_per_entity"`
	Detections    int     `json:"detections"`
}

// horizonSets are the engine.horizons compared: the default first, then
// fewer and more.
var horizonSets = [][]time.Duration{
	{time.Minute, 15 * time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour},
	{time.Minute, time.Hour, 24 * time.Hour},
	{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour},
}

// measureEngine decodes the first n events of src and runs them through
// a fresh engine three times for each horizon set.
//
// With a profile directory, a fourth pass of the default engine is
// profiled: CPU into engine-cpu.pprof, and allocations sampled finely
// into engine-allocs.pprof, to be read against engine-allocs-base.pprof
// (go tool pprof -base), the same profile before the pass.
func measureEngine(src *Source, n int, profileDir string) ([]Engine, error) {
	evs, err := decodeAll(src, n)
	if err != nil {
		return nil, err
	}
	// Each pass moves the events past the one before; each engine
	// starts at their own times, so that every set sees the same
	// bucket boundaries.
	shift := evs[len(evs)-1].Time - evs[0].Time + int64(time.Second)
	moved := int64(0)
	move := func(d int64) {
		for i := range evs {
			evs[i].Time += d
		}
		moved += d
	}
	again := func() { move(shift) }
	var out []Engine
	for si, hs := range horizonSets {
		cfg := config.Default()
		cfg.Engine.Horizons = nil
		var names []string
		for _, h := range hs {
			cfg.Engine.Horizons = append(cfg.Engine.Horizons, config.Duration(h))
			names = append(names, config.Duration(h).String())
		}
		if si == 0 && !slices.Equal(cfg.Engine.Horizons, config.Default().Engine.Horizons) {
			return nil, fmt.Errorf("engine: the default horizons are no longer %v", names)
		}
		det := 0
		eng, err := models.New(cfg, func(*models.Detection) { det++ })
		if err != nil {
			return nil, err
		}
		r := Engine{Horizons: strings.Join(names, ","), Default: si == 0, Events: len(evs)}
		move(-moved)
		t0 := time.Now()
		for i := range evs {
			eng.Process(&evs[i])
		}
		r.WarmEventsPerSec = float64(len(evs)) / time.Since(t0).Seconds()
		// A second pass grows what still grows (long horizons' sketches
		// fill up; their allocations are the first pass's tail).
		again()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for i := range evs {
			eng.Process(&evs[i])
		}
		runtime.ReadMemStats(&m1)
		r.AllocsPerEventSecond = float64(m1.Mallocs-m0.Mallocs) / float64(len(evs))
		again()
		runtime.GC()
		runtime.ReadMemStats(&m0)
		t0 = time.Now()
		for i := range evs {
			eng.Process(&evs[i])
		}
		el := time.Since(t0)
		runtime.ReadMemStats(&m1)
		r.SteadyEventsPerSec = float64(len(evs)) / el.Seconds()
		r.AllocsPerEvent = float64(m1.Mallocs-m0.Mallocs) / float64(len(evs))
		r.Entities = eng.Entities()
		r.Detections = det
		if si == 0 && profileDir != "" {
			// A fourth pass, profiled (fine allocation sampling slows it).
			again()
			stop, err := profileEngine(profileDir)
			if err != nil {
				return nil, err
			}
			for i := range evs {
				eng.Process(&evs[i])
			}
			if err := stop(); err != nil {
				return nil, err
			}
		}
		// The engine's heap is what releasing it frees.
		runtime.GC()
		runtime.ReadMemStats(&m0)
		runtime.KeepAlive(eng) // live up to here, and no further
		runtime.GC()
		runtime.ReadMemStats(&m1)
		r.HeapPerEntity = float64(int64(m0.HeapAlloc)-int64(m1.HeapAlloc)) / float64(r.Entities)
		out = append(out, r)
	}
	return out, nil
}

// decodeAll decodes the first n events of src into memory.
func decodeAll(src *Source, n int) ([]event.Event, error) {
	dec := event.NewNative(event.Limits{})
	evs := make([]event.Event, 0, n)
	var arena []uint64
	var ev event.Event
	for len(evs) < n {
		line, ph := src.Next()
		if ph == PhaseDone {
			break
		}
		if err := dec.Decode(line, &ev); err != nil {
			return nil, fmt.Errorf("engine: decode: %w", err)
		}
		c := ev
		// The decoder reuses ev's slices: keep copies, in one arena.
		if len(arena)+len(ev.RecordIDs)+len(ev.RecordNums) > cap(arena) {
			arena = make([]uint64, 0, 1<<20)
		}
		k := len(arena)
		arena = append(arena, ev.RecordIDs...)
		c.RecordIDs = arena[k:len(arena):len(arena)]
		k = len(arena)
		arena = append(arena, ev.RecordNums...)
		c.RecordNums = arena[k:len(arena):len(arena)]
		evs = append(evs, c)
	}
	if len(evs) < 2 {
		return nil, fmt.Errorf("engine: no events")
	}
	return evs, nil
}

// profileEngine starts the profiles of a pass; the returned function
// stops them.
func profileEngine(dir string) (func() error, error) {
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	if err := writeProfile(filepath.Join(dir, "engine-allocs-base.pprof"), "allocs"); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "engine-cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		f.Close()
		err := writeProfile(filepath.Join(dir, "engine-allocs.pprof"), "allocs")
		runtime.MemProfileRate = rate
		return err
	}, nil
}

func writeProfile(path, name string) error {
	runtime.GC() // the allocs profile is as of the last GC
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup(name).WriteTo(f, 0)
}
