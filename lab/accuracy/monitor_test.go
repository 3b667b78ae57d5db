//go:build linux

package accuracy

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/lab/testbed"
	"github.com/abing-net/abing/monitor"
	"github.com/abing-net/abing/record"
)

// The monitor through the emulated 20 Mbit/s path (a stable rate on this
// machine kind: see CapacityBound), against three
// reflectors on the far host; one is stopped halfway. Its failures are
// recorded as errors, and the other two keep their cadence and their
// capacity estimate.
func TestMonitorThreeReflectors(t *testing.T) {
	env := setup(t, 20e6, 20e6)
	stops := map[string]func() error{}
	var targets []string
	for i, port := range []int{8177, 8178, 8179} {
		_, stop, err := env.StartReflector(port, LabLimits())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stop() })
		name := fmt.Sprintf("r%d", i)
		stops[name] = stop
		targets = append(targets, fmt.Sprintf("  - {address: \"%s:%d\", name: %s}\n", testbed.ReflectorAddr, port, name))
	}
	cfg, err := config.Parse([]byte("interval: 2s\njitter: 0.05\nprobe: {timeout: 1s}\ntargets:\n"+strings.Join(targets, "")), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string][]record.Record{}
	m := monitor.New(cfg, monitor.Options{Bind: env.Bind, Records: []func([]record.Record){func(recs []record.Record) {
		mu.Lock()
		defer mu.Unlock()
		got[recs[0].Target] = append(got[recs[0].Target], recs...)
	}}})
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	go func() {
		time.Sleep(6 * time.Second)
		stops["r2"]()
	}()
	m.Run(ctx)
	// The truth is a calibration, one second of saturation; one of them
	// now and then reads low here (16.3 and 16.6 Mbit/s in two CI runs,
	// against the usual 18.3-18.8, while all twelve readings agreed at
	// 18.9). So the link is calibrated again after the runs, and each
	// reading is compared with the closer of the two.
	cal0 := env.Calibration[testbed.Forward].Capacity
	if err := env.Recalibrate(context.Background(), testbed.Forward); err != nil {
		t.Fatal(err)
	}
	cal1 := env.Calibration[testbed.Forward].Capacity
	t.Logf("forward calibrated %.2f Mbit/s before the runs, %.2f after", cal0/1e6, cal1/1e6)
	for _, name := range []string{"r0", "r1"} {
		recs := got[name]
		if runs := len(recs) / 2; runs < 5 || runs > 7 {
			t.Errorf("%s: %d runs in 12 s at a 2 s interval", name, runs)
		}
		// 10 %: CapacityBound, widened because the runs span 12 s and
		// are compared with calibrations made before and after them.
		for _, r := range recs {
			if r.Direction == "forward" && (r.DBC == nil || min(relErr(*r.DBC*1e6, cal0), relErr(*r.DBC*1e6, cal1)) > 0.1) {
				t.Errorf("%s: forward %s; calibrated %.1f and %.1f Mbit/s", name, r.Text(), cal0/1e6, cal1/1e6)
			}
		}
	}
	// Each record also carries ABW over the windows of the target's
	// runs so far (pool: 10): by the last run at least three, with an
	// interval no wider than the run's own, or than 10 % of DBC: on this
	// idle path both intervals are cut at DBC and under a Mbit/s wide,
	// and which of two such slivers is the narrower is noise (CI of issue
	// 24: run 18.3–18.8, pooled wider by a little, once; CI of issue 26:
	// run 18.2–19.0, pooled 17.83–18.79, 5.2 % of DBC, against a bound
	// of 5 % then). Both now also hold their capacity interval's error
	// (in quadrature with the sampling error), which pooling does not
	// shrink.
	// The comparison holds for the sampling error only: paced trains that
	// left off pace widen an interval by their share of the windows
	// (estimator, CrossStats.estimate), and the pool's share is that of
	// all its runs, which can exceed the last run's (CI of issue 24: run
	// 16.2–18.8, pooled 15.2–18.8, on a machine busy enough to delay
	// sends). So the width is compared only when no run of the pool had
	// a train off pace.
	//
	// A run can refuse ABW honestly: "the sending host was short of CPU
	// while pacing: 12 of 15 paced trains left this host off pace" (CI of
	// issue 26, once, with nothing else running), and a run without ABW
	// carries no pooled value. So the judged record is the forward one of
	// the last run that estimated ABW, which must be the third run or
	// later.
	for _, name := range []string{"r0", "r1"} {
		recs := got[name]
		end := len(recs) // the judged run's records end here
		for end >= 2 && recs[end-2].ABW == nil {
			t.Logf("%s: run %d estimated no ABW: %s", name, end/2, recs[end-2].Error)
			end -= 2
		}
		if end < 6 {
			t.Errorf("%s: only %d runs of %d estimated ABW before the last that did not", name, end/2, len(recs)/2)
			continue
		}
		last := recs[end-2] // the judged run's forward record
		offPace := 0
		for i := max(0, end-2*last.PooledRuns); i < end; i++ {
			if recs[i].Direction == "forward" {
				offPace += recs[i].Rejected["off-pace"]
			}
		}
		if last.PooledRuns < 3 || last.ABWPooled == nil || last.ABW == nil || last.ABWLow == nil || last.DBC == nil ||
			(offPace == 0 && *last.ABWPooledHigh-*last.ABWPooledLow > max(*last.ABWHigh-*last.ABWLow, 0.1**last.DBC)) {
			lo, hi := math.NaN(), math.NaN()
			if last.ABWPooledLow != nil && last.ABWPooledHigh != nil {
				lo, hi = *last.ABWPooledLow, *last.ABWPooledHigh
			}
			t.Errorf("%s: last run pooled %d runs (%d paced trains off pace): %s (pooled %.2f–%.2f)", name, last.PooledRuns, offPace, last.Text(), lo, hi)
			continue
		}
		t.Logf("%s: ABW %.1f (%.1f–%.1f), pooled over %d runs %.1f (%.1f–%.1f), %d paced trains of the pool off pace", name, *last.ABW, *last.ABWLow, *last.ABWHigh,
			last.PooledRuns, *last.ABWPooled, *last.ABWPooledLow, *last.ABWPooledHigh, offPace)
	}
	var good, failed int
	for _, r := range got["r2"] {
		if r.PairsReceived > 0 {
			good++
		} else if strings.Contains(r.Error, "r2") || strings.Contains(r.Error, "8179") {
			failed++
		}
	}
	t.Logf("r0 %d runs, r1 %d runs, r2 %d answered and %d failed (%s)", len(got["r0"])/2, len(got["r1"])/2, good/2, failed/2,
		got["r2"][len(got["r2"])-1].Error)
	if good == 0 || failed == 0 {
		t.Errorf("stopped reflector: %d good records, %d failures naming it: %+v", good, failed, got["r2"])
	}
}
