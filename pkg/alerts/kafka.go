package alerts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// Kafka headers of an alert record, so consumers can route and
// deduplicate without parsing the body.
const (
	HeaderAlertID  = "exfilguard-alert-id"
	HeaderStatus   = "exfilguard-status"
	HeaderSeverity = "exfilguard-severity"
)

// Kafka writes alerts to a topic of the input's cluster, keyed by incident
// id so that an incident's opening, escalations and resolution stay in
// order on one partition, and acknowledged by all in-sync replicas: an
// alert is taken out of the outbox only once losing a broker cannot lose
// it.
type Kafka struct {
	w      *kafka.Writer
	format string
}

// NewKafka returns the kafka sink of cfg.
func NewKafka(cfg config.Sink, d Deps) (*Kafka, error) {
	if len(d.KafkaBrokers) == 0 || d.KafkaDialer == nil {
		return nil, errors.New("kafka sink: no brokers configured")
	}
	k := d.KafkaDialer
	return &Kafka{format: cfg.Format, w: &kafka.Writer{
		Addr:         kafka.TCP(d.KafkaBrokers...),
		Topic:        cfg.Topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    cfg.BatchSize,
		// Notify waits for its own batch; nothing else would fill it.
		BatchTimeout: 5 * time.Millisecond,
		// The outbox retries with backoff; the writer must not retry on
		// its own behind it.
		MaxAttempts:  1,
		WriteTimeout: cfg.Timeout.D(),
		Transport:    &kafka.Transport{Dial: k.DialFunc, SASL: k.SASLMechanism, TLS: k.TLS, ClientID: k.ClientID, DialTimeout: k.Timeout},
	}}, nil
}

// Notify writes alerts as one produce batch.
func (s *Kafka) Notify(ctx context.Context, as ...*Alert) (bool, error) {
	msgs := make([]kafka.Message, 0, len(as))
	for _, a := range as {
		v, err := Render(s.format, a)
		if err != nil {
			return false, err
		}
		m := kafka.Message{
			Key:   []byte(a.Incident.ID),
			Value: v,
			Headers: []kafka.Header{
				{Key: HeaderAlertID, Value: []byte(a.ID)},
				{Key: HeaderStatus, Value: []byte(a.Incident.Status)},
				{Key: HeaderSeverity, Value: []byte(a.Severity)},
			},
		}
		// Each record carries its own alert's trace as W3C traceparent.
		if sc := a.spanContext(); sc.IsValid() {
			h := propagation.MapCarrier{}
			propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(ctx, sc), h)
			for k, v := range h {
				m.Headers = append(m.Headers, kafka.Header{Key: k, Value: []byte(v)})
			}
		}
		msgs = append(msgs, m)
	}
	if err := s.w.WriteMessages(ctx, msgs...); err != nil {
		return !kafkaPermanent(err), fmt.Errorf("write alerts to kafka topic %s: %w", s.w.Topic, err)
	}
	return false, nil
}

// kafkaPermanent reports errors repeating cannot fix: the topic refuses
// us or the record.
func kafkaPermanent(err error) bool {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return true
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && !kafkaPermanent(e) {
				return false
			}
		}
		return len(we) > 0
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

// Close flushes and closes the writer.
func (s *Kafka) Close() error { return s.w.Close() }
