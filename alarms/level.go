// Package alarms finds lasting changes in the time series of a monitored
// path and reports them as alarms: capacity or route changes (DBC level
// shifts), heavy load (ABW low for long while DBC is unchanged), latency
// changes (RTT level shifts), path changes (the hop count of received
// probes changes) and a target going down. Engine runs the detectors over
// the record stream, per target and direction; Evaluate measures their
// detection delay and false alarms on synthetic series. Detection only: no
// network, no programs. Package notify delivers the alarms, package traceroute
// traces their routes, and the monitor wires them together.
//
// # Method: a two-window test on medians
//
// For each series the detector keeps a test window (the last Window
// values) and a reference window (Reference values that end Window values
// before the test window starts: the gap keeps a slow ramp from dragging
// the reference along). It compares the medians of the two against a
// threshold that is the largest of K standard errors of that difference
// (σ·√(π/2)·√(1/Window + 1/Reference)), MinRel of the reference level and
// MinAbs. σ is the larger of two robust estimates: 1.4826 × the reference
// window's median absolute deviation, and 1.4826/√2 × the median of the
// last 64 successive differences. The second is steadier (more values) and
// ignores level shifts; taking the larger keeps a reference window that
// happens to be tight from making the threshold tight, which was the main
// source of false alarms on long stationary series (89 → 8 per million
// values at 5 % noise). A
// change is raised when the test median stays beyond the threshold for Hold
// consecutive values and at least MinDuration; it clears when the median comes
// back within (1 − Hysteresis) of the threshold for Clear consecutive values.
//
// Why medians rather than CUSUM: bandwidth estimates have heavy-tailed
// noise — single runs that read half or double the capacity when cross
// traffic bursts or a probe train is disturbed. A CUSUM on means
// accumulates those outliers and either fires on them or needs thresholds
// so wide that real steps go late. A median of Window values ignores up to
// Window/2 outliers outright, needs no model of the noise (the MAD scales
// the threshold to each path's own spread), and its delay is bounded:
// a step is seen once more than half the test window lies past it, plus
// Hold − 1 values: 5 values with the defaults. One alarm per episode: while
// raised, the reference is frozen at the level before the change.
package alarms

import (
	"math"
	"slices"
	"time"

	"github.com/abing-net/abing/estimator"
	"github.com/abing-net/abing/record"
)

// LevelParams tune a LevelDetector.
type LevelParams struct {
	Window    int     // values in the test window (5)
	Reference int     // values in the reference window (12)
	K         float64 // robust standard deviations to the threshold (4)
	MinRel    float64 // smallest shift, relative to the reference level (0.1)
	MinAbs    float64 // smallest shift, absolute (0)
	Hold      int     // consecutive values beyond the threshold to raise (3)
	Clear     int     // consecutive values back to clear (3)
	// Hysteresis: how far back past the threshold the median must come to
	// clear, as a fraction of the threshold (0.5: within half of it).
	Hysteresis  float64
	MinDuration time.Duration // a shift must also last this long to be raised (0)
}

func (p *LevelParams) defaults() {
	if p.Window == 0 {
		p.Window = 5
	}
	if p.Reference == 0 {
		p.Reference = 12
	}
	if p.K == 0 {
		p.K = 4
	}
	if p.MinRel == 0 {
		p.MinRel = 0.1
	}
	if p.Hold == 0 {
		p.Hold = 3
	}
	if p.Clear == 0 {
		p.Clear = 3
	}
	if p.Hysteresis == 0 {
		p.Hysteresis = 0.5
	}
}

// Shift is a level change found by a LevelDetector.
type Shift struct {
	Start    time.Time      // first value of the episode past the threshold
	End      time.Time      // zero while active
	Before   float64        // reference level
	After    float64        // level when raised (test median)
	Evidence []record.Point // the test window when raised
}

// LevelDetector watches one series for level shifts.
type LevelDetector struct {
	p       LevelParams
	hist    []record.Point // reference then test window, oldest first
	beyond  int            // consecutive values beyond the threshold
	first   time.Time      // time of the first of them
	back    int            // consecutive values back within half of it (while active)
	active  *Shift
	thr     float64 // threshold when raised
	scratch []float64
	// Differences of successive values, the last spread of them, for a
	// steadier σ than the reference window alone gives.
	diffs []float64
	prev  float64
	any   bool
}

// NewLevelDetector returns a detector; zero fields of p take defaults.
func NewLevelDetector(p LevelParams) *LevelDetector {
	p.defaults()
	return &LevelDetector{p: p}
}

// Active is the shift in progress, or nil.
func (d *LevelDetector) Active() *Shift { return d.active }

// Add takes the next value and returns a shift when one is raised
// (End zero) or cleared (End set).
func (d *LevelDetector) Add(pt record.Point) *Shift {
	p := d.p
	if math.IsNaN(pt.Value) || math.IsInf(pt.Value, 0) {
		return nil
	}
	d.hist = append(d.hist, pt)
	if d.active != nil {
		return d.whileActive()
	}
	if d.any {
		d.diffs = append(d.diffs, math.Abs(pt.Value-d.prev))
		if len(d.diffs) > spread {
			d.diffs = d.diffs[1:]
		}
	}
	d.prev, d.any = pt.Value, true
	if len(d.hist) > p.Reference+2*p.Window {
		d.hist = d.hist[1:]
	}
	if len(d.hist) < 2*p.Window+p.Reference/2 {
		return nil // not enough history yet
	}
	ref, test := d.hist[:len(d.hist)-2*p.Window], d.hist[len(d.hist)-p.Window:]
	level, thr := d.reference(ref)
	m := d.median(test)
	if math.Abs(m-level) <= thr {
		d.beyond = 0
		return nil
	}
	d.beyond++
	if d.beyond == 1 {
		d.first = pt.Time
	}
	if d.beyond < p.Hold || pt.Time.Sub(d.first) < p.MinDuration {
		return nil
	}
	// Raised: the episode starts at the first test value on the far side.
	start := test[len(test)-1].Time
	for i := len(test) - 1; i >= 0 && (test[i].Value-level)*(m-level) > 0 && math.Abs(test[i].Value-level) > thr; i-- {
		start = test[i].Time
	}
	d.active = &Shift{Start: start, Before: level, After: m, Evidence: slices.Clone(test)}
	d.thr, d.back, d.beyond = thr, 0, 0
	d.hist = slices.Clone(test) // from here on, the history is the episode's
	return d.active
}

func (d *LevelDetector) whileActive() *Shift {
	p := d.p
	if len(d.hist) > p.Window {
		d.hist = d.hist[1:]
	}
	if len(d.hist) < p.Window {
		return nil
	}
	if math.Abs(d.median(d.hist)-d.active.Before) < d.thr*(1-p.Hysteresis) {
		d.back++
	} else {
		d.back = 0
	}
	if d.back < p.Clear {
		return nil
	}
	done := *d.active
	done.End = d.hist[len(d.hist)-1].Time
	d.active, d.back = nil, 0
	return &done
}

// Accept ends the active shift without an alarm of its own: its level
// becomes the reference from which the next shift is measured.
func (d *LevelDetector) Accept() {
	d.active, d.back, d.beyond = nil, 0, 0
}

// reference is the level of the reference window and the threshold of a
// shift from it.
func (d *LevelDetector) reference(ref []record.Point) (level, thr float64) {
	level = d.median(ref)
	d.scratch = d.scratch[:0]
	for _, r := range ref {
		d.scratch = append(d.scratch, math.Abs(r.Value-level))
	}
	slices.Sort(d.scratch)
	sigma := 1.4826 * estimator.Median(d.scratch)
	if len(d.diffs) >= len(ref) {
		// The spread of successive differences over a longer span: a
		// reference window that happens to be tight must not make the
		// threshold tight (|x−x'| of two values has median 0.6745·√2·σ).
		d.scratch = append(d.scratch[:0], d.diffs...)
		slices.Sort(d.scratch)
		sigma = max(sigma, 1.4826*estimator.Median(d.scratch)/math.Sqrt2)
	}
	se := sigma * math.Sqrt(math.Pi/2) * math.Sqrt(1/float64(d.p.Window)+1/float64(len(ref)))
	return level, max(d.p.K*se, d.p.MinRel*math.Abs(level), d.p.MinAbs)
}

func (d *LevelDetector) median(pts []record.Point) float64 {
	d.scratch = d.scratch[:0]
	for _, r := range pts {
		d.scratch = append(d.scratch, r.Value)
	}
	return estimator.Median(d.scratch)
}

// spread is how many successive differences the σ estimate looks at.
const spread = 64
