package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/exfilguard/exfilguard/pkg/event"
)

// parseKafkaURL reads kafka://HOST:PORT[,HOST:PORT...]/TOPIC.
func parseKafkaURL(s string) (brokers []string, topic string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "kafka" || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return nil, "", fmt.Errorf("want kafka://HOST:PORT[,HOST:PORT]/TOPIC, got %q", s)
	}
	return strings.Split(u.Host, ","), strings.Trim(u.Path, "/"), nil
}

// producer writes event lines to a topic keyed by principal, as a shipper
// should: one principal's events stay in order on one partition, and one
// replica of the detector holds all of them.
type producer struct {
	w     *kafka.Writer
	dec   *event.Native
	ev    event.Event
	batch []kafka.Message
}

func newProducer(brokers []string, topic string) *producer {
	return &producer{
		dec: event.NewNative(event.Limits{MaxMessageBytes: 1 << 20, MaxRecordIDs: 1}),
		w: &kafka.Writer{
			Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, BatchSize: 2000, BatchBytes: 16 << 20, BatchTimeout: 5 * time.Millisecond,
			AllowAutoTopicCreation: true,
		},
	}
}

// add queues a copy of line, sending a full batch.
func (p *producer) add(ctx context.Context, line []byte) error {
	var key []byte
	if p.dec.Decode(line, &p.ev) == nil {
		key = []byte(p.ev.Principal)
	}
	p.batch = append(p.batch, kafka.Message{Key: key, Value: append([]byte(nil), line...)})
	if len(p.batch) >= 2000 {
		return p.flush(ctx)
	}
	return nil
}

// flush sends what is queued and waits for the acknowledgements.
func (p *producer) flush(ctx context.Context) error {
	if len(p.batch) == 0 {
		return nil
	}
	err := p.w.WriteMessages(ctx, p.batch...)
	p.batch = p.batch[:0]
	if err != nil {
		return fmt.Errorf("produce to kafka topic %s: %w", p.w.Topic, err)
	}
	return nil
}

func (p *producer) close() error { return p.w.Close() }
