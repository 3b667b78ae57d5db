// Package estimator turns dispersion samples into capacity (DBC), cross
// traffic (XTR) and available bandwidth (ABW). It is pure: no clocks, no I/O,
// no state between calls, and no allocation per sample.
//
// # Input
//
// A Sample is one train of n packets (n = 2 for a pair) of L bytes at the IP
// layer: In is the time from its first to its last packet as they left the
// sender (transmit timestamps), Out the same span as they arrived after the
// path, and Gaps = n−1. Clean/CleanGaps is the mean of the output gaps in
// the train's own dominating state (see Sample).
//
// # Capacity: the dominating state
//
// Back-to-back trains leave the bottleneck spaced by the time it needs for one
// probe, Tn = L/C. Their per-gap output dispersions cluster around Tn (the
// dominating state); larger values are loaded states (something slipped in
// between) and smaller ones are compression after the bottleneck or timestamp
// noise. Each train offers one value, the mean of its gaps in its dominating
// state (averaging over a train smooths timestamp and timer noise, and
// leaving out its loaded gaps keeps cross traffic that slipped in while the
// train entered the bottleneck out of it). Capacity finds the densest
// cluster of these values: every sample is taken as the
// centre of a window ±w, with w = max(2·noise, 2 %·median), and the window
// holding most samples wins (the lowest on ties), unless a state below it,
// clear of it by w, holds at least a quarter of the samples: then the
// lowest such state does (when cross packets come more often than the
// probes' input gap, "one packet in between" can outnumber the state that
// measures the link). δ_dom is the median of the samples in it:
//
//	DBC = L·8/δ_dom  (bit/s)
//
// # Cross traffic: probe-gap form (default)
//
// At a FIFO bottleneck, the only cross traffic that lands between two probes
// is what arrives between their arrivals. If the second probe arrives before
// the first has left (Δin ≤ Tn, or a queue is already there),
//
//	Δout = Tn + X·Δin/C   so   X = C·(Δout − Tn)/Δin.
//
// Back-to-back probes (Δin ≈ 0) therefore see almost no cross traffic. The
// second phase of a run paces probes at Δin ≈ Tn, the widest window that
// still keeps the second probe queued behind the first, and pools every gap:
//
//	XTR = C·Σ(Out − Gaps·Tn) / ΣIn,   ABW = C − XTR,
//
// clamped to [0, C]. Assumptions: FIFO bottleneck, the bottleneck is the link
// that dominates both phases, cross traffic roughly stationary over the run,
// and Δin measured (transmit timestamps), not intended.
//
// # Cross traffic: ABwE's published reduction
//
// Navratil & Cottrell (PAM 2003): over the decision interval, each sample's
// excess dispersion Tx = Δout − Tn counts for loaded samples and 0 for the
// dominating ones;
//
//	q = mean(Tx)/Tn,   u = q/(1+q),   XTR = u·DBC,   ABW = DBC − XTR.
//
// u equals X/C only when probes arrive as fast as they leave (Δin = Δout).
// Applied to back-to-back pairs it sees little of the cross traffic; abing
// computes it for comparison (see the README's measurements).
//
// # Confidence and refusals
//
// Capacity is refused when fewer than Config.MinSamples usable samples
// remain, when the dominating cluster holds fewer than 3 of them, when
// δ_dom is within 4× the stamps' error per gap (the noise, or a batched
// train's grain, over its gaps: ErrBelowNoise), or when the samples' input
// gap is more than half δ_dom (ErrNotBackToBack). The last two still bound
// the capacity from below (Capacity.Min). Its confidence is
//
//	(samples in cluster / usable) × min(1, usable/10) × min(1, δ_dom/(10·noise)).
//
// Its interval adds, as biases, the grain per gap of batched trains (or
// Config.Bias, user-space stamps' error) and, on the high side, the input
// gap.
//
// The interval of XTR and ABW is the sampling error's (never below a
// Poisson count's of the excess, plus one packet), and what the trains
// read at either end of DBC's interval, and their grain, widened for the
// paced trains that were sent but left off pace (Config.OffPace): whatever
// their windows held, XTR with them would lie between (1−s)·XTR and
// (1−s)·XTR + s·DBC, s being their share. Then the second reading of the
// load, the share of trains that found a queue (busy), widens it or, when
// it contradicts the windows, leaves only an upper bound (Cross.Bursty).
//
// Cross traffic is refused without a capacity or with fewer than
// Config.MinSamples paced samples; its confidence is
// max(0, 1 − 2·SE/C) × min(1, windows/20), SE being the standard error of
// XTR across trains.
package estimator

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Sample is one train: first-to-last spans as sent and as received, and the
// part of the output span in the train's dominating state.
type Sample struct {
	In   float64 // seconds
	Out  float64 // seconds
	Gaps int     // packets − 1
	// Clean is the sum of the output gaps that are at most 1.5 times the
	// train's median output gap, CleanGaps how many there are. A cross
	// packet that slipped into a back-to-back train while it was entering
	// the bottleneck makes its gap a loaded state; leaving it out keeps the
	// capacity estimate of a train to the gaps that measure the link.
	Clean     float64
	CleanGaps int
	// Start is when the first packet left, by the sender's clock, and
	// Delay its one-way delay, receive stamp less transmit stamp, by the
	// two hosts' clocks (so offset by their difference), seconds; Timed
	// says they are known. A train that finds a queue at the bottleneck
	// shows it as a longer delay (see Cross.Busy).
	Start, Delay float64
	Timed        bool
	// Grain, for a back-to-back train whose receiver stamped it in
	// batches (some gaps at or below the stamps' noise), is its largest
	// output gap: how far interrupt coalescing can move one stamp. Its
	// capacity is then read from its span only.
	Grain float64
}

// perGapError is how far the stamps can move s's per-gap dispersion: the
// larger of the noise and its grain, over its gaps.
func (s Sample) perGapError(noise float64) float64 {
	return max(noise, s.Grain) / float64(max(1, s.Gaps))
}

// capacityGap is the per-gap dispersion a sample offers for capacity.
func (s Sample) capacityGap() float64 {
	if s.CleanGaps > 0 {
		return s.Clean / float64(s.CleanGaps)
	}
	if s.Gaps > 0 {
		return s.Out / float64(s.Gaps)
	}
	return 0
}

// Config holds what the estimator needs to know about the probes.
type Config struct {
	Size  int     // probe size at the IP layer, bytes
	Noise float64 // timestamp noise, seconds
	// Bias, seconds, is how far the stamps can move each one in a way
	// that does not average out across samples, as a batched train's
	// grain does: user-space stamps, taken when the receiving loop gets
	// to each packet, late by its scheduling and its work on the packets
	// before. It widens the intervals as the grain does.
	Bias       float64
	MinSamples int // fewest usable samples for an estimate; 0 means 5
	// OffPace is how many paced trains were sent but rejected as off
	// pace (EstimateCross widens its intervals for them).
	OffPace int
	// Unpaced are the run's back-to-back samples: EstimateCross reads
	// their one-way delays with the paced ones' (busy), and nothing else.
	Unpaced []Sample
}

func (c Config) minSamples() int {
	if c.MinSamples > 0 {
		return c.MinSamples
	}
	return 5
}

// Reasons for refusing an estimate.
var (
	ErrTooFew     = errors.New("too few usable samples")
	ErrNoCluster  = errors.New("no dominating dispersion state")
	ErrBelowNoise = errors.New("dispersion below the timestamp noise floor")
	ErrNoCapacity = errors.New("no capacity estimate to reference")
	ErrConfig     = errors.New("bad estimator configuration")
	// ErrNotBackToBack: the back-to-back trains left the sender more
	// than half as far apart as the path spaced them, so cross traffic
	// fell between their packets as it does between paced ones.
	ErrNotBackToBack = errors.New("back-to-back trains left too far apart to measure the path")
)

// Capacity is the DBC estimate.
type Capacity struct {
	DBC        float64 // bit/s
	Tn         float64 // δ_dom, seconds per probe at the bottleneck
	Upper      float64 // upper edge of the dominating cluster, seconds
	Used       int     // samples considered
	InCluster  int     // samples in the dominating cluster
	Spread     float64 // median absolute deviation in the cluster / δ_dom
	Confidence float64 // 0..1
	// TnErr is the standard error of Tn, seconds; DBCLow and DBCHigh the
	// 95 % interval of DBC that follows from it.
	TnErr           float64
	DBCLow, DBCHigh float64
	// Min, bit/s, is what a refused estimate (ErrBelowNoise,
	// ErrNotBackToBack) still says: the capacity is at least this. A
	// queued probe leaves the bottleneck at least Tn after the one before
	// it, so L·8 over a gap the path produced (plus the timestamp noise)
	// is below the capacity.
	Min float64
}

// EstimateCapacity finds the dominating state of back-to-back samples.
// scratch is reused to avoid allocation; pass nil to let it allocate once.
func EstimateCapacity(samples []Sample, cfg Config, scratch []float64) (Capacity, []float64, error) {
	if cfg.Size <= 0 || cfg.Noise <= 0 {
		return Capacity{}, scratch, fmt.Errorf("%w: size %d, noise %g", ErrConfig, cfg.Size, cfg.Noise)
	}
	g := scratch[:0]
	for _, s := range samples {
		if v := s.capacityGap(); v > 0 {
			g = append(g, v)
		}
	}
	c := Capacity{Used: len(g)}
	if len(g) < cfg.minSamples() {
		return c, g, fmt.Errorf("%w: %d, need %d", ErrTooFew, len(g), cfg.minSamples())
	}
	slices.Sort(g)
	// The stamps' error per gap: the noise for pairs, less for long
	// trains, whose spans it divides over many gaps; and for trains
	// stamped in batches, their grain over their gaps, which does not
	// average out across trains (coalescing delays the first stamp and the
	// last by different amounts), so it widens the interval as a bias.
	noise, bias := cfg.Noise, 0.0
	{
		var e, b [maxBusySamples]float64
		ne, nb := 0, 0
		for _, s := range samples {
			if s.capacityGap() > 0 && ne < len(e) {
				e[ne] = s.perGapError(cfg.Noise)
				ne++
				if g := max(s.Grain, cfg.Bias); g > 0 {
					b[nb] = g / float64(max(1, s.Gaps))
					nb++
				}
			}
		}
		noise = Median(e[:ne])
		if nb > 0 {
			bias = Median(b[:nb])
		}
	}
	w := max(2*noise, 0.02*g[len(g)/2])
	bestLo, bestHi := densest(g, w)
	// A state below the densest one, clear of it and holding a quarter
	// of the samples, is the dominating one: back-to-back trains whose
	// input gaps are wide enough to let cross packets in often (fast
	// paths, small cross packets at high load) leave more of them in the
	// loaded state "one packet in between" than in the state that
	// measures the link. Compression after the bottleneck can only form
	// such a state when a later, faster link is queued most of the time.
	need := max(3, (len(g)+3)/4)
	window := func(i int) (int, int) { // the samples within w of g[i]
		l, h := i, i
		for l > 0 && g[l-1] >= g[i]-w {
			l--
		}
		for h+1 < len(g) && g[h+1] <= g[i]+w {
			h++
		}
		return l, h
	}
	for i := 0; i < len(g) && g[i]+w < g[bestLo]; i++ {
		if l, h := window(i); h-l+1 < need || g[h]+w >= g[bestLo] {
			continue
		}
		// The lowest such state: its densest window.
		lowLo, lowHi := window(i)
		for j := i + 1; j < len(g) && g[j] <= g[i]+w; j++ {
			if l, h := window(j); h-l > lowHi-lowLo && g[h]+w < g[bestLo] {
				lowLo, lowHi = l, h
			}
		}
		bestLo, bestHi = lowLo, lowHi
		break
	}
	cl := g[bestLo : bestHi+1]
	c.InCluster = len(cl)
	if len(cl) < 3 {
		return c, g, fmt.Errorf("%w: densest cluster holds %d of %d samples", ErrNoCluster, len(cl), len(g))
	}
	c.Tn = Median(cl)
	c.Upper = cl[len(cl)-1]
	if c.Tn < 4*noise {
		// The margin is the refusal's own threshold: a dominating state
		// this close to the noise may also be compression by a later,
		// faster link that is queued most of the time (its Tn, not the
		// bottleneck's; at 1 Gbit/s behind a 2 Gbit/s link at 80 %, 6 µs
		// for 12, and with 2·noise as the margin the bound read 1.1–1.2
		// Gbit/s).
		c.Min = float64(cfg.Size) * 8 / (c.Tn + 4*noise)
		return c, g, fmt.Errorf("%w: dispersion %.2f µs, noise %.2f µs", ErrBelowNoise, c.Tn*1e6, noise*1e6)
	}
	in := inputGap(samples)
	if in > c.Tn/2 {
		c.Min = float64(cfg.Size) * 8 / (g[len(g)/2] + noise)
		return c, g, fmt.Errorf("%w: %.1f µs apart as sent, %.1f µs as the path spaced them", ErrNotBackToBack, in*1e6, c.Tn*1e6)
	}
	c.DBC = float64(cfg.Size) * 8 / c.Tn
	var dev float64
	for _, x := range cl {
		dev += math.Abs(x - c.Tn)
	}
	c.Spread = dev / float64(len(cl)) / c.Tn
	c.TnErr = tnErr(cl, c.Tn, noise)
	c.DBCLow = float64(cfg.Size) * 8 / (c.Tn + z95(len(cl)-1)*c.TnErr + bias)
	// Cross traffic that reached the bottleneck between the two packets
	// of every pair (fast paths, small packets at high load) would put
	// the dominating state above Tn by at most the input gap: the interval
	// reaches that far up.
	c.DBCHigh = float64(cfg.Size) * 8 / max(c.Tn-z95(len(cl)-1)*c.TnErr-bias-in, c.Tn/2)
	c.Confidence = float64(len(cl)) / float64(len(g)) *
		math.Min(1, float64(len(g))/10) * math.Min(1, c.Tn/(10*noise))
	return c, g, nil
}

// inputGap is the median input gap per sample (In over Gaps) of the
// samples whose input span is known, seconds; 0 when none is.
func inputGap(samples []Sample) float64 {
	var in [maxBusySamples]float64
	n := 0
	for _, s := range samples {
		if s.In > 0 && s.Gaps > 0 && n < len(in) {
			in[n] = s.In / float64(s.Gaps)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return Median(in[:n])
}

// tnErr is the standard error of the median of the cluster cl (sorted):
// 1.2533·σ/√n for σ from the median absolute deviation, and never below
// the timestamp noise over √n (a cluster of identical values is not
// exact: its stamps are not).
func tnErr(cl []float64, tn, noise float64) float64 {
	dev := make([]float64, len(cl))
	for i, x := range cl {
		dev[i] = math.Abs(x - tn)
	}
	sigma := 1.4826 * Median(dev)
	n := math.Sqrt(float64(len(cl)))
	return max(1.2533*sigma/n, noise/n)
}

// z95 is the two-sided 95 % quantile of Student's t with df degrees of
// freedom (Cornish-Fisher expansion about the normal's 1.96; within 1 % of
// the table from 3 degrees up).
func z95(df int) float64 {
	const z = 1.959964
	if df < 1 {
		df = 1
	}
	d := float64(df)
	return z + (z*z*z+z)/(4*d) + (5*z*z*z*z*z+16*z*z*z+3*z)/(96*d*d)
}

// Median sorts s in place and returns its middle value, or the mean of the
// two middle ones; NaN when s is empty. It is the project's one median.
func Median(s []float64) float64 {
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Cross is a cross-traffic estimate.
type Cross struct {
	XTR        float64 // bit/s
	ABW        float64 // bit/s
	Used       int     // trains used
	Windows    int     // gaps used
	StdErr     float64 // bit/s, across trains (probe-gap form only)
	Confidence float64 // 0..1
	// The 95 % intervals of XTR and ABW (probe-gap form only): the ratio
	// estimator's sampling error across trains and the error of Tn.
	XTRLow, XTRHigh float64
	ABWLow, ABWHigh float64
	// Stats are the sums the estimate came from (probe-gap form only),
	// for pooling runs (Pool).
	Stats CrossStats
	// Bursty says that more trains found a queue than the windows'
	// cross traffic allows: XTR and ABW are then read from the busy
	// share, and only ABWHigh (and XTRLow) are bounds that hold.
	Bursty bool
}

// EstimateCross applies the probe-gap form to paced samples.
func EstimateCross(paced []Sample, c Capacity, cfg Config) (Cross, error) {
	if c.DBC <= 0 || c.Tn <= 0 {
		return Cross{}, ErrNoCapacity
	}
	st := CrossStats{Runs: 1, OffPace: max(0, cfg.OffPace)}
	var sumX, sumX2 float64
	for _, s := range paced {
		if s.Gaps <= 0 || s.In <= 0 || s.Out <= 0 {
			continue
		}
		e := s.Out - float64(s.Gaps)*c.Tn
		st.add(e, s.In, s.Out, s.Gaps)
		st.Grain += max(s.Grain, cfg.Bias)
		xi := c.DBC * e / s.In
		sumX += xi
		sumX2 += xi * xi
	}
	st.Busy, st.Timed = busy(paced, c, cfg)
	st.DBC, st.Tn, st.DBCHigh = c.DBC*float64(st.Trains), c.Tn*float64(st.Trains), c.DBCHigh*float64(st.Trains)
	st.DBCLow = c.DBCLow * float64(st.Trains)
	st.TnErr2 = c.TnErr * c.TnErr
	x, err := st.estimate(cfg)
	if err != nil {
		return x, err
	}
	n := float64(x.Used)
	mean := sumX / n
	if v := (sumX2/n - mean*mean) * n / (n - 1); v > 0 {
		x.StdErr = math.Sqrt(v / n)
	}
	x.Confidence = math.Max(0, 1-2*x.StdErr/c.DBC) * math.Min(1, float64(x.Windows)/20)
	return x, nil
}

// skewRate bounds the rate difference of two hosts' clocks for busy: 50
// ppm, an undisciplined quartz's tolerance (NTP holds clocks to 15 ppm,
// RFC 5905's PHI), so that a drift of their offset over a run is not
// taken for a queue.
const skewRate = 50e-6

// busy counts the samples of a run, back to back (cfg.Unpaced) and paced,
// whose first packet found a queue (busy), of those whose one-way delay is
// known (timed): a delay longer than the least of them by more than θ, the
// largest of four times the timestamp noise, half the bottleneck's time
// per probe, what the clocks' offset can drift over the samples' span
// (skewRate), and four times the spread of the three lowest delays (which
// is how far interrupt coalescing and scheduling move a stamp when no
// queue is there; a θ too large only ever counts fewer trains busy). A train's first
// packet arrives at a random time, independently of the cross traffic,
// so the busy share is the share of time the path held a queue longer
// than θ (PASTA): at most its utilization, whatever the traffic's shape.
func busy(paced []Sample, c Capacity, cfg Config) (busy, timed int) {
	var d [maxBusySamples]float64
	first, last := math.Inf(1), math.Inf(-1)
	for _, set := range [][]Sample{cfg.Unpaced, paced} {
		for _, s := range set {
			if !s.Timed || s.Gaps <= 0 || s.Out <= 0 || s.Grain > 0 || timed == len(d) {
				continue // a train stamped in batches: its first stamp may be late by its grain
			}
			d[timed] = s.Delay
			timed++
			first, last = math.Min(first, s.Start), math.Max(last, s.Start)
		}
	}
	if timed < cfg.minSamples() {
		return 0, 0
	}
	v := d[:timed]
	slices.Sort(v)
	theta := max(4*cfg.Noise, c.Tn/2, skewRate*(last-first), 4*(v[2]-v[0]))
	for _, x := range v {
		if x-v[0] > theta {
			busy++
		}
	}
	return busy, timed
}

// maxBusySamples bounds the samples busy looks at (and its stack use).
const maxBusySamples = 4096

// EstimateABwE applies ABwE's published reduction q = mean(Tx)/Tn,
// u = q/(1+q) to samples (in abing, the back-to-back ones, as published).
func EstimateABwE(samples []Sample, c Capacity) (Cross, error) {
	if c.DBC <= 0 || c.Tn <= 0 {
		return Cross{}, ErrNoCapacity
	}
	var sumTx float64
	var x Cross
	for _, s := range samples {
		if s.Gaps <= 0 || s.Out <= 0 {
			continue
		}
		g := s.Out / float64(s.Gaps)
		if g > c.Upper {
			sumTx += g - c.Tn
		}
		x.Used++
		x.Windows += s.Gaps
	}
	if x.Used == 0 {
		return x, fmt.Errorf("%w: no samples", ErrTooFew)
	}
	q := sumTx / float64(x.Used) / c.Tn
	u := q / (1 + q)
	x.XTR = u * c.DBC
	x.ABW = c.DBC - x.XTR
	x.Confidence = c.Confidence
	return x, nil
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// densest is the densest window of half-width w centred on a sample of
// sorted g, as the indices of its first and last samples; the lowest wins
// ties.
func densest(g []float64, w float64) (bestLo, bestHi int) {
	best, lo, hi := 0, 0, 0
	for i, x := range g {
		for g[lo] < x-w {
			lo++
		}
		if hi < i {
			hi = i
		}
		for hi+1 < len(g) && g[hi+1] <= x+w {
			hi++
		}
		if n := hi - lo + 1; n > best {
			best, bestLo, bestHi = n, lo, hi
		}
	}
	return bestLo, bestHi
}

// GapNoise reads the timestamp noise of a clock nothing else describes
// (a standard reflector's receive stamps) from the gaps between
// consecutive packets of back-to-back trains, seconds: the spread (1.4826
// times the median absolute deviation) of the gaps within the densest
// window of half-width 2·hi or 2 % of the median gap, as the estimator's
// own window would be with noise hi. The path's own jitter and cross
// packets in the window only widen it, so the figure errs towards more
// noise. It is never below lo (the other end's stamps, the stamps'
// resolution) nor above hi (what such stamps are assumed to be without
// evidence), and it is hi with fewer than MinNoiseGaps gaps to read.
func GapNoise(gaps []float64, lo, hi float64) float64 {
	if len(gaps) < MinNoiseGaps {
		return hi
	}
	g := slices.Clone(gaps)
	slices.Sort(g)
	lo0, hi0 := densest(g, max(2*hi, 0.02*g[len(g)/2]))
	cl := g[lo0 : hi0+1]
	m := Median(slices.Clone(cl))
	dev := make([]float64, len(cl))
	for i, x := range cl {
		dev[i] = math.Abs(x - m)
	}
	return clamp(1.4826*Median(dev), lo, hi)
}

// MinNoiseGaps is the least number of gaps GapNoise reads a noise from.
const MinNoiseGaps = 16
