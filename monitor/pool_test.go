package monitor

import (
	"math/rand/v2"
	"testing"

	"github.com/abing-net/abing/estimator"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/record"
)

// run makes the result of a run at capacity c (bit/s) whose 16 paced
// 10-packet trains each caught a full-size cross packet in half their
// windows, and its records as the monitor has them.
func poolRun(t *testing.T, r *rand.Rand, c float64) (*measure.Result, []record.Record) {
	t.Helper()
	tn := 1500 * 8 / c
	capa := estimator.Capacity{DBC: c, Tn: tn, DBCLow: c * 0.99, DBCHigh: c * 1.01, TnErr: tn / 200}
	var paced []estimator.Sample
	for range 16 {
		out := 9 * tn
		for range 9 {
			if r.IntN(2) == 0 {
				out += tn
			}
		}
		paced = append(paced, estimator.Sample{In: 9 * tn, Out: out, Gaps: 9})
	}
	x, err := estimator.EstimateCross(paced, capa, estimator.Config{Size: 1500})
	if err != nil {
		t.Fatal(err)
	}
	res := &measure.Result{Config: measure.Defaults()}
	res.Forward.Name, res.Reverse.Name = "forward", "reverse"
	res.Forward.Capacity, res.Forward.Cross, res.Forward.ProbeGap = capa, x, x
	res.Reverse.ProbeGapErr = estimator.ErrTooFew
	recs := []record.Record{{Direction: "forward", ABW: record.Mbps(x.ABW)}, {Direction: "reverse"}}
	return res, recs
}

func TestPool(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := pool{size: 4}
	var half []float64
	for i := range 3 {
		res, recs := poolRun(t, r, 100e6)
		p.add(res, recs)
		f := recs[0]
		if i == 0 {
			if f.PooledRuns != 0 || f.ABWPooled != nil {
				t.Errorf("first run pooled: %+v", f)
			}
			half = append(half, (res.Forward.Cross.ABWHigh-res.Forward.Cross.ABWLow)/2e6)
			continue
		}
		if f.PooledRuns != i+1 || f.ABWPooled == nil || recs[1].ABWPooled != nil {
			t.Fatalf("run %d: pooled %d runs, forward %v, reverse %v", i+1, f.PooledRuns, f.ABWPooled, recs[1].ABWPooled)
		}
		half = append(half, (*f.ABWPooledHigh-*f.ABWPooledLow)/2)
		if c := recs[0]; *c.ABWPooledLow > *c.ABWPooled || *c.ABWPooled > *c.ABWPooledHigh {
			t.Errorf("run %d: pooled ABW %v outside its interval", i+1, *c.ABWPooled)
		}
	}
	if !(half[2] < half[1] && half[1] < half[0]) {
		t.Errorf("half-widths over 1, 2, 3 runs: %v, want them narrowing", half)
	}
	// A failed run takes a place: of 4, three runs remain, two of them
	// with windows, and the new one makes three.
	p.add(nil, nil)
	res, recs := poolRun(t, r, 100e6)
	p.add(res, recs)
	if recs[0].PooledRuns != 3 {
		t.Errorf("after a failed run: %d runs pooled, want 3", recs[0].PooledRuns)
	}
	// A capacity 20 % higher ends the pool: nothing to pool it with.
	res, recs = poolRun(t, r, 120e6)
	p.add(res, recs)
	if recs[0].PooledRuns != 0 || recs[0].ABWPooled != nil {
		t.Errorf("after a capacity change: pooled %d runs", recs[0].PooledRuns)
	}
	res, recs = poolRun(t, r, 121e6)
	p.add(res, recs)
	if recs[0].PooledRuns != 2 {
		t.Errorf("the run after: pooled %d runs, want 2", recs[0].PooledRuns)
	}
	// pool: 1 is no pooling.
	off := pool{size: 1}
	for range 3 {
		res, recs := poolRun(t, r, 100e6)
		off.add(res, recs)
		if recs[0].PooledRuns != 0 {
			t.Errorf("pool 1 pooled %d runs", recs[0].PooledRuns)
		}
	}
	for _, rec := range recs {
		rec.Sanitize()
		if rec.Error != "" {
			t.Errorf("pooled record does not keep what records promise: %s", rec.Error)
		}
	}
}
