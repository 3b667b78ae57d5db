package mesh

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
)

// The verdict rules at their exact boundaries: 20 ms against 15 % (15 % of
// 200 ms is 30), the one-point loss rule, the bandwidth margins.
func TestVerdicts(t *testing.T) {
	for _, tc := range []struct {
		d, o float64
		want Verdict
	}{
		{100, 99.9, Optimized},
		{100, 100, OK},   // not lower: not optimized
		{100, 119.9, OK}, // below 100 + 20
		{100, 120, Bad},  // at the edge: not below it
		{200, 229.9, OK}, // 15 % of 200 = 30 > 20
		{200, 230, Bad},
		{10, 29.9, OK}, // 20 ms > 15 % of 10
		{10, 30, Bad},
	} {
		if got := RTTVerdict(tc.d, tc.o); got != tc.want {
			t.Errorf("RTT %g vs %g: %s, want %s", tc.o, tc.d, got, tc.want)
		}
	}
	for _, tc := range []struct {
		d, o float64
		want Verdict
	}{
		{2, 1.5, Optimized},
		{2, 2, Same},
		{2, 2.99, OK},
		{2, 3, Bad}, // one full point worse
		{0, 1, Bad},
		{0, 0.5, OK},
	} {
		if got := LossVerdict(tc.d, tc.o); got != tc.want {
			t.Errorf("loss %g vs %g: %s, want %s", tc.o, tc.d, got, tc.want)
		}
	}
	for _, tc := range []struct {
		d, o float64
		want Verdict
	}{
		{100, 100.1, Optimized},
		{100, 100, OK},
		{100, 90.1, OK}, // 10 % of 100
		{100, 90, Bad},
		{5, 4.1, OK}, // 1 Mbit/s > 10 % of 5
		{5, 4, Bad},
	} {
		if got := BandwidthVerdict(tc.d, tc.o); got != tc.want {
			t.Errorf("bandwidth %g vs %g: %s, want %s", tc.o, tc.d, got, tc.want)
		}
	}
	if got := Describe(Optimized, 100, 80, "ms", true); got != "OPTIMIZED by 20.0 ms (20 %)" {
		t.Errorf("describe: %q", got)
	}
	if got := Describe(Bad, 100, 131, "ms", true); got != "BAD: 31.0 ms slower" {
		t.Errorf("describe: %q", got)
	}
}

func TestRollingMedian3(t *testing.T) {
	got := RollingMedian3([]float64{10, 11, 500, 12, 10, 9})
	if want := []float64{10, 11, 12, 12, 10, 9}; !slices.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}

// Two paths to one host from one node: the overlay is faster on the mean
// RTT once a spike is smoothed away, loses less, and has less bandwidth;
// a failed round counts in loss, not in RTT.
func TestCompare(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	f := func(v float64) *float64 { return &v }
	var recs []record.Record
	add := func(path string, i int, rtt float64, loss float64, abw float64) {
		r := record.Record{Time: t0.Add(time.Duration(i) * time.Minute), Node: "a", Target: "b", Path: path, Direction: "forward",
			Loss: loss, ABW: f(abw), DBC: f(100)}
		if rtt > 0 {
			r.RTT = &record.RTT{Avg: rtt}
		} else {
			r.ABW, r.DBC, r.Error = nil, nil, "no answer"
		}
		recs = append(recs, r, record.Record{Time: r.Time, Node: "a", Target: "b", Path: path, Direction: "reverse"})
	}
	for i, v := range []float64{50, 52, 51, 49, 50} {
		add("direct", i, v, 0, 80)
	}
	for i, v := range []float64{40, 900, 41, 0, 40} { // a spike and a failed round
		add("overlay", i, v, 0, 60)
	}
	add("other", 0, 50, 0, 80) // another host's path, alone: no comparison
	recs[len(recs)-2].Target = "c"
	got := Compare(recs)
	if len(got) != 1 {
		t.Fatalf("%d comparisons: %+v", len(got), got)
	}
	c := got[0]
	if c.Reference.Path != "direct" || c.Path.Path != "overlay" || c.Path.Failed != 1 || c.Path.Rounds != 5 {
		t.Fatalf("%+v", c)
	}
	// Overlay RTTs 40, 900, 41, 40 → rolling median 40, 41, 41, 40 → 40.5.
	if math.Abs(c.Path.RTT-40.5) > 1e-9 || c.RTT != Optimized {
		t.Errorf("overlay RTT %.2f (%s), want 40.5 OPTIMIZED", c.Path.RTT, c.RTT)
	}
	if c.Path.Loss != 20 || c.Loss != Bad || c.ABW != Bad || c.DBC != OK {
		t.Errorf("loss %.1f %% (%s), ABW %s, DBC %s", c.Path.Loss, c.Loss, c.ABW, c.DBC)
	}
}
