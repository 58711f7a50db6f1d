package eval

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/replay"
	"github.com/exfilguard/exfilguard/pkg/sim"
)

// Options say what to evaluate.
type Options struct {
	Sim    sim.Options
	Config *config.Config
	Logger *slog.Logger
}

// Report is an evaluation: the detector's score and the static-threshold
// baseline's on the same traffic.
type Report struct {
	Detector Result
	Static   Result
	// Thresholds of the static baseline, calibrated to the detector's
	// false-alert count on the same traffic.
	StaticRowsPerHour, StaticRecordsPerDay float64
	Events                                 int
	Elapsed                                time.Duration
}

// Run generates the traffic, replays it through the engine with the
// config, scores the alerts against the ground truth, and does the same
// for a static-threshold baseline calibrated to the same false-alert
// count, so that what baselining buys is visible.
func Run(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	g, err := sim.New(o.Sim)
	if err != nil {
		return nil, err
	}
	labels := g.Labels()
	sc := NewScorer(labels)
	st := newStatic(labels)
	pr, pw := io.Pipe()
	events := 0
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		var buf []byte
		for {
			var ok bool
			buf, ok = g.Next(buf[:0])
			if !ok {
				break
			}
			sc.Observe(buf, g.Scenario())
			st.calibrate(sc.ev.Principal, sc.ev.Time, sc.ev.Rows, sc.ev.RecordIDs)
			events++
			buf = append(buf, '\n')
			if _, err := bw.Write(buf); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(bw.Flush())
	}()
	var out bytes.Buffer
	sum, err := replay.Run(ctx, replay.Options{Config: o.Config, Input: pr, Alerts: &out, Logger: o.Logger})
	if err != nil {
		pr.CloseWithError(err)
		return nil, fmt.Errorf("evaluate: replay: %w", err)
	}
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if err := sc.Alert(line); err != nil {
			return nil, err
		}
	}
	rep := &Report{Detector: sc.Result(sum.Entities), Events: events}

	// The baseline may raise as many false alerts as the detector did.
	falseAlerts := 0
	for _, n := range rep.Detector.FalseBySeverity {
		falseAlerts += n
	}
	rep.StaticRowsPerHour, rep.StaticRecordsPerDay = st.thresholds(falseAlerts)
	g2, err := sim.New(o.Sim)
	if err != nil {
		return nil, err
	}
	var buf []byte
	for {
		var ok bool
		buf, ok = g2.Next(buf[:0])
		if !ok {
			break
		}
		if err := sc.dec.Decode(buf, &sc.ev); err != nil {
			continue
		}
		st.detect(&sc.ev, rep.StaticRowsPerHour, rep.StaticRecordsPerDay)
	}
	ss := &Scorer{labels: labels, attacks: sc.attacks, falseBySev: map[string]int{}, falseRules: map[string]int{}, first: sc.first, last: sc.last}
	for _, a := range ss.attacks {
		a.firstAlert, a.alerts = nil, 0
	}
	for _, line := range st.alerts {
		if err := ss.Alert(line); err != nil {
			return nil, err
		}
	}
	rep.Static = ss.Result(sum.Entities)
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// Targets are the product's detection-quality goals on the simulator's
// scenarios with the default config.
type Targets struct {
	// MedianExposed bounds the median records exposed before the first
	// alert, over every detected attack but huge_export (one request: it
	// is caught on that very request, whatever it read).
	MedianExposed float64
	// FalseHighPerKEntityDay bounds false high or critical alerts per
	// 1,000 entities per day.
	FalseHighPerKEntityDay float64
}

// DefaultTargets are the ones the README states.
var DefaultTargets = Targets{MedianExposed: 5000, FalseHighPerKEntityDay: 0.5}

// Check lists the targets r misses; none is a pass.
func (t Targets) Check(r Result) []string {
	var miss []string
	for _, a := range r.Attacks {
		if !a.Detected {
			miss = append(miss, fmt.Sprintf("%s not detected", a.Scenario))
		}
	}
	if m := r.MedianExposedBefore("huge_export"); m > t.MedianExposed {
		miss = append(miss, fmt.Sprintf("median records exposed before the first alert %.0f > %.0f", m, t.MedianExposed))
	}
	for _, a := range r.Attacks {
		if a.Scenario == "huge_export" && a.Detected && a.ExposedBefore > 0 {
			miss = append(miss, fmt.Sprintf("huge_export exposed %.0f records before its alert; it must be caught on the export itself", a.ExposedBefore))
		}
	}
	if f := r.FalsePerKEntityDay("high", "critical"); f > t.FalseHighPerKEntityDay {
		miss = append(miss, fmt.Sprintf("%.2f false high/critical alerts per 1,000 entities per day > %.2f", f, t.FalseHighPerKEntityDay))
	}
	return miss
}

// Print writes the report as tables.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "%d events over %.1f days, %d entities (%.1fs)\n\n", r.Events, r.Detector.Days, r.Detector.Entities, r.Elapsed.Seconds())
	fmt.Fprintf(w, "%-22s | %-40s | %s\n", "", "exfilguard (default config)", fmt.Sprintf("static thresholds (%s rows/h, %s records/day per principal)", Thousands(r.StaticRowsPerHour), Thousands(r.StaticRecordsPerDay)))
	fmt.Fprintf(w, "%-22s | %-8s %-12s %-17s | %-8s %-12s %-17s %s\n", "attack", "detected", "after", "exposed before", "detected", "after", "exposed before", "exposed in all")
	for i, a := range r.Detector.Attacks {
		s := r.Static.Attacks[i]
		fmt.Fprintf(w, "%-22s | %-8s %-12s %-17s | %-8s %-12s %-17s %s\n", a.Scenario,
			yes(a.Detected), after(a), exposed(a), yes(s.Detected), after(s), exposed(s), Thousands(a.Exposed))
	}
	fmt.Fprintln(w)
	for _, res := range []struct {
		name string
		r    Result
	}{{"exfilguard", r.Detector}, {"static", r.Static}} {
		fmt.Fprintf(w, "%-10s false alerts per 1,000 entities per day: high+critical %.3f, medium %.3f, low %.3f; alerts per day %.1f; median exposed before the first alert %s\n",
			res.name, res.r.FalsePerKEntityDay("high", "critical"), res.r.FalsePerKEntityDay("medium"), res.r.FalsePerKEntityDay("low"),
			float64(res.r.Alerts)/max(res.r.Days, 1e-9), Thousands(res.r.MedianExposedBefore("huge_export")))
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func after(a AttackResult) string {
	if !a.Detected {
		return "-"
	}
	return a.Delay.Round(time.Second).String()
}

func exposed(a AttackResult) string {
	if !a.Detected {
		return "-"
	}
	return Thousands(a.ExposedBefore)
}

// Thousands prints a count rounded to a whole number with thousands
// separators: 1,234,567.
func Thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	var b []byte
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[0] != '-' {
			b = append(b, ',')
		}
		b = append(b, byte(c))
	}
	return string(b)
}
