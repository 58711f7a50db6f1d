package stream

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/exfilguard/exfilguard/pkg/alerts"
	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/models"
	"github.com/exfilguard/exfilguard/pkg/state"
)

// Scale-out tasks (docs/scaling.md). With scale_out on, every assigned
// partition is a task: an engine of its own that sees only that
// partition's events, its own incidents, and its own space in the store;
// the same shard goroutine and barrier as kind shards, so checkpoints stay
// one atomic step. Because a task depends on nothing but its partition's
// events, in their order, what it computes is the same whichever replica
// runs it and however often it moves: alerts of a three-replica run equal
// a one-replica run's, ids included.
//
// Its state follows the partition through the changelog topic (see
// changelog.go): a checkpoint writes the changed entities there too, and a
// replica that is given a partition it did not own in the last generation
// rebuilds the task's space from the changelog before reading a message.
// Kafka-go rebalances eagerly (every partition is revoked at the end of a
// generation): the generation's last checkpoint writes the changed state
// of every task, and tasks a replica keeps into the next generation keep
// their memory and are not restored.

// tagInput is the tag of the input topic's tasks; repartition topics are
// 1.. in config order.
const tagInput = 0

// taskSet is the pipeline's scale-out state; nil without scale_out. The
// dispatcher owns it.
type taskSet struct {
	// topics and kinds are by tag: the topic and the entity kinds its
	// tasks keep.
	topics []string
	kinds  [][]models.Kind
	// routes are the repartitioned kinds, by tag-1.
	routes []models.Kind
	router *models.Router
	// parts is the input's partition count (and every internal topic's).
	parts  int
	cl     *changelog
	out    *kafka.Writer // repartition producer; nil without routes
	byPart map[state.Partition]*shard
	to     []*shard // touched's result
}

// task is a shard's scale-out identity and buffers. Its fields belong to
// the shard's goroutine, except where said.
type task struct {
	part state.Partition
	tag  byte
	ns   state.Space
	// builder is the task's incidents; used under Pipeline.alertMu.
	builder *alerts.Builder
	done    chan struct{} // closed when the goroutine has returned

	// recs are the changelog records of the checkpoint in progress.
	recs  []kafka.Record
	bytes int
	// deletes are entities the last sweep deleted from the store: the
	// next checkpoint writes their tombstones.
	deletes []uint64
	// What the task last added to the pipeline-wide gauges.
	resident, late, future int64
	// seen is, for a repartition topic's task, the last origin applied
	// from each input partition (routed.go).
	seen map[int32]origin
}

func newTaskSet(cfg *config.Config, d *kafka.Dialer, parts int) *taskSet {
	k := &cfg.Kafka
	ts := &taskSet{parts: parts, cl: newChangelog(cfg, d), router: models.NewRouter(cfg), byPart: map[state.Partition]*shard{}}
	routed := map[models.Kind]bool{}
	for _, name := range cfg.ScaleOut.Repartition {
		kind, _ := models.ParseKind(name)
		routed[kind] = true
		ts.routes = append(ts.routes, kind)
	}
	var input []models.Kind
	for _, kind := range models.ShardKinds(cfg, 1)[0] {
		if !routed[kind] {
			input = append(input, kind)
		}
	}
	ts.topics = []string{k.Topics[0].Name}
	ts.kinds = [][]models.Kind{input}
	for _, kind := range ts.routes {
		ts.topics = append(ts.topics, cfg.ScaleOut.RepartitionTopic(k, kind.String()))
		ts.kinds = append(ts.kinds, []models.Kind{kind})
	}
	if len(ts.routes) > 0 {
		ts.out = &kafka.Writer{
			Addr: kafka.TCP(k.Brokers...),
			// Partition by the entity's hash (the key), identically on
			// every replica: partition ids are 0..n-1.
			Balancer: kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
				return int(binary.BigEndian.Uint64(m.Key) % uint64(len(partitions)))
			}),
			RequiredAcks: kafka.RequireAll,
			BatchSize:    4 * batchSize,
			BatchBytes:   1 << 20,
			BatchTimeout: time.Millisecond,
			WriteTimeout: cfg.State.ShutdownTimeout.D(),
			Transport:    &kafka.Transport{Dial: d.DialFunc, SASL: d.SASLMechanism, TLS: d.TLS, ClientID: d.ClientID, DialTimeout: d.Timeout},
		}
	}
	return ts
}

// tagOf returns the tag of a topic, or -1.
func (ts *taskSet) tagOf(topic string) int { return slices.Index(ts.topics, topic) }

// taskConfig is a task's copy of cfg: its share of the entity cap, which
// is a replica's when it owns every partition.
func (ts *taskSet) taskConfig(cfg *config.Config) *config.Config {
	return shardConfig(cfg, ts.parts)
}

// assignTasks runs on the dispatcher at the start of a generation: it
// drops the tasks of partitions no longer assigned, restores those newly
// assigned from the changelog, and returns where each assigned partition's
// reading starts (absent: the group's committed offset).
func (p *Pipeline) assignTasks(assigned []state.Partition) (map[state.Partition]int64, error) {
	ts := p.tasks
	keep := map[state.Partition]bool{}
	for _, a := range assigned {
		keep[a] = true
	}
	for part, s := range ts.byPart {
		if !keep[part] {
			p.dropTask(s)
		}
	}
	var fresh []state.Partition
	for _, a := range assigned {
		if ts.byPart[a] == nil {
			fresh = append(fresh, a)
		}
	}
	if len(fresh) > 0 {
		start := p.now()
		p.m.restoring.Store(int64(len(fresh)))
		for _, a := range fresh {
			tag := ts.tagOf(a.Topic)
			if tag < 0 {
				return nil, fmt.Errorf("assigned partition %s is not of a topic of this detector", a)
			}
			if err := p.restoreTask(byte(tag), a); err != nil {
				return nil, fmt.Errorf("restore task %s: %w", a, err)
			}
			if err := p.startTask(byte(tag), a); err != nil {
				return nil, fmt.Errorf("start task %s: %w", a, err)
			}
			p.m.restoring.Add(-1)
		}
		p.m.lastRestore.Store(int64(p.now().Sub(start)))
		p.log.Info("tasks restored", "partitions", len(fresh), "duration", p.now().Sub(start))
	}
	pos, err := p.store.Positions()
	if err != nil {
		return nil, err
	}
	out := map[state.Partition]int64{}
	for _, a := range assigned {
		if off, ok := p.positions[a]; ok {
			out[a] = off
		} else if off, ok := pos[a]; ok {
			out[a] = off
			p.positions[a] = off
		}
	}
	p.durableMu.Lock()
	for a, off := range out {
		p.durable[a] = off
	}
	p.durableMu.Unlock()
	return out, nil
}

// restoreTask brings the task's space in the store up to the changelog:
// from where the local copy left it (the changelog offset after the last
// marker it wrote or read) when that is still in the changelog, else whole
// after clearing the space. Only what precedes the task's last marker in
// the changelog is applied; a record after it belongs to a checkpoint a
// crash interrupted, and is applied only if nothing older of the same key
// is known (compaction may have removed the older one): at least once for
// that entity, never lost.
func (p *Pipeline) restoreTask(tag byte, a state.Partition) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*p.cfg.State.ShutdownTimeout.D())
	defer cancel()
	ts := p.tasks
	ns := state.TaskSpace(tag, a.Partition)
	view := p.store.Space(ns)
	local := int64(-1)
	if b, err := view.Blob("changelog"); err != nil {
		return err
	} else if len(b) == 8 {
		local = int64(binary.BigEndian.Uint64(b))
	}
	first, end, err := ts.cl.offsets(ctx, a.Partition)
	if err != nil {
		return err
	}
	full := local < first || local > end
	from := local
	if full {
		if err := p.store.ClearSpace(ns); err != nil {
			return err
		}
		from = first
	}
	var (
		pending = map[string][]byte{} // since the last marker
		done    = map[string][]byte{} // up to it
		pos     int64
		marked  bool
		read    int64
	)
	err = ts.cl.read(ctx, a.Partition, from, end, func(off int64, key, value []byte) error {
		read++
		if len(key) < 2 || key[0] != tag {
			return nil
		}
		if key[1] == clMarker {
			v, err := parseMarker(value)
			if err != nil {
				return fmt.Errorf("changelog %s/%d at %d: %w", ts.cl.topic, a.Partition, off, err)
			}
			maps.Copy(done, pending)
			clear(pending)
			pos, marked = v, true
			return nil
		}
		pending[string(key)] = value
		return nil
	}, func(off, end int64) {
		p.m.restoreRemaining.Store(end - off)
		p.m.restoredRecords.Add(uint64(read))
		read = 0
	})
	p.m.restoreRemaining.Store(0)
	p.m.restoredRecords.Add(uint64(read))
	if err != nil {
		return err
	}
	torn := 0
	for k, v := range pending {
		if _, ok := done[k]; ok {
			continue
		}
		if !full && storedLocally(view, []byte(k)) {
			continue
		}
		done[k] = v
		torn++
	}
	if len(done) == 0 && !marked && !full {
		return nil // the local copy is current
	}
	cp := p.store.Begin()
	w := cp.Space(ns)
	for k, v := range done {
		if err := applyRecord(w, []byte(k), v); err != nil {
			cp.Abort()
			return fmt.Errorf("changelog %s/%d: %w", ts.cl.topic, a.Partition, err)
		}
	}
	if err := w.PutBlob("changelog", binary.BigEndian.AppendUint64(nil, uint64(end))); err != nil {
		cp.Abort()
		return err
	}
	var positions map[state.Partition]int64
	if marked {
		positions = map[state.Partition]int64{a: pos}
	}
	if err := cp.Commit(positions); err != nil {
		return err
	}
	if marked {
		p.positions[a] = pos
	}
	p.log.Info("task restored from the changelog", "partition", a.String(), "full", full, "from", from, "to", end,
		"records", len(done), "position", pos, "interrupted_checkpoint_records", torn)
	return nil
}

// storedLocally reports whether the space has the entity or blob of a
// changelog key.
func storedLocally(view *state.SpaceView, key []byte) bool {
	switch key[1] {
	case clEntity:
		if len(key) != 10 {
			return false
		}
		_, ok, err := view.LoadEntity(binary.BigEndian.Uint64(key[2:]), nil)
		return ok || err != nil
	case clBlob:
		b, err := view.Blob(string(key[2:]))
		return b != nil || err != nil
	}
	return false
}

func applyRecord(w state.SpaceWriter, key, value []byte) error {
	switch key[1] {
	case clEntity:
		if len(key) != 10 {
			return fmt.Errorf("entity key of %d bytes", len(key))
		}
		h := binary.BigEndian.Uint64(key[2:])
		if len(value) == 0 {
			return w.DeleteEntity(h)
		}
		return w.PutValue(h, value)
	case clBlob:
		if len(value) == 0 {
			return w.DeleteBlob(string(key[2:]))
		}
		return w.PutBlob(string(key[2:]), value)
	}
	return fmt.Errorf("unknown record type %q", key[1])
}

// startTask builds the task's engine and incidents from its space and
// starts its goroutine.
func (p *Pipeline) startTask(tag byte, a state.Partition) error {
	ts := p.tasks
	ns := state.TaskSpace(tag, a.Partition)
	view := p.store.Space(ns)
	t := &task{part: a, tag: tag, ns: ns, done: make(chan struct{}),
		builder: alerts.NewBuilder(p.cfg, p.pseudo, p.now)}
	s := &shard{in: make(chan shardItem, 8), kinds: ts.kinds[tag], t: t, cap: ts.taskConfig(p.cfg).Engine.MaxEntities}
	var err error
	s.engine, err = models.NewOwning(ts.taskConfig(p.cfg), func(d *models.Detection) { p.detection(s, d) }, ts.kinds[tag])
	if err != nil {
		return err
	}
	s.engine.SetStore(view)
	if blob, err := view.Blob("engine"); err != nil {
		return err
	} else if blob != nil {
		if err := s.engine.Restore(blob); err != nil {
			return fmt.Errorf("restore engine state: %w", err)
		}
	}
	al, err := view.Blob("alerts")
	if err != nil {
		return err
	}
	if err := t.builder.RestoreState(al); err != nil {
		return err
	}
	if b, err := view.Blob("origins"); err != nil {
		return err
	} else if b != nil {
		if err := t.restoreSeen(b); err != nil {
			return err
		}
	}
	ts.byPart[a] = s
	p.shards = append(p.shards, s)
	p.alertMu.Lock()
	p.builders = append(p.builders, t.builder)
	p.alertMu.Unlock()
	p.m.tasks.Add(1)
	go func() {
		defer close(t.done)
		var wg sync.WaitGroup
		wg.Add(1)
		s.run(p, &wg)
	}()
	return nil
}

// dropTask stops a task whose partition moved away. Its state is durable:
// the generation ended with a checkpoint.
func (p *Pipeline) dropTask(s *shard) {
	t := s.t
	close(s.in)
	<-t.done
	delete(p.tasks.byPart, t.part)
	p.shards = slices.DeleteFunc(p.shards, func(x *shard) bool { return x == s })
	p.alertMu.Lock()
	p.builders = slices.DeleteFunc(p.builders, func(b *alerts.Builder) bool { return b == t.builder })
	p.alertMu.Unlock()
	delete(p.positions, t.part)
	p.m.resident[0].Add(-t.resident)
	p.m.tasks.Add(-1)
	p.log.Info("task released", "partition", t.part.String())
}

// touched returns the tasks of the partitions a merged batch holds
// events of, in a reused slice.
func (ts *taskSet) touched(b *mbatch) []*shard {
	ts.to = ts.to[:0]
	var last state.Partition
	for i, part := range b.part[:b.n] {
		if i > 0 && part == last {
			continue
		}
		last = part
		if s := ts.byPart[part]; s != nil && !slices.Contains(ts.to, s) {
			ts.to = append(ts.to, s)
		}
	}
	return ts.to
}

// taskWriter writes a task's part of a checkpoint to its space in the
// store and to the changelog.
type taskWriter struct {
	w  state.SpaceWriter
	t  *task
	cl *changelog
}

func (w taskWriter) PutEntity(h uint64, last int64, data []byte) error {
	if err := w.w.PutEntity(h, last, data); err != nil {
		return err
	}
	v := make([]byte, 8+len(data))
	binary.BigEndian.PutUint64(v, uint64(last))
	copy(v[8:], data)
	return w.add(clEntityKey(w.t.tag, h), v)
}

func (w taskWriter) DeleteEntity(h uint64) error {
	if err := w.w.DeleteEntity(h); err != nil {
		return err
	}
	return w.add(clEntityKey(w.t.tag, h), nil)
}

func (w taskWriter) PutEngine(data []byte) error { return w.PutBlob("engine", data) }

func (w taskWriter) PutBlob(name string, data []byte) error {
	if err := w.w.PutBlob(name, data); err != nil {
		return err
	}
	return w.add(clKey(w.t.tag, clBlob, []byte(name)), append([]byte(nil), data...))
}

// add queues a changelog record, producing what is queued once it is
// large: the marker that makes it count comes after every one.
func (w taskWriter) add(key, value []byte) error {
	t := w.t
	r := kafka.Record{Key: kafka.NewBytes(key)}
	if value != nil {
		r.Value = kafka.NewBytes(value)
	}
	t.recs = append(t.recs, r)
	t.bytes += len(key) + len(value) + 16
	if t.bytes >= 4*clChunkBytes {
		return w.flush()
	}
	return nil
}

func (w taskWriter) flush() error {
	t := w.t
	if len(t.recs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := w.cl.produce(ctx, t.part.Partition, t.recs)
	clear(t.recs)
	t.recs, t.bytes = t.recs[:0], 0
	return err
}

// checkpoint writes the task's part of a checkpoint: the tombstones of
// what the last sweep deleted, its changed entities and engine state, and
// its incidents. The marker is the dispatcher's, once alerts are durable.
func (t *task) checkpoint(p *Pipeline, s *shard, bar *barrier) error {
	w := taskWriter{w: bar.cp.Space(t.ns), t: t, cl: p.tasks.cl}
	for _, h := range t.deletes {
		if err := w.add(clEntityKey(t.tag, h), nil); err != nil {
			return err
		}
	}
	t.deletes = t.deletes[:0]
	if _, err := s.engine.Checkpoint(w); err != nil {
		return err
	}
	p.alertMu.Lock()
	buf := t.builder.AppendState(nil)
	p.alertMu.Unlock()
	if err := w.PutBlob("alerts", buf); err != nil {
		return err
	}
	if t.tag != tagInput {
		if err := w.PutBlob("origins", t.appendSeen(nil)); err != nil {
			return err
		}
	}
	p.m.changelogRecords.Add(uint64(len(t.recs)))
	return w.flush()
}

// writeMarkers produces every task's marker, with the position its state
// covers, once the tasks' parts and their alerts are durable; and records
// in each task's space how far it reflects the changelog.
func (p *Pipeline) writeMarkers(cp *state.Checkpoint) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.State.ShutdownTimeout.D())
	defer cancel()
	byNum := map[int][]*task{}
	for _, s := range p.shards {
		t := s.t
		if _, ok := p.positions[t.part]; !ok {
			continue // nothing read yet: nothing to cover
		}
		byNum[t.part.Partition] = append(byNum[t.part.Partition], t)
	}
	for num, tasks := range byNum {
		recs := make([]kafka.Record, len(tasks))
		for i, t := range tasks {
			recs[i] = kafka.Record{Key: kafka.NewBytes(clKey(t.tag, clMarker, nil)), Value: kafka.NewBytes(clMarkerValue(p.positions[t.part]))}
		}
		last, err := p.tasks.cl.produce(ctx, num, recs)
		if err != nil {
			return err
		}
		for i, t := range tasks {
			off := last - int64(len(tasks)-1-i)
			if err := cp.Space(t.ns).PutBlob("changelog", binary.BigEndian.AppendUint64(nil, uint64(off+1))); err != nil {
				return err
			}
		}
		p.m.changelogRecords.Add(uint64(len(recs)))
	}
	return nil
}

// taskMetrics adds what the task changed to the pipeline-wide gauges.
func (p *Pipeline) taskMetrics(s *shard) {
	t := s.t
	r := int64(s.engine.Resident())
	p.m.resident[0].Add(r - t.resident)
	t.resident = r
	st := s.engine.Stats()
	p.m.late.Add(int64(st.Late) - t.late)
	p.m.future.Add(int64(st.Future) - t.future)
	t.late, t.future = int64(st.Late), int64(st.Future)
	wm := s.engine.Watermark()
	for {
		cur := p.m.watermark.Load()
		if wm <= cur || p.m.watermark.CompareAndSwap(cur, wm) {
			break
		}
	}
}
