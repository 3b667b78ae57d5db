package estimator

import (
	"fmt"
	"math"
)

// CrossStats are what the probe-gap form needs of paced trains: sums over
// the trains of their excess (e = Out − Gaps·Tn), input and output spans
// (seconds), and of the capacity they were paced at, weighted by trains.
// They add up, so the trains of several runs of a path can be pooled (Pool)
// and estimated as one sample: the windows are pooled, not the estimates
// averaged, and the interval narrows as the windows add up.
type CrossStats struct {
	Runs, Trains, Windows int
	E, In, Out            float64 // Σe, Σin, Σout, seconds
	EE, InIn, EIn         float64 // Σe², Σin², Σe·in
	DBC, Tn, DBCHigh      float64 // Σ over trains of each run's DBC (bit/s), Tn (s) and DBCHigh
	DBCLow                float64 // and DBCLow
	TnErr2                float64 // Σ over runs of TnErr², s²
	// OffPace counts the paced trains that were sent but not used because
	// they did not keep their pace (Config.OffPace): windows that were
	// open at the bottleneck and are not in the sums.
	OffPace int
	// Busy counts the trains whose first packet found a queue, of Timed
	// trains whose one-way delay was known (see busy).
	Busy, Timed int
	// Grain is Σ over the trains stamped in batches of their grain
	// (Sample.Grain), seconds: each span may be off by up to one.
	Grain float64
}

func (st *CrossStats) add(e, in, out float64, gaps int) {
	st.Trains++
	st.Windows += gaps
	st.E += e
	st.In += in
	st.Out += out
	st.EE += e * e
	st.InIn += in * in
	st.EIn += e * in
}

// Add pools o into st.
func (st *CrossStats) Add(o CrossStats) {
	st.Runs += o.Runs
	st.Trains += o.Trains
	st.Windows += o.Windows
	st.E += o.E
	st.In += o.In
	st.Out += o.Out
	st.EE += o.EE
	st.InIn += o.InIn
	st.EIn += o.EIn
	st.DBC += o.DBC
	st.Tn += o.Tn
	st.DBCHigh += o.DBCHigh
	st.DBCLow += o.DBCLow
	st.TnErr2 += o.TnErr2
	st.OffPace += o.OffPace
	st.Busy += o.Busy
	st.Timed += o.Timed
	st.Grain += o.Grain
}

// Valid says whether st could have come from EstimateCross: finite sums,
// positive spans and capacity, no negative count.
func (st *CrossStats) Valid() bool {
	for _, v := range []float64{st.E, st.In, st.Out, st.EE, st.InIn, st.EIn, st.DBC, st.Tn, st.DBCHigh, st.DBCLow, st.TnErr2, st.Grain} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return st.Runs > 0 && st.Trains > 0 && st.Windows >= st.Trains && st.In > 0 && st.Out > 0 && st.DBC > 0 && st.Tn > 0 &&
		st.EE >= 0 && st.InIn > 0 && st.TnErr2 >= 0 && st.OffPace >= 0 && st.Busy >= 0 && st.Timed >= st.Busy && st.Grain >= 0 && st.DBCLow >= 0
}

// Pool estimates XTR and ABW from the trains of several runs of one path
// (their Cross.Stats) as from one run's: the utilization is the ratio of
// the pooled excess to the pooled input spans, the capacity the runs'
// mean. StdErr and Confidence are left zero.
func Pool(runs []CrossStats, cfg Config) (Cross, error) {
	var st CrossStats
	for _, r := range runs {
		if r.Valid() {
			st.Add(r)
		}
	}
	if st.Runs == 0 {
		return Cross{}, fmt.Errorf("%w: no run to pool", ErrTooFew)
	}
	return st.estimate(cfg)
}

// estimate is the probe-gap form on sums: XTR = DBC·Σe/Σin, with its 95 %
// interval from the ratio estimator's variance across trains and the error
// of Tn, which moves both C and every excess:
// ABW = (L·8/ΣIn)·(ΣGaps − (ΣOut−ΣIn)/Tn).
//
// Excess comes in whole cross packets, so with few windows the spread seen
// can be far below the real one (no window caught anything, or every window
// caught one). As Agresti and Coull do for a proportion, the spread is
// computed with two more trains of the mean input span, one that caught
// nothing and one that caught a probe-sized packet; the estimate itself is
// left as it is. And the standard error is at least that of a Poisson
// count of the probe-sized packets the excess holds, plus one.
//
// Trains that were sent but left off pace are a selection: on a busy host
// the send that comes late is the one that waited for the CPU, and the
// other processes that held it may be what sends the cross traffic. Had
// they been used, whatever their windows held (nothing, or the bottleneck
// full), the estimate would lie between (1−s)·XTR and (1−s)·XTR + s·DBC,
// s being their share of the paced trains; the interval is widened to
// hold that, on top of the sampling error.
func (st CrossStats) estimate(cfg Config) (Cross, error) {
	x := Cross{Used: st.Trains, Windows: st.Windows, Stats: st}
	if st.Trains < cfg.minSamples() {
		return x, fmt.Errorf("%w: %d paced trains, need %d", ErrTooFew, st.Trains, cfg.minSamples())
	}
	n := float64(st.Trains)
	dbc, tn, dbcHigh := st.DBC/n, st.Tn/n, st.DBCHigh/n
	tnErr := math.Sqrt(st.TnErr2) / float64(st.Runs) // of the mean of the runs' Tn
	ratio := st.E / st.In
	x.XTR = clamp(dbc*ratio, 0, dbc)
	x.ABW = dbc - x.XTR
	meanIn := st.In / n
	// Σ(e − R·in)² from the sums, then the two pseudo-trains.
	ss := math.Max(0, st.EE-2*ratio*st.EIn+ratio*ratio*st.InIn)
	for _, e := range []float64{0, tn} {
		d := e - ratio*meanIn
		ss += d * d
	}
	seRatio := dbc * math.Sqrt(ss/((n+2)*(n+1))) / meanIn
	// The spread between a few trains can be far below the real one
	// when the windows held few cross packets: a run that stops early
	// because its first trains happened to catch little would report a
	// narrow interval that misses. The excess cannot vary less than a
	// count of the probe-sized packets it holds, plus one, would
	// (Poisson): a floor, not a model of the traffic.
	seRatio = math.Max(seRatio, dbc*tn*math.Sqrt(math.Max(0, st.E)/tn+1)/st.In)
	seTn := float64(cfg.Size) * 8 * math.Abs(st.Out-st.In) / (st.In * tn * tn) * tnErr
	// Spans stamped in batches may each be off by their grain, not at
	// random (coalescing delays a train's first stamp and its last by
	// different amounts): a bias the interval holds.
	half := z95(st.Trains-1)*math.Hypot(seRatio, seTn) + dbc*st.Grain/st.In
	hi := math.Max(dbcHigh, dbc)
	// What the same trains read at either end of the capacity's interval
	// (which holds more than Tn's sampling error: grain, and cross
	// traffic inside back-to-back pairs):
	// ABW = C·(1 − ΣOut/ΣIn) + L·8·ΣGaps/ΣIn at C = DBCLow and DBCHigh,
	// against its reading at DBC. The capacity's error and the windows'
	// sampling error are independent, and each interval holds its truth
	// 95 % of the time: they add in quadrature. Taking the readings at
	// the capacity's ends without the sampling error (as before) made an
	// interval that missed when both erred the same way: on the emulated
	// 200 Mbit/s jumbo path, DBC 162 (161–198) against 184, and the
	// windows' XTR low, gave ABW 92.0–143.4 against a truth of 86.4 (CI,
	// issue 26).
	var abwDown, abwUp, xtrDown, xtrUp float64 // how far the capacity's ends move ABW and XTR down and up
	if dbcLow := st.DBCLow / n; dbcLow > 0 {
		reading := func(c float64) float64 {
			return clamp(c*(1-st.Out/st.In)+float64(cfg.Size)*8*float64(st.Windows)/st.In, 0, c)
		}
		at := reading(dbc)
		for _, c := range []float64{dbcLow, dbcHigh} {
			d := reading(c) - at
			dx := (c - dbc) - d // XTR = C − ABW
			abwDown, abwUp = math.Max(abwDown, -d), math.Max(abwUp, d)
			xtrDown, xtrUp = math.Max(xtrDown, -dx), math.Max(xtrUp, dx)
		}
	}
	unseen := float64(st.OffPace) / float64(st.OffPace+st.Trains)
	x.ABWLow = clamp(x.ABW-math.Hypot(half, abwDown)-unseen*(dbc-x.XTR), 0, hi)
	x.ABWHigh = clamp(x.ABW+math.Hypot(half, abwUp)+unseen*x.XTR, 0, hi)
	x.XTRLow = clamp(x.XTR-math.Hypot(half, xtrDown)-unseen*x.XTR, 0, hi)
	x.XTRHigh = clamp(x.XTR+math.Hypot(half, xtrUp)+unseen*(dbc-x.XTR), 0, hi)
	// The second reading: the share of trains that found a queue (busy),
	// as ABW = DBC·(1 − share). Its upper end is a bound that holds; its
	// lower end is not (a short wait can go unseen).
	//
	// When even the upper end of that reading (from the share's 99 %
	// lower end: a bound alone must hold in 95 % of runs, not on average)
	// is below the windows' interval, the windows missed what the queue
	// shows (cross traffic in bursts shorter than the gaps between
	// trains): only that upper bound is left.
	//
	// When trains found a queue and the reading's lower end (from the
	// share's 95 % upper end) is below the windows' interval, the interval
	// is widened down to it.
	//
	// A pause of either host delays a stamp as a queue would (a virtual
	// CPU taken away), and pooling runs does not average it out while it
	// narrows the windows' interval: the share counts only the trains
	// beyond what pauses make, pauseShare of them and at least one. So a
	// run on which one train found a queue is not widened for bursts that
	// every other train could have missed (at 20 % of the time, 21 trains
	// miss them all but one 6 % of the time).
	if busy := st.Busy - max(1, int(math.Ceil(pauseShare*float64(st.Timed)))); st.Timed > 0 && busy > 0 {
		b := float64(busy) / float64(st.Timed)
		_, up := wilson(busy, st.Timed, z95(1<<20))
		lo, _ := wilson(busy, st.Timed, z99) // a bound alone must hold in 95 % of runs, not on average
		switch {
		case (1-lo)*dbc < x.ABWLow:
			x.Bursty = true
			x.XTR = b * dbc
			x.ABW = dbc - x.XTR
			x.XTRLow, x.XTRHigh = lo*dbc, hi
			x.ABWLow, x.ABWHigh = 0, (1-lo)*dbc
		case (1-up)*dbc < x.ABWLow:
			x.XTRHigh = math.Max(x.XTRHigh, up*dbc)
			x.ABWLow = (1 - up) * dbc
		}
	}
	return x, nil
}

// pauseShare is the share of trains whose first stamp a pause of a host,
// not a queue, may have delayed: the simulator's virtual machines are
// paused 2.5 % of the time (package lab/sim), and on the emulated idle
// path here 1 train of 31 found a "queue" (docs/accuracy.md).
const pauseShare = 0.03

// z99 is the two-sided 99 % quantile of the normal distribution.
const z99 = 2.575829

// wilson is Wilson's score interval for a proportion of k successes in n
// trials (n > 0), at the normal quantile z.
func wilson(k, n int, z float64) (lo, hi float64) {
	p, nn := float64(k)/float64(n), float64(n)
	centre := p + z*z/(2*nn)
	spread := z * math.Sqrt(p*(1-p)/nn+z*z/(4*nn*nn))
	return math.Max(0, (centre-spread)/(1+z*z/nn)), math.Min(1, (centre+spread)/(1+z*z/nn))
}
