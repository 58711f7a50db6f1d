package stream

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/exfilguard/exfilguard/pkg/event"
)

// alertKey counts alerts raised by rule, severity and incident status.
type alertKey struct{ rule, severity, status string }

// collector turns the pipeline's atomics and the deliverer's counters into
// Prometheus metrics at scrape time, so that the hot path pays nothing
// for them. No label ever holds an entity key: labels are topics,
// partitions, reasons, rules, severities, families and sink names, all
// bounded by the config.
type collector struct {
	p *Pipeline

	consumed, processed, decodeFail, deadLetters, deadLetterFail     *prometheus.Desc
	ignored, suppressed, allowlist                                   *prometheus.Desc
	fetchErr, commitErr, retentionLost, assigned, lag, eventLag      *prometheus.Desc
	late, future, detections, alerts, incidents, entities, evictions *prometheus.Desc
	checkpoints, ckptFail, ckptBytes, ckptLast, lsm, vlog, ready     *prometheus.Desc
	sinkDelivered, sinkFailed, sinkRetries, sinkDropped, sinkFailing *prometheus.Desc
	outboxDepth, outboxDropped                                       *prometheus.Desc
	tasks, restoring, restoreLeft, restored, restoreLast, changelog  *prometheus.Desc
	repartitioned, duplicates                                        *prometheus.Desc
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("exfilguard_"+name, help, labels, nil)
}

// Register registers the pipeline's metrics (see docs/metrics.md) on reg.
func (p *Pipeline) Register(reg prometheus.Registerer) error {
	c := &collector{p: p,
		consumed:       desc("messages_consumed_total", "Kafka messages read.", "topic", "format"),
		processed:      desc("events_processed_total", "Events through the engine."),
		decodeFail:     desc("decode_failures_total", "Messages rejected, by reason.", "reason"),
		ignored:        desc("messages_ignored_total", "Well-formed messages without an access in them (ordinary log lines, heartbeats), by reason.", "reason"),
		deadLetters:    desc("dead_letters_total", "Rejected messages written to the dead-letter topic."),
		deadLetterFail: desc("dead_letter_failures_total", "Rejected messages the dead-letter topic refused for good."),
		fetchErr:       desc("fetch_errors_total", "Broker errors while fetching."),
		commitErr:      desc("commit_errors_total", "Offset commits that failed."),
		retentionLost:  desc("retention_lost_total", "Messages deleted by retention before they were read."),
		assigned:       desc("partitions_assigned", "Partitions of this member."),
		lag:            desc("consumer_lag", "Messages between the partition's high watermark and the next to read.", "topic", "partition"),
		eventLag:       desc("event_time_lag_seconds", "Wall clock minus the newest event time processed."),
		late:           desc("late_events_total", "Events older than the allowed lateness, kept out of windows."),
		future:         desc("future_events_total", "Events too far ahead of event time, dropped."),
		detections:     desc("detections_total", "Detections by the engine.", "rule"),
		suppressed:     desc("detections_suppressed_total", "Detections an allowlist entry or a maintenance window kept from alerting.", "reason", "name"),
		allowlist:      desc("allowlist_entries", "Allowlist entries by state (active, expired) at the wall clock.", "state"),
		alerts:         desc("alerts_total", "Alerts raised.", "rule", "severity", "status"),
		incidents:      desc("open_incidents", "Incidents not yet resolved.", "family", "severity"),
		entities:       desc("entities", "Entities held.", "where"),
		evictions:      desc("evictions_total", "Entities evicted to the store."),
		checkpoints:    desc("checkpoints_total", "Checkpoints committed."),
		ckptFail:       desc("checkpoint_failures_total", "Checkpoints that failed."),
		ckptBytes:      desc("checkpoint_bytes", "Bytes written by the last checkpoint."),
		ckptLast:       desc("checkpoint_last_success_timestamp_seconds", "Unix time of the last committed checkpoint."),
		lsm:            desc("badger_lsm_bytes", "Badger LSM size.", "store"),
		vlog:           desc("badger_vlog_bytes", "Badger value-log size.", "store"),
		ready:          desc("ready", "1 when /readyz answers 200."),
		sinkDelivered:  desc("sink_deliveries_total", "Alerts acknowledged by the sink.", "sink", "type"),
		sinkFailed:     desc("sink_failures_total", "Delivery attempts that failed.", "sink", "type"),
		sinkRetries:    desc("sink_retries_total", "Failed attempts that will be repeated.", "sink", "type"),
		sinkDropped:    desc("sink_dropped_total", "Alerts the sink refused for good.", "sink", "type"),
		sinkFailing:    desc("sink_failing", "1 from a retryable failure to the next success.", "sink", "type"),
		outboxDepth:    desc("outbox_depth", "Alerts awaiting delivery by some sink."),
		outboxDropped:  desc("outbox_dropped_total", "Alerts dropped undelivered because the outbox was full."),
		tasks:          desc("tasks", "Scale-out tasks (partitions with their own engine) held by this replica."),
		restoring:      desc("restoring_partitions", "Assigned partitions whose task state is being restored from the changelog; /readyz fails meanwhile."),
		restoreLeft:    desc("restore_remaining_records", "Changelog records left to read by the restore in progress."),
		restored:       desc("restored_records_total", "Changelog records read by restores."),
		restoreLast:    desc("restore_last_duration_seconds", "Time the last assignment's restores took."),
		changelog:      desc("changelog_records_total", "Records produced to the changelog by checkpoints."),
		repartitioned:  desc("repartitioned_events_total", "Events produced to the repartition topics."),
		duplicates:     desc("repartition_duplicates_total", "Routed events a repartition task skipped: produced again after a crash, counted already."),
	}
	for _, m := range []prometheus.Collector{c, p.latency, p.ckptDuration} {
		if err := reg.Register(m); err != nil {
			return err
		}
	}
	return nil
}

// Describe sends every descriptor, including those of metrics that have
// no sample yet (no partition assigned, no alert raised): the registry
// checks collected metrics against them.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.consumed, c.processed, c.decodeFail, c.ignored, c.suppressed, c.allowlist, c.deadLetters, c.deadLetterFail,
		c.fetchErr, c.commitErr, c.retentionLost, c.assigned, c.lag, c.eventLag,
		c.late, c.future, c.detections, c.alerts, c.incidents, c.entities, c.evictions,
		c.checkpoints, c.ckptFail, c.ckptBytes, c.ckptLast, c.lsm, c.vlog, c.ready,
		c.sinkDelivered, c.sinkFailed, c.sinkRetries, c.sinkDropped, c.sinkFailing,
		c.outboxDepth, c.outboxDropped, c.tasks, c.restoring, c.restoreLeft, c.restored, c.restoreLast, c.changelog, c.repartitioned, c.duplicates} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	p, m := c.p, c.p.m
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, t := range topicNames(p.cfg) {
		counter(c.consumed, float64(m.topic(t).Load()), t, p.format(t))
	}
	counter(c.processed, float64(m.events.Load()))
	for i := range m.byReason {
		if n := m.byReason[i].Load(); n > 0 {
			counter(c.decodeFail, float64(n), event.Reason(i).String())
		}
	}
	for i := range m.ignoredBy {
		if n := m.ignoredBy[i].Load(); n > 0 {
			counter(c.ignored, float64(n), event.Reason(i).String())
		}
	}
	counter(c.deadLetters, float64(m.deadLettered.Load()))
	counter(c.deadLetterFail, float64(m.deadLetterFailed.Load()))
	counter(c.fetchErr, float64(m.fetchErrors.Load()))
	counter(c.commitErr, float64(m.commitErrors.Load()))
	counter(c.retentionLost, float64(m.retentionLost.Load()))

	m.mu.Lock()
	gauge(c.assigned, float64(len(m.connected)))
	for part, l := range m.lags {
		if hw := l.hw.Load(); hw >= 0 {
			gauge(c.lag, float64(max(hw-l.next.Load(), 0)), part.Topic, strconv.Itoa(part.Partition))
		}
	}
	last := m.lastCkpt
	m.mu.Unlock()

	if wm := m.watermark.Load(); wm > 0 {
		gauge(c.eventLag, p.now().Sub(time.Unix(0, wm)).Seconds())
	}
	counter(c.late, float64(m.late.Load()))
	counter(c.future, float64(m.future.Load()))
	if p.cfg.ScaleOut.Enabled {
		gauge(c.tasks, float64(m.tasks.Load()))
		gauge(c.restoring, float64(m.restoring.Load()))
		gauge(c.restoreLeft, float64(m.restoreRemaining.Load()))
		counter(c.restored, float64(m.restoredRecords.Load()))
		gauge(c.restoreLast, time.Duration(m.lastRestore.Load()).Seconds())
		counter(c.changelog, float64(m.changelogRecords.Load()))
		counter(c.repartitioned, float64(m.repartitioned.Load()))
		counter(c.duplicates, float64(m.duplicates.Load()))
	}

	p.alertMu.Lock()
	for rule, n := range p.detections {
		counter(c.detections, float64(n), rule)
	}
	muted := map[[2]string]uint64{}
	for _, b := range p.builders {
		for _, s := range b.Muted() {
			muted[[2]string{s.Reason, s.Name}] += uint64(s.N)
		}
	}
	for k, n := range muted {
		counter(c.suppressed, float64(n), k[0], k[1])
	}
	cfg := p.cfg
	expired := len(cfg.Expired(p.now()))
	gauge(c.allowlist, float64(len(cfg.Allowlist)-expired), "active")
	gauge(c.allowlist, float64(expired), "expired")
	for k, n := range p.raised {
		counter(c.alerts, float64(n), k.rule, k.severity, k.status)
	}
	open := map[[2]string]int{}
	for _, b := range p.builders {
		for k, n := range b.OpenIncidents() {
			open[k] += n
		}
	}
	for k, n := range open {
		gauge(c.incidents, float64(n), k[0], k[1])
	}
	p.alertMu.Unlock()

	var resident int64
	for i := range m.resident {
		resident += m.resident[i].Load()
	}
	gauge(c.entities, float64(resident), "memory")
	if n := p.store.Stored(); n >= 0 {
		gauge(c.entities, float64(n), "store")
	}
	counter(c.evictions, float64(m.evicted.Load()))
	counter(c.checkpoints, float64(m.checkpoints.Load()))
	counter(c.ckptFail, float64(m.checkpointErr.Load()))
	if ok := m.lastCkptOK.Load(); ok > 0 {
		gauge(c.ckptBytes, float64(last.Bytes))
		gauge(c.ckptLast, float64(ok)/1e9)
	}
	lsm, vlog := p.store.Size()
	gauge(c.lsm, float64(lsm), "state")
	gauge(c.vlog, float64(vlog), "state")
	lsm, vlog = p.deliver.StoreSize()
	gauge(c.lsm, float64(lsm), "outbox")
	gauge(c.vlog, float64(vlog), "outbox")
	ready := 0.0
	if ok, _ := p.Ready(); ok {
		ready = 1
	}
	gauge(c.ready, ready)

	for _, s := range p.deliver.Stats() {
		counter(c.sinkDelivered, float64(s.Delivered), s.Name, s.Type)
		counter(c.sinkFailed, float64(s.Failed), s.Name, s.Type)
		counter(c.sinkRetries, float64(s.Retries), s.Name, s.Type)
		counter(c.sinkDropped, float64(s.Dropped), s.Name, s.Type)
		failing := 0.0
		if s.Failing {
			failing = 1
		}
		gauge(c.sinkFailing, failing, s.Name, s.Type)
	}
	gauge(c.outboxDepth, float64(p.deliver.Pending()))
	counter(c.outboxDropped, float64(p.deliver.Dropped()))
}
