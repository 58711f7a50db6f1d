package models

import (
	"github.com/exfilguard/exfilguard/pkg/event"
)

// Entity is the state of one principal, network, credential, address or
// client. It is owned by the engine that processes its events and is
// never shared between goroutines, so it takes no lock.
//
// The fields every event reads or writes come first, and each horizon's
// per-event state (win) is kept apart from its sketches and baselines
// (hist), so that an event touches few cache lines: on large entity sets
// much of the engine's time is cache misses.
type Entity struct {
	hash  uint64
	kind  Kind
	ptype event.PrincipalType
	// dirty marks an entity changed since the last checkpoint (it is on
	// the engine's dirty list); only a clean entity may be evicted.
	dirty bool
	// rowless marks an entity seen through a source without row counts:
	// its row measures are partly request counts. Not stored: such a
	// source marks it again with its first event after a restart.
	rowless bool
	// recentN and recentIDs are a ring of the last numeric record ids
	// (enumeration).
	recentN   uint8
	recentIDs [4]uint64
	// first and last are the event times of its first and newest event.
	first, last int64

	// offThr is the sensitive-row total of the current hour at which
	// off-hours fires; never when the hour is a normal one.
	offThr float64
	// lsThr is the sensitive-row total of today at which low-and-slow
	// fires; never while it cannot.
	lsThr float64

	// lastObj is the object last added to the distinct-object sketches,
	// and lastObjAt the shortest horizon's bucket it was added in.
	lastObj   uint64
	lastObjAt int64

	// prin counts distinct principals per horizon; only entities that are
	// not principals have it (a principal is one principal).
	prin []pair

	// Heaviest contributors, for the explanation: principals behind a
	// network or credential, and sensitive objects read.
	topPrincipal [2]heavy
	topObject    [2]heavy

	role  string
	group *group // peer group; nil without a role
	// prof is the detector settings judging the entity (profile.go); nil
	// until resolved.
	prof *profile

	// Novelty: known sources and sensitive objects (hashes, most recent
	// last), and the watch on the newest one seen after learning.
	knownSrc []uint64
	knownObj []uint64
	newSrc   novelty
	newObj   novelty
	// revived watches the entity after it came back from dormancy.
	revived novelty

	// win holds, per horizon (the engine's, in order), the per-event
	// state; hist the rest. They are sized to the configured horizons, not
	// to config.MaxHorizons: an unused horizon would cost ~400 bytes on
	// each of a million entities.
	win  []window
	hist []history

	key string

	rhythm     *rhythm
	activeDays uint32

	// Low-and-slow: accumulated standardised daily excess of sensitive
	// rows (one-sided CUSUM) and the rows it adds up to.
	cusum, excess float64
	suspectDays   uint16

	// maxRequest is the largest single sensitive request learned as normal.
	maxRequest float64
}

// novelty watches a newly seen source or object for the volume it brings.
type novelty struct {
	hash  uint64
	since int64
	gap   int64 // silence before it (dormancy)
	rows  float64
	thr   float64
	basis Basis
}

// watch adds rows to a novelty under watch and reports whether they
// reached its threshold. A watch past its period, or one that fired, ends;
// match says whether this event concerns the watched thing at all.
func (n *novelty) watch(t, period int64, match bool, rows float64) bool {
	if n.since == 0 {
		return false
	}
	if t-n.since > period {
		*n = novelty{}
		return false
	}
	if !match {
		return false
	}
	n.rows += rows
	return n.rows >= n.thr && n.rows > 0
}

// heavy is one slot of a space-saving heavy-hitter summary. hash is the
// name's hash (0 for no name): comparing it first spares reading the bytes
// of two different names, which are seldom in cache.
type heavy struct {
	name  string
	hash  uint64
	n     float64
	ptype event.PrincipalType
}

// Kind returns the entity's kind.
func (e *Entity) Kind() Kind { return e.kind }

// Key returns the entity's key, for example "cs-0042" or "203.0.113.0/24".
func (e *Entity) Key() string { return e.key }

// offer adds weight n for name, whose hash is h, to a two-slot
// space-saving summary. Names are interned, so comparing equal ones is
// usually a pointer comparison; different names are told apart by hash.
func offer(s *[2]heavy, name string, h uint64, n float64, pt event.PrincipalType) {
	if name == "" {
		h = 0 // as in an empty slot
	}
	switch {
	case s[0].hash == h && s[0].name == name:
		s[0].n += n
	case s[1].hash == h && s[1].name == name:
		s[1].n += n
		if s[1].n > s[0].n {
			s[0], s[1] = s[1], s[0]
		}
	default:
		s[1] = heavy{name: name, hash: h, n: s[1].n + n, ptype: pt}
		if s[1].n > s[0].n {
			s[0], s[1] = s[1], s[0]
		}
	}
}

// decayHeavy halves the summary so that yesterday's heavy hitter does not
// stay the explanation forever.
func decayHeavy(s *[2]heavy) {
	s[0].n /= 2
	s[1].n /= 2
}

// remember reports whether h was known in set and moves it to the most recent
// end; an unknown h is added, forgetting the least recent beyond max.
func remember(set *[]uint64, h uint64, max int) bool {
	s := *set
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == h {
			copy(s[i:], s[i+1:])
			s[len(s)-1] = h
			return true
		}
	}
	if len(s) >= max {
		copy(s, s[1:])
		s[len(s)-1] = h
		return false
	}
	*set = append(s, h)
	return false
}

// historyCovers reports whether the entity's own history spans d.
func (e *Entity) historyCovers(d int64) bool { return e.last-e.first >= d }
