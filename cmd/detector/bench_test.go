package main

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/exfilguard/exfilguard/pkg/bench"
)

// TestBench runs `detector bench --quick --json` and checks the report:
// its structure, that the pipeline processed exactly the events produced
// on every topic, and that every measured number is positive and sane.
// It asserts nothing about speed: that is what the command reports, on
// whatever machine runs it.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the embedded broker, the pipeline and the engine")
	}
	args := []string{"bench", "--quick", "--json"}
	if raceEnabled {
		// Ten times slower under the race detector: smaller still.
		args = append(args, "--events", "20000", "--rate", "5000", "--live", "10s", "--entities", "2000,5000")
	}
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	var r bench.Report
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("report is not the JSON of a bench.Report: %v\n%s", err, out.String())
	}
	n := r.Params.Events
	if n <= 0 || !r.Params.Quick || r.Params.Partitions != 6 || r.Params.Rate <= 0 {
		t.Fatalf("params: %+v", r.Params)
	}
	if r.Machine.Cores <= 0 || r.Machine.GoVersion == "" {
		t.Errorf("machine: %+v", r.Machine)
	}
	if r.Params.History < n || r.Params.SimScale <= 0 {
		t.Errorf("workload: %d events of history for %d, scale %v", r.Params.History, n, r.Params.SimScale)
	}
	rate := func(name string, tp bench.Throughput) {
		t.Helper()
		if tp.Events != int64(n) || tp.Bytes <= 0 || tp.Seconds <= 0 || tp.StartSeconds < 0 || tp.StartSeconds > tp.Seconds ||
			!positive(tp.EventsPerSec, tp.MBPerSec, tp.SteadyEventsPerSec) {
			t.Errorf("%s: %+v", name, tp)
		}
	}
	rate("produce", r.Produce)
	if len(r.Throughput) != 2 || r.Throughput[0].Partitions != 6 || r.Throughput[1].Partitions != 1 {
		t.Fatalf("want passes on 6 and 1 partitions, got %+v", r.Throughput)
	}
	for _, ps := range r.Throughput {
		want := map[string]bool{"kafka-go Reader": true}
		if ps.Partitions > 1 {
			want["franz-go kgo"], want["kafka-go Conn.ReadBatch"] = true, true
		}
		for _, c := range ps.Consumers {
			rate(ps.Topic+" "+c.Name, c)
			if c.Bytes != r.Produce.Bytes {
				t.Errorf("%s %s read %d bytes of values, %d were produced", ps.Topic, c.Name, c.Bytes, r.Produce.Bytes)
			}
			delete(want, c.Name)
		}
		if len(want) > 0 {
			t.Errorf("%s: consumers missing: %v", ps.Topic, want)
		}
		pl := ps.Pipeline
		rate(ps.Topic+" pipeline", pl.Throughput)
		if pl.Processed != uint64(n) {
			t.Errorf("%s: the pipeline processed %d events, %d were produced", ps.Topic, pl.Processed, n)
		}
		if pl.Rejected != 0 || pl.Late > pl.Processed || pl.Resident <= 0 || pl.MaxEntities <= 0 {
			t.Errorf("%s: pipeline %+v", ps.Topic, pl)
		}
		// The backlog is read from the start: the partitions are merged
		// by event time, so none is late on any number of partitions.
		if pl.Late != 0 {
			t.Errorf("%d partition(s): %d events late reading the backlog, want none", ps.Partitions, pl.Late)
		}
		if !positive(ps.Ratio, ps.SteadyRatio) || ps.Ratio > 100 {
			t.Errorf("%s: ratios %v, %v", ps.Topic, ps.Ratio, ps.SteadyRatio)
		}
	}
	if len(r.Latency) != 2 || r.Latency[0].Partitions != 6 || r.Latency[1].Partitions != 1 {
		t.Fatalf("want live parts on 6 and 1 partitions, got %d", len(r.Latency))
	}
	for _, l := range r.Latency {
		if l.Events <= 0 || l.Alerts <= 0 || !positive(l.OfferedRate, l.AchievedRate, l.Seconds, l.P50Ms, l.P99Ms, l.MaxMs) ||
			l.P50Ms > l.P99Ms || l.P99Ms > l.MaxMs || len(l.Caught) == 0 || len(l.Attacks) != len(bench.LiveScenarios) ||
			len(l.Slowest) == 0 || l.Slowest[0].Ms != l.MaxMs || l.Late > uint64(l.Events) {
			t.Errorf("latency on %d partition(s): %+v", l.Partitions, l)
		}
		sum := 0
		for _, c := range l.ByRule {
			sum += c
		}
		if sum != l.Alerts {
			t.Errorf("latency: %d alerts by rule, %d measured", sum, l.Alerts)
		}
	}
	if len(r.Engine) != 3 || !r.Engine[0].Default || r.Engine[1].Default || r.Engine[2].Default {
		t.Errorf("want the engine with the default horizons and two other sets, got %+v", r.Engine)
	}
	for _, e := range r.Engine {
		if e.Horizons == "" || e.Events <= 0 || e.Entities <= 0 || !positive(e.WarmEventsPerSec, e.SteadyEventsPerSec, e.HeapPerEntity) ||
			e.AllocsPerEvent < 0 || e.AllocsPerEvent > 10 || e.HeapPerEntity > 64<<10 {
			t.Errorf("engine: %+v", e)
		}
	}
	if len(r.Memory) != len(r.Params.Entities) || len(r.Memory) != 2 {
		t.Fatalf("memory: %d rows for entities %v", len(r.Memory), r.Params.Entities)
	}
	for i, m := range r.Memory {
		if m.Target != r.Params.Entities[i] || m.Entities < m.Target*9/10 || m.Entities > m.MaxEntities || m.CheckpointWritten != m.Entities {
			t.Errorf("memory: %d entities resident (%d written by the checkpoint) for %d asked, cap %d", m.Entities, m.CheckpointWritten, m.Target, m.MaxEntities)
		}
		// Sane: an entity costs something, and less than 64 KiB.
		if !positive(m.HeapPerEntity, m.EventsPerSec, m.CheckpointSeconds) || m.HeapPerEntity > 64<<10 || m.RSSPerEntity < 0 || m.RSSPerEntity > 64<<10 || m.CheckpointBytes <= 0 {
			t.Errorf("memory: %+v", m)
		}
	}
	if len(r.Targets) != 6 {
		t.Errorf("want 6 targets judged, got %+v", r.Targets)
	}
	for _, tg := range r.Targets {
		if tg.Name == "" || tg.Target == "" || tg.Measured == "" {
			t.Errorf("target: %+v", tg)
		}
	}
	t.Logf("%+v", r.Targets)
}

// positive reports whether every value is a finite number above zero.
func positive(vs ...float64) bool {
	for _, v := range vs {
		if !(v > 0) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
