package models

import (
	"math"

	"github.com/exfilguard/exfilguard/pkg/models/sketch"
)

// bucket holds the counters of one tumbling bucket of a horizon. Integers,
// not floats: a day of an application account's rows passes 2^24, where a
// float32 stops counting.
//
// Bytes are not kept: no detector judges them, and a smaller bucket lets
// the buckets every event updates share fewer cache lines.
type bucket struct {
	rows, sensitive  uint64
	requests, denied uint32
	// ids and seq count numeric record ids and those continuing a run of
	// consecutive ids (enumeration).
	ids, seq uint32
	// newSources counts sources and clients seen for the first time
	// (principal and credential entities only).
	newSources uint32
}

// pair is the current and previous bucket's distinct sketch.
type pair struct{ cur, prev sketch.Distinct }

// rotate makes the current sketch the previous one and empties the other
// as the new current one. Its buffer goes back to the engine's pool when
// neither of the last two fills needed a quarter of it (see
// sketch.Distinct.Recycle).
func (p *pair) rotate(pool *sketch.Pool) {
	p.cur, p.prev = p.prev, p.cur
	p.cur.Recycle(pool, &p.prev)
}

// side returns the previous sketch when prev, else the current one.
func (p *pair) side(prev bool) *sketch.Distinct {
	if prev {
		return &p.prev
	}
	return &p.cur
}

// reset empties both sketches (a gap: the entity was idle for a bucket
// or more), giving back buffers neither fill needed a quarter of.
func (p *pair) reset(pool *sketch.Pool) {
	p.prev.Recycle(pool, &p.cur)
	p.cur.Recycle(pool, nil)
}

// free empties both sketches and gives their buffers to pool.
func (p *pair) free(pool *sketch.Pool) {
	p.cur.Free(pool)
	p.prev.Free(pool)
}

// never is the threshold of a check that is off.
const never = math.MaxFloat32

// window is the per-event state of one horizon of one entity: a current and
// a previous tumbling bucket, aligned to the epoch, whose weighted sum
// approximates the sliding window ending at the newest event (the previous
// bucket counts for the part of it still inside the horizon). Two buckets
// are enough because the allowed lateness is at most the shortest horizon,
// so every event that is not dropped as late lands in one of them.
//
// It holds only what every event reads or writes (two cache lines), so an
// entity's windows are a few contiguous lines; what is read when a bucket
// closes or a threshold is computed lives in history. The engine is
// memory-bound on large entity sets, and each line not touched counts.
type window struct {
	start     int64 // start of cur, Unix ns; 0 before the first event
	cur, prev bucket
	// thr is, per measure, the sliding total at which the measure fires in
	// the current bucket (see Engine.thresholds); raised by the escalation
	// step after a detection so that an incident does not repeat on every
	// event.
	thr [numMeasures]float32
	// enumThr is the count of numeric ids at which the sequential share is
	// judged.
	enumThr float32
	// anomalous marks the current bucket as judged abnormal: it will not
	// feed the baseline, so an attack cannot teach that it is normal.
	anomalous bool
	// fired has bit m set once measure m fired in the current bucket, so
	// that a refresh of thresholds keeps the escalation step.
	fired uint8
	// exact has bit m set when thr[m] was computed from the baselines
	// rather than being the cheap lower bound.
	exact uint8
}

// history is the rest of one horizon of one entity: the distinct-record
// and distinct-object sketches, and the baselines and peaks, touched when
// a bucket closes or a threshold is computed.
type history struct {
	records pair
	// objects counts the distinct objects touched.
	objects pair
	base    [numMeasures]ewma
	// peak is the largest closed bucket learned as normal, decaying with a
	// half-life of about a month. Means cannot describe a nightly job (one
	// huge bucket a day among empty ones); a peak can, from one example.
	peak [numMeasures]float32
}

// frac is how far t is into the current bucket, in [0, 1].
func frac(t, start, width int64) float64 {
	f := float64(t-start) / float64(width)
	if f < 0 {
		return 0
	}
	if f > 1 {
		return 1
	}
	return f
}

// value returns measure m of the current bucket and of the previous one.
func (w *window) value(m int, h *history, prin *pair) (cur, prev float64) {
	switch m {
	case mRows:
		return float64(w.cur.rows), float64(w.prev.rows)
	case mSensitive:
		return float64(w.cur.sensitive), float64(w.prev.sensitive)
	case mRequests:
		return float64(w.cur.requests), float64(w.prev.requests)
	case mDenied:
		return float64(w.cur.denied), float64(w.prev.denied)
	case mRecords:
		return h.records.cur.Estimate(), h.records.prev.Estimate()
	case mPrincipals:
		if prin == nil {
			return 0, 0
		}
		return prin.cur.Estimate(), prin.prev.Estimate()
	case mObjects:
		return h.objects.cur.Estimate(), h.objects.prev.Estimate()
	}
	return 0, 0
}

// closedValues are the measures of the current bucket, as they are fed to
// baselines when the bucket closes (mPrincipals is 0 without prin).
func (w *window) closedValues(h *history, prin *pair) [numMeasures]float64 {
	v := [numMeasures]float64{
		mRows:      float64(w.cur.rows),
		mSensitive: float64(w.cur.sensitive),
		mRequests:  float64(w.cur.requests),
		mDenied:    float64(w.cur.denied),
		mRecords:   h.records.cur.Estimate(),
		mObjects:   h.objects.cur.Estimate(),
	}
	if prin != nil {
		v[mPrincipals] = prin.cur.Estimate()
	}
	return v
}
