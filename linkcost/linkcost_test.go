package linkcost

import (
	"math"
	"testing"
	"time"
)

func TestCost(t *testing.T) {
	p := Default()
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ rtt, want float64 }{{0, 0}, {10, 0}, {65, 48}, {120, 96}, {500, 96}} {
		if got := p.LatencyTerm(tc.rtt); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("latency term of %g ms: %g, want %g", tc.rtt, got, tc.want)
		}
	}
	// 65 ms, 10 % loss, 5 ms of jitter: 96 + 48 + 96 + 5.
	if got := p.Cost(65, 0.1, 5); math.Abs(got-245) > 1e-9 {
		t.Errorf("cost %g, want 245", got)
	}
	bad := p
	bad.RTTMin = 200
	if bad.Check() == nil {
		t.Error("rtt_min above rtt_max accepted")
	}
	bad = p
	bad.B = math.NaN()
	if bad.Check() == nil {
		t.Error("NaN accepted")
	}
}

// A cost is published first, then only when it has moved past both
// thresholds (10 % and 10 units) and stayed past, on the same side, for
// three observations; then the median of those three is published. Noise
// that crosses and comes back, or that swings from one side to the other,
// publishes nothing.
func TestPublisherHysteresis(t *testing.T) {
	p := NewPublisher(DefaultThreshold())
	steps := []struct {
		cost    float64
		publish bool
		value   float64
	}{
		{100, true, 100},
		{109, false, 0},  // within 10 units
		{130, false, 0},  // past: 1 of 3
		{105, false, 0},  // back: the count starts again
		{130, false, 0},  // 1
		{70, false, 0},   // the other side: starts again from this one
		{135, false, 0},  // 1
		{140, false, 0},  // 2
		{131, true, 135}, // 3: the median of 135, 140, 131
		{140, false, 0},  // within 10 % of 135
		{math.NaN(), false, 0},
		{250, false, 0}, // past, 1
		{260, false, 0}, // 2
		{255, true, 255},
	}
	for i, s := range steps {
		v, ok := p.Observe(s.cost)
		if ok != s.publish || (ok && v != s.value) {
			t.Errorf("step %d (%g): published %v %g, want %v %g", i, s.cost, ok, v, s.publish, s.value)
		}
	}
	// The absolute threshold matters at small costs: 1 → 2 is +100 %.
	q := NewPublisher(Threshold{Rel: 0.1, Abs: 10, Window: 1})
	q.Observe(1)
	if _, ok := q.Observe(2); ok {
		t.Error("a change of 1 unit published")
	}
}

func TestProbeShare(t *testing.T) {
	// 546 KB a minute on a 10 Mbit/s path: 0.73 %.
	if got := ProbeShare(546_000, time.Minute, 10); math.Abs(got-0.00728) > 1e-5 {
		t.Errorf("probe share %g", got)
	}
	if !math.IsInf(ProbeShare(1, 0, 10), 1) {
		t.Error("no interval: want +Inf")
	}
}
