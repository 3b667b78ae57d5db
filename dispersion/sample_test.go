package dispersion

import (
	"math"
	"testing"

	"github.com/abing-net/abing/estimator"
)

func TestTrainSample(t *testing.T) {
	const noise = 2e-6
	us := func(v ...int64) []int64 {
		for i := range v {
			v[i] *= 1000
		}
		return v
	}
	inOrder := []int{0, 1, 2}
	for _, tc := range []struct {
		name   string
		tx, rx []int64
		order  []int
		pace   Pace
		reject Reject
		sample estimator.Sample
	}{
		{"b2b", us(1000, 1001, 1002), us(5000, 5120, 5240), inOrder, Pace{}, Accepted,
			estimator.Sample{In: 2e-6, Out: 240e-6, Gaps: 2, Clean: 240e-6, CleanGaps: 2}},
		{"b2b late but queued", us(1000, 1001, 1100), us(5000, 5120, 5240), inOrder, Pace{}, Accepted,
			estimator.Sample{In: 100e-6, Out: 240e-6, Gaps: 2, Clean: 240e-6, CleanGaps: 2}},
		{"lost", us(1000, 1001, 1002), []int64{5e6, 0, 5.24e6}, []int{0, -1, 1}, Pace{}, Lost, estimator.Sample{}},
		{"reordered", us(1000, 1001, 1002), us(5000, 5240, 5120), []int{0, 2, 1}, Pace{}, Reordered, estimator.Sample{}},
		{"no tx", []int64{1e6, 0, 1.002e6}, us(5000, 5120, 5240), inOrder, Pace{}, NoTxStamp, estimator.Sample{}},
		{"left late: rejected, its spans kept", us(1000, 1100, 1200), us(5000, 5120, 5240), inOrder, Pace{}, LeftLate, estimator.Sample{In: 200e-6, Out: 240e-6, Gaps: 2}},
		{"compressed pair", us(1000, 1000), us(5000, 5001), []int{0, 1}, Pace{}, Compressed, estimator.Sample{}},
		{"batched train: its span", us(1000, 1000, 1000), us(5000, 5001, 5120), inOrder, Pace{}, Accepted,
			estimator.Sample{In: 0, Out: 120e-6, Gaps: 2, Clean: 120e-6, CleanGaps: 2}},
		{"batched train, span below the noise", us(1000, 1000, 1000), us(5000, 5001, 5003), inOrder, Pace{}, Compressed, estimator.Sample{}},
		{"compressed paced pair", us(1000, 1120), us(5000, 5001), []int{0, 1}, Pace{100e-6, 130e-6, 200e-6}, Compressed, estimator.Sample{}},
		{"batched paced train: its span", us(1000, 1120, 1241), us(5000, 5001, 5360), inOrder, Pace{100e-6, 130e-6, 200e-6}, Accepted,
			estimator.Sample{In: 241e-6, Out: 360e-6, Gaps: 2, Clean: 360e-6, CleanGaps: 2}},
		{"paced", us(1000, 1120, 1241), us(5000, 5120, 5360), inOrder, Pace{100e-6, 130e-6, 200e-6}, Accepted,
			estimator.Sample{In: 241e-6, Out: 360e-6, Gaps: 2, Clean: 360e-6, CleanGaps: 2}},
		{"paced slow", us(1000, 1140, 1270), us(5000, 5150, 5270), inOrder, Pace{100e-6, 130e-6, 200e-6}, OffPace, estimator.Sample{}},
		{"paced fast", us(1000, 1050, 1170), us(5000, 5120, 5240), inOrder, Pace{100e-6, 130e-6, 200e-6}, OffPace, estimator.Sample{}},
		{"paced catch-up", us(1000, 1180, 1241), us(5000, 5180, 5360), inOrder, Pace{100e-6, 130e-6, 200e-6}, Accepted,
			estimator.Sample{In: 241e-6, Out: 360e-6, Gaps: 2, Clean: 360e-6, CleanGaps: 2}},
		{"paced hole", us(1000, 1210, 1241), us(5000, 5210, 5360), inOrder, Pace{100e-6, 130e-6, 200e-6}, OffPace, estimator.Sample{}},
		{"one packet", us(1000), us(5000), []int{0}, Pace{}, Lost, estimator.Sample{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r := TrainSample(tc.tx, tc.rx, tc.order, tc.pace, noise)
			if r != tc.reject {
				t.Fatalf("reject = %v, want %v", r, tc.reject)
			}
			if s.Gaps != tc.sample.Gaps || math.Abs(s.In-tc.sample.In) > 1e-12 || math.Abs(s.Out-tc.sample.Out) > 1e-12 ||
				s.CleanGaps != tc.sample.CleanGaps || math.Abs(s.Clean-tc.sample.Clean) > 1e-12 {
				t.Errorf("sample = %+v, want %+v", s, tc.sample)
			}
		})
	}
}

func TestRejects(t *testing.T) {
	var r Rejects
	r.Add(Accepted)
	r.Add(Lost)
	r.Add(Lost)
	r.Add(OffPace)
	if r.Rejected() != 3 || r.String() != "lost 2, off-pace 1" {
		t.Errorf("rejected %d %q", r.Rejected(), r.String())
	}
	if m := r.Map(); len(m) != 2 || m["lost"] != 2 {
		t.Errorf("map %v", m)
	}
}

// Trains that left too slowly still bound the capacity from below: the
// path carried them as fast as they came.
func TestLowerBound(t *testing.T) {
	late := func(gap float64) estimator.Sample { return estimator.Sample{In: gap, Out: gap, Gaps: 1} }
	for _, tc := range []struct {
		name    string
		samples []estimator.Sample
		want    float64
	}{
		{"three at 12 µs", []estimator.Sample{late(12e-6), late(12e-6), late(13e-6)}, 1500 * 8 / 12e-6},
		{"median of five", []estimator.Sample{late(10e-6), late(20e-6), late(12e-6), late(11e-6), late(30e-6)}, 1500 * 8 / 12e-6},
		{"too few", []estimator.Sample{late(12e-6), late(12e-6)}, 0},
		{"empty spans ignored", []estimator.Sample{{}, {}, late(12e-6)}, 0},
	} {
		if got := LowerBound(tc.samples, 1500, 0); math.Abs(got-tc.want) > 1 {
			t.Errorf("%s: %.0f, want %.0f", tc.name, got, tc.want)
		}
	}
	// The noise is a margin: a gap read 1 µs short is not taken for a faster path.
	if got, want := LowerBound([]estimator.Sample{late(11e-6), late(11e-6), late(11e-6)}, 1500, 1e-6), 1500*8/12e-6; math.Abs(got-want) > 1 {
		t.Errorf("with 1 µs of noise: %.0f, want %.0f", got, want)
	}
}
