package alarms

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/abing-net/abing/estimator"
	"github.com/abing-net/abing/record"
)

// Engine runs the detectors over the records of many targets. It is not
// safe for concurrent use; the monitor feeds it from one goroutine.
type Engine struct {
	params  func(target string) Params
	targets map[string]*targetState
}

// NewEngine returns an engine; params gives each target's parameters
// (complete and checked), and is asked when a target is first seen.
func NewEngine(params func(target string) Params) *Engine {
	return &Engine{params: params, targets: map[string]*targetState{}}
}

// Forget drops a target's state (it left the configuration, or its
// parameters changed) and returns its active alarms, cleared now.
func (e *Engine) Forget(target string, now time.Time) []record.Alarm {
	t := e.targets[target]
	if t == nil {
		return nil
	}
	delete(e.targets, target)
	var out []record.Alarm
	for _, k := range t.order {
		out = append(out, t.end(k, now, "forgotten"))
	}
	return out
}

// Active returns the alarms now active, by target then raise order.
func (e *Engine) Active() []record.Alarm {
	var out []record.Alarm
	names := make([]string, 0, len(e.targets))
	for n := range e.targets {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t := e.targets[n]
		for _, k := range t.order {
			out = append(out, *t.active[k])
		}
	}
	return out
}

// Observe takes one record (records of a target in time order; a run's
// forward record before its reverse one) and returns the alarms it raised
// or cleared.
func (e *Engine) Observe(r *record.Record) ([]record.Alarm, error) {
	if r.Time.IsZero() {
		return nil, fmt.Errorf("alarms: record of %s without a time", r.Key())
	}
	at, name := r.Time, r.Key()
	t := e.targets[name]
	if t == nil {
		t = &targetState{p: e.params(name), active: map[key]*record.Alarm{}, dirs: map[string]*dirState{}}
		t.rtt = NewLevelDetector(t.p.level(float64(t.p.MinRTTChange) / float64(time.Millisecond)))
		e.targets[name] = t
	}
	t.rec = r
	t.out = nil
	if r.Direction == "forward" {
		t.observeRun(at, r)
	}
	if !r.Failed() {
		d := t.dirs[r.Direction]
		if d == nil {
			d = &dirState{dbc: NewLevelDetector(t.p.level(0)), hops: -1}
			t.dirs[r.Direction] = d
		}
		t.observeDirection(at, r, d)
	}
	return t.out, nil
}

type key struct {
	kind      record.Kind
	direction string
}

type targetState struct {
	p      Params
	rec    *record.Record // the record being observed
	out    []record.Alarm // what it raised or cleared
	active map[key]*record.Alarm
	order  []key // of active, in raise order
	dirs   map[string]*dirState
	rtt    *LevelDetector
	fails  []record.Point // the failed runs in a row
	ups    int            // good runs in a row while down
}

type dirState struct {
	dbc *LevelDetector
	// Load.
	ratio   []record.Point // ABW/DBC, the last Window values
	abw     []record.Point // ABW, the last Window values
	abwRef  []record.Point // ABW before the load, the last Reference values
	low     int            // consecutive windows below the threshold
	lowFrom time.Time
	high    int // consecutive windows back above it, while raised
	// Path.
	hops    int            // hop count of the path as known, -1 before the first
	changed []record.Point // consecutive values off it
	same    int            // consecutive values back on it, while raised
}

// observeRun runs the detectors of the run as a whole: down and latency.
func (t *targetState) observeRun(at time.Time, r *record.Record) {
	p := t.p
	downKey := key{record.Down, "both"}
	if r.Failed() {
		t.ups = 0
		t.fails = append(t.fails, record.Point{Time: at, Value: 0})
		if len(t.fails) > p.DownAfter {
			t.fails = t.fails[1:]
		}
		if t.active[downKey] == nil && len(t.fails) >= p.DownAfter && at.Sub(t.fails[0].Time) >= p.MinDuration {
			t.raise(downKey, t.fails[0].Time, 1, 0, "up", record.Critical, slices.Clone(t.fails),
				fmt.Sprintf("%s does not answer: %d runs in a row failed (%s)", r.Key(), len(t.fails), r.Error))
		}
		return
	}
	t.fails = t.fails[:0]
	if t.active[downKey] != nil {
		if t.ups++; t.ups >= p.Clear {
			t.end(downKey, at, "up")
			t.ups = 0
		}
	}
	if r.RTT == nil {
		return
	}
	latKey := key{record.Latency, "both"}
	if s := t.rtt.Add(record.Point{Time: at, Value: r.RTT.Min}); s != nil {
		t.shift(latKey, s, "ms", "minimum RTT")
	} else if a := t.active[latKey]; a != nil && at.Sub(a.Start) >= p.AcceptAfter {
		t.rtt.Accept()
		t.end(latKey, at, "accepted")
	}
}

// observeDirection runs the detectors of one direction: capacity, load,
// path.
func (t *targetState) observeDirection(at time.Time, r *record.Record, d *dirState) {
	p := t.p
	capKey := key{record.Capacity, r.Direction}
	if r.DBC != nil {
		if s := d.dbc.Add(record.Point{Time: at, Value: *r.DBC}); s != nil {
			t.shift(capKey, s, "Mbit/s", "DBC")
		} else if a := t.active[capKey]; a != nil && at.Sub(a.Start) >= p.AcceptAfter {
			d.dbc.Accept()
			t.end(capKey, at, "accepted")
		}
	}
	if r.DBC != nil && r.ABW != nil && *r.DBC > 0 {
		t.load(at, r, d)
	}
	if r.TTL != nil {
		t.path(at, r, d)
	}
}

// load raises a load alarm when the median of ABW/DBC over the window
// stays below LoadBelow for LoadFor (and Hold windows), while DBC is
// unchanged: no capacity alarm and no DBC shift building up.
func (t *targetState) load(at time.Time, r *record.Record, d *dirState) {
	p := t.p
	k := key{record.Load, r.Direction}
	push := func(s []record.Point, v float64, n int) []record.Point {
		s = append(s, record.Point{Time: at, Value: v})
		if len(s) > n {
			s = s[1:]
		}
		return s
	}
	d.ratio = push(d.ratio, *r.ABW / *r.DBC, p.Window)
	d.abw = push(d.abw, *r.ABW, p.Window)
	if len(d.ratio) < p.Window {
		d.abwRef = push(d.abwRef, *r.ABW, p.Reference)
		return
	}
	m := medianOf(d.ratio)
	if a := t.active[k]; a != nil {
		if m > p.LoadBelow*(1+p.Hysteresis) {
			d.high++
		} else {
			d.high = 0
		}
		if d.high >= p.Clear {
			t.end(k, at, "returned")
			d.high, d.low = 0, 0
			d.abwRef = d.abwRef[:0]
		}
		return
	}
	if m >= p.LoadBelow {
		d.low = 0
		d.abwRef = push(d.abwRef, *r.ABW, p.Reference)
		return
	}
	if d.low++; d.low == 1 {
		// The episode starts at the first value of the window below the
		// threshold.
		d.lowFrom = at
		for i := len(d.ratio) - 1; i >= 0 && d.ratio[i].Value < p.LoadBelow; i-- {
			d.lowFrom = d.ratio[i].Time
		}
	}
	capacityMoving := t.active[key{record.Capacity, r.Direction}] != nil || d.dbc.beyond > 0
	// How long the load has lasted: from its first value to its last one
	// (the median lags the values by half a window).
	lastLow := d.lowFrom
	for _, v := range d.ratio {
		if v.Value < p.LoadBelow {
			lastLow = v.Time
		}
	}
	if d.low < p.Hold || lastLow.Sub(d.lowFrom) < max(p.LoadFor, p.MinDuration) || capacityMoving {
		return
	}
	before := math.NaN()
	if len(d.abwRef) > 0 {
		before = medianOf(d.abwRef)
	}
	after := medianOf(d.abw)
	sev := record.Warning
	if m < p.LoadBelow/2 {
		sev = record.Critical
	}
	t.raise(k, d.lowFrom, before, after, "Mbit/s", sev, slices.Clone(d.abw),
		fmt.Sprintf("heavy load %s: ABW %.1f Mbit/s, %.0f %% of DBC %.1f, for %s", r.Direction, after, 100*m, *r.DBC,
			lastLow.Sub(d.lowFrom).Round(time.Second)))
	d.high = 0
}

// path raises a path alarm when the hop count of received probes differs
// from the known one for Hold values in a row (and MinDuration).
func (t *targetState) path(at time.Time, r *record.Record, d *dirState) {
	p := t.p
	k := key{record.Path, r.Direction}
	hops := Hops(*r.TTL)
	pt := record.Point{Time: at, Value: float64(hops)}
	if d.hops < 0 {
		d.hops = hops
		return
	}
	if a := t.active[k]; a != nil {
		if hops == d.hops {
			if d.same++; d.same >= p.Clear {
				t.end(k, at, "returned")
				d.same = 0
			}
			return
		}
		d.same = 0
		if at.Sub(a.Start) >= p.AcceptAfter {
			t.end(k, at, "accepted")
			d.hops = hops
		}
		return
	}
	if hops == d.hops {
		d.changed = d.changed[:0]
		return
	}
	d.changed = append(d.changed, pt)
	if len(d.changed) < p.Hold || at.Sub(d.changed[0].Time) < p.MinDuration {
		return
	}
	t.raise(k, d.changed[0].Time, float64(d.hops), float64(hops), "hops", record.Warning, slices.Clone(d.changed),
		fmt.Sprintf("path %s changed: %d hops, was %d", r.Direction, hops, d.hops))
	d.changed, d.same = d.changed[:0], 0
}

// Hops is the number of routers a packet crossed, from the TTL or hop
// limit it arrived with: the smallest usual initial value (32, 64, 128,
// 255) at or above it, minus it.
func Hops(ttl int) int {
	for _, init := range []int{32, 64, 128, 255} {
		if ttl <= init {
			return init - ttl
		}
	}
	return 0
}

// shift turns a level shift into an alarm raised or cleared.
func (t *targetState) shift(k key, s *Shift, unit, what string) {
	if !s.End.IsZero() {
		t.end(k, s.End, "returned")
		return
	}
	sev := record.Warning
	rel := (s.After - s.Before) / math.Abs(s.Before)
	switch {
	case k.kind == record.Capacity && rel <= -0.3:
		sev = record.Critical
	case (k.kind == record.Capacity && rel > 0) || (k.kind == record.Latency && rel < 0):
		sev = record.Info
	}
	dir := k.direction
	if dir == "both" {
		dir = "round trip"
	}
	t.raise(k, s.Start, s.Before, s.After, unit, sev, s.Evidence,
		fmt.Sprintf("%s %s changed from %.3g to %.3g %s (%+.0f %%)", what, dir, s.Before, s.After, unit, 100*rel))
}

func (t *targetState) raise(k key, start time.Time, before, after float64, unit, severity string, evidence []record.Point, summary string) {
	r := t.rec
	a := &record.Alarm{Kind: k.kind, Target: r.Key(), Address: r.Address, Labels: r.Labels, Direction: k.direction,
		Severity: severity, Start: start, Before: round(before), After: round(after), Unit: unit, Summary: summary,
		Evidence: evidence}
	t.active[k] = a
	t.order = append(t.order, k)
	t.out = append(t.out, *a)
}

// end clears the active alarm of k and returns it.
func (t *targetState) end(k key, at time.Time, how string) record.Alarm {
	a := t.active[k]
	delete(t.active, k)
	t.order = slices.DeleteFunc(t.order, func(o key) bool { return o == k })
	a.End, a.Cleared = &at, how
	t.out = append(t.out, *a)
	return *a
}

func round(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return math.Round(v*1000) / 1000
}

func medianOf(pts []record.Point) float64 {
	v := make([]float64, len(pts))
	for i, p := range pts {
		v[i] = p.Value
	}
	return estimator.Median(v)
}
