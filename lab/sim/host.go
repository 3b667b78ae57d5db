package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/abing-net/abing/dispersion"
)

// Clock is how the hosts stamp packets.
type Clock int

// Clocks, as dispersion.Source names them.
const (
	Hardware Clock = iota // the NIC: a few ns of noise, at the wire
	Kernel                // the driver: 1 µs of noise, when the receive interrupt is served
	User                  // user space: a sendmmsg batch shares one stamp; receive stamps late by scheduling
)

func (c Clock) String() string { return [...]string{"hardware", "kernel", "user"}[c] }

// source is the timestamp source that the estimator is told about.
func (c Clock) source() dispersion.Source {
	return [...]dispersion.Source{dispersion.SourceHardware, dispersion.SourceKernel, dispersion.SourceUser}[c]
}

// Jitter says how paced sends are delayed by the cross traffic.
type Jitter int

// Send-delay models.
const (
	NoJitter    Jitter = iota
	Independent        // as Correlated, with as many cross packets as the bottleneck's mean rate would bring, drawn independently of its real ones
	Correlated         // every cross packet that reaches the bottleneck between a paced send and the next delays the next by Delay: the generator shares the sender's CPU
)

func (j Jitter) String() string { return [...]string{"none", "independent", "correlated"}[j] }

// Host is what the two hosts do to the probes: the sender's sends and
// stamps, the receiver's interrupts and stamps, and the pauses of both
// when they are virtual machines. Every parameter's source is given where
// it is used or in the constants below.
type Host struct {
	Clock Clock
	// Coalesce is the receive NIC's interrupt moderation (ethtool's
	// rx-usecs, "how many usecs to delay an RX interrupt after a packet
	// arrives", include/uapi/linux/ethtool.h): a packet that finds no
	// interrupt pending schedules one Coalesce later, and every packet
	// that arrives until then is served by it. 0: one interrupt per packet.
	Coalesce time.Duration
	// Adaptive moderation (ethtool's adaptive-rx; net_dim in Linux, the
	// default of mlx5): the delay doubles after an interrupt that served
	// several packets and halves after one that served one, between
	// adaptiveLow and adaptiveHigh. Coalesce is its starting value.
	Adaptive bool
	// Poll is the time the kernel spends on each packet of an interrupt's
	// batch (NAPI): packets served by one interrupt are stamped this far
	// apart, in order. Software clocks only.
	Poll time.Duration
	// Stalls is how many times a second each host's virtual CPU is taken
	// away for 0.1 to 5 ms (log-uniform): packets that arrive meanwhile
	// are stamped when it runs again (software clocks), and sends due
	// meanwhile leave then.
	Stalls float64
	// SendCost is the least time between packets of one sendmmsg batch.
	SendCost time.Duration
	// Wake is the mean of an exponential delay added to each paced send:
	// the timer wake-up latency of the sending thread.
	Wake   time.Duration
	Jitter Jitter
	Delay  time.Duration // of a send delayed by Jitter
}

// Parameters of the host model, fixed so that no grid cell gets its own.
const (
	// hardwareNoise is the σ of a hardware stamp. Assumed: NICs stamp
	// with their PTP clock, whose resolution is a few ns.
	hardwareNoise = 4e-9
	// kernelNoise is the σ of a kernel software stamp, assumed half the
	// noise the sender itself assumes for it (dispersion.SourceKernel).
	kernelNoise = 1e-6
	// userLate and userSpread: user-space receive stamps are late by
	// userLate plus an exponential of mean userSpread (the reader thread's
	// wake-up), assumed.
	userLate, userSpread = 5e-6, 10e-6
	// adaptiveLow and adaptiveHigh bound adaptive moderation. Assumed:
	// mlx4's adaptive moderation ranges from 0 to 128 µs
	// (MLX4_EN_RX_COAL_TIME_LOW/HIGH), net_dim steps through a table of
	// profiles; here the steps are doublings from 8 to 128 µs.
	adaptiveLow, adaptiveHigh = 8e-6, 128e-6
	// stallMin and stallMax bound a virtual machine's pause, as the
	// accuracy issue asks (0.1–5 ms); pauses of that order on shared
	// cloud instances: Wang and Ng, "The Impact of Virtualization on
	// Network Performance of Amazon EC2 Data Center", INFOCOM 2010.
	stallMin, stallMax = 100e-6, 5e-3
)

// pauses are the intervals during which a host does not run, in order.
type pauses [][2]float64

// newPauses draws a host's stalls over [from, to): a Poisson process of
// rate per second, each lasting a log-uniform time in [stallMin, stallMax].
func newPauses(rng *rand.Rand, rate, from, to float64) pauses {
	if rate <= 0 {
		return nil
	}
	var p pauses
	for at := from + rng.ExpFloat64()/rate; at < to; at += rng.ExpFloat64() / rate {
		d := stallMin * math.Exp(rng.Float64()*math.Log(stallMax/stallMin))
		p = append(p, [2]float64{at, at + d})
		at += d
	}
	return p
}

// after is t, or the end of the pause t falls in.
func (p pauses) after(t float64) float64 {
	i, _ := slices.BinarySearchFunc(p, t, func(s [2]float64, t float64) int {
		switch {
		case s[1] <= t:
			return -1
		case s[0] > t:
			return 1
		}
		return 0
	})
	if i < len(p) && p[i][0] <= t && t < p[i][1] {
		return p[i][1]
	}
	return t
}

// sends sets every probe's send time and transmit stamp: a back-to-back
// train is one sendmmsg batch, its packets SendCost apart; a paced packet
// leaves at its time, or later when the host delays it.
func (h Host) sends(rng *rand.Rand, trains [][]probe, gap float64, cross []arrival, stalls pauses) {
	cost, delay, wake := h.SendCost.Seconds(), h.Delay.Seconds(), h.Wake.Seconds()
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
				if wake > 0 {
					pk.send += rng.ExpFloat64() * wake
				}
				pk.send = math.Max(pk.send, prev+cost)
				switch h.Jitter {
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
			pk.send = stalls.after(pk.send)
			if k > 0 {
				pk.send = math.Max(pk.send, tr[k-1].send+cost)
			}
			switch h.Clock {
			case Kernel:
				pk.tx = int64(math.Round((pk.send + kernelNoise*rng.NormFloat64()) * 1e9))
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

// stampReceive sets every probe's receive stamp from its arrival at the
// receiving NIC (all in arrival order): at once by a hardware clock; by a
// software clock when the interrupt that serves it runs, in the order of
// its batch, and after any pause of the receiving host.
func (h Host) stampReceive(rng *rand.Rand, all []*probe, stalls pauses) {
	period := h.Coalesce.Seconds()
	if h.Adaptive {
		period = max(period, adaptiveLow)
	}
	poll := h.Poll.Seconds()
	irq, inBatch := math.Inf(-1), 0
	for _, pk := range all {
		t := pk.at
		if h.Clock == Hardware {
			pk.rx = int64(math.Round((t + hardwareNoise*rng.NormFloat64()) * 1e9))
			continue
		}
		if t > irq { // no interrupt pending: this packet schedules one
			if h.Adaptive && !math.IsInf(irq, -1) {
				if inBatch > 1 {
					period = math.Min(2*period, adaptiveHigh)
				} else {
					period = math.Max(period/2, adaptiveLow)
				}
			}
			irq, inBatch = stalls.after(t+period), 0
		}
		t = irq + float64(inBatch)*poll
		inBatch++
		switch h.Clock {
		case Kernel:
			t += kernelNoise * rng.NormFloat64()
		case User:
			t += userLate + rng.ExpFloat64()*userSpread
		}
		pk.rx = int64(math.Round(t * 1e9))
	}
	// Stamps of one socket never go backwards.
	for i := 1; i < len(all); i++ {
		all[i].rx = max(all[i].rx, all[i-1].rx)
	}
}
