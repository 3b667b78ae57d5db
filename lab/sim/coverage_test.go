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

// The accuracy issue's hardest cells, by the grid's rules, 50 seeded runs
// each: every one honest (an ABW interval, or a bound on capacity, that
// held the truth in at least 90 % of runs), and those that the default
// estimates today still estimated (median ABW error at most 8 % of C, 90th
// percentile 15 %). The seeds are fixed: the same code gives the same
// figures every time.
func TestHardCells(t *testing.T) {
	honest := []string{
		"1G 1500 kernel tcp 50%",            // bursts from a faster link: the windows miss them
		"1G 1500 coalesce50 tcp 50%",        // 50 µs interrupt moderation: pairs in one batch
		"10G 1500 kernel poisson 50%",       // pairs below the stamps' noise
		"10G 1500 hardware tcp 50%",         // pairs sent slower than the path
		"100G 1500 hardware poisson 50%",    // hardware stamps, a sender 100 times too slow
		"100G 9000 hardware tcp 50%",        // and jumbo probes
		"1G 1500 kernel tcp x4 80%",         // four flows of different round trips
		"10M 1500 kernel 3-hop poisson 80%", // loaded links before and after the narrow one
	}
	estimate := []string{
		"100M 1500 kernel tcp-paced 50%",
		"1G 1500 kernel mix 50%",
		"10G 9000 hardware poisson 50%",
	}
	cells := map[string]Cell{}
	for _, c := range DefaultGrid() {
		cells[c.Name] = c
	}
	run := func(name string) Stats {
		c, ok := cells[name]
		if !ok {
			t.Fatalf("no cell %q in the grid", name)
		}
		st := runCell(c, 50)
		t.Logf("%s: held %.0f %%, %d of 50 with no ABW (%d bounded), ABW error median %.1f %% p90 %.1f %% of C",
			name, 100*st.Held, st.Failed, st.Bounded, 100*st.ABWMedian, 100*st.ABWP90)
		return st
	}
	for _, name := range honest {
		if st := run(name); !st.Honest() {
			t.Errorf("%s: the interval or bound held the truth in %.0f %% of runs, want at least %.0f %%", name, 100*st.Held, 100*HonestShare)
		}
	}
	for _, name := range estimate {
		if st := run(name); !st.Estimate() {
			t.Errorf("%s: no longer an estimate: held %.0f %%, %d failed, median %.1f %%, p90 %.1f %%", name, 100*st.Held, st.Failed, 100*st.ABWMedian, 100*st.ABWP90)
		}
	}
}
