package alerts

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"sort"

	"github.com/exfilguard/exfilguard/pkg/models"
)

// incidentKey identifies an incident's subject: one entity, one rule
// family.
type incidentKey struct {
	entity uint64
	family models.Family
}

type incident struct {
	kind     models.Kind
	opened   int64 // event time of the opening detection
	last     int64 // event time of the newest detection, emitted or not
	seq      int
	severity models.Severity
	// exposure is the window exposure last emitted: a detection escalates
	// when its window has grown by the step over it.
	exposure   float64
	detections int

	// marks are the exposure so far, as of increasing window ends: each
	// is a lower bound of what the incident read up to its end. A new
	// window adds its exposure to the mark that ends before it starts, so
	// that a row is never counted twice however the windows of different
	// horizons overlap.
	marks []mark
	// emitted is the accumulated exposure at the last emission, the base
	// of the next escalation by accumulation.
	emitted float64

	// rules are the rules of the alerts emitted, in first-seen order.
	rules []string

	// lastAlert is the newest alert emitted, the template of the
	// resolution. Nil only for incidents restored from a version 1 state,
	// which resolve silently.
	lastAlert *Alert
}

// mark is the incident's exposure up to end.
type mark struct {
	end        int64
	rows, recs float64
}

// maxMarks bounds the marks kept per incident. Forgetting the oldest only
// lowers the base a window far in the past could add to: the total stays
// a lower bound.
const maxMarks = 64

func (in *incident) add(d *models.Detection) {
	in.detections++
	if d.Time > in.last {
		in.last = d.Time
	}
	var base, cur mark
	if n := len(in.marks); n > 0 {
		cur = in.marks[n-1]
	}
	for i := len(in.marks) - 1; i >= 0; i-- {
		if in.marks[i].end <= d.WindowStart {
			base = in.marks[i]
			break
		}
	}
	next := mark{end: max(cur.end, d.WindowEnd), rows: max(cur.rows, base.rows+d.Rows), recs: max(cur.recs, base.recs+d.Records)}
	if n := len(in.marks); n > 0 && next.end == cur.end {
		in.marks[n-1] = next
		return
	}
	in.marks = append(in.marks, next)
	if len(in.marks) > maxMarks {
		in.marks = slices.Delete(in.marks, 0, 1)
	}
}

func (in *incident) current() mark {
	if n := len(in.marks); n > 0 {
		return in.marks[n-1]
	}
	return mark{}
}

func (in *incident) rows() float64    { return in.current().rows }
func (in *incident) records() float64 { return in.current().recs }
func (in *incident) total() float64   { return max(in.rows(), in.records()) }

// incidents turns detections into incident transitions. A detection about
// an entity and rule with an open incident is emitted again only when its
// severity rose, or its window's or the incident's accumulated exposure
// grew by the escalation step; otherwise it is folded into the incident.
// An incident quiet for the quiet period resolves.
type incidents struct {
	open map[incidentKey]*incident
	// quiet is the quiet period; grace adds the engine's allowed lateness
	// before a resolution is decided, because no detection can arrive
	// that late: the decision then does not depend on how events were
	// batched or sharded, and a replay resolves exactly what the live
	// pipeline did.
	quiet, grace int64
	step         float64
	// due is, per entity kind, a lower bound of the watermark at which an
	// incident of that kind resolves, and minDue the least of them, so
	// that checking is free until then.
	due    [256]int64
	minDue int64
}

// quietIncident is an incident that resolved, with its key.
type quietIncident struct {
	key incidentKey
	*incident
}

func newIncidents(quiet, lateness int64, step float64) *incidents {
	s := &incidents{open: make(map[incidentKey]*incident), quiet: quiet, grace: lateness, step: step}
	for i := range s.due {
		s.due[i] = math.MaxInt64
	}
	s.minDue = math.MaxInt64
	return s
}

// transition is what a detection does to its incident.
type transition uint8

const (
	suppressed transition = iota
	opened
	escalated
)

// observe folds d into its incident. An incident whose quiet period
// passed before d is returned as stale, to be resolved before d opens a
// new one.
func (s *incidents) observe(d *models.Detection) (in *incident, tr transition, stale *incident) {
	k := incidentKey{d.Hash, d.Rule.Family()}
	in, ok := s.open[k]
	if ok && d.Time-in.last > s.quiet {
		stale, ok = in, false
	}
	if !ok {
		in = &incident{kind: d.Kind, opened: d.Time, last: d.Time, severity: d.Severity, exposure: d.Exposure}
		in.add(d)
		in.emitted = in.total()
		s.open[k] = in
		s.due[d.Kind] = min(s.due[d.Kind], in.last+s.quiet+s.grace)
		s.minDue = min(s.minDue, s.due[d.Kind])
		return in, opened, stale
	}
	in.add(d)
	grown := (d.Exposure > 0 && d.Exposure >= in.exposure*s.step) || (in.total() > 0 && in.total() >= in.emitted*s.step)
	if d.Severity > in.severity || grown {
		in.seq++
		in.severity = max(in.severity, d.Severity)
		in.exposure = max(in.exposure, d.Exposure)
		in.emitted = in.total()
		return in, escalated, stale
	}
	return in, suppressed, stale
}

// expired removes and returns, in key order, the incidents of kinds owns
// accepts (nil: all) that are quiet as of watermark.
func (s *incidents) expired(watermark int64, owns func(models.Kind) bool) []quietIncident {
	if watermark < s.minDue {
		return nil
	}
	var out []quietIncident
	for kind := range s.due {
		if s.due[kind] > watermark || (owns != nil && !owns(models.Kind(kind))) {
			continue
		}
		next := int64(math.MaxInt64)
		for k, in := range s.open {
			if in.kind != models.Kind(kind) {
				continue
			}
			if watermark-in.last > s.quiet+s.grace {
				out = append(out, quietIncident{k, in})
			} else {
				next = min(next, in.last+s.quiet+s.grace)
			}
		}
		s.due[kind] = next
	}
	s.minDue = math.MaxInt64
	for _, d := range s.due {
		s.minDue = min(s.minDue, d)
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i].key, out[j].key) })
	for _, q := range out {
		delete(s.open, q.key)
	}
	return out
}

// resetDue recomputes the due times after a restore.
func (s *incidents) resetDue() {
	for i := range s.due {
		s.due[i] = math.MaxInt64
	}
	s.minDue = math.MaxInt64
	for _, in := range s.open {
		d := in.last + s.quiet + s.grace
		s.due[in.kind] = min(s.due[in.kind], d)
		s.minDue = min(s.minDue, d)
	}
}

func keyLess(a, b incidentKey) bool {
	if a.entity != b.entity {
		return a.entity < b.entity
	}
	return a.family < b.family
}

// ids derives the incident id and the alert id from what they are about,
// so a replay after a crash re-emits the same ids and sinks can drop
// duplicates.
func ids(hash uint64, family models.Family, opened int64, seq int) (incidentID, alertID string) {
	var b [8 + 1 + 8 + 8]byte
	binary.BigEndian.PutUint64(b[0:], hash)
	b[8] = byte(family)
	binary.BigEndian.PutUint64(b[9:], uint64(opened))
	sum := sha256.Sum256(b[:17])
	incidentID = hex.EncodeToString(sum[:12])
	binary.BigEndian.PutUint64(b[17:], uint64(seq))
	sum = sha256.Sum256(b[:])
	alertID = hex.EncodeToString(sum[:12])
	return incidentID, alertID
}
