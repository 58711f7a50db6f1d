package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/stream"
)

// Throughput is one consumer's pass over the topic.
type Throughput struct {
	Name string `json:"name"`
	// Events and Bytes (message values) consumed.
	Events int64 `json:"events"`
	Bytes  int64 `json:"bytes"`
	// Seconds is from the consumer's creation to its last event;
	// StartSeconds from its creation to its first event (connections,
	// for the pipeline also the consumer group join).
	Seconds      float64 `json:"seconds"`
	StartSeconds float64 `json:"start_seconds"`
	// EventsPerSec and MBPerSec are over Seconds (1 MB = 10^6 bytes);
	// SteadyEventsPerSec over Seconds-StartSeconds.
	EventsPerSec       float64 `json:"events_per_s"`
	MBPerSec           float64 `json:"mb_per_s"`
	SteadyEventsPerSec float64 `json:"steady_events_per_s"`
}

func throughput(name string, events, bytes int64, start, first, last time.Time) Throughput {
	t := Throughput{Name: name, Events: events, Bytes: bytes, Seconds: last.Sub(start).Seconds(), StartSeconds: first.Sub(start).Seconds()}
	if t.Seconds > 0 {
		t.EventsPerSec = float64(events) / t.Seconds
		t.MBPerSec = float64(bytes) / 1e6 / t.Seconds
	}
	if s := t.Seconds - t.StartSeconds; s > 0 {
		t.SteadyEventsPerSec = float64(events) / s
	}
	return t
}

// counter counts messages across a consumer's goroutines, notes the time
// of the first and ends the pass (cancels) when n have been seen.
type counter struct {
	n            int64
	events, byts atomic.Int64
	first, last  atomic.Int64 // Unix ns
	cancel       context.CancelFunc
}

func (c *counter) add(events, bytes int64) {
	if c.first.Load() == 0 {
		c.first.CompareAndSwap(0, time.Now().UnixNano())
	}
	c.byts.Add(bytes)
	if c.events.Add(events) >= c.n && c.last.Load() == 0 {
		if c.last.CompareAndSwap(0, time.Now().UnixNano()) {
			c.cancel()
		}
	}
}

func (c *counter) result(name string, start time.Time) (Throughput, error) {
	if c.events.Load() < c.n {
		return Throughput{}, fmt.Errorf("%s: consumed %d of %d events", name, c.events.Load(), c.n)
	}
	return throughput(name, c.events.Load(), c.byts.Load(), start, time.Unix(0, c.first.Load()), time.Unix(0, c.last.Load())), nil
}

// readerName names the bare kafka-go Reader, the consumer the
// pipeline's rate is compared with.
const readerName = "kafka-go Reader"

// The pipeline's buffer between Kafka and the engine is a pool of 16
// batches of 1,024 events (pkg/stream newPool(16), batchSize): the bare
// kafka-go Reader gets the same number of messages of queue, split over
// the partitions.
const pipelineQueue = 16 * 1024

// consumeKafkaGoReader reads n messages from every partition of topic
// with one kafka-go Reader per partition (no group, no commits), with the
// fetch settings of `detector run`: MinBytes 1 (as its fetches),
// MaxBytes kafka.fetch_max_bytes, MaxWait kafka.fetch_max_wait.
func consumeKafkaGoReader(ctx context.Context, k *config.Kafka, topic string, partitions int, n int64, timeout time.Duration) (Throughput, error) {
	const name = readerName
	dialer, err := stream.NewDialer(k)
	if err != nil {
		return Throughput{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &counter{n: n, cancel: cancel}
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, partitions)
	for p := range partitions {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: k.Brokers, Topic: topic, Partition: p, Dialer: dialer,
			MinBytes: 1, MaxBytes: k.FetchMaxBytes, MaxWait: k.FetchMaxWait.D(),
			QueueCapacity: max(pipelineQueue/partitions, 100), StartOffset: kafka.FirstOffset, ReadLagInterval: -1,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				c.add(1, int64(len(m.Value)))
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return Throughput{}, fmt.Errorf("%s: %w", name, err)
	}
	return c.result(name, start)
}

// consumeKafkaGoConn reads n messages the way the pipeline's readers do
// (pkg/stream fetch.go) but decodes nothing: one connection per
// partition leader, Conn.ReadBatchWith with the same settings, each value
// copied into one reused buffer.
func consumeKafkaGoConn(ctx context.Context, k *config.Kafka, topic string, partitions int, n int64, maxMessage int, timeout time.Duration) (Throughput, error) {
	const name = "kafka-go Conn.ReadBatch"
	dialer, err := stream.NewDialer(k)
	if err != nil {
		return Throughput{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &counter{n: n, cancel: cancel}
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, partitions)
	for p := range partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := readPartition(ctx, dialer, k, topic, p, maxMessage, c); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return Throughput{}, fmt.Errorf("%s: %w", name, err)
	}
	return c.result(name, start)
}

func readPartition(ctx context.Context, dialer *kafka.Dialer, k *config.Kafka, topic string, p, maxMessage int, c *counter) error {
	conn, err := dialer.DialLeader(ctx, "tcp", k.Brokers[0], topic, p)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	next, err := conn.ReadFirstOffset()
	if err != nil {
		return err
	}
	if _, err := conn.Seek(next, kafka.SeekAbsolute); err != nil {
		return err
	}
	buf := make([]byte, maxMessage+1)
	wait := k.FetchMaxWait.D()
	for ctx.Err() == nil {
		if err := conn.SetReadDeadline(time.Now().Add(wait + k.DialTimeout.D())); err != nil {
			return err
		}
		b := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: k.FetchMaxBytes, MaxWait: wait})
		var events, byts int64
		for {
			m, err := b.Read(buf)
			if err != nil {
				break
			}
			if b.Offset()-1 < next {
				continue
			}
			next = b.Offset()
			events++
			byts += int64(m)
		}
		if err := b.Close(); err != nil && !errors.Is(err, kafka.RequestTimedOut) && !errors.Is(err, io.EOF) {
			return err
		}
		if events > 0 {
			c.add(events, byts)
		}
	}
	return nil
}

// consumeFranz reads n messages from every partition of topic with one
// franz-go client (direct partition consumption, no group), with the
// same per-partition fetch size and wait as `detector run`.
func consumeFranz(ctx context.Context, k *config.Kafka, topic string, partitions int, n int64, timeout time.Duration) (Throughput, error) {
	const name = "franz-go kgo"
	offs := map[int32]kgo.Offset{}
	for p := range partitions {
		offs[int32(p)] = kgo.NewOffset().AtStart()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &counter{n: n, cancel: cancel}
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchMinBytes(1), kgo.FetchMaxWait(k.FetchMaxWait.D()),
		kgo.FetchMaxPartitionBytes(int32(k.FetchMaxBytes)), kgo.FetchMaxBytes(int32(k.FetchMaxBytes*partitions)))
	if err != nil {
		return Throughput{}, fmt.Errorf("%s: %w", name, err)
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			return Throughput{}, fmt.Errorf("%s: %w", name, ferr)
		}
		var events, byts int64
		fs.EachRecord(func(r *kgo.Record) {
			events++
			byts += int64(len(r.Value))
		})
		if events > 0 {
			c.add(events, byts)
		}
	}
	return c.result(name, start)
}
