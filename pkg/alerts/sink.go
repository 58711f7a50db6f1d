package alerts

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// Sink delivers alerts somewhere. Notify is called by one goroutine at a
// time per sink, with the alerts in the order they were raised, under a
// context that carries the attempt's timeout. It reports whether a failed
// attempt may succeed if repeated (a timeout, a 5xx, a 408 or 429) or
// never will (any other 4xx: the request itself is wrong); the outbox
// retries the first with backoff and drops the second for this sink.
// Errors must not contain secrets or the secret parts of URLs.
type Sink interface {
	Notify(ctx context.Context, alerts ...*Alert) (retry bool, err error)
}

// Refresher is a sink that must repeat what is still true on an interval:
// Alertmanager resolves an alert on its own when its endsAt passes, so
// firing alerts are re-sent until their incident resolves. The outbox
// calls Refresh every Interval while the sink has nothing else to send.
type Refresher interface {
	Refresh(ctx context.Context) (retry bool, err error)
	RefreshInterval() time.Duration
}

// Stateful is a sink that keeps state across restarts (Alertmanager's
// firing alerts). The outbox stores SaveState after every successful
// Notify and hands it back to LoadState before the first one.
type Stateful interface {
	SaveState() ([]byte, error)
	LoadState([]byte) error
}

// Flusher is a sink with buffers to flush and files to close on shutdown.
type Flusher interface {
	Close() error
}

// Deps is what sinks take from the process rather than the config.
type Deps struct {
	// Now is the wall clock (startsAt, webhook timestamps); tests inject it.
	Now func() time.Time
	// Stdout is where the stdout sink writes.
	Stdout io.Writer
	// HTTP is the client for HTTP sinks; nil means one with no overall
	// timeout (each attempt has the sink's).
	HTTP *http.Client
	// Getenv reads secret_env and url_env; nil means os.Getenv.
	Getenv func(string) string
	// KafkaBrokers and KafkaDialer (TLS, SASL) are what the kafka sink
	// writes with: the input's cluster and credentials.
	KafkaBrokers []string
	KafkaDialer  *kafka.Dialer
	Logger       *slog.Logger
}

func (d *Deps) defaults() {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Stdout == nil {
		d.Stdout = os.Stdout
	}
	if d.HTTP == nil {
		d.HTTP = &http.Client{}
	}
	if d.Getenv == nil {
		d.Getenv = os.Getenv
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
}

// readSecret reads a secret from a file (trailing newline dropped) or an
// environment variable; what names it is in errors, the value never is.
func readSecret(file, env string, getenv func(string) string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", fmt.Errorf("read secret file %s: empty", file)
		}
		return s, nil
	}
	if env != "" {
		s := getenv(env)
		if s == "" {
			return "", fmt.Errorf("read secret: environment variable %s is empty or unset", env)
		}
		return s, nil
	}
	return "", nil
}

// Route says which alerts a sink receives.
type Route struct {
	minSeverity int
	rules       []string
	kinds       []string
}

// NewRoute builds the route of a sink's config.
func NewRoute(s config.Sink) Route {
	return Route{minSeverity: severityRank(s.MinSeverity), rules: s.Rules, kinds: s.EntityKinds}
}

// Match reports whether the route takes a. A resolution goes where any
// alert of its incident went: it carries the incident's highest severity
// and every rule of its alerts, so a receiver that saw an incident open
// also sees it resolve.
func (r Route) Match(a *Alert) bool {
	if severityRank(a.Severity) < r.minSeverity {
		return false
	}
	if len(r.rules) > 0 && !slices.Contains(r.rules, a.Rule) &&
		!(a.Incident.Status == StatusResolved && slices.ContainsFunc(a.Incident.Rules, func(x string) bool { return slices.Contains(r.rules, x) })) {
		return false
	}
	if len(r.kinds) > 0 && !slices.Contains(r.kinds, a.Entity.Kind) {
		return false
	}
	return true
}

func severityRank(s string) int {
	return slices.Index(config.Severities, s)
}
