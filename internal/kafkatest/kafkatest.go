// Package kafkatest starts an in-process Kafka-protocol cluster (kfake)
// and produces to it with franz-go, a client the detector does not use,
// for the tests of every package that talks to Kafka.
package kafkatest

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster starts a one-broker cluster seeded with topics of partitions
// partitions each, accepting messages up to 8 MiB, closed when t ends.
func Cluster(t testing.TB, partitions int32, topics []string, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": "8388608"})}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Produce writes values to topic round-robin over its partitions and waits
// for every acknowledgement. extra adds client options (TLS, SASL).
func Produce(t testing.TB, addrs []string, topic string, values [][]byte, extra ...kgo.Opt) {
	t.Helper()
	produce(t, addrs, topic, values, nil, append([]kgo.Opt{kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}, extra...)...)
}

// ProduceKeyed writes values to topic keyed by key(value), partitioned as
// Kafka's Java client does (murmur2 of the key), the way a shipper keyed
// by principal would; it waits for every acknowledgement.
func ProduceKeyed(t testing.TB, addrs []string, topic string, values [][]byte, key func([]byte) []byte) {
	t.Helper()
	produce(t, addrs, topic, values, key)
}

// PrincipalKey keys a native event by its principal.
func PrincipalKey(v []byte) []byte {
	var e struct {
		Principal string `json:"principal"`
	}
	_ = json.Unmarshal(v, &e)
	return []byte(e.Principal)
}

func produce(t testing.TB, addrs []string, topic string, values [][]byte, key func([]byte) []byte, extra ...kgo.Opt) {
	t.Helper()
	opts := append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(8 << 20), kgo.MaxBufferedRecords(100000)}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, v := range values {
		wg.Add(1)
		r := &kgo.Record{Value: v}
		if key != nil {
			r.Key = key(v)
		}
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
}

// Lines reads a JSONL file, gzip-compressed or not, into one slice per
// line.
func Lines(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var sc *bufio.Scanner
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatal(err)
		}
		sc = bufio.NewScanner(zr)
	} else {
		sc = bufio.NewScanner(br)
	}
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines [][]byte
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// Committed returns the group's committed offset of each of the first
// parts partitions of topic (-1 where none is committed).
func Committed(t testing.TB, addrs []string, group, topic string, parts int) map[int]int64 {
	t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: 10 * time.Second}
	ps := make([]int, parts)
	for i := range ps {
		ps[i] = i
	}
	resp, err := cl.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// CommittedTotal is the sum of the committed offsets of topic's first
// parts partitions: how many messages the group has durably consumed.
func CommittedTotal(t testing.TB, addrs []string, group, topic string, parts int) int64 {
	t.Helper()
	var sum int64
	for _, off := range Committed(t, addrs, group, topic, parts) {
		sum += max(off, 0)
	}
	return sum
}

// FanOutWorkload is four days of 200 principals, each reading a row every
// ten minutes from its own network, and at noon of the fourth day 120 of
// them reading from one network (198.51.100.0/24) within ten minutes: a
// token-forging crawl spread over principals, so over partitions keyed by
// principal. Native events, in time order.
func FanOutWorkload() [][]byte {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	type ev struct {
		at   time.Time
		line []byte
	}
	var evs []ev
	line := func(t time.Time, i int, ip string, id int) []byte {
		return fmt.Appendf(nil, `{"ts":%q,"principal":"u%03d","principal_type":"user","role":"support","source_ip":%q,"object":"public.customers","action":"read","rows":1,"record_ids":["c-%d"],"status":"ok"}`,
			t.Format(time.RFC3339Nano), i, ip, id)
	}
	attack := start.Add(3*24*time.Hour + 12*time.Hour)
	for step := range 4 * 144 {
		at := start.Add(time.Duration(step) * 10 * time.Minute)
		for i := range 200 {
			t := at.Add(time.Duration(i) * time.Second)
			evs = append(evs, ev{t, line(t, i, fmt.Sprintf("10.1.%d.5", i), step*1000+i)})
		}
		if at.Equal(attack) {
			for i := range 120 {
				t := at.Add(time.Duration(i)*3*time.Second + time.Millisecond)
				evs = append(evs, ev{t, line(t, i, "198.51.100.7", 900000+i)})
			}
		}
	}
	slices.SortStableFunc(evs, func(a, b ev) int { return a.at.Compare(b.at) })
	out := make([][]byte, len(evs))
	for i, e := range evs {
		out[i] = e.line
	}
	return out
}
