package models

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
)

// EntityHash returns the hash an entity of kind and key is stored under,
// for tools that look one entity up (detector state inspect). Network
// keys are parsed and normalised as the engine does; ok is false for a
// key that cannot be one of kind.
func EntityHash(kind Kind, key string) (uint64, bool) {
	switch kind {
	case KindSourceNet, KindSourceIP:
		return parseNetKey(kind, key)
	}
	if key == "" || kind >= numKinds {
		return 0, false
	}
	return keyHash(kind, key), true
}

// Describe decodes a stored entity and writes what it has learned for an
// analyst: when it was seen, its current windows against its own
// baselines, its peaks and its heaviest contributors. Baselines are shown
// as the typical window total (expm1 of the log-space mean) and the
// spread as a factor, because that is how an analyst compares them with
// what an alert says it observed. Customer accounts among the top
// contributors are shown through customer (a pseudonymiser), so that the
// tool does not print what alerts never do.
func (e *Engine) Describe(w io.Writer, h uint64, data []byte, customer func(string) string) error {
	ent, err := e.decodeEntity(h, data)
	if err != nil {
		return fmt.Errorf("decode entity: %w", err)
	}
	ts := func(ns int64) string {
		if ns == 0 {
			return "-"
		}
		return time.Unix(0, ns).UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "entity      %s/%s\n", ent.kind, ent.key)
	fmt.Fprintf(w, "first seen  %s\nlast seen   %s\n", ts(ent.first), ts(ent.last))
	if ent.role != "" {
		fmt.Fprintf(w, "role        %s\n", ent.role)
	}
	fmt.Fprintf(w, "active days %d\n", ent.activeDays)
	fmt.Fprintf(w, "known sources %d, known sensitive objects %d\n", len(ent.knownSrc), len(ent.knownObj))
	if ent.maxRequest > 0 {
		fmt.Fprintf(w, "largest normal sensitive request %.0f rows\n", ent.maxRequest)
	}
	if ent.suspectDays > 0 || ent.cusum > 0 {
		fmt.Fprintf(w, "low-and-slow: %d suspect days, excess %.0f rows (cusum %.2f)\n", ent.suspectDays, ent.excess, ent.cusum)
	}
	for _, hv := range [2]struct {
		title string
		s     *[2]heavy
	}{{"top principals", &ent.topPrincipal}, {"top sensitive objects", &ent.topObject}} {
		for i, x := range hv.s {
			if x.name != "" {
				if i == 0 {
					fmt.Fprintf(w, "%s:", hv.title)
				}
				name := x.name
				if x.ptype == event.PrincipalCustomer {
					name = customer(name)
				}
				fmt.Fprintf(w, " %s (%.0f)", name, x.n)
			}
		}
		if hv.s[0].name != "" {
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "horizon\tmeasure\tcurrent\ttypical\tspread\twindows learned\tpeak")
	for hi, width := range e.horizons {
		win, hist := &ent.win[hi], &ent.hist[hi]
		var prin *pair
		if ent.prin != nil {
			prin = &ent.prin[hi]
		}
		for m := range numMeasures {
			if m == mPrincipals && prin == nil {
				continue
			}
			cur, _ := win.value(m, hist, prin)
			b := hist.base[m]
			typical, spread := "-", "-"
			if b.n > 0 {
				typical = fmt.Sprintf("%.1f", math.Expm1(float64(b.mu)))
				spread = fmt.Sprintf("x%.2f", math.Exp(float64(b.dev)))
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%d\t%.0f\n", config.Duration(width), measureNames[m], cur, typical, spread, b.n, hist.peak[m])
		}
	}
	return tw.Flush()
}
