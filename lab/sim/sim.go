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

// Clock is how the hosts stamp packets.
type Clock int

// Clocks, as dispersion.Source names them.
const (
	Hardware Clock = iota // the NIC: exact to the ns, at the wire
	Kernel                // the driver: 1 µs of noise, and interrupt coalescing if set
	User                  // user space: a sendmmsg batch shares one stamp; receive stamps late by scheduling
)

func (c Clock) String() string { return [...]string{"hardware", "kernel", "user"}[c] }

// source is the timestamp source that the estimator is told about.
func (c Clock) source() dispersion.Source {
	return [...]dispersion.Source{dispersion.SourceHardware, dispersion.SourceKernel, dispersion.SourceUser}[c]
}

// Jitter says how paced sends are delayed.
type Jitter int

// Send-delay models.
const (
	NoJitter    Jitter = iota
	Independent        // as Correlated, with as many cross packets as the bottleneck's mean rate would bring, drawn independently of its real ones
	Correlated         // every cross packet that reaches the bottleneck between a paced send and the next delays the next by Delay: the generator shares the sender's CPU
)

func (j Jitter) String() string { return [...]string{"none", "independent", "correlated"}[j] }

// Host is what the sender's host does to the probes.
type Host struct {
	Clock    Clock
	Coalesce time.Duration // receive interrupts at most this often (kernel and user clocks); 0: one per packet
	SendCost time.Duration // least time between packets of one sendmmsg batch
	Jitter   Jitter
	Delay    time.Duration // of a delayed send
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
	cfg.TrainLen, cfg.Size, cfg.Trains = capLen, p.Size, p.Trains
	// The first train tells measure how long a train occupies the
	// bottleneck; here that is known.
	interval := measure.TrainInterval(cfg, float64(p.Size)*8/narrow).Seconds()

	// Phase 1: back to back.
	b2b, _, dur1 := sc.phase(rng, p.Trains, capLen, 0, interval, nil)
	samples := make([]estimator.Sample, 0, p.Trains)
	for _, tr := range b2b {
		s, why := sample(tr, dispersion.Pace{}, noise)
		res.Rejects.Add(why)
		if why == dispersion.Accepted {
			samples = append(samples, s)
		}
	}
	res.Capacity, _, res.CapErr = estimator.EstimateCapacity(samples, ecfg, nil)
	res.Packets = p.Trains * capLen
	res.Duration = time.Duration(dur1 * 1e9)
	if res.CapErr != nil {
		return res
	}
	// Phase 2: paced at PaceFraction of the estimated Tn.
	gap := measure.PaceGap(res.Capacity.Tn, p.TrainLen)
	pace := measure.PaceOf(gap.Seconds() / measure.PaceFraction)
	cfg.TrainLen = p.TrainLen
	interval = measure.TrainInterval(cfg, res.Capacity.Tn).Seconds()
	count := p.Trains
	if p.Precision > 0 && p.Round > 0 {
		count = p.Round
	}
	var abwTime, timeSum float64 // the truth, weighted by each round's time
	samples = samples[:0]
	round := count * p.TrainLen
	for {
		paced, truth, dur := sc.phase(rng, count, p.TrainLen, gap.Seconds(), interval, &res.Truth)
		abwTime += truth.ABW * dur
		timeSum += dur
		res.Duration += time.Duration(dur * 1e9)
		res.Packets += round
		for _, tr := range paced {
			s, why := sample(tr, pace, noise)
			res.Rejects.Add(why)
			if why == dispersion.Accepted {
				samples = append(samples, s)
			}
		}
		ecfg.OffPace = res.Rejects[dispersion.OffPace] // as the live run counts them (package measure)
		res.Cross, res.CrossErr = estimator.EstimateCross(samples, res.Capacity, ecfg)
		if p.Precision <= 0 || (res.CrossErr == nil && (res.Cross.ABWHigh-res.Cross.ABWLow)/2 <= p.Precision*res.Capacity.DBC) ||
			(res.Packets+round)*p.Size > p.MaxBytes {
			break
		}
	}
	res.Truth.ABW = abwTime / timeSum
	res.Truth.XTR = res.Truth.C - res.Truth.ABW
	return res
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
	sc.sends(rng, trains, gap, cross[bottleneck])
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
			onStart = func(pk *probe, start float64) { pk.tx = int64(math.Round(start * 1e9)) } // the NIC stamps as it starts to send
		}
		serve(hop.Rate, p.Size, all, cross[h], onStart)
	}
	sc.stampReceive(rng, all)
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

// sends sets every probe's send time and transmit stamp: a back-to-back
// train is one sendmmsg batch, its packets SendCost apart; a paced packet
// leaves at its time, or later when the host delays it.
func (sc *Scenario) sends(rng *rand.Rand, trains [][]probe, gap float64, cross []arrival) {
	host := sc.Host
	cost, delay := host.SendCost.Seconds(), host.Delay.Seconds()
	var crossRate float64 // packets/s at the bottleneck, for Independent
	if n := len(cross); n > 1 {
		crossRate = float64(n) / (cross[n-1].t - cross[0].t)
	}
	j := 0
	for _, tr := range trains {
		batchNs := int64(math.Round(tr[0].send * 1e9))
		for k := range tr {
			pk := &tr[k]
			if gap == 0 {
				pk.send += float64(k) * cost
			} else if k > 0 {
				prev := tr[k-1].send
				pk.send = math.Max(pk.send, prev+cost)
				switch host.Jitter {
				case Independent:
					pk.send += float64(poisson(rng, crossRate*(pk.send-prev))) * delay
				case Correlated:
					for j < len(cross) && cross[j].t <= prev {
						j++
					}
					n := 0
					for i := j; i < len(cross) && cross[i].t <= pk.send; i++ {
						n++
					}
					pk.send += float64(n) * delay
				}
			}
			switch host.Clock {
			case Kernel:
				pk.tx = int64(math.Round((pk.send + 1e-6*rng.NormFloat64()) * 1e9))
				if k > 0 {
					pk.tx = max(pk.tx, tr[k-1].tx) // never backwards
				}
			case User:
				if gap == 0 {
					pk.tx = batchNs // the time before the one system call
				} else {
					pk.tx = int64(math.Round(pk.send * 1e9))
				}
			}
		}
	}
}

// poisson draws from a Poisson distribution of mean m (Knuth's method; m
// is small here).
func poisson(rng *rand.Rand, m float64) int {
	l, n, p := math.Exp(-m), 0, rng.Float64()
	for p > l {
		n++
		p *= rng.Float64()
	}
	return n
}

// stampReceive sets every probe's receive stamp from its arrival.
func (sc *Scenario) stampReceive(rng *rand.Rand, all []*probe) {
	host := sc.Host
	co := host.Coalesce.Seconds()
	phase := rng.Float64() * co
	for _, pk := range all {
		t := pk.at
		if host.Clock != Hardware && co > 0 {
			t = phase + math.Ceil((t-phase)/co)*co // stamped when the interrupt comes
		}
		switch host.Clock {
		case Kernel:
			t += 1e-6 * rng.NormFloat64()
		case User:
			t += 5e-6 + rng.ExpFloat64()*10e-6
		}
		pk.rx = int64(math.Round(t * 1e9))
	}
	// Stamps of one socket never go backwards.
	for i := 1; i < len(all); i++ {
		all[i].rx = max(all[i].rx, all[i-1].rx)
	}
}
