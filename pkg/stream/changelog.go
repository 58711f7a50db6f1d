package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// The changelog is where a scale-out task's state lives between owners
// (docs/scaling.md). Partition p of the changelog holds the tasks of
// partition p of the input and of every repartition topic; a record's key
// says whose it is:
//
//	key   = tag (1 byte: 0 the input topic, 1.. the repartition topics in
//	        config order) + type (1 byte) + what
//	'e' + 8-byte entity hash → 8-byte last event time + encoding; no value:
//	                           the entity was deleted
//	'b' + blob name          → a blob of the task (engine, alerts)
//	'm'                      → the marker: 1-byte version + 8-byte position
//	                           (next offset of the task's partition)
//
// A checkpoint writes each task's changed entities and blobs, and only
// once every alert they raised is durable in the outbox, the task's
// marker. A restore applies what lies before the task's last marker: the
// records after it are a checkpoint a crash interrupted, whose positions
// were never committed.
const (
	clEntity = 'e'
	clBlob   = 'b'
	clMarker = 'm'

	clMarkerVersion = 1
	// clChunkBytes bounds one produce request: each is one record batch,
	// appended whole or not at all, and under the broker's default
	// message.max.bytes (1 MiB).
	clChunkBytes = 512 << 10
)

func clKey(tag byte, typ byte, rest []byte) []byte {
	k := make([]byte, 2, 2+len(rest))
	k[0], k[1] = tag, typ
	return append(k, rest...)
}

func clEntityKey(tag byte, h uint64) []byte {
	return binary.BigEndian.AppendUint64(clKey(tag, clEntity, nil), h)
}

func clMarkerValue(pos int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{clMarkerVersion}, uint64(pos))
}

func parseMarker(v []byte) (int64, error) {
	if len(v) != 9 || v[0] != clMarkerVersion {
		return 0, fmt.Errorf("changelog marker: %d bytes, version %d", len(v), firstByte(v))
	}
	return int64(binary.BigEndian.Uint64(v[1:])), nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// changelog produces to and reads from the changelog topic.
type changelog struct {
	topic  string
	client *kafka.Client
	dialer *kafka.Dialer
	k      *config.Kafka
}

func newChangelog(cfg *config.Config, d *kafka.Dialer) *changelog {
	k := &cfg.Kafka
	return &changelog{
		topic: cfg.ScaleOut.Changelog(k), dialer: d, k: k,
		client: &kafka.Client{
			Addr:      kafka.TCP(k.Brokers...),
			Timeout:   cfg.State.ShutdownTimeout.D(),
			Transport: &kafka.Transport{Dial: d.DialFunc, SASL: d.SASLMechanism, TLS: d.TLS, ClientID: d.ClientID, DialTimeout: d.Timeout},
		},
	}
}

// produce appends records to partition part, one record batch per chunk
// of clChunkBytes, waiting for every in-sync replica. It returns the
// offset of the last record.
func (c *changelog) produce(ctx context.Context, part int, recs []kafka.Record) (int64, error) {
	var last int64 = -1
	for len(recs) > 0 {
		n, bytes := 0, 0
		for n < len(recs) && (n == 0 || bytes < clChunkBytes) {
			bytes += recordSize(&recs[n])
			n++
		}
		res, err := c.client.Produce(ctx, &kafka.ProduceRequest{
			Topic: c.topic, Partition: part, RequiredAcks: kafka.RequireAll,
			Records: kafka.NewRecordReader(recs[:n]...),
		})
		if err == nil && res.Error != nil {
			err = res.Error
		}
		if err != nil {
			return -1, fmt.Errorf("produce to changelog %s/%d: %w", c.topic, part, err)
		}
		last = res.BaseOffset + int64(n) - 1
		recs = recs[n:]
	}
	return last, nil
}

func recordSize(r *kafka.Record) int {
	n := 16
	if r.Key != nil {
		n += r.Key.Len()
	}
	if r.Value != nil {
		n += r.Value.Len()
	}
	return n
}

// offsets returns the first offset of partition part and its end (the
// offset the next record will have).
func (c *changelog) offsets(ctx context.Context, part int) (first, end int64, err error) {
	conn, err := c.dial(ctx, part)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	first, end, err = conn.ReadOffsets()
	if err != nil {
		return 0, 0, fmt.Errorf("read changelog %s/%d offsets: %w", c.topic, part, err)
	}
	return first, end, nil
}

// read calls fn for every record of partition part in [from, end), and
// progress after every fetch.
func (c *changelog) read(ctx context.Context, part int, from, end int64, fn func(off int64, key, value []byte) error,
	progress func(off, end int64)) error {
	if from >= end {
		return nil
	}
	conn, err := c.dial(ctx, part)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Seek(from, kafka.SeekAbsolute); err != nil {
		return fmt.Errorf("seek changelog %s/%d: %w", c.topic, part, err)
	}
	off := from
	for off < end {
		if err := ctx.Err(); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(c.k.SessionTimeout.D()))
		b := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: c.k.FetchMaxBytes, MaxWait: c.k.FetchMaxWait.D()})
		got := false
		for {
			m, err := b.ReadMessage()
			if err != nil {
				break
			}
			got = true
			if m.Offset >= end {
				off = end
				break
			}
			if err := fn(m.Offset, m.Key, m.Value); err != nil {
				b.Close()
				return err
			}
			off = m.Offset + 1
		}
		if err := b.Close(); err != nil && !errors.Is(err, kafka.RequestTimedOut) {
			return fmt.Errorf("read changelog %s/%d at %d: %w", c.topic, part, off, err)
		}
		if !got {
			// Compaction may leave the last offsets empty: the batch's
			// high watermark says whether anything is left.
			if b.HighWaterMark() >= end {
				break
			}
		}
		progress(off, end)
	}
	return nil
}

func (c *changelog) dial(ctx context.Context, part int) (*kafka.Conn, error) {
	var err error
	for _, b := range c.k.Brokers {
		var conn *kafka.Conn
		conn, err = c.dialer.DialLeader(ctx, "tcp", b, c.topic, part)
		if err == nil {
			return conn, nil
		}
	}
	return nil, fmt.Errorf("connect to changelog %s/%d: %w", c.topic, part, err)
}

// ensureTopics checks that the input topic exists and creates the internal
// topics (the changelog, compacted; the repartition topics) with as many
// partitions as the input, or checks that they have that many. It returns
// the input's partition count.
func ensureTopics(ctx context.Context, cfg *config.Config, d *kafka.Dialer) (int, error) {
	k := &cfg.Kafka
	var conn *kafka.Conn
	var err error
	for _, b := range k.Brokers {
		if conn, err = d.DialContext(ctx, "tcp", b); err == nil {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("connect to kafka: %w", err)
	}
	defer conn.Close()
	count := func(topic string) (int, error) {
		parts, err := conn.ReadPartitions(topic)
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read partitions of %s: %w", topic, err)
		}
		return len(parts), nil
	}
	input := k.Topics[0].Name
	n, err := count(input)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("input topic %s does not exist: scale_out needs its partition count", input)
	}
	type want struct {
		topic   string
		compact bool
	}
	topics := []want{{cfg.ScaleOut.Changelog(k), true}}
	for _, kind := range cfg.ScaleOut.Repartition {
		topics = append(topics, want{cfg.ScaleOut.RepartitionTopic(k, kind), false})
	}
	var create []kafka.TopicConfig
	for _, t := range topics {
		m, err := count(t.topic)
		if err != nil {
			return 0, err
		}
		switch {
		case m == 0:
			tc := kafka.TopicConfig{Topic: t.topic, NumPartitions: n, ReplicationFactor: cfg.ScaleOut.ReplicationFactor}
			if t.compact {
				tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}
			}
			create = append(create, tc)
		case m != n:
			return 0, fmt.Errorf("topic %s has %d partitions and the input %s has %d: they must be co-partitioned (recreate it, or let the detector create it)", t.topic, m, input, n)
		}
	}
	if len(create) == 0 {
		return n, nil
	}
	ctrl, err := conn.Controller()
	if err != nil {
		return 0, fmt.Errorf("find kafka controller: %w", err)
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return 0, fmt.Errorf("connect to kafka controller: %w", err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(create...); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return 0, fmt.Errorf("create internal topics: %w", err)
	}
	return n, nil
}
