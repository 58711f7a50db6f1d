// Package bench is `detector bench`: the performance proof, measured on
// one machine in one run. It produces simulated traffic (pkg/sim, the
// generator of `detector gen` and `demo`) keyed by principal to an
// in-process Kafka-protocol cluster (kfake), then measures on that same
// topic:
//
//   - bare consumers that only fetch: kafka-go's Reader and its
//     Conn.ReadBatch (the pipeline's own fetch primitive), and franz-go's
//     kgo client, with the fetch settings `detector run` uses;
//   - the real pipeline (pkg/stream: consumer group, decode, engine,
//     Badger checkpoints, alert outbox) consuming all of it;
//   - produce-to-alert latency at a fixed offered rate with attacks
//     injected, after the pipeline has learned a baseline from the history;
//   - the engine alone on the same traffic (events/s on one goroutine and
//     allocations per event);
//   - memory per entity (Go heap and RSS) at given entity counts, and the
//     longest checkpoint pause (every entity dirty) into Badger.
//
// One concept per file: workload.go plans the traffic, produce.go writes
// it, consume.go holds the bare consumers, pipeline.go runs pkg/stream,
// latency.go maps alerts back to produce times, engine.go and memory.go
// drive pkg/models directly, report.go prints the result and judges the
// targets, bench.go runs it all in order. docs/benchmarks.md has the
// figures measured and how to read them.
package bench
