package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// producer writes lines to the topic keyed by principal with kafka-go's
// Writer and its hash balancer, the way `detector gen` and `demo` do (see
// cmd/detector/kafkaout.go), waiting for every acknowledgement. Lines are
// copied into an arena that is reused once a flush has returned.
type producer struct {
	w     *kafka.Writer
	msgs  []kafka.Message
	arena []byte
	// Values and Bytes count what was acknowledged.
	Values, Bytes int64
}

// newProducer returns a producer whose partition batches wait at most
// linger for more messages.
func newProducer(brokers []string, topic string, linger time.Duration) *producer {
	return &producer{w: &kafka.Writer{
		Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchSize: 10_000, BatchBytes: 16 << 20, BatchTimeout: linger,
	}}
}

// add queues a copy of line.
func (p *producer) add(line []byte) {
	start := len(p.arena)
	p.arena = append(p.arena, line...)
	val := p.arena[start:len(p.arena):len(p.arena)]
	var key []byte
	if k := principalOf(line); k != nil {
		ks := len(p.arena)
		p.arena = append(p.arena, k...)
		key = p.arena[ks:len(p.arena):len(p.arena)]
	}
	// The arena may have moved; earlier messages keep the old array.
	p.msgs = append(p.msgs, kafka.Message{Key: key, Value: val})
}

// queued is the number of lines waiting for flush.
func (p *producer) queued() int { return len(p.msgs) }

// flush sends what is queued and waits for the acknowledgements.
func (p *producer) flush(ctx context.Context) error {
	if len(p.msgs) == 0 {
		return nil
	}
	err := p.w.WriteMessages(ctx, p.msgs...)
	if err != nil {
		return fmt.Errorf("produce to %s: %w", p.w.Topic, err)
	}
	for i := range p.msgs {
		p.Bytes += int64(len(p.msgs[i].Value))
	}
	p.Values += int64(len(p.msgs))
	clear(p.msgs)
	p.msgs = p.msgs[:0]
	p.arena = p.arena[:0]
	return nil
}

func (p *producer) close() error { return p.w.Close() }
