package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Alerts shapes incidents and says where alerts go.
type Alerts struct {
	// QuietPeriod closes (resolves) an incident after this long of event
	// time without a detection.
	QuietPeriod Duration `yaml:"quiet_period"`
	// EscalationStep re-emits an open incident when its exposure has grown
	// by this factor (or its severity rose).
	EscalationStep float64 `yaml:"escalation_step"`
	// Samples adds up to this many pseudonymised record ids of the
	// triggering request to each alert (keyed HMAC; needs a pseudonym key).
	// 0, the default, adds none: record ids never leave the detector.
	Samples int `yaml:"samples"`
	// RunbookURL is the runbook link of every alert; "{rule}" is replaced
	// by the rule name.
	RunbookURL string `yaml:"runbook_url"`
	// Outbox bounds the alerts kept until every sink acknowledged them.
	Outbox Outbox `yaml:"outbox"`
	// Sinks receive alerts. Empty means one stdout sink in the native
	// format, as `detector run` has always written.
	Sinks []Sink `yaml:"sinks"`
}

// Outbox is the durable queue between the alert builder and the sinks.
type Outbox struct {
	// MaxEntries bounds the alerts awaiting delivery; beyond it the oldest
	// is dropped, counted and reported by a self-alert.
	MaxEntries int `yaml:"max_entries"`
	// SinkFailingAfter raises an alert about the detector itself when a
	// sink has failed without a success for this long.
	SinkFailingAfter Duration `yaml:"sink_failing_after"`
}

// Sink types.
const (
	SinkStdout       = "stdout"
	SinkFile         = "file"
	SinkKafka        = "kafka"
	SinkWebhook      = "webhook"
	SinkAlertmanager = "alertmanager"
	SinkSlack        = "slack"
	SinkPagerDuty    = "pagerduty"
)

var sinkTypes = []string{SinkStdout, SinkFile, SinkKafka, SinkWebhook, SinkAlertmanager, SinkSlack, SinkPagerDuty}

// Alert formats a sink can render (stdout, file, kafka and webhook).
const (
	FormatNative = "native"
	FormatOCSF   = "ocsf"
)

// Sink is one destination of alerts. Fields a type does not use must be
// left out. Secrets (signing keys, routing keys, Slack webhook URLs) are
// read from a file or an environment variable, never from this file, so
// that the config can be committed and shown.
type Sink struct {
	// Name identifies the sink in metrics, logs and the outbox; unique.
	Name string `yaml:"name"`
	Type string `yaml:"type"`
	// Format is "native" (the alert of DESIGN.md) or "ocsf" (an OCSF 1.x
	// Detection Finding); stdout, file, kafka and webhook only.
	Format string `yaml:"format"`

	// Routing: alerts below MinSeverity, or of a rule or entity kind not
	// listed (when a list is given), are not sent to this sink.
	MinSeverity string   `yaml:"min_severity"`
	Rules       []string `yaml:"rules"`
	EntityKinds []string `yaml:"entity_kinds"`

	// Delivery: each attempt is bounded by Timeout; failures are retried
	// with exponential backoff and jitter between BackoffMin and
	// BackoffMax; up to BatchSize alerts go in one attempt.
	Timeout    Duration `yaml:"timeout"`
	BackoffMin Duration `yaml:"backoff_min"`
	BackoffMax Duration `yaml:"backoff_max"`
	BatchSize  int      `yaml:"batch_size"`

	// File: Path, rotated when it would exceed MaxBytes, keeping MaxFiles
	// rotated files.
	Path     string `yaml:"path"`
	MaxBytes int64  `yaml:"max_bytes"`
	MaxFiles int    `yaml:"max_files"`

	// Kafka: Topic on the brokers of the kafka section (same TLS and
	// SASL), keyed by incident id, acknowledged by all in-sync replicas.
	Topic string `yaml:"topic"`

	// HTTP sinks: URL (webhook, pagerduty) or URLs (alertmanager: every
	// one is sent every alert), or for URLs that embed a secret (Slack
	// incoming webhooks) URLFile / URLEnv.
	URL     string   `yaml:"url"`
	URLs    []string `yaml:"urls"`
	URLFile string   `yaml:"url_file"`
	URLEnv  string   `yaml:"url_env"`
	// SecretFile / SecretEnv hold the webhook signing secret ("whsec_"
	// + base64, Standard Webhooks) or the PagerDuty routing key.
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
	// ResendInterval repeats firing alerts to Alertmanager, which
	// otherwise resolves them on its own after their endsAt.
	ResendInterval Duration `yaml:"resend_interval"`
}

func defaultAlerts() Alerts {
	return Alerts{
		QuietPeriod:    Duration(24 * time.Hour),
		EscalationStep: 4,
		RunbookURL:     "https://github.com/exfilguard/exfilguard/blob/main/docs/detectors.md#{rule}",
		Outbox:         Outbox{MaxEntries: 10_000, SinkFailingAfter: Duration(5 * time.Minute)},
	}
}

// DefaultPagerDutyURL is the Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// FillDefaults gives every sink the defaults of its type for the fields
// the file left out; list items cannot start from defaults the way the
// rest of the config does.
func (a *Alerts) FillDefaults() {
	for i := range a.Sinks {
		s := &a.Sinks[i]
		if s.Format == "" {
			s.Format = FormatNative
		}
		if s.MinSeverity == "" {
			s.MinSeverity = "low"
		}
		if s.Timeout == 0 {
			s.Timeout = Duration(10 * time.Second)
		}
		if s.BackoffMin == 0 {
			s.BackoffMin = Duration(time.Second)
		}
		if s.BackoffMax == 0 {
			s.BackoffMax = Duration(5 * time.Minute)
		}
		if s.BatchSize == 0 {
			s.BatchSize = 64
			if s.Type == SinkSlack || s.Type == SinkPagerDuty || s.Type == SinkWebhook {
				s.BatchSize = 1 // one message, one event, one request
			}
		}
		if s.Type == SinkFile {
			if s.MaxBytes == 0 {
				s.MaxBytes = 100 << 20
			}
			if s.MaxFiles == 0 {
				s.MaxFiles = 5
			}
		}
		if s.Type == SinkPagerDuty && s.URL == "" {
			s.URL = DefaultPagerDutyURL
		}
		if s.Type == SinkAlertmanager && s.ResendInterval == 0 {
			s.ResendInterval = Duration(time.Minute)
		}
	}
}

// Severities in increasing order.
var Severities = []string{"low", "medium", "high", "critical"}

// Rules the engine raises, and the detector's own.
var ruleNames = []string{"volume_spike", "distinct_records_spike", "fan_out", "denied_burst", "bulk_read", "first_sensitive_object",
	"low_and_slow", "dormant_credential", "new_source", "off_hours", "enumeration", "detector_degraded", "detector_sink_failing"}

var kindNames = []string{"principal", "source_net", "credential", "source_ip", "client", "detector"}

func (a *Alerts) validate(v *validator) {
	if a.QuietPeriod <= 0 {
		v.add("alerts.quiet_period", "must be > 0, got %q", a.QuietPeriod)
	}
	if !(a.EscalationStep > 1) {
		v.add("alerts.escalation_step", "must be > 1, got %v", a.EscalationStep)
	}
	if a.Samples < 0 || a.Samples > 16 {
		v.add("alerts.samples", "must be between 0 and 16, got %d", a.Samples)
	}
	if a.RunbookURL != "" {
		if u, err := url.Parse(a.RunbookURL); err != nil || u.Scheme == "" {
			v.add("alerts.runbook_url", "must be an absolute URL, got %q", a.RunbookURL)
		}
	}
	if a.Outbox.MaxEntries < 1 {
		v.add("alerts.outbox.max_entries", "must be >= 1, got %d", a.Outbox.MaxEntries)
	}
	if a.Outbox.SinkFailingAfter <= 0 {
		v.add("alerts.outbox.sink_failing_after", "must be > 0, got %q", a.Outbox.SinkFailingAfter)
	}
	if len(a.Sinks) > 63 {
		v.add("alerts.sinks", "at most 63 sinks, got %d", len(a.Sinks))
	}
	names := map[string]bool{}
	for i := range a.Sinks {
		s := &a.Sinks[i]
		p := fmt.Sprintf("alerts.sinks[%d]", i)
		if s.Name == "" {
			v.add(p+".name", "must not be empty")
		} else if names[s.Name] {
			v.add(p+".name", "%q is used by another sink", s.Name)
		}
		names[s.Name] = true
		s.validate(v, p)
	}
}

func (s *Sink) validate(v *validator, p string) {
	if !slices.Contains(sinkTypes, s.Type) {
		v.add(p+".type", "unknown sink type %q (known: %s)", s.Type, strings.Join(sinkTypes, ", "))
		return
	}
	if s.Format != FormatNative && s.Format != FormatOCSF {
		v.add(p+".format", "unknown format %q (known: native, ocsf)", s.Format)
	} else if s.Format == FormatOCSF && !slices.Contains([]string{SinkStdout, SinkFile, SinkKafka, SinkWebhook}, s.Type) {
		v.add(p+".format", "%s sinks have their own format; ocsf is for stdout, file, kafka and webhook", s.Type)
	}
	if !slices.Contains(Severities, s.MinSeverity) {
		v.add(p+".min_severity", "unknown severity %q (known: %s)", s.MinSeverity, strings.Join(Severities, ", "))
	}
	for j, r := range s.Rules {
		if !slices.Contains(ruleNames, r) {
			v.add(fmt.Sprintf("%s.rules[%d]", p, j), "unknown rule %q", r)
		}
	}
	for j, k := range s.EntityKinds {
		if !slices.Contains(kindNames, k) {
			v.add(fmt.Sprintf("%s.entity_kinds[%d]", p, j), "unknown entity kind %q (known: %s)", k, strings.Join(kindNames, ", "))
		}
	}
	if s.Timeout <= 0 {
		v.add(p+".timeout", "must be > 0, got %q", s.Timeout)
	}
	if s.BackoffMin <= 0 || s.BackoffMax < s.BackoffMin {
		v.add(p+".backoff_max", "must be >= backoff_min > 0, got %q and %q", s.BackoffMax, s.BackoffMin)
	}
	if s.BatchSize < 1 || s.BatchSize > 1000 {
		v.add(p+".batch_size", "must be between 1 and 1000, got %d", s.BatchSize)
	}
	switch s.Type {
	case SinkFile:
		if s.Path == "" {
			v.add(p+".path", "must be set for a file sink")
		}
		if s.MaxBytes < 4096 {
			v.add(p+".max_bytes", "must be >= 4096, got %d", s.MaxBytes)
		}
		if s.MaxFiles < 1 {
			v.add(p+".max_files", "must be >= 1, got %d", s.MaxFiles)
		}
	case SinkKafka:
		if s.Topic == "" {
			v.add(p+".topic", "must be set for a kafka sink")
		}
	case SinkWebhook:
		s.oneURL(v, p)
		if (s.SecretFile == "") == (s.SecretEnv == "") {
			v.add(p+".secret_file", "exactly one of secret_file and secret_env must be set: webhooks are signed")
		}
	case SinkSlack:
		if s.URL != "" {
			v.add(p+".url", "a Slack webhook URL is a secret: use url_file or url_env")
		}
		if (s.URLFile == "") == (s.URLEnv == "") {
			v.add(p+".url_file", "exactly one of url_file and url_env must be set")
		}
	case SinkPagerDuty:
		s.oneURL(v, p)
		if (s.SecretFile == "") == (s.SecretEnv == "") {
			v.add(p+".secret_file", "exactly one of secret_file and secret_env (the routing key) must be set")
		}
	case SinkAlertmanager:
		if len(s.URLs) == 0 {
			v.add(p+".urls", "must list at least one Alertmanager")
		}
		for j, u := range s.URLs {
			checkURL(v, fmt.Sprintf("%s.urls[%d]", p, j), u)
		}
		if s.ResendInterval <= 0 {
			v.add(p+".resend_interval", "must be > 0, got %q", s.ResendInterval)
		}
	}
}

func (s *Sink) oneURL(v *validator, p string) {
	n := 0
	for _, x := range []string{s.URL, s.URLFile, s.URLEnv} {
		if x != "" {
			n++
		}
	}
	if n != 1 {
		v.add(p+".url", "exactly one of url, url_file and url_env must be set")
	}
	if s.URL != "" {
		checkURL(v, p+".url", s.URL)
	}
}

func checkURL(v *validator, path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path, "must be an http or https URL, got %q", Redact(raw))
		return
	}
	if u.User != nil {
		v.add(path, "must not carry credentials, got %q", Redact(raw))
	}
}

// Redact shortens a URL to scheme and host, because paths and queries of
// webhook URLs are often the secret (Slack's are).
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<redacted>"
	}
	return u.Scheme + "://" + u.Host + "/<redacted>"
}
