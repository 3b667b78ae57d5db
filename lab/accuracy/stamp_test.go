//go:build linux

package accuracy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/abing-net/abing/lab/testbed"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/stamp"
)

// stampRuns is StampRuns native and STAMP runs, alternated, over the same
// path and the same cross traffic, against one reflector answering both
// protocols.
func stampRuns(t *testing.T, env *Env, flows []testbed.Flow) (native, std []*Outcome) {
	t.Helper()
	addr, stop, err := env.StartSTAMP(stamp.Port)
	fatal(t, err)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("STAMP loop: %v", err)
		}
	}()
	cfg := measure.Defaults()
	cfg.Protocol, cfg.Target = measure.ProtocolSTAMP, addr.String()
	for range StampRuns {
		n, err := env.Measure(context.Background(), measure.Defaults(), flows)
		fatal(t, err)
		s, err := env.Measure(context.Background(), cfg, flows)
		fatal(t, err)
		native, std = append(native, n), append(std, s)
	}
	return native, std
}

// StampRuns is how many runs of each protocol TestSTAMPAgreesWithNative
// compares by their medians. One run of either protocol reads the DBC of
// this path under 10 Mbit/s of cross traffic within about 1.5 % of the
// truth, and now and then further: the native protocol once read 19.13
// (19.04–19.54) against a truth of 18.85 while STAMP read 18.32, 4.2 %
// apart, and over 30 single comparisons the two were 0.8 % apart at the
// median. Whether the two protocols agree is a question about the
// protocols, which one run's noise does not decide. Three runs were not
// enough: on the 20/8 Mbit/s path's idle forward direction one local run
// read 18.37, 19.29 and 18.73 natively and 18.70, 18.29 and 18.20 through
// STAMP, medians 2.4 % apart while each protocol's own runs spread 5 %
// and 2.7 %; the median of five is robust to two such runs.
//
// Five were not always enough either: this host has noisy spells, in which
// every run of both protocols spreads by 2–4 % (one run of the package
// here, on all three paths at once, where the runs before and after spread
// 0.5 %), and there the medians of five of the idle forward direction read
// 2.4 % apart (native 18.07–18.42, STAMP 18.14–18.77, truth 18.51). So the
// comparison is sequential: where the medians of StampRuns disagree,
// StampRuns more of each are run and the medians of all decide. A real
// disagreement shows in all of them; the noise of a spell does not, as
// often, in twice the runs.
const StampRuns = 5

// median is the run of outs whose direction (pick) read the median DBC
// (a run without one counts as 0).
func median(outs []*Outcome, pick func(*measure.Result) *measure.Direction) *measure.Direction {
	ds := make([]*measure.Direction, len(outs))
	for i, o := range outs {
		ds[i] = pick(o.Result)
	}
	slices.SortFunc(ds, func(a, b *measure.Direction) int { return cmp.Compare(a.Capacity.DBC, b.Capacity.DBC) })
	return ds[len(ds)/2]
}

func forward(r *measure.Result) *measure.Direction { return &r.Forward }
func reverse(r *measure.Result) *measure.Direction { return &r.Reverse }

func logDir(t *testing.T, what string, d *measure.Direction, truth Truth) {
	t.Helper()
	c, x := d.Capacity, d.Cross
	t.Logf("%-16s %-7s DBC %.2f (%.2f–%.2f) ABW %.2f (%.2f–%.2f), truth C %.2f ABW %.2f; bound %.2f; rejected %v; err %v",
		what, d.Name, c.DBC/1e6, c.DBCLow/1e6, c.DBCHigh/1e6, x.ABW/1e6, x.ABWLow/1e6, x.ABWHigh/1e6,
		truth.Capacity/1e6, truth.ABW/1e6, d.DBCMin/1e6, d.Rejects.Map(), d.Err())
}

// agree checks the rule for one direction read by both protocols:
// DBC within StampDBCAgreement of each other, and the two ABW readings
// within each other's interval. Their intervals differ in width (STAMP's
// stamp noise is read from 16 gaps, and its reverse interval reaches up by
// the reply spacing), so the rule is read as: the more precise reading lies
// inside the wider interval (and so the intervals overlap). Asking the
// narrow interval to hold the wide reading's point would ask the wide
// reading to be as precise as the narrow one: on an idle forward path
// native read 18.80 (18.42–19.07) and STAMP 18.35 (15.71–19.71), truth
// 18.75. A run that refused its cross traffic because the sending host was
// short of CPU (measure.ErrBusyHost, as CI's host sometimes is) gave the
// right answer for its host, and only its capacity is compared.
func agree(t *testing.T, d1, d2 *measure.Direction) error {
	if d1.CapErr != nil || d2.CapErr != nil {
		return fmt.Errorf("no capacity: %v; %v", d1.CapErr, d2.CapErr)
	}
	if e := relErr(d2.Capacity.DBC, d1.Capacity.DBC); e > StampDBCAgreement {
		return fmt.Errorf("DBC %.2f and %.2f: %.1f %% apart", d1.Capacity.DBC/1e6, d2.Capacity.DBC/1e6, 100*e)
	}
	if errors.Is(d1.CrossErr, measure.ErrBusyHost) || errors.Is(d2.CrossErr, measure.ErrBusyHost) {
		t.Logf("%s: ABW not compared: %v; %v", d1.Name, d1.CrossErr, d2.CrossErr)
		return nil
	}
	if d1.CrossErr != nil || d2.CrossErr != nil {
		return fmt.Errorf("no ABW: %v; %v", d1.CrossErr, d2.CrossErr)
	}
	narrow, wide := d1.Cross, d2.Cross
	if narrow.ABWHigh-narrow.ABWLow > wide.ABWHigh-wide.ABWLow {
		narrow, wide = wide, narrow
	}
	if !(wide.ABWLow <= narrow.ABW && narrow.ABW <= wide.ABWHigh) {
		return fmt.Errorf("ABW %.2f (%.2f–%.2f) and %.2f (%.2f–%.2f): the more precise reading is outside the wider interval",
			d1.Cross.ABW/1e6, d1.Cross.ABWLow/1e6, d1.Cross.ABWHigh/1e6, d2.Cross.ABW/1e6, d2.Cross.ABWLow/1e6, d2.Cross.ABWHigh/1e6)
	}
	return nil
}

// StampDBCAgreement is how far apart the capacities read through abing's
// own protocol and through STAMP may be: the 2 %. Both read the
// same kernel receive stamps at the reflector for the forward direction.
const StampDBCAgreement = 0.02

// abing's STAMP sender against abing's reflector answering STAMP (and its
// own protocol on its own port), at 20 Mbit/s with 10 Mbit/s of
// constant-rate cross traffic:
//
//   - forward cross traffic: the forward direction agrees with the native
//     reading; the reverse, whose replies the reflector echoed as fast as
//     the forward path delivered them, gives a bound that holds;
//   - reverse cross traffic on the symmetric path: still a bound, never the
//     reverse capacity read from the replies the cross traffic spread;
//   - a reverse path of 8 Mbit/s under 4 Mbit/s of cross traffic: narrower
//     than half the forward one, so the echoed replies reach it back to
//     back and both directions agree with the native reading.
func TestSTAMPAgreesWithNative(t *testing.T) {
	env := setup(t, 20e6, 20e6)
	for _, d := range []testbed.Direction{testbed.Forward, testbed.Reverse} {
		flows := []testbed.Flow{{Kind: testbed.CBR, Dir: d, Rate: 10e6}}
		natives, stds, errs := compareRuns(t, env, fmt.Sprintf("cross %s", d), flows, forward)
		if err := errs[0]; err != nil {
			t.Errorf("cross traffic %s: forward (medians of %d runs): %v", d, len(natives), err)
		}
		// The reverse through STAMP: a bound that holds, and the reason,
		// in every run.
		for _, std := range stds {
			r, truth := &std.Result.Reverse, std.Truth[testbed.Reverse].Capacity
			if !errors.Is(r.CapErr, measure.ErrEchoed) || r.DBCMin <= 0 || r.DBCMin > truth*(1+CapacityBound) {
				t.Errorf("cross traffic %s: reverse through STAMP: bound %.2f (capacity %.2f): %v", d, r.DBCMin/1e6, truth/1e6, r.CapErr)
			}
		}
	}

	slow := setup(t, 20e6, 8e6)
	natives, stds, errs := compareRuns(t, slow, "20/8", []testbed.Flow{{Kind: testbed.CBR, Dir: testbed.Reverse, Rate: 4e6}}, forward, reverse)
	// Each direction's trains within its budget, both on the forward path.
	for _, std := range stds {
		if cfg := measure.Defaults(); std.Result.Forward.Bytes > 2*cfg.Budget() {
			t.Errorf("20/8 Mbit/s through STAMP: %d bytes forward, budget %d a direction", std.Result.Forward.Bytes, cfg.Budget())
		}
	}
	for i, name := range []string{"forward", "reverse"} {
		if err := errs[i]; err != nil {
			t.Errorf("20/8 Mbit/s, reverse cross traffic: %s (medians of %d runs): %v", name, len(natives), err)
		}
	}
}

// compareRuns runs StampRuns of each protocol (stampRuns) and compares the
// directions picks choose by their medians (agree); where any disagree, it
// runs StampRuns more of each and compares the medians of all (StampRuns'
// comment says why). It logs every run and returns them, with the
// comparisons' verdicts in the order of picks.
func compareRuns(t *testing.T, env *Env, what string, flows []testbed.Flow, picks ...func(*measure.Result) *measure.Direction) (natives, stds []*Outcome, errs []error) {
	t.Helper()
	compare := func() []error {
		errs := make([]error, len(picks))
		for i, pick := range picks {
			errs[i] = agree(t, median(natives, pick), median(stds, pick))
		}
		return errs
	}
	natives, stds = stampRuns(t, env, flows)
	logRuns(t, what, natives, stds)
	errs = compare()
	if errors.Join(errs...) == nil {
		return natives, stds, errs
	}
	t.Logf("%s: the medians of %d runs disagree (%v): %d more of each", what, StampRuns, errors.Join(errs...), StampRuns)
	n, s := stampRuns(t, env, flows)
	logRuns(t, what+" (more)", n, s)
	natives, stds = append(natives, n...), append(stds, s...)
	return natives, stds, compare()
}

// logRuns logs each run of both protocols, both directions.
func logRuns(t *testing.T, what string, natives, stds []*Outcome) {
	t.Helper()
	for i := range natives {
		for _, o := range []struct {
			what string
			out  *Outcome
		}{{"native", natives[i]}, {"stamp", stds[i]}} {
			logDir(t, o.what+" "+what, &o.out.Result.Forward, o.out.Truth[testbed.Forward])
			logDir(t, o.what+" "+what, &o.out.Result.Reverse, o.out.Truth[testbed.Reverse])
		}
		t.Logf("stamp notes: %q", stds[i].Result.Notes)
	}
}
