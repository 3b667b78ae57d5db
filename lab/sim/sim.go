// Package sim is abing's packet-level simulator: a run of abing's probes
// through one to three FIFO hops with cross traffic, with the timestamps a
// sender and a reflector would take, turned into samples by the code the
// sender uses (dispersion.TrainSample, with measure's pacing rules) and into
// estimates by the real estimator. Truth is exact: the capacity of the
// narrow hop, and the cross traffic each hop really carried while the paced
// phase crossed it.
//
// It exists to test the method at any rate, which the emulated links of a
// small virtual machine cannot (they are steady only up to about 20 Mbit/s),
// and to separate what the estimator does from what the host does to it
// (timestamp noise, interrupt coalescing, late sends, sends delayed by the
// very cross traffic being measured).
//
// Model. Hop h is a FIFO queue with no loss that serves at Rate bit/s:
// a packet that arrives at a and finds the queue busy until b leaves at
// max(a, b) + size·8/Rate (Lindley's recursion, exact for FIFO). Cross
// traffic enters each hop on its own and leaves after it. The first hop
// is the sender's own link, without cross traffic. Only the forward
// direction is simulated: the reverse one is the same method with the
// roles of the two hosts exchanged. Phase 2 is planned from phase 1's
// estimate, as measure does, and runs against fresh cross traffic of the
// same process (the phases are many train intervals apart).
package sim

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/estimator"
	"github.com/abing-net/abing/measure"
)

// Hop is one FIFO link.
type Hop struct {
	Rate  float64 // bit/s
	Cross Traffic
}

// Probe is how the run probes, as abing measure's flags say.
type Probe struct {
	Size     int // IP bytes
	TrainLen int
	Trains   int // per phase; with Precision, per round of phase 2
	// Precision, when set, makes phase 2 adaptive: rounds of Round paced
	// trains (Trains when 0) until the ABW interval's half-width is at most
	// Precision·DBC, or another round would take the probe bytes of the
	// direction (both phases) past MaxBytes.
	Precision float64
	MaxBytes  int
	Round     int
	// CapTrainLen, when set, is phase 1's train length (TrainLen is then
	// phase 2's).
	CapTrainLen int
}

// Scenario is one simulated run.
type Scenario struct {
	Hops  []Hop // Hops[0] is the sender's link (its Cross is ignored)
	Probe Probe
	Host  Host
	Seed  uint64
}

// Truth is what the path really was during the paced phase.
type Truth struct {
	C   float64 // narrow hop's rate, bit/s
	XTR float64 // C − ABW
	ABW float64 // min over hops of rate − cross traffic carried
}

// Result is a run's estimates next to the truth.
type Result struct {
	Truth    Truth
	Capacity estimator.Capacity
	CapErr   error
	DBCMin   float64 // bit/s: with CapErr, the capacity is at least this (0: nothing said)
	Cross    estimator.Cross
	CrossErr error
	Rejects  dispersion.Rejects
	Packets  int           // probes sent
	Duration time.Duration // simulated time of the two phases
}

// probe is one probe packet on its way.
type probe struct {
	send float64 // handed to the kernel (s)
	at   float64 // arrival at the current hop, then at the receiver
	tx   int64   // transmit stamp, ns
	rx   int64   // receive stamp, ns
}

// Run simulates sc.
func Run(sc Scenario) Result {
	rng := rand.New(rand.NewPCG(sc.Seed, 0x5eed))
	var res Result
	p := sc.Probe
	narrow := sc.Hops[sc.narrow()].Rate
	res.Truth.C = narrow
	noise := sc.Host.Clock.source().Noise()
	ecfg := estimator.Config{Size: p.Size, Noise: noise}
	capLen := p.TrainLen
	if p.CapTrainLen > 0 {
		capLen = p.CapTrainLen
	}
	cfg := measure.Defaults()
	cfg.TrainLen, cfg.Size, cfg.Trains, cfg.Precision = capLen, p.Size, p.Trains, p.Precision
	// The first train tells measure how long a train occupies the
	// bottleneck; here that is known.
	interval := measure.TrainInterval(cfg, float64(p.Size)*8/narrow).Seconds()

	// Phase 1: back to back; then capacity trains when the pairs could not
	// resolve the path, as measure does.
	samples := sc.capacity(rng, &res, p.Trains, capLen, interval, ecfg)
	extra := 0 // packets of capacity trains, which measure does not count against the budget
	if count, n := measure.CapacityTrains(cfg, &measure.Direction{CapErr: res.CapErr, Rejects: res.Rejects}); count > 0 {
		c := ecfg
		c.MinSamples = measure.CapacityTrainsUsable
		samples = sc.capacity(rng, &res, count, n, interval, c)
		extra = count * n
	}
	if res.CapErr != nil {
		return res
	}
	// Phase 2: paced at PaceFraction of the estimated Tn.
	gap := measure.PaceGap(measure.PaceTn(res.Capacity, p.Size), p.TrainLen)
	pace := measure.PaceOf(gap.Seconds() / measure.PaceFraction)
	cfg.TrainLen = p.TrainLen
	interval = measure.TrainInterval(cfg, res.Capacity.Tn).Seconds()
	count := p.Trains
	if p.Precision > 0 && p.Round > 0 {
		count = p.Round
	}
	var abwTime, timeSum float64 // the truth, weighted by each round's time
	ecfg.Unpaced = samples
	samples = nil
	round := count * p.TrainLen
	for {
		paced, truth, dur := sc.phase(rng, count, p.TrainLen, gap.Seconds(), interval, &res.Truth)
		abwTime += truth.ABW * dur
		timeSum += dur
		res.Duration += time.Duration(dur * 1e9)
		res.Packets += round
		accepted, _ := res.samples(paced, pace, noise)
		samples = append(samples, accepted...)
		ecfg.OffPace = res.Rejects[dispersion.OffPace] // as the live run counts them (package measure)
		res.Cross, res.CrossErr = estimator.EstimateCross(samples, res.Capacity, ecfg)
		if p.Precision <= 0 || (res.CrossErr == nil && (res.Cross.ABWHigh-res.Cross.ABWLow)/2 <= p.Precision*res.Capacity.DBC) ||
			(res.Packets-extra+round)*p.Size > p.MaxBytes {
			break
		}
	}
	res.Truth.ABW = abwTime / timeSum
	res.Truth.XTR = res.Truth.C - res.Truth.ABW
	return res
}

// capacity sends count back-to-back trains of n packets, estimates the
// capacity from them into res, with the sender's rules (measure.Capacity),
// and returns their accepted samples.
func (sc *Scenario) capacity(rng *rand.Rand, res *Result, count, n int, interval float64, ecfg estimator.Config) []estimator.Sample {
	trains, _, dur := sc.phase(rng, count, n, 0, interval, nil)
	samples, late := res.samples(trains, dispersion.Pace{}, ecfg.Noise)
	d := measure.Direction{Capacity: res.Capacity, DBCMin: res.DBCMin, CapErr: res.CapErr} // the pairs', after them
	d.Stronger(measure.Capacity(samples, late, len(late), count, ecfg))
	res.Capacity, res.DBCMin, res.CapErr = d.Capacity, d.DBCMin, d.CapErr
	res.Packets += count * n
	res.Duration += time.Duration(dur * 1e9)
	return samples
}

// narrow is the index of the slowest hop after the sender's own link (the
// first of them on a tie): the bottleneck, where the correlated send
// delays' generator injects.
func (sc *Scenario) narrow() int {
	n := 1
	for h := 2; h < len(sc.Hops); h++ {
		if sc.Hops[h].Rate < sc.Hops[n].Rate {
			n = h
		}
	}
	return n
}

// samples are the trains' samples by the sender's own code, accepted and
// (back-to-back trains that left too slowly) late, their rejections counted
// into res.
func (res *Result) samples(trains [][]probe, pace dispersion.Pace, noise float64) (accepted, late []estimator.Sample) {
	for _, tr := range trains {
		s, why := sample(tr, pace, noise)
		res.Rejects.Add(why)
		switch why {
		case dispersion.Accepted:
			accepted = append(accepted, s)
		case dispersion.LeftLate:
			late = append(late, s)
		}
	}
	return accepted, late
}

// sample is a train's sample by the sender's own code.
func sample(tr []probe, pace dispersion.Pace, noise float64) (estimator.Sample, dispersion.Reject) {
	n := len(tr)
	tx, rx, order := make([]int64, n), make([]int64, n), make([]int, n)
	for i, pk := range tr {
		tx[i], rx[i], order[i] = pk.tx, pk.rx, i // FIFO, no loss: in order
	}
	return dispersion.TrainSample(tx, rx, order, pace, noise)
}

// arrivals recycles the cross-traffic buffers of phases: at 10 Gbit/s a
// phase has hundreds of thousands of arrivals.
var arrivals = sync.Pool{New: func() any { return new([]arrival) }}

// warmup is how long cross traffic runs before the first probe, so that
// queues are in their stationary state; origin is when the first probe is
// sent (a stamp of 0 would mean "none" to the sender's code).
const (
	warmup = 0.05
	origin = 1.0
)

// phase sends count trains of n probes, each back to back (gap 0) or
// paced at gap seconds, starting on average interval apart (uniform 0.5 to 1.5, as
// measure does), through every hop. With truth set it measures the cross
// traffic each hop carried from the first send to the last arrival.
func (sc *Scenario) phase(rng *rand.Rand, count, n int, gap, interval float64, truth *Truth) ([][]probe, Truth, float64) {
	p, host := sc.Probe, sc.Host
	// Intended send times.
	trains := make([][]probe, count)
	at := origin
	for i := range trains {
		tr := make([]probe, n)
		for k := range tr {
			tr[k].send = at + float64(k)*gap
		}
		trains[i] = tr
		at += (0.5 + rng.Float64()) * interval
	}
	// Cross traffic runs until the last train has long arrived: a train's
	// time at the narrow hop, many times over.
	bottleneck := sc.narrow()
	end := at + 0.05 + 100*float64(n*p.Size)*8/sc.Hops[bottleneck].Rate
	// Cross traffic of every hop over the whole phase.
	cross := make([][]arrival, len(sc.Hops))
	for h := 1; h < len(sc.Hops); h++ {
		buf := arrivals.Get().(*[]arrival)
		defer arrivals.Put(buf)
		*buf = sc.Hops[h].Cross.generate(rng, sc.Hops[h].Rate, origin-warmup, end, *buf)
		cross[h] = *buf
	}
	sc.Host.sends(rng, trains, gap, cross[bottleneck], newPauses(rng, host.Stalls, origin-warmup, end))
	// Through the hops, in order.
	var all []*probe
	for _, tr := range trains {
		for k := range tr {
			tr[k].at = tr[k].send
			all = append(all, &tr[k])
		}
	}
	for h, hop := range sc.Hops {
		var onStart func(*probe, float64)
		if h == 0 && host.Clock == Hardware {
			onStart = func(pk *probe, start float64) { // the NIC stamps as it starts to send
				pk.tx = int64(math.Round((start + hardwareNoise*rng.NormFloat64()) * 1e9))
			}
		}
		serve(hop.Rate, p.Size, all, cross[h], onStart)
	}
	sc.Host.stampReceive(rng, all, newPauses(rng, host.Stalls, origin-warmup, end+stallMax))
	last := all[len(all)-1].at
	var tr Truth
	if truth != nil {
		tr = *truth
		first := trains[0][0].send
		tr.ABW = math.Inf(1)
		for h := 1; h < len(sc.Hops); h++ {
			var bits float64
			for _, a := range cross[h] {
				if a.t >= first && a.t < last {
					bits += float64(a.size) * 8
				}
			}
			tr.ABW = math.Min(tr.ABW, sc.Hops[h].Rate-bits/(last-first))
		}
		tr.ABW = math.Max(0, tr.ABW)
		tr.XTR = tr.C - tr.ABW
	}
	return trains, tr, last - trains[0][0].send
}

// serve takes probes of size bytes, in order, and the cross traffic c
// through a FIFO hop of rate bit/s: each probe's at becomes its departure.
// Probes keep their order through FIFO hops; cross traffic is merged in by
// arrival time. onStart, if set, is told when each probe starts to be
// sent.
func serve(rate float64, size int, probes []*probe, c []arrival, onStart func(*probe, float64)) {
	busy, j := math.Inf(-1), 0
	for _, pk := range probes {
		for j < len(c) && c[j].t <= pk.at {
			busy = math.Max(busy, c[j].t) + float64(c[j].size)*8/rate
			j++
		}
		start := math.Max(busy, pk.at)
		if onStart != nil {
			onStart(pk, start)
		}
		busy = start + float64(size)*8/rate
		pk.at = busy
	}
}
