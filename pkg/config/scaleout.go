package config

import (
	"fmt"
	"slices"
)

// ScaleOut makes entity state follow Kafka partitions, so that replicas
// sharing the consumer group share the work the way Kafka Streams tasks do
// (docs/scaling.md). Off, one replica keeps every entity of what it
// consumes in one engine (or engine.shards engines, split by kind).
type ScaleOut struct {
	// Enabled runs one task per input partition: its own engine, baselines
	// and incidents, made durable at each checkpoint both locally and in
	// the changelog topic, and restored from the changelog by whichever
	// replica the partition moves to.
	Enabled bool `yaml:"enabled"`
	// InputKey is the entity kind the input topic is keyed by (its
	// producers' message key): that kind's entities are whole in one
	// partition's task.
	InputKey string `yaml:"input_key"`
	// ChangelogTopic is the compacted topic the tasks' state goes to, with
	// as many partitions as the input; created if missing. Default:
	// <group_id>-changelog.
	ChangelogTopic string `yaml:"changelog_topic"`
	// Repartition lists entity kinds (other than input_key) whose events
	// are routed through an internal topic keyed by that entity, so that
	// one task sees all of its events whatever partition they came in on.
	// Kinds enabled but not listed are kept per partition: each task sees
	// only its partition's share of, say, a source network.
	Repartition []string `yaml:"repartition"`
	// RepartitionTopicPrefix names the internal topics: prefix + kind.
	// Default: <group_id>-repartition-.
	RepartitionTopicPrefix string `yaml:"repartition_topic_prefix"`
	// ReplicationFactor of the topics the detector creates; -1 leaves it
	// to the broker's default.
	ReplicationFactor int `yaml:"replication_factor"`
}

func defaultScaleOut() ScaleOut {
	return ScaleOut{InputKey: "principal", Repartition: []string{}, ReplicationFactor: -1}
}

// Changelog is the changelog topic's name.
func (s *ScaleOut) Changelog(k *Kafka) string {
	if s.ChangelogTopic != "" {
		return s.ChangelogTopic
	}
	return k.GroupID + "-changelog"
}

// RepartitionTopic is the internal topic of entity kind kind.
func (s *ScaleOut) RepartitionTopic(k *Kafka, kind string) string {
	prefix := s.RepartitionTopicPrefix
	if prefix == "" {
		prefix = k.GroupID + "-repartition-"
	}
	return prefix + kind
}

var entityKindNames = []string{"principal", "source_net", "credential", "source_ip", "client"}

func (e *EntityKinds) enabled(kind string) bool {
	switch kind {
	case "principal":
		return e.Principal
	case "source_net":
		return e.SourceNet
	case "credential":
		return e.Credential
	case "source_ip":
		return e.SourceIP
	case "client":
		return e.Client
	}
	return false
}

func (c *Config) validateScaleOut(v *validator) {
	s := &c.ScaleOut
	if !slices.Contains(entityKindNames, s.InputKey) {
		v.add("scale_out.input_key", "must be one of %v, got %q", entityKindNames, s.InputKey)
	} else if s.Enabled && !c.Engine.Entities.enabled(s.InputKey) {
		v.add("scale_out.input_key", "entity kind %q is not enabled in engine.entities", s.InputKey)
	}
	seen := map[string]bool{}
	for i, k := range s.Repartition {
		p := fmt.Sprintf("scale_out.repartition[%d]", i)
		switch {
		case !slices.Contains(entityKindNames, k):
			v.add(p, "must be one of %v, got %q", entityKindNames, k)
		case k == s.InputKey:
			v.add(p, "%q is the input_key: its entities are whole in their partition already", k)
		case !c.Engine.Entities.enabled(k):
			v.add(p, "entity kind %q is not enabled in engine.entities", k)
		case seen[k]:
			v.add(p, "kind %q listed twice", k)
		}
		seen[k] = true
	}
	if s.ReplicationFactor == 0 || s.ReplicationFactor < -1 || s.ReplicationFactor > 32767 {
		v.add("scale_out.replication_factor", "must be -1 (the broker's default) or between 1 and 32767, got %d", s.ReplicationFactor)
	}
	if !s.Enabled {
		return
	}
	if len(c.Kafka.Topics) != 1 {
		v.add("kafka.topics", "scale_out needs exactly one input topic (tasks are its partitions), got %d", len(c.Kafka.Topics))
	}
	if c.Engine.Shards != 1 {
		v.add("engine.shards", "must be 1 with scale_out: tasks, one per partition, replace kind shards; got %d", c.Engine.Shards)
	}
	internal := []string{s.Changelog(&c.Kafka)}
	for _, k := range s.Repartition {
		internal = append(internal, s.RepartitionTopic(&c.Kafka, k))
	}
	for _, t := range internal {
		for i, in := range c.Kafka.Topics {
			if in.Name == t {
				v.add(fmt.Sprintf("kafka.topics[%d].name", i), "topic %q is one of scale_out's internal topics", t)
			}
		}
		if t == c.Kafka.DeadLetterTopic {
			v.add("kafka.dead_letter_topic", "topic %q is one of scale_out's internal topics", t)
		}
	}
}
