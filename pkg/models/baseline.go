package models

import "math"

// Measures kept per window and judged against baselines. Counts are
// heavy-tailed, so every baseline works on log1p(count).
const (
	mRows       = iota // rows read or affected
	mSensitive         // rows from sensitive objects
	mRequests          // requests
	mDenied            // denied or failed requests
	mRecords           // distinct customer records
	mPrincipals        // distinct principals (network, credential, client entities)
	mObjects           // distinct objects (tables, collections, API resources)
	numMeasures
)

var measureNames = [numMeasures]string{"rows", "sensitive_rows", "requests", "denied", "distinct_records", "distinct_principals", "distinct_objects"}

// ewma is a robust running summary of log1p(window total) over active
// windows: mean and mean absolute deviation, weighted 1/n until memory
// windows were seen, then exponentially. Twelve bytes, because every
// entity holds one per measure and horizon.
type ewma struct {
	mu, dev float32
	n       uint32
}

// log1pTable holds log1p of small integers: most window totals are small
// counts, and bucket closes take a dozen logarithms each.
var log1pTable = func() (t [1024]float64) {
	for i := range t {
		t[i] = math.Log1p(float64(i))
	}
	return t
}()

func log1p(x float64) float64 {
	if i := int(x); x >= 0 && i < len(log1pTable) && float64(i) == x {
		return log1pTable[i]
	}
	return math.Log1p(x)
}

func (b *ewma) add(x float64, memory int) { b.addLog(log1p(x), memory, 1/float64(memory)) }

// addLog is add of a total whose log1p is lx; inv is 1/memory, computed
// once by the caller. The weight is 1/n until memory windows were seen,
// then 1/memory: exactly max(1/n, 1/memory), without a division once the
// baseline is mature.
func (b *ewma) addLog(lx float64, memory int, inv float64) {
	b.n++
	a := inv
	if int64(b.n) < int64(memory) {
		a = 1 / float64(b.n)
	}
	d := lx - float64(b.mu)
	if b.n == 1 {
		b.mu, b.dev = float32(lx), 0
		return
	}
	b.mu = float32(float64(b.mu) + a*d)
	b.dev = float32(float64(b.dev) + a*(math.Abs(d)-float64(b.dev)))
}

// expectation is a credibility-weighted baseline in log space, with where
// most of its weight came from (said in alerts so an analyst knows whether
// an entity was judged on its own history or on its peers').
type expectation struct {
	mu, dev float64
	basis   Basis
	prior   bool // nothing learned anywhere: judged on configured priors only
}

// Basis says which history an expectation mostly rests on.
type Basis uint8

// Bases of an expectation.
const (
	BasisOwn Basis = iota
	BasisPeers
	BasisPopulation
	BasisPrior
)

var basisNames = [...]string{"own", "peers", "population", "prior"}

func (b Basis) String() string { return basisNames[b] }

// blend combines own, peer and population summaries by credibility. The
// population leans on the prior while it is young (weight n/(n+k)); the
// peer group on the population the same way. The entity's own history gets
// Bühlmann credibility n/(n+K) with K = c·(spread within the entity /
// spread between entities)²: an entity whose own windows are consistent
// and unlike the population's (a shared mobile network, a nightly ETL)
// earns trust in a few windows, while an erratic one needs many.
func (e *Engine) blend(own, peer, pop *ewma, prior float64) expectation {
	bc := &e.cfg.Baseline
	popW := float64(pop.n) / (float64(pop.n) + bc.PeerCredibility)
	mu := popW*float64(pop.mu) + (1-popW)*math.Log1p(prior)
	dev := popW*float64(pop.dev) + (1-popW)*1.0
	basis := BasisPopulation
	if popW < 0.5 {
		basis = BasisPrior
	}
	if peer != nil && peer.n > 0 {
		w := float64(peer.n) / (float64(peer.n) + bc.PeerCredibility)
		mu = w*float64(peer.mu) + (1-w)*mu
		dev = w*float64(peer.dev) + (1-w)*dev
		if w >= 0.5 {
			basis = BasisPeers
		}
	}
	if own.n > 0 {
		within := max(float64(own.dev), bc.MinDeviation)
		between := max(dev, math.Abs(float64(own.mu)-mu), bc.MinDeviation)
		k := bc.OwnCredibility * (within * within) / (between * between)
		w := float64(own.n) / (float64(own.n) + k)
		mu = w*float64(own.mu) + (1-w)*mu
		dev = w*float64(own.dev) + (1-w)*dev
		if w >= 0.5 {
			basis = BasisOwn
		}
	}
	if dev < bc.MinDeviation {
		dev = bc.MinDeviation
	}
	return expectation{mu: mu, dev: dev, basis: basis, prior: basis == BasisPrior}
}

// group is the shared baseline of a peer group (a role) or of a whole
// entity kind (the population): the cold-start reference.
type group struct {
	base [][numMeasures]ewma // per horizon
	// peak is the largest normal bucket of any member, per horizon.
	peak    [][numMeasures]float32
	peakDay int64 // day index of the last decay of peak
	// hours counts, per hour-of-week slot, member-hours active in it, and
	// memberHours all member-hours: the share a young entity's off-hours
	// activity is judged by.
	hours       [slotsPerWeek]uint32
	memberHours uint32
	// objects remembers which sensitive objects members read, so that a
	// young member's first read of one its peers never touch can still be
	// flagged.
	objects map[uint64]struct{}
	// maxRequest is the largest single sensitive request learned as normal
	// for members (for bulk reads by a young member of, say, the ETL role).
	maxRequest float64
	members    uint32
}

func newGroup(horizons int) *group {
	return &group{base: make([][numMeasures]ewma, horizons), peak: make([][numMeasures]float32, horizons), objects: make(map[uint64]struct{})}
}

// peakDecay is the daily decay of learned peaks: a half-life of 30 days, so
// a monthly job is still remembered at its next run.
const peakDecay = 0.977

// decayPeaks ages the group's peaks to day d.
func (g *group) decayPeaks(d int64) {
	if g.peakDay == 0 {
		g.peakDay = d
		return
	}
	for ; g.peakDay < d; g.peakDay++ {
		for i := range g.peak {
			for m := range g.peak[i] {
				g.peak[i][m] *= peakDecay
			}
		}
		if d-g.peakDay > 60 {
			g.peakDay = d
		}
	}
}

// maxGroupObjects bounds a group's object memory.
const maxGroupObjects = 1 << 14

func (g *group) addObject(h uint64) {
	if len(g.objects) < maxGroupObjects {
		g.objects[h] = struct{}{}
	}
}
