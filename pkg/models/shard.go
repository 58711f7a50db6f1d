package models

import (
	"fmt"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// NewShard builds engine shard of shards (0-based): an engine that sees
// every event but keeps the entities of its share of the enabled kinds
// only, kinds being dealt to shards in order (principal, source network,
// credential, source address, client).
//
// Sharding is by kind, not by entity hash, because a kind is a closed
// world: its population baseline and (for principals) its peer groups
// are read only by entities of that kind, and every shard still sees
// every event, so each has the same event time, lateness and warm-up as a
// single engine. The union of the shards' detections is exactly a single
// engine's, so live runs with shards still equal a replay. The cost is
// that per-event work not tied to an entity (time, classification) is
// done once per shard, and parallelism is bounded by the enabled kinds.
func NewShard(cfg *config.Config, emit func(*Detection), shard, shards int) (*Engine, error) {
	e, err := New(cfg, emit)
	if err != nil {
		return nil, err
	}
	if shards <= 1 {
		return e, nil
	}
	if shard < 0 || shard >= shards {
		return nil, fmt.Errorf("new engine shard: shard %d of %d", shard, shards)
	}
	e.owns = [numKinds]bool{}
	i := 0
	for k := range numKinds {
		if e.kinds[k] {
			e.owns[k] = i%shards == shard
			i++
		}
	}
	e.partial = true
	return e, nil
}

// ShardKinds returns the kinds each of shards shards keeps, for logs and
// docs.
func ShardKinds(cfg *config.Config, shards int) [][]Kind {
	out := make([][]Kind, max(shards, 1))
	k := cfg.Engine.Entities
	enabled := [numKinds]bool{k.Principal, k.SourceNet, k.Credential, k.SourceIP, k.Client}
	i := 0
	for kind := range numKinds {
		if enabled[kind] {
			out[i%len(out)] = append(out[i%len(out)], kind)
			i++
		}
	}
	return out
}
