package stream

import (
	"fmt"
	"testing"
	"time"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
	"github.com/exfilguard/exfilguard/pkg/models"
	"github.com/exfilguard/exfilguard/pkg/sim"
	"github.com/exfilguard/exfilguard/pkg/state"
)

// simEvents returns n events of simulated company traffic.
func simEvents(b *testing.B, n int) [][]byte {
	b.Helper()
	g, err := sim.New(sim.Options{Seed: 3, Days: 4, Scale: 1})
	if err != nil {
		b.Fatal(err)
	}
	out := make([][]byte, 0, n)
	for len(out) < n {
		line, ok := g.Next(nil)
		if !ok {
			b.Fatalf("sim ran out after %d events", len(out))
		}
		out = append(out, line)
	}
	return out
}

// BenchmarkRun measures `detector run` end to end against kfake: one
// million simulated events on three partitions, consumed by a consumer
// group, decoded, processed, alerted and checkpointed into Badger on disk
// (checkpoints every 1M events or 10 s, as configured by default), with
// one engine shard and with two. kfake runs in the same process and takes
// its share of the two cores.
//
//	go test -run '^$' -bench BenchmarkRun -benchtime 1x ./pkg/stream/
func BenchmarkRun(b *testing.B) {
	const n = 1_000_000
	events := simEvents(b, n)
	c := kafkatest.Cluster(b, 3, []string{"audit"})
	kafkatest.Produce(b, c.ListenAddrs(), "audit", events)
	events = nil
	group := 0
	for _, shards := range []int{1, 2} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) { benchRun(b, c.ListenAddrs(), n, shards, &group) })
	}
}

func benchRun(b *testing.B, addrs []string, n, shards int, group *int) {
	for range b.N {
		*group++
		cfg := testConfig(addrs, "audit", b.TempDir())
		cfg.Kafka.GroupID = fmt.Sprintf("bench-%d", *group)
		cfg.Engine.Shards = shards
		cfg.State.CheckpointInterval = config.Duration(10 * time.Second)
		cfg.State.CheckpointEvents = 1_000_000
		cfg.State.MemTableBytes = 16 << 20
		t0 := time.Now()
		r := start(b, cfg, uint64(n))
		r.wait(b)
		el := time.Since(t0)
		st := r.stop(b)
		b.ReportMetric(float64(n)/el.Seconds(), "events/s")
		b.ReportMetric(float64(st.Checkpoints), "checkpoints")
		b.ReportMetric(float64(st.Events), "events")
		b.ReportMetric(float64(st.Late), "late")
	}
}

// BenchmarkCheckpoint measures one checkpoint of 100,000 dirty entities
// (customer accounts, networks and a credential each) into Badger on disk:
// encode, write, sync, marker. Each iteration dirties all of them again
// untimed.
//
//	go test -run '^$' -bench BenchmarkCheckpoint -benchtime 5x ./pkg/stream/
func BenchmarkCheckpoint(b *testing.B) {
	const principals = 100_000
	cfg := config.Default()
	cfg.Engine.MaxEntities = 0
	eng, err := models.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	s, err := state.Open(state.Options{Dir: b.TempDir(), MemTableBytes: 16 << 20, BlockCacheBytes: 32 << 20, IndexCacheBytes: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	eng.SetStore(s)
	dec := event.NewNative(event.Limits{MaxMessageBytes: 1 << 20, MaxRecordIDs: 4096})
	var ev event.Event
	t := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	dirty := func(round int) {
		for i := range principals {
			t = t.Add(time.Millisecond)
			line := fmt.Appendf(nil, `{"ts":%q,"principal":"cust-%07d","principal_type":"customer","credential":"tok-%d","source_ip":"198.51.%d.%d","object":"/api/v1/addresses/%d","action":"read","rows":%d,"record_ids":["cust-%07d"],"status":"ok"}`,
				t.Format(time.RFC3339Nano), i, i%500, (i/256)%256, i%256, i, 1+round%3, i)
			if err := dec.Decode(line, &ev); err != nil {
				b.Fatal(err)
			}
			eng.Process(&ev)
		}
	}
	var bytes int64
	var written int
	for i := range b.N {
		b.StopTimer()
		dirty(i)
		b.StartTimer()
		cp := s.Begin()
		st, err := eng.Checkpoint(cp)
		if err != nil {
			b.Fatal(err)
		}
		if err := cp.Commit(nil); err != nil {
			b.Fatal(err)
		}
		bytes, written = st.Bytes, st.Written
	}
	b.ReportMetric(float64(written), "entities/op")
	b.ReportMetric(float64(bytes)/1e6, "MB/op")
	b.ReportMetric(float64(bytes)/float64(written), "B/entity")
}

// BenchmarkRunScaleOut measures one replica with scale_out on: one million
// simulated events keyed by principal on six partitions, consumed by six
// tasks (each with its own engine, on the two cores), without and with
// the source network and the credential routed through repartition
// topics, and the same topic read without scale_out for comparison.
// Events/s counts input events; with repartitioning every routed event is
// processed a second time by its repartition task (routed/s).
//
//	go test -run '^$' -bench BenchmarkRunScaleOut -benchtime 1x ./pkg/stream/
func BenchmarkRunScaleOut(b *testing.B) {
	const n = 1_000_000
	events := simEvents(b, n)
	routed := 0
	dec := event.NewNative(event.Limits{})
	var ev event.Event
	for _, e := range events {
		if dec.Decode(e, &ev) == nil {
			if ev.SourceIP.IsValid() {
				routed++
			}
			if ev.Credential != "" {
				routed++
			}
		}
	}
	c := kafkatest.Cluster(b, 6, []string{"audit"})
	kafkatest.ProduceKeyed(b, c.ListenAddrs(), "audit", events, principalKey)
	events = nil
	group := 0
	for _, mode := range []string{"off", "tasks", "tasks+repartition"} {
		b.Run("scale_out="+mode, func(b *testing.B) {
			for range b.N {
				group++
				cfg := testConfig(c.ListenAddrs(), "audit", b.TempDir())
				cfg.Kafka.GroupID = fmt.Sprintf("bench-so-%d", group)
				cfg.State.CheckpointInterval = config.Duration(10 * time.Second)
				cfg.State.CheckpointEvents = 1_000_000
				cfg.State.MemTableBytes = 16 << 20
				want := uint64(n)
				switch mode {
				case "tasks":
					cfg.ScaleOut.Enabled = true
				case "tasks+repartition":
					cfg.ScaleOut.Enabled = true
					cfg.ScaleOut.Repartition = []string{"source_net", "credential"}
					want += uint64(routed)
				}
				t0 := time.Now()
				r := start(b, cfg, want)
				r.wait(b)
				el := time.Since(t0)
				st := r.stop(b)
				b.ReportMetric(float64(n)/el.Seconds(), "events/s")
				if want > n {
					b.ReportMetric(float64(want-n)/el.Seconds(), "routed/s")
				}
				b.ReportMetric(float64(st.Late), "late")
			}
		})
	}
}
