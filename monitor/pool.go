package monitor

import (
	"math"

	"github.com/abing-net/abing/estimator"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/record"
)

// PoolChange is how far (relative) a run's capacity may differ from the
// newest run's and still be pooled with it: past a capacity change, the
// windows of before measured another path.
const PoolChange = 0.1

// pool holds the cross-traffic sums (estimator.CrossStats) of a target's
// last runs, per direction, so that each record can also carry XTR and ABW
// over the windows of all of them: a 24/7 series gets tight intervals
// without more probes per run. A failed run takes its place in the pool
// with nothing in it. The pool lives as long as the target's loop: a
// restart, or a reload that changes the target, starts it afresh.
type pool struct {
	size int
	runs [2][]estimator.CrossStats // by direction, oldest first
}

// add records res (nil: a failed run) and fills the pooled fields of
// recs, the run's records.
func (p *pool) add(res *measure.Result, recs []record.Record) {
	if p.size < 2 {
		return
	}
	for d := range p.runs {
		var st estimator.CrossStats
		if res != nil {
			dir := &res.Forward
			if d == 1 {
				dir = &res.Reverse
			}
			if dir.ProbeGapErr == nil {
				st = dir.ProbeGap.Stats
			}
		}
		p.runs[d] = append(p.runs[d], st)
		if len(p.runs[d]) > p.size {
			p.runs[d] = p.runs[d][1:]
		}
	}
	if res == nil {
		return
	}
	for i := range recs {
		d := 0
		if recs[i].Direction == "reverse" {
			d = 1
		}
		if recs[i].ABW == nil {
			continue
		}
		x, err := estimator.Pool(p.comparable(d), estimator.Config{Size: res.Config.Size})
		if err != nil || x.Stats.Runs < 2 {
			continue
		}
		r := &recs[i]
		r.XTRPooled, r.XTRPooledLow, r.XTRPooledHigh = record.Mbps(x.XTR), record.Mbps(x.XTRLow), record.Mbps(x.XTRHigh)
		r.ABWPooled, r.ABWPooledLow, r.ABWPooledHigh = record.Mbps(x.ABW), record.Mbps(x.ABWLow), record.Mbps(x.ABWHigh)
		r.PooledRuns = x.Stats.Runs
	}
}

// comparable is the newest run of direction d and the runs before it back
// to the first whose capacity differs from its by more than PoolChange.
func (p *pool) comparable(d int) []estimator.CrossStats {
	runs := p.runs[d]
	newest := runs[len(runs)-1]
	if !newest.Valid() {
		return nil
	}
	dbc := newest.DBC / float64(newest.Trains)
	i := len(runs) - 1
	for ; i > 0; i-- {
		if st := runs[i-1]; st.Valid() && math.Abs(st.DBC/float64(st.Trains)-dbc) > PoolChange*dbc {
			break
		}
	}
	return runs[i:]
}
