package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exfilguard/exfilguard/internal/kafkatest"
	"github.com/exfilguard/exfilguard/pkg/sim"
)

// TestDemo: the demo runs the real pipeline on its embedded broker, prints
// alerts and a summary in which every attack was caught.
func TestDemo(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("runs the pipeline over two weeks of traffic; .ci/run runs the demo itself, without -race")
	}
	var out, errOut bytes.Buffer
	code := run([]string{"demo", "--days", "14", "--scale", "0.03", "--live", "1s", "--listen", "127.0.0.1:0", "--no-color"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	s := out.String()
	i := strings.Index(s, "Summary:")
	if i < 0 {
		t.Fatalf("no summary:\n%s", s)
	}
	t.Log("\n" + s[i:])
	for _, name := range sim.ScenarioNames() {
		line := ""
		for _, l := range strings.Split(s[i:], "\n") {
			if strings.HasPrefix(l, name+" ") {
				line = l
			}
		}
		if !strings.Contains(line, " yes ") {
			t.Errorf("attack %s not caught in the demo: %q", name, line)
		}
	}
	for _, want := range []string{"── live from", "opened · incident", "Metrics: http://127.0.0.1:"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(s, "\x1b[") {
		t.Error("colors with --no-color")
	}
}

// TestGenToKafka: gen writes to a topic, one record per event, keyed by
// principal.
func TestGenToKafka(t *testing.T) {
	c := kafkatest.Cluster(t, 2, []string{"gen"})
	var out, errOut bytes.Buffer
	if code := run([]string{"gen", "--days", "1", "--scale", "0.01", "--out", "kafka://" + c.ListenAddrs()[0] + "/gen"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var want int
	if _, err := fmtSscan(errOut.String(), &want); err != nil {
		t.Fatalf("gen summary %q: %v", errOut.String(), err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("gen"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := 0
	for got < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			var e struct {
				Principal string `json:"principal"`
			}
			if err := json.Unmarshal(r.Value, &e); err != nil || string(r.Key) != e.Principal {
				t.Errorf("record keyed %q for principal %q (%v)", r.Key, e.Principal, err)
			}
		})
	}
}

// fmtSscan reads the event count of "gen: N events, ...".
func fmtSscan(s string, n *int) (int, error) {
	return fmt.Sscanf(strings.TrimPrefix(s, "gen: "), "%d events", n)
}
