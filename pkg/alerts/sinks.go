package alerts

import (
	"fmt"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// NewSink builds the sink cfg describes.
func NewSink(cfg config.Sink, d Deps) (Sink, error) {
	d.defaults()
	switch cfg.Type {
	case config.SinkStdout:
		return NewStdout(cfg, d)
	case config.SinkFile:
		return NewFile(cfg, d)
	case config.SinkKafka:
		return NewKafka(cfg, d)
	case config.SinkWebhook:
		return NewWebhook(cfg, d)
	case config.SinkSlack:
		return NewSlack(cfg, d)
	case config.SinkPagerDuty:
		return NewPagerDuty(cfg, d)
	case config.SinkAlertmanager:
		return NewAlertmanager(cfg, d)
	}
	return nil, fmt.Errorf("sink type %q not built", cfg.Type)
}
