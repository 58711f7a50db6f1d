// Package config holds the detector's configuration schema, its defaults and
// its validation. Every tunable of the engine lives here, in one YAML file.
package config

import "time"

// Config is the whole detector configuration.
type Config struct {
	Input     Input     `yaml:"input"`
	Engine    Engine    `yaml:"engine"`
	Baseline  Baseline  `yaml:"baseline"`
	Sensitive Sensitive `yaml:"sensitive"`
	Detectors Detectors `yaml:"detectors"`
	// Overrides, Allowlist and Maintenance tune the detectors for some
	// entities, objects and times (tuning.go).
	Overrides   []Override    `yaml:"overrides"`
	Allowlist   []AllowEntry  `yaml:"allowlist"`
	Maintenance []Maintenance `yaml:"maintenance"`
	Alerts      Alerts        `yaml:"alerts"`
	Kafka       Kafka         `yaml:"kafka"`
	State       State         `yaml:"state"`
	HTTP        HTTP          `yaml:"http"`
	// ScaleOut shares the work between replicas by partition
	// (scaleout.go).
	ScaleOut ScaleOut `yaml:"scale_out"`
}

// Input limits what one message may cost before it is rejected.
type Input struct {
	// Format of the input when a command does not say (replay, eval):
	// one of the formats in docs/inputs.md, or "auto".
	Format string `yaml:"format"`
	// LogLinePrefix is PostgreSQL's log_line_prefix for the pgaudit_stderr
	// format; it must name the user (%u).
	LogLinePrefix string `yaml:"log_line_prefix"`
	// MaxMessageBytes rejects larger messages as too_large before parsing.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxRecordIDs caps the record ids hashed per message; the rest are
	// still counted.
	MaxRecordIDs int `yaml:"max_record_ids"`
}

// EntityKinds says which entities keep a baseline. One event updates every
// enabled kind it names.
type EntityKinds struct {
	Principal  bool `yaml:"principal"`
	SourceNet  bool `yaml:"source_net"`
	Credential bool `yaml:"credential"`
	SourceIP   bool `yaml:"source_ip"`
	Client     bool `yaml:"client"`
}

// Engine shapes windows and time.
type Engine struct {
	// Horizons are the window lengths, shortest first; each must be a whole
	// multiple of the one before it so that buckets nest.
	Horizons []Duration `yaml:"horizons"`
	// AllowedLateness is how far behind the newest event an event may be
	// and still land in its window; it may not exceed the shortest horizon.
	AllowedLateness Duration `yaml:"allowed_lateness"`
	// MaxClockJump is how far ahead of the newest event time an event may
	// be before it needs confirmation: one host with a broken clock must
	// not move event time to 2099 and make every later event late. A jump
	// is accepted once ClockJumpConfirmations events agree on it (logs
	// that resume after a real gap; the events before that are counted and
	// kept out). It must exceed the quietest ordinary gap of the stream: a
	// staff-only database is silent over a weekend.
	MaxClockJump           Duration    `yaml:"max_clock_jump"`
	ClockJumpConfirmations int         `yaml:"clock_jump_confirmations"`
	Entities               EntityKinds `yaml:"entities"`
	// SourceNetBitsV4 and SourceNetBitsV6 are the prefix lengths that make
	// a source network.
	SourceNetBitsV4 int `yaml:"source_net_bits_v4"`
	SourceNetBitsV6 int `yaml:"source_net_bits_v6"`
	// Warmup is the event time after the first event of a detector started
	// without state during which every window feeds the baselines and no
	// alert is above medium: nothing has been learned yet, so nothing may
	// page.
	Warmup Duration `yaml:"warmup"`
	// LearningPeriod is how much of its own history an entity needs before
	// first-seen detectors (new source, first sensitive object, off-hours)
	// judge it on its own; before that only its peers can make them fire.
	LearningPeriod Duration `yaml:"learning_period"`
	// MaxKnownSources is how many sources and clients an entity remembers
	// for the new-source detector; the least recently seen is forgotten.
	MaxKnownSources int `yaml:"max_known_sources"`
	// MaxKnownObjects is how many sensitive objects a principal remembers.
	MaxKnownObjects int `yaml:"max_known_objects"`
	// MaxEntities caps the entities held in memory when the engine has a
	// state store: beyond it, entities already checkpointed are evicted,
	// least recently active first, and loaded again on their next event.
	// 0 means no cap. Without a store the engine never evicts. The
	// default fits a 1 GiB pod (docs/operations.md).
	MaxEntities int `yaml:"max_entities"`
	// EntityTTL is how long an entity may stay silent, in event time,
	// before it is forgotten: its next event starts it afresh, and its
	// state may be deleted from memory and store. It must exceed the
	// longest horizon and detectors.dormant_credential.dormant_for (a
	// dormant credential coming back is exactly what is watched).
	EntityTTL Duration `yaml:"entity_ttl"`
	// Shards is how many engine goroutines `detector run` runs, each
	// keeping a share of the enabled entity kinds (principal, source
	// network, credential, ...) and seeing every event. At most the number
	// of enabled kinds; more than the cores left after decoding gains
	// nothing. Detections are the same for any value.
	Shards int `yaml:"shards"`
}

// Baseline tunes how normal is learned.
type Baseline struct {
	// Memory is the number of active windows an entity's baseline
	// remembers (the EWMA weight is 1/Memory once that many were seen).
	Memory int `yaml:"memory"`
	// GroupMemory is the same for peer-group and population baselines.
	GroupMemory int `yaml:"group_memory"`
	// OwnCredibility is the number of own windows at which an entity's own
	// history weighs as much as its peers'.
	OwnCredibility float64 `yaml:"own_credibility"`
	// PeerCredibility is the number of peer windows at which a peer group
	// weighs as much as the whole population.
	PeerCredibility float64 `yaml:"peer_credibility"`
	// MinDeviation floors the learned spread (in natural-log units), so
	// that a perfectly regular entity does not fire on the first wobble.
	MinDeviation float64 `yaml:"min_deviation"`
	// PeakMargin: nothing fires below this multiple of the largest window
	// learned as normal for the entity or its peers (a nightly export, a
	// month-end report), which decays with a half-life of 30 days.
	PeakMargin float64 `yaml:"peak_margin"`
	// Rhythm enables the hour-of-week profile for horizons up to an hour.
	Rhythm bool `yaml:"rhythm"`
	// RhythmCredibility is the number of active weeks in an hour-of-week
	// slot at which the slot's own level weighs as much as the overall one.
	RhythmCredibility float64 `yaml:"rhythm_credibility"`
	// Prior is the expected total per hour of window assumed when nothing
	// at all has been learned yet (a 1d window expects 24 times as much).
	Prior Prior `yaml:"prior"`
}

// Prior is the cold-start expectation of each measure per hour of window.
type Prior struct {
	Rows            float64 `yaml:"rows"`
	SensitiveRows   float64 `yaml:"sensitive_rows"`
	Requests        float64 `yaml:"requests"`
	Denied          float64 `yaml:"denied"`
	DistinctRecords float64 `yaml:"distinct_records"`
	// DistinctPrincipals for network, credential and client entities.
	DistinctPrincipals float64 `yaml:"distinct_principals"`
	DistinctObjects    float64 `yaml:"distinct_objects"`
}

// Sensitive classifies objects holding customer data. An object is
// sensitive when its lower-cased name contains any pattern and no exclusion.
type Sensitive struct {
	Patterns []string `yaml:"patterns"`
	Exclude  []string `yaml:"exclude"`
	// Classes weigh some sensitive objects more (or less) than the rest;
	// they are tried before Patterns.
	Classes []SensitiveClass `yaml:"classes"`
}

// Spike is the shape shared by baseline-relative detectors: fire when the
// observed window is at least Ratio times the expected, at least K spreads
// above it in log space, and at least Min in absolute terms.
type Spike struct {
	Enabled bool    `yaml:"enabled"`
	Ratio   float64 `yaml:"ratio"`
	K       float64 `yaml:"k"`
	Min     float64 `yaml:"min"`
}

// Detectors holds every detector's knobs.
type Detectors struct {
	// VolumeSpike judges rows read (Min applies to all rows).
	VolumeSpike Spike `yaml:"volume_spike"`
	// SensitiveVolumeSpike judges rows read from sensitive objects.
	SensitiveVolumeSpike Spike `yaml:"sensitive_volume_spike"`
	// DistinctRecords judges distinct customer records touched.
	DistinctRecords Spike `yaml:"distinct_records"`
	// FanOut judges distinct principals behind a network, credential or
	// client.
	FanOut Spike `yaml:"fan_out"`
	// DeniedBurst judges denied and failed requests.
	DeniedBurst Spike `yaml:"denied_burst"`
	// DistinctObjects judges distinct objects touched (a schema dumped
	// table by table); it raises volume_spike.
	DistinctObjects Spike             `yaml:"distinct_objects"`
	BulkRead        BulkRead          `yaml:"bulk_read"`
	FirstObject     FirstObject       `yaml:"first_sensitive_object"`
	LowAndSlow      LowAndSlow        `yaml:"low_and_slow"`
	Dormant         DormantCredential `yaml:"dormant_credential"`
	NewSource       NewSource         `yaml:"new_source"`
	OffHours        OffHours          `yaml:"off_hours"`
	Enumeration     Enumeration       `yaml:"enumeration"`
}

// BulkRead fires on one request returning more sensitive rows than a cap
// and than the principal (or its peers) has ever been seen to read at once.
type BulkRead struct {
	Enabled bool `yaml:"enabled"`
	// MaxRows is the hard cap on sensitive rows in one request.
	MaxRows int64 `yaml:"max_rows"`
	// LearnedMargin: a request must also exceed this multiple of the
	// largest single request learned as normal for the principal.
	LearnedMargin float64 `yaml:"learned_margin"`
}

// FirstObject fires when a principal reads a sensitive object it never
// touched before.
type FirstObject struct {
	Enabled bool `yaml:"enabled"`
	// MinRows is the sensitive rows the new object must yield within the
	// watch period: single-record lookups are what new work looks like.
	MinRows     int64    `yaml:"min_rows"`
	WatchPeriod Duration `yaml:"watch_period"`
}

// LowAndSlow accumulates daily excess of sensitive rows over the frozen
// daily baseline (one-sided CUSUM in spread units).
type LowAndSlow struct {
	Enabled bool `yaml:"enabled"`
	// Slack is subtracted from each day's standardised excess: days less
	// than Slack spreads above normal do not accumulate.
	Slack float64 `yaml:"slack"`
	// Threshold on the accumulated standardised excess.
	Threshold float64 `yaml:"threshold"`
	// MinExcessRows is the absolute excess the run must add up to.
	MinExcessRows float64 `yaml:"min_excess_rows"`
}

// DormantCredential fires when a principal or credential silent for a long
// time comes back reading sensitive data.
type DormantCredential struct {
	Enabled     bool     `yaml:"enabled"`
	DormantFor  Duration `yaml:"dormant_for"`
	MinRows     int64    `yaml:"min_rows"`
	MinHistory  Duration `yaml:"min_history"`
	WatchPeriod Duration `yaml:"watch_period"`
	// MinActiveShare is the share of days of its history the entity must
	// have been active on: a customer who logs in once a month is not a
	// dormant credential when they come back.
	MinActiveShare float64 `yaml:"min_active_share"`
}

// NewSource fires when a never-seen address or client comes with unusual
// volume: Factor scales the volume threshold down while the source is new.
type NewSource struct {
	Enabled     bool     `yaml:"enabled"`
	Factor      float64  `yaml:"factor"`
	MinRows     int64    `yaml:"min_rows"`
	WatchPeriod Duration `yaml:"watch_period"`
}

// OffHours fires on sensitive reads in an hour-of-week slot where the
// principal (or, while it is young, its peers) practically never works.
type OffHours struct {
	Enabled bool  `yaml:"enabled"`
	MinRows int64 `yaml:"min_rows"`
	// MaxShare is the share of observed weeks active in the slot (and its
	// neighbours) below which the slot counts as never worked.
	MaxShare float64 `yaml:"max_share"`
	// MinWeeks of own history before the own profile is trusted.
	MinWeeks float64 `yaml:"min_weeks"`
}

// Enumeration fires when record ids are walked in sequence.
type Enumeration struct {
	Enabled bool `yaml:"enabled"`
	// MinIDs in the window before the share is judged.
	MinIDs int `yaml:"min_ids"`
	// MinShare of ids continuing a run of consecutive ids.
	MinShare float64 `yaml:"min_share"`
}

// Default returns the configuration used when a file says nothing. The
// numbers are for an organisation of a few hundred staff and millions of
// customers; they are tuned so that ordinary work (nightly ETL, month-end
// analysts, on-call nights, shared mobile networks) stays silent.
func Default() *Config {
	return &Config{
		Input:    Input{Format: "native", MaxMessageBytes: 1 << 20, MaxRecordIDs: 4096},
		Kafka:    defaultKafka(),
		State:    defaultState(),
		HTTP:     defaultHTTP(),
		ScaleOut: defaultScaleOut(),
		Engine: Engine{
			Horizons:               []Duration{Duration(time.Minute), Duration(15 * time.Minute), Duration(time.Hour), Duration(24 * time.Hour), Duration(7 * 24 * time.Hour)},
			AllowedLateness:        Duration(time.Minute),
			MaxClockJump:           Duration(7 * 24 * time.Hour),
			ClockJumpConfirmations: 100,
			Entities:               EntityKinds{Principal: true, SourceNet: true, Credential: true},
			SourceNetBitsV4:        24,
			SourceNetBitsV6:        64,
			Warmup:                 Duration(24 * time.Hour),
			LearningPeriod:         Duration(7 * 24 * time.Hour),
			MaxKnownSources:        16,
			MaxKnownObjects:        32,
			MaxEntities:            100_000,
			EntityTTL:              Duration(90 * 24 * time.Hour),
			Shards:                 1,
		},
		Baseline: Baseline{
			Memory:            30,
			GroupMemory:       2000,
			OwnCredibility:    6,
			PeerCredibility:   20,
			MinDeviation:      0.5,
			PeakMargin:        2,
			Rhythm:            true,
			RhythmCredibility: 2,
			Prior:             Prior{Rows: 50, SensitiveRows: 20, Requests: 20, Denied: 1, DistinctRecords: 10, DistinctPrincipals: 3, DistinctObjects: 2},
		},
		Sensitive: Sensitive{
			Patterns: []string{"customer", "member", "user", "account", "person", "people", "contact", "address", "phone",
				"email", "mail", "card", "payment", "billing", "invoice", "password", "passwd", "credential", "secret",
				"token", "entrance", "door_code", "ssn", "passport", "birth", "dob", "patient", "health", "salary",
				"iban", "bank", "profile", "/me"},
			Exclude: []string{"analytics.", "_stats", "_agg", "pg_catalog.", "information_schema."},
			Classes: []SensitiveClass{},
		},
		Overrides:   []Override{},
		Allowlist:   []AllowEntry{},
		Maintenance: []Maintenance{},
		Detectors: Detectors{
			VolumeSpike:          Spike{Enabled: true, Ratio: 10, K: 4, Min: 100000},
			SensitiveVolumeSpike: Spike{Enabled: true, Ratio: 8, K: 4, Min: 2000},
			DistinctRecords:      Spike{Enabled: true, Ratio: 8, K: 4, Min: 500},
			FanOut:               Spike{Enabled: true, Ratio: 8, K: 4, Min: 50},
			DeniedBurst:          Spike{Enabled: true, Ratio: 10, K: 4, Min: 30},
			DistinctObjects:      Spike{Enabled: true, Ratio: 5, K: 4, Min: 30},
			BulkRead:             BulkRead{Enabled: true, MaxRows: 50000, LearnedMargin: 2},
			FirstObject:          FirstObject{Enabled: true, MinRows: 100, WatchPeriod: Duration(time.Hour)},
			LowAndSlow:           LowAndSlow{Enabled: true, Slack: 0.5, Threshold: 5, MinExcessRows: 2000},
			Dormant:              DormantCredential{Enabled: true, DormantFor: Duration(21 * 24 * time.Hour), MinRows: 20, MinHistory: Duration(7 * 24 * time.Hour), WatchPeriod: Duration(24 * time.Hour), MinActiveShare: 0.3},
			NewSource:            NewSource{Enabled: true, Factor: 0.25, MinRows: 500, WatchPeriod: Duration(time.Hour)},
			OffHours:             OffHours{Enabled: true, MinRows: 200, MaxShare: 0.05, MinWeeks: 2},
			Enumeration:          Enumeration{Enabled: true, MinIDs: 100, MinShare: 0.8},
		},
		Alerts: defaultAlerts(),
	}
}
