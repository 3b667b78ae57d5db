package estimator

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// Pooling runs is estimating from all their trains at once: one run's
// stats give back its own estimate; nine runs of the same path narrow the
// interval about threefold (√9) and keep the truth inside; what is not a
// run's stats is left out.
func TestPool(t *testing.T) {
	const c, x = 100e6, 40e6
	r := rand.New(rand.NewPCG(7, 1))
	var runs []CrossStats
	var first Cross
	for i := range 9 {
		capa, _, err := EstimateCapacity(b2b(r, 16, c, 1e-6), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		cr, err := EstimateCross(paced(r, 16, 10, c, x), capa, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = cr
			one, err := Pool([]CrossStats{cr.Stats}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range [][2]float64{{one.XTR, cr.XTR}, {one.ABW, cr.ABW}, {one.ABWLow, cr.ABWLow}, {one.ABWHigh, cr.ABWHigh}, {one.XTRHigh, cr.XTRHigh}} {
				if math.Abs(p[0]-p[1]) > 1e-6*c {
					t.Errorf("one run pooled: %+v, estimated %+v", one, cr)
					break
				}
			}
		}
		runs = append(runs, cr.Stats)
	}
	bad := []CrossStats{{}, {Runs: 1, Trains: 5, Windows: 5, In: math.NaN(), Out: 1, DBC: 1, Tn: 1, InIn: 1}}
	pooled, err := Pool(append(runs, bad...), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if pooled.Stats.Runs != 9 || pooled.Used != 9*16 {
		t.Errorf("pooled %d runs, %d trains: want 9 and 144", pooled.Stats.Runs, pooled.Used)
	}
	ratio := (pooled.ABWHigh - pooled.ABWLow) / (first.ABWHigh - first.ABWLow)
	if ratio < 0.2 || ratio > 0.5 {
		t.Errorf("9 runs pooled: interval %.2f–%.2f, one run's %.2f–%.2f (ratio %.2f, want about 1/3)",
			pooled.ABWLow/1e6, pooled.ABWHigh/1e6, first.ABWLow/1e6, first.ABWHigh/1e6, ratio)
	}
	if truth := c - x; pooled.ABWLow > truth || pooled.ABWHigh < truth {
		t.Errorf("pooled ABW %.2f (%.2f–%.2f), truth %.2f", pooled.ABW/1e6, pooled.ABWLow/1e6, pooled.ABWHigh/1e6, truth/1e6)
	}
	if _, err := Pool(bad, cfg); !errors.Is(err, ErrTooFew) {
		t.Errorf("nothing to pool: %v", err)
	}
}
