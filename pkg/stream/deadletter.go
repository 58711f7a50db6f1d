package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/exfilguard/exfilguard/pkg/state"
)

// Dead-letter headers: why the message was rejected and where it came
// from, so it can be found, fixed and replayed.
const (
	HeaderReason    = "exfilguard-reason"
	HeaderTopic     = "exfilguard-topic"
	HeaderPartition = "exfilguard-partition"
	HeaderOffset    = "exfilguard-offset"
)

// deadLetters writes rejected messages, with their original bytes, to the
// dead-letter topic. A write is acknowledged by all in-sync replicas before
// the reader moves on, so a dead letter is never lost to an offset commit
// that covers it.
type deadLetters struct {
	w *kafka.Writer
}

func newDeadLetters(topic string, brokers []string, maxBytes int, d *kafka.Dialer) *deadLetters {
	if topic == "" {
		return nil
	}
	return &deadLetters{w: &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		// Dead letters are rare and each is written before its partition
		// moves on: send at once rather than wait for a batch to fill.
		BatchSize: 1,
		// Room for the largest message a fetch can return, plus headers.
		BatchBytes:  int64(maxBytes) + 64<<10,
		MaxAttempts: 3,
		Transport:   &kafka.Transport{Dial: d.DialFunc, SASL: d.SASLMechanism, TLS: d.TLS, ClientID: d.ClientID},
	}}
}

// send writes one dead letter, keyed by its source position.
func (dl *deadLetters) send(ctx context.Context, p state.Partition, offset int64, value []byte, reason string) error {
	pos := p.String() + "@" + strconv.FormatInt(offset, 10)
	err := dl.w.WriteMessages(ctx, kafka.Message{
		Key:   []byte(pos),
		Value: value,
		Headers: []kafka.Header{
			{Key: HeaderReason, Value: []byte(reason)},
			{Key: HeaderTopic, Value: []byte(p.Topic)},
			{Key: HeaderPartition, Value: []byte(strconv.Itoa(p.Partition))},
			{Key: HeaderOffset, Value: []byte(strconv.FormatInt(offset, 10))},
		},
	})
	if err != nil {
		return fmt.Errorf("write dead letter %s: %w", pos, err)
	}
	return nil
}

// permanent reports whether a dead-letter write can never succeed, so
// that holding the partition for it would stall it forever: the message
// is too large for the dead-letter topic, or the topic refuses us.
func permanent(err error) bool {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return true
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.MessageSizeTooLarge, kafka.RecordListTooLarge, kafka.TopicAuthorizationFailed, kafka.InvalidTopic, kafka.InvalidRecord:
			return true
		}
	}
	return false
}

func (dl *deadLetters) close() error {
	if dl == nil {
		return nil
	}
	return dl.w.Close()
}
