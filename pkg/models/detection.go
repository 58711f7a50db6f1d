package models

import (
	"math"
	"time"

	"github.com/exfilguard/exfilguard/pkg/event"
)

// Measure is one number of a detection, observed against expected.
type Measure struct {
	Name     string
	Observed float64
	Expected float64
}

// maxMeasures bounds the measures of a detection so that it needs no slice.
const maxMeasures = 4

// Detection is what a detector found: an entity behaving beyond its normal,
// with the numbers that show it. The engine reuses one Detection for every
// emission: a callback must copy what it keeps.
type Detection struct {
	Rule     Rule
	Kind     Kind
	Key      string
	Hash     uint64 // identity of (Kind, Key)
	Role     string
	Severity Severity
	Score    float64 // 0-100

	// Principal is the entity's key for principals, otherwise the principal
	// that contributed most to the window; PrincipalType says whether it is
	// a customer account, whose id must not appear in clear.
	Principal     string
	PrincipalType event.PrincipalType
	// Time is the event time of the event that triggered the detection.
	Time int64
	// Window is the judged window: [Time-Horizon, Time] for baseline rules,
	// the watch period for event rules.
	WindowStart, WindowEnd int64
	Horizon                time.Duration

	Measures  [maxMeasures]Measure
	NMeasures int

	// Exposure estimates the customer records exposed in the window:
	// distinct records where ids are known, sensitive rows otherwise.
	Exposure float64
	// Rows and Records split the exposure: sensitive rows read, and
	// distinct customer records where the source names them (0 when it
	// does not); the incident adds them up across windows.
	Rows, Records float64
	// Samples are the hashed record ids of the triggering request, for
	// the opt-in pseudonymised samples of an alert.
	Samples  [4]uint64
	NSamples int
	// Objects are the sensitive objects read most in the window.
	Objects  [2]string
	NObjects int

	// Basis says what the expectation rested on; Learning that the entity
	// is younger than the learning period; Warmup that the engine itself
	// had not learned enough yet, so severity was capped.
	Basis    Basis
	Learning bool
	Warmup   bool
	// Sequential is the share of sequential ids (enumeration only).
	Sequential float64
	// Override is the name of the override whose settings judged the
	// entity, "" for the top-level ones.
	Override string
	// Class is the heaviest sensitivity class among Objects, when
	// sensitive.classes are configured.
	Class string
	// RowsUnknown says that some of the entity's accesses came from a
	// source without row counts, counted as one row per request (or per
	// record id named).
	RowsUnknown bool
	// rawRows is the unweighted rows of a one-request detection.
	rawRows float64
}

func (d *Detection) addMeasure(name string, observed, expected float64) {
	if d.NMeasures < maxMeasures {
		d.Measures[d.NMeasures] = Measure{Name: name, Observed: observed, Expected: expected}
		d.NMeasures++
	}
}

// ratioScore maps how far above normal an observation is to 0-100: 8x is
// about 50, 100x about 78, 1000x about 90. It is logarithmic because the
// quantities are.
func ratioScore(observed, expected float64) float64 {
	r := (observed + 1) / (expected + 1)
	if r <= 1 {
		return 0
	}
	return clamp(100*(1-math.Exp(-math.Log(r)/3)), 0, 100)
}

func clamp(x, lo, hi float64) float64 {
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}

// ExposureSeverity is the severity an exposure alone warrants: how many
// customers' records may be out. An incident's accumulated exposure is
// graded with it, so that a leak slow enough to look small in every
// window still pages someone once it adds up.
func ExposureSeverity(exposure float64) Severity {
	switch {
	case exposure >= 100000:
		return SeverityCritical
	case exposure >= 10000:
		return SeverityHigh
	case exposure >= 1000:
		return SeverityMedium
	}
	return SeverityLow
}

// severityOf follows exposure first (how many customers' records may be
// out), then the strength of the anomaly, then the rule's floor. An alert
// resting on priors alone, or raised while the engine warms up, is capped
// at medium: it may be looked at but must not page anyone.
func severityOf(rule Rule, score, exposure float64, capMedium bool) Severity {
	s := ExposureSeverity(exposure)
	switch {
	case score >= 95 && exposure >= 10000:
		s = max(s, SeverityCritical)
	case score >= 80:
		s = max(s, SeverityHigh)
	case score >= 55:
		s = max(s, SeverityMedium)
	}
	s = max(s, rules[rule].floor)
	if rule == RuleVolumeSpike && exposure < 1 {
		// Many rows, none of them customer data: worth a look, not a page.
		capMedium = true
	}
	if capMedium && s > SeverityMedium {
		s = SeverityMedium
	}
	return s
}
