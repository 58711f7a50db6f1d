package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
)

// Engine is the engine alone (pkg/models, one Engine, every entity kind,
// default config) on one goroutine over the workload's first events,
// decoded beforehand: what one core of the pipeline's engine shard can
// do.
type Engine struct {
	Events   int `json:"events"`
	Entities int `json:"entities"`
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
	Detections           int     `json:"detections"`
}

// measureEngine decodes the first n events of src and runs them through
// an engine three times.
//
// With a profile directory, a third pass like the steady one is profiled: CPU into
// engine-cpu.pprof, and allocations sampled finely into
// engine-allocs.pprof, to be read against engine-allocs-base.pprof
// (go tool pprof -base), which is the same profile before the pass.
func measureEngine(src *Source, n int, profileDir string) (Engine, error) {
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
			return Engine{}, fmt.Errorf("engine: decode: %w", err)
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
		return Engine{}, fmt.Errorf("engine: no events")
	}
	det := 0
	eng, err := models.New(config.Default(), func(*models.Detection) { det++ })
	if err != nil {
		return Engine{}, err
	}
	r := Engine{Events: len(evs)}
	runtime.GC()
	t0 := time.Now()
	for i := range evs {
		eng.Process(&evs[i])
	}
	r.WarmEventsPerSec = float64(len(evs)) / time.Since(t0).Seconds()
	shift := evs[len(evs)-1].Time - evs[0].Time + int64(time.Second)
	again := func() {
		for i := range evs {
			evs[i].Time += shift
		}
	}
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
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	t0 = time.Now()
	for i := range evs {
		eng.Process(&evs[i])
	}
	el := time.Since(t0)
	runtime.ReadMemStats(&after)
	r.SteadyEventsPerSec = float64(len(evs)) / el.Seconds()
	r.AllocsPerEvent = float64(after.Mallocs-before.Mallocs) / float64(len(evs))
	r.Entities = eng.Entities()
	r.Detections = det
	if profileDir != "" {
		// A fourth pass, profiled (fine allocation sampling slows it).
		again()
		stop, err := profileEngine(profileDir)
		if err != nil {
			return r, err
		}
		for i := range evs {
			eng.Process(&evs[i])
		}
		if err := stop(); err != nil {
			return r, err
		}
	}
	return r, nil
}

// profileEngine starts the steady pass's profiles; the returned function
// stops them.
func profileEngine(dir string) (func() error, error) {
	if dir == "" {
		return func() error { return nil }, nil
	}
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
