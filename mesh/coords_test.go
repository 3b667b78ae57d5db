package mesh

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// heldOut fits coordinates to 50 hosts of a plane with heights (RTT noise
// ±5 %), each pair measured with probability 0.6, and returns the relative
// errors of the predictions of the pairs that were not measured.
func heldOut(seed uint64) []float64 {
	const n = 50
	all, truth := plane(n, 0, seed)
	r := rand.New(rand.NewPCG(seed, 2))
	measured := map[[2]string]bool{}
	var train []Sample
	for _, s := range all {
		k := [2]string{s.Src, s.Dst}
		if _, seen := measured[k]; !seen {
			measured[k] = r.Float64() < 0.6
		}
		if measured[k] {
			s.RTT *= 1 + 0.05*(2*r.Float64()-1)
			train = append(train, s)
		}
	}
	c, err := FitCoordinates(train, DefaultDimensions, DefaultRounds, seed)
	if err != nil {
		panic(err)
	}
	var rel []float64
	for a := range n {
		for b := a + 1; b < n; b++ {
			if measured[[2]string{name(a), name(b)}] {
				continue
			}
			p, ok := c.Predict(name(a), name(b))
			if !ok {
				panic("no prediction")
			}
			rel = append(rel, math.Abs(p-truth(a, b))/truth(a, b))
		}
	}
	return rel
}

// Vivaldi (2-D plus height) predicts the RTT of pairs nobody measured: on
// a synthetic space of 50 hosts, median relative error below 15 % (Vivaldi's
// authors saw 11 % on 1,740 Internet hosts).
func TestCoordinatesPredict(t *testing.T) {
	rel := heldOut(1)
	slices.Sort(rel)
	med := rel[len(rel)/2]
	t.Logf("%d held-out pairs: median relative error %.1f %%, 90th percentile %.1f %%", len(rel), 100*med, 100*rel[len(rel)*9/10])
	if med > 0.15 {
		t.Errorf("median relative error %.1f %%, want below 15 %%", 100*med)
	}
	if _, err := FitCoordinates(nil, 2, 10, 1); err == nil {
		t.Error("fitted nothing without an error")
	}
	if _, err := FitCoordinates([]Sample{rtt("a", "b", 10)}, 0, 10, 1); err == nil {
		t.Error("0 dimensions accepted")
	}
}

// BenchmarkCoordinates prints the median relative error of held-out pairs
// for a fit of 50 hosts, and how long the fit takes.
func BenchmarkCoordinates(b *testing.B) {
	var med float64
	for i := range b.N {
		rel := heldOut(uint64(i + 1))
		slices.Sort(rel)
		med = rel[len(rel)/2]
	}
	b.ReportMetric(100*med, "median-rel-err-%")
}
