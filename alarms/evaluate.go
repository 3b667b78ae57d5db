package alarms

import (
	"math/rand/v2"
	"time"

	"github.com/abing-net/abing/record"
)

// Level is what a synthetic run measures, before noise.
type Level struct {
	DBC, ABW, RTT float64 // Mbit/s, Mbit/s, ms
	TTL           int
	Down          bool // the run gets no answer
}

// Synthesize makes the records of one run a minute from t0, forward and
// reverse, each value with relative Gaussian noise and, for DBC and ABW, a
// fraction of outliers at half or 1.5 times the level.
func Synthesize(seed uint64, t0 time.Time, levels []Level, noise, outliers float64) []record.Record {
	r := rand.New(rand.NewPCG(seed, 11))
	noisy := func(v float64, outlier bool) *float64 {
		x := v * (1 + noise*r.NormFloat64())
		if outlier && r.Float64() < outliers {
			x = v * []float64{0.5, 1.5}[r.IntN(2)]
		}
		return &x
	}
	out := make([]record.Record, 0, 2*len(levels))
	for i, l := range levels {
		at := t0.Add(time.Duration(i) * time.Minute).UTC()
		rtt := noisy(l.RTT, false)
		for _, dir := range []string{"forward", "reverse"} {
			rec := record.Record{Time: at, Target: "lab", Address: "198.18.2.2:8176", Direction: dir}
			if l.Down {
				rec.Error = "read: connection refused"
			} else {
				rec.DBC, rec.ABW = noisy(l.DBC, true), noisy(l.ABW, true)
				rec.RTT = &record.RTT{Min: *rtt}
				ttl := l.TTL
				rec.TTL = &ttl
			}
			out = append(out, rec)
		}
	}
	return out
}

// Scenario is a synthetic series with a known change (or none).
type Scenario struct {
	Name            string
	Kind            record.Kind // the alarm the change should raise; "" for none
	Runs, Change    int         // runs in all; index of the first changed run (-1: none)
	Level           func(i int) Level
	Noise, Outliers float64
}

// Figures are how the detectors did on a scenario over many seeds.
// Delays count measurements from the change to the alarm, the raising one
// included: 5 means raised by the 5th measurement after the change.
type Figures struct {
	Scenario    string
	Kind        record.Kind
	Series      int
	Detected    int     // series where the alarm came within MaxDelay
	Missed      int     // the others
	MeanDelay   float64 // over the detected
	WorstDelay  int
	FalseAlarms int // alarms of another kind, before the change, or a second one for it
	Points      int // values per series
}

// MaxDelay is the latest an alarm counts as detection, in measurements.
const MaxDelay = 20

// Scenarios are the synthetic series of `abing alarms evaluate` and of the
// package's tests: steps down and up of several sizes, a ramp, outliers,
// heavy noise, load, latency, path and down changes, and a long
// stationary series. One measurement a minute.
func Scenarios() []Scenario {
	base := Level{DBC: 100, ABW: 60, RTT: 10, TTL: 61}
	step := func(at int, before, after Level) func(int) Level {
		return func(i int) Level {
			if i < at {
				return before
			}
			return after
		}
	}
	with := func(f func(*Level)) Level { l := base; f(&l); return l }
	return []Scenario{
		{"route change: DBC 1000→622, 3 % noise", record.Capacity, 200, 60,
			step(60, Level{DBC: 1000, ABW: 600, RTT: 10, TTL: 61}, Level{DBC: 622, ABW: 373, RTT: 10, TTL: 61}), 0.03, 0},
		{"upgrade: DBC 155→1000, 3 % noise", record.Capacity, 200, 60,
			step(60, Level{DBC: 155, ABW: 93, RTT: 10, TTL: 61}, Level{DBC: 1000, ABW: 600, RTT: 10, TTL: 61}), 0.03, 0},
		{"bottleneck 100→40, 5 % noise, 5 % outliers", record.Capacity, 200, 60,
			step(60, base, with(func(l *Level) { l.DBC, l.ABW = 40, 24 })), 0.05, 0.05},
		{"DBC −15 %, 2 % noise", record.Capacity, 200, 60, step(60, base, with(func(l *Level) { l.DBC, l.ABW = 85, 51 })), 0.02, 0},
		{"DBC halved, heavy noise (15 %, 5 % outliers)", record.Capacity, 200, 60,
			step(60, base, with(func(l *Level) { l.DBC, l.ABW = 50, 30 })), 0.15, 0.05},
		{"DBC ramp 100→50 over 40 runs", record.Capacity, 200, 60, func(i int) Level {
			f := min(max(float64(i-60), 0), 40) / 40
			return with(func(l *Level) { l.DBC, l.ABW = 100-50*f, 60-30*f })
		}, 0.03, 0},
		{"DBC −5 % (below min_change)", "", 200, -1, step(60, base, with(func(l *Level) { l.DBC = 95 })), 0.01, 0},
		{"heavy load: ABW 60→10 for 30 runs", record.Load, 200, 60, func(i int) Level {
			if i >= 60 && i < 90 {
				return with(func(l *Level) { l.ABW = 10 })
			}
			return base
		}, 0.05, 0.02},
		{"latency 10→30 ms", record.Latency, 200, 60, step(60, base, with(func(l *Level) { l.RTT = 30 })), 0.05, 0},
		{"one more hop", record.Path, 200, 60, step(60, base, with(func(l *Level) { l.TTL = 60 })), 0.05, 0},
		{"target down for 10 runs", record.Down, 200, 60, func(i int) Level {
			if i >= 60 && i < 70 {
				return Level{Down: true}
			}
			return base
		}, 0.05, 0},
		{"stationary, 5 % noise, 2 % outliers", "", 10000, -1, func(int) Level { return base }, 0.05, 0.02},
	}
}

// Evaluate runs the detectors with p over seeds series of each scenario.
func Evaluate(p Params, seeds int, scenarios []Scenario) []Figures {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []Figures
	for _, sc := range scenarios {
		f := Figures{Scenario: sc.Name, Kind: sc.Kind, Series: seeds, Points: sc.Runs}
		levels := make([]Level, sc.Runs)
		for i := range levels {
			levels[i] = sc.Level(i)
		}
		sumDelay := 0
		for seed := range uint64(seeds) {
			recs := Synthesize(seed, t0, levels, sc.Noise, sc.Outliers)
			e := NewEngine(func(string) Params { return p })
			detected := false
			seen := map[key]bool{}
			for i := range recs {
				as, _ := e.Observe(&recs[i])
				run := i / 2
				for _, a := range as {
					if !a.Active() {
						continue
					}
					k := key{a.Kind, a.Direction}
					switch {
					case a.Kind != sc.Kind || run < sc.Change || seen[k]:
						f.FalseAlarms++
					case !detected && run-sc.Change+1 <= MaxDelay:
						detected = true
						d := run - sc.Change + 1
						sumDelay += d
						f.WorstDelay = max(f.WorstDelay, d)
					}
					seen[k] = true
				}
			}
			if detected {
				f.Detected++
			} else if sc.Kind != "" {
				f.Missed++
			}
		}
		if f.Detected > 0 {
			f.MeanDelay = float64(sumDelay) / float64(f.Detected)
		}
		out = append(out, f)
	}
	return out
}
