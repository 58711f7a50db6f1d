package config

import (
	"fmt"
	"time"
)

// validator collects every problem instead of stopping at the first, so one
// run of `config check` lists all of them.
type validator struct{ errs []*FieldError }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) positive(path string, x float64) {
	if !(x > 0) {
		v.add(path, "must be > 0, got %v", x)
	}
}

func (v *validator) atLeast(path string, x, min float64) {
	if !(x >= min) {
		v.add(path, "must be >= %v, got %v", min, x)
	}
}

func (v *validator) share(path string, x float64) {
	if !(x > 0 && x <= 1) {
		v.add(path, "must be in (0, 1], got %v", x)
	}
}

// Validate checks the whole config and returns every problem with its
// field path; Parse adds file and line.
func (c *Config) Validate() []*FieldError {
	v := &validator{}
	c.Input.validate(v)
	c.Engine.validate(v)
	c.validateTTL(v)
	c.Baseline.validate(v)
	c.Sensitive.validate(v)
	c.Detectors.validate(v, "detectors")
	c.validateTuning(v)
	c.Alerts.validate(v)
	c.Kafka.validate(v)
	c.State.validate(v)
	c.HTTP.validate(v)
	c.validateScaleOut(v)
	return v.errs
}

func (in *Input) validate(v *validator) {
	v.format("input", in.Format, in.LogLinePrefix)
	if in.MaxMessageBytes < 64 || in.MaxMessageBytes > 64<<20 {
		v.add("input.max_message_bytes", "must be between 64 and 67108864, got %d", in.MaxMessageBytes)
	}
	if in.MaxRecordIDs < 0 || in.MaxRecordIDs > 1<<20 {
		v.add("input.max_record_ids", "must be between 0 and 1048576, got %d", in.MaxRecordIDs)
	}
}

// MaxHorizons bounds the horizons an entity keeps, because each costs memory
// for every tracked entity.
const MaxHorizons = 6

func (e *Engine) validate(v *validator) {
	kinds := 0
	for _, on := range []bool{e.Entities.Principal, e.Entities.SourceNet, e.Entities.Credential, e.Entities.SourceIP, e.Entities.Client} {
		if on {
			kinds++
		}
	}
	if e.Shards < 1 || (kinds > 0 && e.Shards > kinds) {
		v.add("engine.shards", "must be between 1 and the %d enabled entity kinds, got %d", kinds, e.Shards)
	}
	if len(e.Horizons) == 0 || len(e.Horizons) > MaxHorizons {
		v.add("engine.horizons", "must list 1 to %d horizons, got %d", MaxHorizons, len(e.Horizons))
	}
	for i, h := range e.Horizons {
		p := fmt.Sprintf("engine.horizons[%d]", i)
		switch {
		case h.D() < time.Second:
			v.add(p, "must be at least 1s, got %q", h)
		case i > 0 && e.Horizons[i-1] > 0 && (h <= e.Horizons[i-1] || h%e.Horizons[i-1] != 0):
			v.add(p, "%q must be a whole multiple of the previous horizon %q, and longer, so that buckets nest", h, e.Horizons[i-1])
		}
	}
	if e.AllowedLateness < 0 {
		v.add("engine.allowed_lateness", "must not be negative, got %q", e.AllowedLateness)
	}
	if len(e.Horizons) > 0 && e.AllowedLateness > e.Horizons[0] {
		v.add("engine.allowed_lateness", "%q exceeds the shortest horizon %q; a late event would have no bucket left to land in", e.AllowedLateness, e.Horizons[0])
	}
	if e.MaxClockJump < Duration(time.Minute) {
		v.add("engine.max_clock_jump", "must be at least 1m, got %q", e.MaxClockJump)
	}
	if e.ClockJumpConfirmations < 1 {
		v.add("engine.clock_jump_confirmations", "must be >= 1, got %d", e.ClockJumpConfirmations)
	}
	k := e.Entities
	if !k.Principal && !k.SourceNet && !k.Credential && !k.SourceIP && !k.Client {
		v.add("engine.entities", "at least one entity kind must be enabled")
	}
	if e.SourceNetBitsV4 < 8 || e.SourceNetBitsV4 > 32 {
		v.add("engine.source_net_bits_v4", "must be between 8 and 32, got %d", e.SourceNetBitsV4)
	}
	if e.SourceNetBitsV6 < 16 || e.SourceNetBitsV6 > 128 {
		v.add("engine.source_net_bits_v6", "must be between 16 and 128, got %d", e.SourceNetBitsV6)
	}
	if e.Warmup < 0 {
		v.add("engine.warmup", "must not be negative, got %q", e.Warmup)
	}
	if e.LearningPeriod < 0 {
		v.add("engine.learning_period", "must not be negative, got %q", e.LearningPeriod)
	}
	if e.MaxKnownSources < 1 || e.MaxKnownSources > 256 {
		v.add("engine.max_known_sources", "must be between 1 and 256, got %d", e.MaxKnownSources)
	}
	if e.MaxKnownObjects < 1 || e.MaxKnownObjects > 1024 {
		v.add("engine.max_known_objects", "must be between 1 and 1024, got %d", e.MaxKnownObjects)
	}
	if e.MaxEntities < 0 {
		v.add("engine.max_entities", "must not be negative (0 means no cap), got %d", e.MaxEntities)
	}
}

// validateTTL checks engine.entity_ttl against what must outlive it: the
// longest horizon, whose window an entity forgotten sooner would lose, and
// the dormancy the dormant-credential detector waits for.
func (c *Config) validateTTL(v *validator) {
	ttl := c.Engine.EntityTTL
	const p = "engine.entity_ttl"
	if n := len(c.Engine.Horizons); n > 0 && ttl <= c.Engine.Horizons[n-1] {
		v.add(p, "%q must exceed the longest horizon %q", ttl, c.Engine.Horizons[n-1])
	}
	if d := c.Detectors.Dormant; d.Enabled && ttl <= d.DormantFor {
		v.add(p, "%q must exceed detectors.dormant_credential.dormant_for %q: a credential silent that long must still be known when it comes back", ttl, d.DormantFor)
	}
}

func (b *Baseline) validate(v *validator) {
	if b.Memory < 2 {
		v.add("baseline.memory", "must be >= 2 windows, got %d", b.Memory)
	}
	if b.GroupMemory < 2 {
		v.add("baseline.group_memory", "must be >= 2 windows, got %d", b.GroupMemory)
	}
	v.positive("baseline.own_credibility", b.OwnCredibility)
	v.positive("baseline.peer_credibility", b.PeerCredibility)
	v.positive("baseline.min_deviation", b.MinDeviation)
	v.atLeast("baseline.peak_margin", b.PeakMargin, 1)
	v.positive("baseline.rhythm_credibility", b.RhythmCredibility)
	p := b.Prior
	for _, f := range []struct {
		name string
		x    float64
	}{{"rows", p.Rows}, {"sensitive_rows", p.SensitiveRows}, {"requests", p.Requests}, {"denied", p.Denied}, {"distinct_records", p.DistinctRecords}, {"distinct_principals", p.DistinctPrincipals}, {"distinct_objects", p.DistinctObjects}} {
		v.atLeast("baseline.prior."+f.name, f.x, 0)
	}
}

func (s *Sensitive) validate(v *validator) {
	for i, p := range s.Patterns {
		if p == "" {
			v.add(fmt.Sprintf("sensitive.patterns[%d]", i), "must not be empty (it would match every object)")
		}
	}
	for i, p := range s.Exclude {
		if p == "" {
			v.add(fmt.Sprintf("sensitive.exclude[%d]", i), "must not be empty (it would exclude every object)")
		}
	}
}

func (s *Spike) validate(v *validator, path string) {
	if !s.Enabled {
		return
	}
	v.atLeast(path+".ratio", s.Ratio, 1)
	v.atLeast(path+".k", s.K, 0)
	v.positive(path+".min", s.Min)
}

// validate checks d, whose fields are at p (detectors, or an override's).
func (d *Detectors) validate(v *validator, p string) {
	d.VolumeSpike.validate(v, p+".volume_spike")
	d.SensitiveVolumeSpike.validate(v, p+".sensitive_volume_spike")
	d.DistinctRecords.validate(v, p+".distinct_records")
	d.FanOut.validate(v, p+".fan_out")
	d.DeniedBurst.validate(v, p+".denied_burst")
	d.DistinctObjects.validate(v, p+".distinct_objects")
	if d.BulkRead.Enabled {
		v.positive(p+".bulk_read.max_rows", float64(d.BulkRead.MaxRows))
		v.atLeast(p+".bulk_read.learned_margin", d.BulkRead.LearnedMargin, 1)
	}
	if d.FirstObject.Enabled {
		v.atLeast(p+".first_sensitive_object.min_rows", float64(d.FirstObject.MinRows), 0)
		if d.FirstObject.WatchPeriod <= 0 {
			v.add(p+".first_sensitive_object.watch_period", "must be > 0, got %q", d.FirstObject.WatchPeriod)
		}
	}
	if l := d.LowAndSlow; l.Enabled {
		v.atLeast(p+".low_and_slow.slack", l.Slack, 0)
		v.positive(p+".low_and_slow.threshold", l.Threshold)
		v.positive(p+".low_and_slow.min_excess_rows", l.MinExcessRows)
	}
	if x := d.Dormant; x.Enabled {
		if x.DormantFor.D() < time.Hour {
			v.add(p+".dormant_credential.dormant_for", "must be at least 1h, got %q", x.DormantFor)
		}
		if x.WatchPeriod <= 0 {
			v.add(p+".dormant_credential.watch_period", "must be > 0, got %q", x.WatchPeriod)
		}
		v.atLeast(p+".dormant_credential.min_rows", float64(x.MinRows), 0)
		if !(x.MinActiveShare >= 0 && x.MinActiveShare <= 1) {
			v.add(p+".dormant_credential.min_active_share", "must be in [0, 1], got %v", x.MinActiveShare)
		}
	}
	if x := d.NewSource; x.Enabled {
		v.share(p+".new_source.factor", x.Factor)
		v.atLeast(p+".new_source.min_rows", float64(x.MinRows), 0)
		if x.WatchPeriod <= 0 {
			v.add(p+".new_source.watch_period", "must be > 0, got %q", x.WatchPeriod)
		}
	}
	if x := d.OffHours; x.Enabled {
		v.atLeast(p+".off_hours.min_rows", float64(x.MinRows), 0)
		v.share(p+".off_hours.max_share", x.MaxShare)
		v.positive(p+".off_hours.min_weeks", x.MinWeeks)
	}
	if x := d.Enumeration; x.Enabled {
		if x.MinIDs < 2 {
			v.add(p+".enumeration.min_ids", "must be >= 2, got %d", x.MinIDs)
		}
		v.share(p+".enumeration.min_share", x.MinShare)
	}
}
