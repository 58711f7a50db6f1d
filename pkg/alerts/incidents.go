package alerts

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/exfilguard/exfilguard/pkg/models"
)

// incidentKey identifies an incident's subject: one entity, one rule.
type incidentKey struct {
	entity uint64
	rule   models.Rule
}

type incident struct {
	opened   int64 // event time of the opening detection
	last     int64 // event time of the newest detection, emitted or not
	seq      int
	severity models.Severity
	exposure float64
}

// incidents turns detections into incident transitions. A detection about
// an entity and rule with an open incident is emitted again only when its
// severity rose or its exposure grew by the escalation step; otherwise it
// is folded into the incident. An incident quiet for the quiet period is
// closed and the next detection opens a new one.
type incidents struct {
	open       map[incidentKey]*incident
	quiet      int64
	step       float64
	sinceSweep int
	watermark  int64
}

func newIncidents(quiet int64, step float64) *incidents {
	return &incidents{open: make(map[incidentKey]*incident), quiet: quiet, step: step}
}

// transition is what a detection does to its incident.
type transition uint8

const (
	suppressed transition = iota
	opened
	escalated
)

func (s *incidents) observe(d *models.Detection) (*incident, transition) {
	if d.Time > s.watermark {
		s.watermark = d.Time
	}
	s.sweep()
	k := incidentKey{d.Hash, d.Rule}
	in, ok := s.open[k]
	if !ok || d.Time-in.last > s.quiet {
		in = &incident{opened: d.Time, last: d.Time, severity: d.Severity, exposure: d.Exposure}
		s.open[k] = in
		return in, opened
	}
	if d.Time > in.last {
		in.last = d.Time
	}
	if d.Severity > in.severity || (d.Exposure > 0 && d.Exposure >= in.exposure*s.step) {
		in.seq++
		in.severity = max(in.severity, d.Severity)
		in.exposure = max(in.exposure, d.Exposure)
		return in, escalated
	}
	return in, suppressed
}

// sweep forgets closed incidents now and then, so memory follows the open
// ones only.
func (s *incidents) sweep() {
	s.sinceSweep++
	if s.sinceSweep < 4096 {
		return
	}
	s.sinceSweep = 0
	for k, in := range s.open {
		if s.watermark-in.last > s.quiet {
			delete(s.open, k)
		}
	}
}

// ids derives the incident id and the alert id from what they are about,
// so a replay after a crash re-emits the same ids and sinks can drop
// duplicates.
func ids(d *models.Detection, in *incident) (incidentID, alertID string) {
	var b [8 + 1 + 8 + 8]byte
	binary.BigEndian.PutUint64(b[0:], d.Hash)
	b[8] = byte(d.Rule)
	binary.BigEndian.PutUint64(b[9:], uint64(in.opened))
	sum := sha256.Sum256(b[:17])
	incidentID = hex.EncodeToString(sum[:12])
	binary.BigEndian.PutUint64(b[17:], uint64(in.seq))
	sum = sha256.Sum256(b[:])
	alertID = hex.EncodeToString(sum[:12])
	return incidentID, alertID
}
