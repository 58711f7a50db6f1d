package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/exfilguard/exfilguard/pkg/event"
)

// Kafka is where `detector run` reads events from, and how.
type Kafka struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// GroupID is the consumer group: replicas sharing it share the
	// partitions.
	GroupID  string `yaml:"group_id"`
	ClientID string `yaml:"client_id"`
	// Topics maps each input topic to the format its messages are in.
	Topics []Topic `yaml:"topics"`
	// StartOffset is where a partition with neither a checkpoint nor a
	// committed group offset starts: "earliest" or "latest".
	StartOffset string `yaml:"start_offset"`
	// FetchMaxBytes bounds one fetch of one partition. It must exceed the
	// largest message expected, or that message cannot be read at all (it
	// would then be skipped as too_large).
	FetchMaxBytes int `yaml:"fetch_max_bytes"`
	// FetchMaxWait is how long the broker may hold a fetch open waiting
	// for data: the latency of a quiet partition.
	FetchMaxWait Duration `yaml:"fetch_max_wait"`
	// SessionTimeout and RebalanceTimeout are the consumer group's.
	SessionTimeout   Duration `yaml:"session_timeout"`
	RebalanceTimeout Duration `yaml:"rebalance_timeout"`
	// DialTimeout bounds connecting to a broker.
	DialTimeout Duration `yaml:"dial_timeout"`
	// Backoff is the reconnection backoff after a broker error, doubling
	// from min to max.
	BackoffMin Duration `yaml:"backoff_min"`
	BackoffMax Duration `yaml:"backoff_max"`
	// DeadLetterTopic receives undecodable and oversized messages with
	// their original bytes, the reason and the source position in
	// headers; empty turns dead letters off (they are still counted and
	// logged).
	DeadLetterTopic string    `yaml:"dead_letter_topic"`
	TLS             KafkaTLS  `yaml:"tls"`
	SASL            KafkaSASL `yaml:"sasl"`
}

// Topic is one input topic and the format of its messages.
type Topic struct {
	Name   string `yaml:"name"`
	Format string `yaml:"format"`
	// LogLinePrefix is PostgreSQL's log_line_prefix, for the
	// pgaudit_stderr (required, with %u) and auto formats.
	LogLinePrefix string `yaml:"log_line_prefix"`
}

// KafkaTLS configures TLS to the brokers. Files, not inline PEM, so that
// keys come from a mounted secret.
type KafkaTLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// KafkaSASL configures SASL authentication. The password is never inline
// in the config, which is shared and versioned: it comes from a file (a
// mounted secret) or an environment variable.
type KafkaSASL struct {
	// Mechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	Mechanism    string `yaml:"mechanism"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
}

// State is the Badger store of entity state and checkpoints.
type State struct {
	// Dir is the store's directory; it must be on a persistent volume.
	Dir string `yaml:"dir"`
	// CheckpointInterval and CheckpointEvents say how often state is made
	// durable and the offsets it covers committed: whichever comes first.
	// After a crash, at most this much is consumed again.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	CheckpointEvents   int      `yaml:"checkpoint_events"`
	// MemTableBytes, BlockCacheBytes and IndexCacheBytes size Badger's own
	// memory. Two memtables are kept; the defaults suit a 1 GiB pod.
	MemTableBytes   int64 `yaml:"memtable_bytes"`
	BlockCacheBytes int64 `yaml:"block_cache_bytes"`
	IndexCacheBytes int64 `yaml:"index_cache_bytes"`
	// ShutdownTimeout bounds the drain, final checkpoint and commit on
	// SIGTERM or partition revocation; keep it under the pod's
	// terminationGracePeriodSeconds.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

func defaultKafka() Kafka {
	return Kafka{
		Brokers:          []string{"localhost:9092"},
		GroupID:          "exfilguard",
		ClientID:         "exfilguard",
		Topics:           []Topic{{Name: "db-audit", Format: "native"}},
		StartOffset:      "earliest",
		FetchMaxBytes:    4 << 20,
		FetchMaxWait:     Duration(500 * time.Millisecond),
		SessionTimeout:   Duration(30 * time.Second),
		RebalanceTimeout: Duration(30 * time.Second),
		DialTimeout:      Duration(10 * time.Second),
		BackoffMin:       Duration(100 * time.Millisecond),
		BackoffMax:       Duration(10 * time.Second),
	}
}

func defaultState() State {
	return State{
		Dir:                "/var/lib/exfilguard",
		CheckpointInterval: Duration(10 * time.Second),
		CheckpointEvents:   1_000_000,
		MemTableBytes:      16 << 20,
		BlockCacheBytes:    32 << 20,
		IndexCacheBytes:    16 << 20,
		ShutdownTimeout:    Duration(20 * time.Second),
	}
}

func (k *Kafka) validate(v *validator) {
	if len(k.Brokers) == 0 {
		v.add("kafka.brokers", "must name at least one broker")
	}
	for i, b := range k.Brokers {
		if c := strings.LastIndexByte(b, ':'); c <= 0 || c == len(b)-1 {
			v.add(fmt.Sprintf("kafka.brokers[%d]", i), "must be host:port, got %q", b)
		}
	}
	if k.GroupID == "" {
		v.add("kafka.group_id", "must not be empty")
	}
	if len(k.Topics) == 0 {
		v.add("kafka.topics", "must name at least one topic")
	}
	seen := map[string]bool{}
	for i, t := range k.Topics {
		p := fmt.Sprintf("kafka.topics[%d]", i)
		if t.Name == "" {
			v.add(p+".name", "must not be empty")
		}
		if seen[t.Name] {
			v.add(p+".name", "topic %q listed twice", t.Name)
		}
		seen[t.Name] = true
		if t.Name != "" && t.Name == k.DeadLetterTopic {
			v.add(p+".name", "topic %q is also the dead_letter_topic", t.Name)
		}
		v.format(p, t.Format, t.LogLinePrefix)
	}
	if k.StartOffset != "earliest" && k.StartOffset != "latest" {
		v.add("kafka.start_offset", "must be \"earliest\" or \"latest\", got %q", k.StartOffset)
	}
	if k.FetchMaxBytes < 1<<10 || k.FetchMaxBytes > 1<<30 {
		v.add("kafka.fetch_max_bytes", "must be between 1024 and 1073741824, got %d", k.FetchMaxBytes)
	}
	for _, d := range []struct {
		path string
		d    Duration
		min  time.Duration
	}{
		{"kafka.fetch_max_wait", k.FetchMaxWait, time.Millisecond},
		{"kafka.session_timeout", k.SessionTimeout, time.Second},
		{"kafka.rebalance_timeout", k.RebalanceTimeout, time.Second},
		{"kafka.dial_timeout", k.DialTimeout, time.Millisecond},
		{"kafka.backoff_min", k.BackoffMin, time.Millisecond},
		{"kafka.backoff_max", k.BackoffMax, time.Millisecond},
	} {
		if d.d.D() < d.min {
			v.add(d.path, "must be at least %v, got %v", d.min, d.d)
		}
	}
	if k.BackoffMax < k.BackoffMin {
		v.add("kafka.backoff_max", "must be >= backoff_min (%v), got %v", k.BackoffMin, k.BackoffMax)
	}
	t := &k.TLS
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "") {
		v.add("kafka.tls.enabled", "must be true when tls files are set")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.add("kafka.tls.cert_file", "cert_file and key_file go together")
	}
	s := &k.SASL
	switch s.Mechanism {
	case "":
		if s.Username != "" {
			v.add("kafka.sasl.mechanism", "must be set when a username is, one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if s.Username == "" {
			v.add("kafka.sasl.username", "must be set for mechanism %s", s.Mechanism)
		}
		if (s.PasswordFile == "") == (s.PasswordEnv == "") {
			v.add("kafka.sasl.password_file", "exactly one of password_file and password_env must be set")
		}
	default:
		v.add("kafka.sasl.mechanism", "unknown mechanism %q (known: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", s.Mechanism)
	}
}

func (s *State) validate(v *validator) {
	if s.Dir == "" {
		v.add("state.dir", "must not be empty")
	}
	if s.CheckpointInterval.D() < 100*time.Millisecond {
		v.add("state.checkpoint_interval", "must be at least 100ms, got %v", s.CheckpointInterval)
	}
	if s.CheckpointEvents < 1000 {
		v.add("state.checkpoint_events", "must be at least 1000, got %d", s.CheckpointEvents)
	}
	if s.MemTableBytes < 1<<20 {
		v.add("state.memtable_bytes", "must be at least 1048576, got %d", s.MemTableBytes)
	}
	if s.BlockCacheBytes < 0 {
		v.add("state.block_cache_bytes", "must be >= 0, got %d", s.BlockCacheBytes)
	}
	if s.IndexCacheBytes < 0 {
		v.add("state.index_cache_bytes", "must be >= 0, got %d", s.IndexCacheBytes)
	}
	if s.ShutdownTimeout.D() < time.Second {
		v.add("state.shutdown_timeout", "must be at least 1s, got %v", s.ShutdownTimeout)
	}
}

// format checks an input format and its options by building its decoder,
// so that what the decoder would refuse at start is a config error.
func (v *validator) format(path, format, prefix string) {
	if !slices.Contains(event.Formats(), format) {
		v.add(path+".format", "unknown format %q (known: %s)", format, strings.Join(event.Formats(), ", "))
		return
	}
	if prefix != "" && format != "pgaudit_stderr" && format != "auto" {
		v.add(path+".log_line_prefix", "applies only to the pgaudit_stderr and auto formats, not %q", format)
		return
	}
	if _, err := event.NewDecoder(format, event.Limits{}, event.Options{LogLinePrefix: prefix}); err != nil {
		v.add(path+".log_line_prefix", "%q: %v", prefix, errors.Unwrap(err))
	}
}

// HTTP is the detector's one HTTP address.
type HTTP struct {
	// Listen is the address of /metrics, /healthz, /readyz and
	// /debug/pprof; empty serves nothing. --listen overrides it.
	Listen string `yaml:"listen"`
	// Pprof serves /debug/pprof/ (profiles reveal code paths and cost
	// CPU while taken; off unless asked for).
	Pprof bool `yaml:"pprof"`
	// ReadyMaxLag makes /readyz fail while the consumer lag, summed over
	// this member's partitions, exceeds this many messages; 0: no bound.
	ReadyMaxLag int64 `yaml:"ready_max_lag"`
}

func defaultHTTP() HTTP { return HTTP{Listen: ":8080", ReadyMaxLag: 1_000_000} }

func (h *HTTP) validate(v *validator) {
	if h.Listen != "" {
		if c := strings.LastIndexByte(h.Listen, ':'); c < 0 {
			v.add("http.listen", "must be host:port or :port, got %q", h.Listen)
		}
	}
	if h.ReadyMaxLag < 0 {
		v.add("http.ready_max_lag", "must not be negative (0 means no bound), got %d", h.ReadyMaxLag)
	}
}
