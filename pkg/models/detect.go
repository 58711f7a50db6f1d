package models

import (
	"math"
	"net/netip"
	"time"
)

// begin prepares the engine's reusable Detection for rule on ent.
func (e *Engine) begin(rule Rule, ent *Entity, t int64) *Detection {
	d := &e.det
	*d = Detection{Rule: rule, Kind: ent.kind, Key: ent.key, Hash: ent.hash, Role: ent.role, Time: t,
		WindowStart: t, WindowEnd: t, Learning: !ent.historyCovers(e.profileOf(ent).learning), Warmup: e.warm}
	d.Principal, d.PrincipalType = ent.key, ent.ptype
	if ent.kind != KindPrincipal {
		d.Principal, d.PrincipalType = ent.topPrincipal[0].name, ent.topPrincipal[0].ptype
	}
	if ev := e.cur; ev != nil {
		d.NSamples = copy(d.Samples[:], ev.RecordIDs)
	}
	for _, o := range ent.topObject {
		if o.name != "" {
			d.Objects[d.NObjects] = o.name
			d.NObjects++
		}
	}
	return d
}

// finish scores, grades and emits d about ent. A rule judged against a
// baseline has already flagged the window it judged; any other rule is
// about the event itself (a bulk read, a walk, a first-seen object or
// source, a return from dormancy, an hour never worked), so every bucket
// the event is in is flagged: none of them may teach the baselines, or
// the learned peaks, that the attack was normal.
func (e *Engine) finish(ent *Entity, d *Detection, score float64) {
	if !rules[d.Rule].baseline {
		for hi := range ent.win {
			ent.win[hi].anomalous = true
		}
	}
	if d.Rows == 0 && d.Records == 0 {
		d.Rows = d.Exposure
	}
	d.Override = ent.prof.name
	d.RowsUnknown = ent.rowless
	d.Score = math.Round(clamp(score, 0, 100)*10) / 10
	// Graded on the weighted exposure: a heavier class is worse news.
	d.Severity = severityOf(d.Rule, d.Score, d.Exposure, d.Warmup || d.Basis == BasisPrior)
	if len(e.sens.classes) > 0 {
		e.unweight(d)
	}
	e.stats.Detections[d.Rule]++
	e.emit(d)
}

// spikeRule is the rule a spike of measure m raises.
var spikeRule = [numMeasures]Rule{
	mRows: RuleVolumeSpike, mSensitive: RuleVolumeSpike, mRequests: RuleVolumeSpike,
	mDenied: RuleDeniedBurst, mRecords: RuleDistinctRecords, mPrincipals: RuleFanOut,
	mObjects: RuleVolumeSpike,
}

// sliding is measure m over the sliding window ending f into the current
// bucket.
func (w *window) sliding(m int, h *history, prin *pair, f float64) float64 {
	c, p := w.value(m, h, prin)
	return c + p*(1-f)
}

// touched is a bit set of the counted measures an event changed: only
// those can have crossed a threshold.
type touched uint8

// checkWindows judges every horizon's sliding totals of the measures the
// event changed against the current thresholds: counters in every
// horizon, distinct counts only in the horizons whose sketch changed
// (recDepth, prinDepth). Most events stop at one comparison per measure.
//
// The measures are spelled out rather than looped over with value: this
// runs for every entity of every event, and a loop with a bit test and a
// switch per measure cost more in branches than the comparisons do. The
// order (rows, sensitive, denied, records, principals) is measure order,
// so detections are emitted in the same order as by a loop. Requests have
// no spike detector and are never touched.
func (e *Engine) checkWindows(ent *Entity, t int64, tm touched, recDepth, prinDepth, objDepth int) {
	for hi := range e.horizons {
		w := &ent.win[hi]
		var prin *pair
		if ent.prin != nil {
			prin = &ent.prin[hi]
		}
		if tm&(1<<mRows) != 0 {
			e.spike(ent, w, hi, mRows, float64(w.cur.rows), float64(w.prev.rows), prin, t)
		}
		if tm&(1<<mSensitive) != 0 {
			e.spike(ent, w, hi, mSensitive, float64(w.cur.sensitive), float64(w.prev.sensitive), prin, t)
		}
		if tm&(1<<mDenied) != 0 {
			e.spike(ent, w, hi, mDenied, float64(w.cur.denied), float64(w.prev.denied), prin, t)
		}
		if hi < recDepth {
			r := &ent.hist[hi].records
			e.spike(ent, w, hi, mRecords, r.cur.Estimate(), r.prev.Estimate(), prin, t)
		}
		if hi < prinDepth {
			e.spike(ent, w, hi, mPrincipals, prin.cur.Estimate(), prin.prev.Estimate(), prin, t)
		}
		if hi < objDepth {
			o := &ent.hist[hi].objects
			e.spike(ent, w, hi, mObjects, o.cur.Estimate(), o.prev.Estimate(), prin, t)
		}
		if ids := float64(w.cur.ids + w.prev.ids); ids >= float64(w.enumThr) {
			e.checkEnumeration(ent, hi, ids, t)
		}
	}
}

// spike judges measure m of horizon hi, whose current and previous
// buckets hold c and p, when together they reach its threshold.
func (e *Engine) spike(ent *Entity, w *window, hi, m int, c, p float64, prin *pair, t int64) {
	if c+p < float64(w.thr[m]) {
		return
	}
	e.judgeSpike(ent, hi, m, c, p, prin, t)
}

// judgeSpike is the slow path of checkWindows, for a measure whose two
// buckets together reach its threshold.
func (e *Engine) judgeSpike(ent *Entity, hi, m int, c, p float64, prin *pair, t int64) {
	w := &ent.win[hi]
	if w.exact&(1<<m) == 0 {
		e.exactThreshold(ent, hi, m)
		if c+p < float64(w.thr[m]) {
			return
		}
	}
	f := frac(t, w.start, e.horizons[hi])
	if obs := c + p*(1-f); obs >= float64(w.thr[m]) {
		e.fireSpike(ent, hi, m, obs, f, prin, t)
	}
}

func (e *Engine) fireSpike(ent *Entity, hi, m int, obs, f float64, prin *pair, t int64) {
	w, h := &ent.win[hi], &ent.hist[hi]
	w.anomalous = true
	w.fired |= 1 << m
	w.exact |= 1 << m
	w.thr[m] = float32(min(obs*e.cfg.Alerts.EscalationStep, never))
	x := e.expect(ent, hi, m, slotOf(w.start))
	exp := math.Expm1(x.mu)
	d := e.begin(spikeRule[m], ent, t)
	d.Horizon = durationOf(e.horizons[hi])
	d.WindowStart = t - e.horizons[hi]
	d.Basis = x.basis
	d.addMeasure(measureNames[m], obs, exp)
	context := [...]int{mSensitive, mRecords, mPrincipals, mRequests}
	for _, c := range context {
		if c == m || (c == mPrincipals && prin == nil) {
			continue
		}
		v := w.sliding(c, h, prin, f)
		if v == 0 && c != mRequests {
			continue
		}
		cx := e.expect(ent, hi, c, slotOf(w.start))
		d.addMeasure(measureNames[c], v, math.Expm1(cx.mu))
	}
	d.Rows, d.Records = w.sliding(mSensitive, h, prin, f), w.sliding(mRecords, h, prin, f)
	d.Exposure = max(d.Rows, d.Records)
	if m == mDenied {
		d.Exposure, d.Rows, d.Records = 0, 0, 0
	}
	e.finish(ent, d, ratioScore(obs, exp))
}

func (e *Engine) checkEnumeration(ent *Entity, hi int, ids float64, t int64) {
	w := &ent.win[hi]
	en := &e.profileOf(ent).det.Enumeration
	share := float64(w.cur.seq+w.prev.seq) / ids
	if share < en.MinShare {
		// Not a walk yet: look again after a quarter more ids rather than
		// on every event.
		w.enumThr = float32(ids*1.25 + 1)
		return
	}
	w.enumThr = float32(min(ids*e.cfg.Alerts.EscalationStep, never))
	d := e.begin(RuleEnumeration, ent, t)
	d.Horizon = durationOf(e.horizons[hi])
	d.WindowStart = t - e.horizons[hi]
	d.Sequential = share
	d.addMeasure("sequential_id_share", share, 0)
	d.addMeasure("record_ids", ids, 0)
	f := frac(t, w.start, e.horizons[hi])
	d.Exposure = max(ids, w.sliding(mRecords, &ent.hist[hi], nil, f))
	d.Records = d.Exposure
	e.finish(ent, d, 60+35*(share-en.MinShare)/(1-en.MinShare+1e-9))
}

// checkBulk judges one request: more sensitive rows than the hard cap and
// than the margin over what is learned as normal for the principal or its
// peers: the largest single request, or the largest day of sensitive rows
// (a nightly ETL that reads the table in one request tonight and in two
// tomorrow is doing the same day's work). A request that fires is not
// learned.
func (e *Engine) checkBulk(ent *Entity, x *eventFacts) {
	br := &e.profileOf(ent).det.BulkRead
	if !br.Enabled || !x.sensitive {
		return
	}
	rows := float64(x.sensRows)
	learned, basis := ent.maxRequest, BasisOwn
	if g := ent.group; g != nil && g.maxRequest > learned {
		learned, basis = g.maxRequest, BasisPeers
	}
	if e.dayIdx >= 0 {
		if p := float64(ent.hist[e.dayIdx].peak[mSensitive]); p > learned {
			learned, basis = p, BasisOwn
		}
		if g := ent.group; g != nil && float64(g.peak[e.dayIdx][mSensitive]) > learned {
			learned, basis = float64(g.peak[e.dayIdx][mSensitive]), BasisPeers
		}
	}
	if rows >= float64(br.MaxRows) && rows > br.LearnedMargin*learned {
		d := e.begin(RuleBulkRead, ent, x.ev.Time)
		d.rawRows = float64(x.rows)
		d.Basis = basis
		d.addMeasure("sensitive_rows_in_request", rows, learned)
		d.addMeasure("request_cap", float64(br.MaxRows), 0)
		d.Exposure = rows
		d.Objects, d.NObjects = [2]string{x.ev.Object}, 1
		e.finish(ent, d, max(60, ratioScore(rows, learned)))
		if !e.warm {
			return
		}
	}
	ent.maxRequest = max(ent.maxRequest, rows)
	if g := ent.group; g != nil {
		g.maxRequest = max(g.maxRequest, rows)
	}
}

// checkFirstObject watches a principal's first read of a sensitive object:
// it fires when the object yields MinRows within the watch period, once
// the principal's own history is long enough to say the object is new to
// it, or earlier when none of its peers reads that object either.
func (e *Engine) checkFirstObject(ent *Entity, x *eventFacts) {
	fo := &e.profileOf(ent).det.FirstObject
	if !fo.Enabled || !x.sensitive || ent.kind != KindPrincipal {
		return
	}
	t := x.ev.Time
	if !remember(&ent.knownObj, x.objHash, e.cfg.Engine.MaxKnownObjects) {
		g := ent.group
		peersKnow := false
		if g != nil {
			_, peersKnow = g.objects[x.objHash]
			g.addObject(x.objHash)
		}
		own := ent.historyCovers(e.profileOf(ent).learning)
		peerSays := !own && g != nil && g.members >= minPeers && len(g.objects) > 1 && !peersKnow
		if !e.warm && (own || peerSays) {
			ent.newObj = novelty{hash: x.objHash, since: t, thr: float64(fo.MinRows)}
			if !own {
				ent.newObj.basis = BasisPeers
			}
		}
	}
	n := &ent.newObj
	if !n.watch(t, int64(fo.WatchPeriod), x.objHash == n.hash, float64(x.sensRows)) {
		return
	}
	d := e.begin(RuleFirstSensitiveObject, ent, t)
	d.WindowStart, d.Horizon = n.since, durationOf(t-n.since)
	d.Basis = n.basis
	d.addMeasure("sensitive_rows_from_new_object", n.rows, 0)
	d.addMeasure("known_sensitive_objects", float64(len(ent.knownObj)-1), 0)
	d.Exposure = n.rows
	d.Objects, d.NObjects = [2]string{x.ev.Object}, 1
	e.finish(ent, d, clamp(50+10*math.Log10(n.rows/max(n.thr, 1)), 50, 90))
	*n = novelty{}
}

// checkNewSource watches the first network or client seen for an
// established principal or credential: new sources are ordinary (a new
// laptop, a trip), so it fires only when the new source brings sensitive
// rows beyond a fraction of the usual hourly threshold.
func (e *Engine) checkNewSource(ent *Entity, x *eventFacts) {
	ns := &e.profileOf(ent).det.NewSource
	if !ns.Enabled {
		return
	}
	t := x.ev.Time
	for _, h := range [2]uint64{x.srcHash, x.clientHash} {
		if h == 0 || remember(&ent.knownSrc, h, e.cfg.Engine.MaxKnownSources) {
			continue
		}
		for hi := range e.horizons {
			switch w := &ent.win[hi]; x.bucket[hi] {
			case w.start:
				w.cur.newSources++
			case w.start - e.horizons[hi]:
				w.prev.newSources++
			}
		}
		if !e.warm && ent.newSrc.since == 0 && ent.historyCovers(e.profileOf(ent).learning) {
			thr := float64(ns.MinRows)
			if hi := e.hourIdx; hi >= 0 && e.profileOf(ent).spikes[mSensitive] != nil {
				if ent.win[hi].exact&(1<<mSensitive) == 0 {
					e.exactThreshold(ent, hi, mSensitive)
				}
				thr = max(thr, ns.Factor*float64(ent.win[hi].thr[mSensitive]))
			}
			ent.newSrc = novelty{hash: h, since: t, thr: thr}
		}
	}
	n := &ent.newSrc
	if !n.watch(t, int64(ns.WatchPeriod), n.hash == x.srcHash || n.hash == x.clientHash, float64(x.sensRows)) {
		return
	}
	d := e.begin(RuleNewSource, ent, t)
	d.WindowStart, d.Horizon = n.since, durationOf(t-n.since)
	expected := 0.0
	firstSeen := 0.0
	if hi := e.hourIdx; hi >= 0 {
		w := &ent.win[hi]
		expected = math.Expm1(e.expect(ent, hi, mSensitive, slotOf(w.start)).mu)
		firstSeen = float64(w.cur.newSources)
	}
	d.addMeasure("sensitive_rows_from_new_source", n.rows, expected)
	d.addMeasure("known_sources", float64(len(ent.knownSrc)-1), 0)
	d.addMeasure("first_seen_sources_this_hour", firstSeen, 0)
	d.Exposure = n.rows
	e.finish(ent, d, clamp(50+10*math.Log10(n.rows/max(n.thr, 1)), 50, 90))
	*n = novelty{}
}

// checkDormant fires when an entity that used to be active most days came
// back after a long silence and reads sensitive rows.
func (e *Engine) checkDormant(ent *Entity, x *eventFacts) {
	n := &ent.revived
	t := x.ev.Time
	if !n.watch(t, int64(e.profileOf(ent).det.Dormant.WatchPeriod), true, float64(x.sensRows)) {
		return
	}
	d := e.begin(RuleDormantCredential, ent, t)
	d.WindowStart, d.Horizon = n.since, durationOf(t-n.since)
	d.addMeasure("days_silent", float64(n.gap)/float64(dayNs), 0)
	d.addMeasure("sensitive_rows_since_return", n.rows, 0)
	d.Exposure = n.rows
	e.finish(ent, d, clamp(60+10*math.Log10(float64(n.gap)/float64(e.profileOf(ent).det.Dormant.DormantFor)+1)+10*math.Log10(n.rows/max(n.thr, 1)+1), 60, 95))
	*n = novelty{}
}

// Evidence a peer group needs before it may speak for a young member:
// minPeers members for what objects the role reads, minGroupHours
// member-hours (about three person-weeks) for when the role works.
const (
	minPeers      = 5
	minGroupHours = 500
)

// offHoursThreshold is, for the hour starting now, the sensitive rows at
// which off-hours fires: MinRows when the entity (or, while its own
// profile is short, its peers) practically never works in this slot.
func (e *Engine) offHoursThreshold(ent *Entity, slot int) float64 {
	oh := &e.profileOf(ent).det.OffHours
	if !oh.Enabled || e.warm || ent.kind != KindPrincipal {
		return never
	}
	if wk := ent.weeks(); ent.rhythm != nil && wk >= oh.MinWeeks {
		if float64(ent.rhythm.maxNear(slot))/wk < oh.MaxShare {
			return float64(oh.MinRows)
		}
		return never
	}
	if g := ent.group; g != nil && g.memberHours >= minGroupHours {
		near := g.hours[(slot+slotsPerWeek-1)%slotsPerWeek] + g.hours[slot] + g.hours[(slot+1)%slotsPerWeek]
		if float64(near)/float64(g.memberHours) < 3.0/slotsPerWeek*oh.MaxShare {
			return float64(oh.MinRows)
		}
	}
	return never
}

func (e *Engine) checkOffHours(ent *Entity, x *eventFacts) {
	if ent.offThr >= never || !x.sensitive || e.hourIdx < 0 {
		return
	}
	w := &ent.win[e.hourIdx]
	rows := float64(w.cur.sensitive)
	if rows < ent.offThr {
		return
	}
	ent.offThr = never
	t := x.ev.Time
	d := e.begin(RuleOffHours, ent, t)
	d.WindowStart, d.Horizon = w.start, durationOf(e.horizons[e.hourIdx])
	d.Basis = BasisOwn
	share := 0.0
	if ent.rhythm != nil && ent.weeks() >= e.profileOf(ent).det.OffHours.MinWeeks {
		share = float64(ent.rhythm.maxNear(slotOf(w.start))) / ent.weeks()
	} else {
		d.Basis = BasisPeers
	}
	xp := e.expect(ent, e.hourIdx, mSensitive, slotOf(w.start))
	d.addMeasure("sensitive_rows_this_hour", rows, math.Expm1(xp.mu))
	d.addMeasure("share_of_weeks_active_at_this_hour", share, e.profileOf(ent).det.OffHours.MaxShare)
	d.Exposure = rows
	e.finish(ent, d, clamp(50+10*math.Log10(rows/max(float64(e.profileOf(ent).det.OffHours.MinRows), 1)), 50, 85))
}

// durationOf converts nanoseconds of event time.
func durationOf(ns int64) time.Duration { return time.Duration(ns) }

// lowAndSlowThreshold is today's sensitive-row total at which the CUSUM
// of the days so far, plus today, crosses its threshold with enough
// absolute excess. It is armed only once an earlier day was already above
// normal: a single day's spike is the volume detector's, and a "slow"
// alert about one day would misexplain it.
func (e *Engine) lowAndSlowThreshold(ent *Entity, h *history) float64 {
	ls := &e.profileOf(ent).det.LowAndSlow
	b := &h.base[mSensitive]
	if !ls.Enabled || e.warm || b.n < 5 || ent.cusum <= 0 {
		return never
	}
	dev := max(float64(b.dev), e.cfg.Baseline.MinDeviation)
	exp := math.Expm1(float64(b.mu))
	return max(1, math.Expm1(float64(b.mu)+dev*(ls.Threshold-ent.cusum+ls.Slack)), exp+ls.MinExcessRows-ent.excess)
}

func (e *Engine) checkLowAndSlow(ent *Entity, t int64) {
	if e.dayIdx < 0 || ent.lsThr >= never {
		return
	}
	w := &ent.win[e.dayIdx]
	today := float64(w.cur.sensitive)
	if today < ent.lsThr {
		return
	}
	b := &ent.hist[e.dayIdx].base[mSensitive]
	exp := math.Expm1(float64(b.mu))
	d := e.begin(RuleLowAndSlow, ent, t)
	d.WindowStart = w.start - int64(ent.suspectDays)*dayNs
	d.Horizon = durationOf(t - d.WindowStart)
	d.Basis = BasisOwn
	d.addMeasure("sensitive_rows_today", today, exp)
	d.addMeasure("excess_rows_accumulated", ent.excess+max(0, today-exp), 0)
	d.addMeasure("days_above_normal", float64(ent.suspectDays)+1, 0)
	d.Exposure = ent.excess + today
	e.finish(ent, d, clamp(55+5*ent.cusum, 55, 95))
	ent.lsThr = never
	ent.cusum, ent.excess, ent.suspectDays = 0, 0, 0
	w.anomalous = true
}

// parseNetKey computes the identity of a network or address entity key.
func parseNetKey(kind Kind, key string) (uint64, bool) {
	if kind == KindSourceIP {
		a, err := netip.ParseAddr(key)
		if err != nil {
			return 0, false
		}
		return addrHash(kind, a), true
	}
	p, err := netip.ParsePrefix(key)
	if err != nil {
		return 0, false
	}
	return netHash(kind, p.Masked()), true
}

// unweight turns the weighted sensitive rows of d (sensitive.classes) back
// into rows for its exposure: exactly for one request, otherwise as the
// lower bound weighted/maxWeight, since the mix of classes in a window is
// not kept. The measures stay weighted: they are what was judged.
func (e *Engine) unweight(d *Detection) {
	if d.rawRows > 0 {
		d.Rows = d.rawRows
	} else {
		d.Rows = math.Floor(d.Rows / e.sens.maxWeight)
	}
	if d.Rule != RuleDeniedBurst {
		d.Exposure = max(d.Rows, d.Records)
	}
	d.Class = e.sens.className(d.Objects[:d.NObjects])
}
