package sim

import (
	"math"
	"testing"
)

// The 95 % interval of ABW holds the truth in at least 90 % of runs where
// the estimator is unbiased: pairs and trains, constant-rate, Poisson and
// mixed-size cross traffic, from 10 Mbit/s to 1 Gbit/s. 200 seeded runs a
// cell: the standard error of a coverage of 0.9 is 2.1 points, so the
// bound is 90 % less two of them, 85.8 %. The seeds are fixed: the same
// code gives the same figures every time.
func TestIntervalCoverage(t *testing.T) {
	const runs = 200
	floor := 0.9 - 2*math.Sqrt(0.9*0.1/runs)
	for _, c := range []struct {
		name  string
		rate  float64
		model Model
		load  float64
		mode  Mode
	}{
		{"10M poisson 50% pairs", 10e6, Poisson, 0.5, Modes[0]},
		{"10M poisson 50% trains", 10e6, Poisson, 0.5, Modes[1]},
		{"100M cbr 50% trains", 100e6, CBR, 0.5, Modes[1]},
		{"100M mix 80% trains", 100e6, Mix, 0.8, Modes[1]},
		{"1G poisson 20% trains", 1e9, Poisson, 0.2, Modes[1]},
	} {
		host := hostKernel
		if c.rate >= 1e9 {
			host = hostHardware
		}
		cell := Cell{Name: c.name, Hops: []Hop{{Rate: access(c.rate)}, {Rate: c.rate, Cross: Traffic{Model: c.model, Load: c.load}}},
			Probe: c.mode.probe(), Host: host}
		st := runCell(cell, runs)
		t.Logf("%s: coverage %.1f %%, median half-width %.1f %% of C, failed %d", c.name, 100*st.Coverage, 100*st.HalfWidth, st.Failed)
		if st.Coverage < floor || st.Failed > runs/20 {
			t.Errorf("%s: the interval held the truth in %.1f %% of runs (%d failed), want at least %.1f %%", c.name, 100*st.Coverage, st.Failed, 100*floor)
		}
	}
}
