package sim

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Model is a kind of cross traffic.
type Model int

// Cross-traffic models.
const (
	CBR      Model = iota // constant rate: fixed spacing, random phase
	Poisson               // exponential interarrival times
	Pareto                // on/off: line-rate bursts of Pareto-distributed length (α 1.5), exponential silences
	TCP                   // window bursts: once per round trip, a window at the rate of a link ten times faster
	Mix                   // Poisson arrivals of 40, 576 and 1500-byte packets in the simple-IMIX ratio 7:4:1
	TCPPaced              // a paced TCP flow (fq): once per round trip, a window spread at 1.2 times the flow's rate
)

var modelNames = [...]string{"cbr", "poisson", "pareto", "tcp", "mix", "tcp-paced"}

func (m Model) String() string {
	if m >= 0 && int(m) < len(modelNames) {
		return modelNames[m]
	}
	return fmt.Sprintf("model(%d)", int(m))
}

// ParseModel parses a model name.
func ParseModel(s string) (Model, error) {
	for i, n := range modelNames {
		if n == s {
			return Model(i), nil
		}
	}
	return 0, fmt.Errorf("cross-traffic model %q: want cbr, poisson, pareto, tcp, mix or tcp-paced", s)
}

// Traffic is the cross traffic that enters a hop and leaves after it
// (one-hop persistent, as in the literature on packet-pair probing).
type Traffic struct {
	Model Model
	Load  float64 // mean rate as a fraction of the hop's rate, 0 to below 1
	Size  int     // packet size, bytes (IP layer); 0 is 1500 (Mix ignores it)
	// Flows splits the load of the TCP models over this many flows
	// (0 is 1), each with its own round trip (tcpRTTs) and phase.
	Flows int
}

// Tunables of the bursty models, fixed so that no grid cell gets its own.
const (
	paretoAlpha     = 1.5  // tail index of the burst length
	paretoMeanBurst = 20.0 // mean burst length, packets
	tcpRTT          = 0.02 // the TCP-like source's round trip, seconds
	tcpSpeedup      = 10   // its bursts arrive this many times faster than the hop
	// tcpPacing is the paced flow's pacing rate over its mean rate:
	// Linux's tcp_pacing_ca_ratio, 120 % in congestion avoidance (commit
	// 43e122b014c9, "tcp: refine pacing rate determination"), which the
	// fq qdisc enforces.
	tcpPacing = 1.2
)

// tcpRTTs are the round trips of the flows when a TCP model has several,
// seconds: spread from 10 to 80 ms, as wide-area flows sharing a link
// have (assumed).
var tcpRTTs = [...]float64{0.02, 0.045, 0.01, 0.08, 0.03, 0.06, 0.015, 0.025}

// imix are the simple-IMIX sizes and their weights (7:4:1 by packets).
var imix = [...]struct {
	size   int
	weight float64
}{{40, 7.0 / 12}, {576, 4.0 / 12}, {1500, 1.0 / 12}}

// meanSize is the mean packet size of a traffic, bytes.
func (t Traffic) meanSize() float64 {
	if t.Model == Mix {
		var m float64
		for _, s := range imix {
			m += float64(s.size) * s.weight
		}
		return m
	}
	if t.Size > 0 {
		return float64(t.Size)
	}
	return 1500
}

// arrival is one cross packet at a hop.
type arrival struct {
	t    float64 // seconds
	size int     // bytes
}

// generate returns the arrivals of t at a hop of rate bps over [from, to),
// in time order.
func (t Traffic) generate(rng *rand.Rand, bps, from, to float64, out []arrival) []arrival {
	out = out[:0]
	if t.Load <= 0 {
		return out
	}
	rate := t.Load * bps // bit/s
	size := int(t.meanSize())
	mean := t.meanSize() * 8 / rate // mean interarrival, seconds
	switch t.Model {
	case CBR:
		for at := from + rng.Float64()*mean; at < to; at += mean {
			out = append(out, arrival{at, size})
		}
	case Poisson:
		for at := from + rng.ExpFloat64()*mean; at < to; at += rng.ExpFloat64() * mean {
			out = append(out, arrival{at, size})
		}
	case Mix:
		for at := from + rng.ExpFloat64()*mean; at < to; at += rng.ExpFloat64() * mean {
			u, s := rng.Float64(), imix[len(imix)-1].size
			for _, m := range imix {
				if u < m.weight {
					s = m.size
					break
				}
				u -= m.weight
			}
			out = append(out, arrival{at, s})
		}
	case Pareto:
		// Bursts at the hop's own rate; silences exponential with the
		// mean that makes the long-run rate the load.
		tx := float64(size) * 8 / bps
		xm := paretoMeanBurst * (paretoAlpha - 1) / paretoAlpha // scale of the burst length
		meanOn := paretoMeanBurst * tx
		meanOff := meanOn*(1/t.Load) - meanOn
		at := from - rng.Float64()*(meanOn+meanOff)
		for at < to {
			n := int(math.Ceil(xm / math.Pow(1-rng.Float64(), 1/paretoAlpha)))
			for range n {
				if at >= from && at < to {
					out = append(out, arrival{at, size})
				}
				at += tx
			}
			at += rng.ExpFloat64() * meanOff
		}
	case TCP, TCPPaced:
		flows := max(1, t.Flows)
		for f := range flows {
			rtt := tcpRTT
			if flows > 1 {
				rtt = tcpRTTs[f%len(tcpRTTs)]
			}
			out = t.window(rng, rate/float64(flows), bps, rtt, size, from, to, out)
		}
		if flows > 1 {
			slices.SortFunc(out, func(a, b arrival) int { return cmp.Compare(a.t, b.t) })
		}
	}
	return out
}

// window appends the arrivals of one window-based flow of mean rate bit/s
// and round trip rtt at a hop of rate bps: once per round trip, the window
// (the flow's rate times the round trip), either at tcpSpeedup times the
// hop's rate (TCP: a burst from a faster access link) or spread at
// tcpPacing times the flow's rate (TCPPaced).
func (t Traffic) window(rng *rand.Rand, rate, bps, rtt float64, size int, from, to float64, out []arrival) []arrival {
	w := max(1, int(math.Round(rate*rtt/(float64(size)*8))))
	period := float64(w) * float64(size) * 8 / rate
	tx := float64(size) * 8 / (tcpSpeedup * bps)
	if t.Model == TCPPaced {
		tx = float64(size) * 8 / (tcpPacing * rate)
	}
	for at := from - rng.Float64()*period; at < to; at += period {
		for i := range w {
			if a := at + float64(i)*tx; a >= from && a < to {
				out = append(out, arrival{a, size})
			}
		}
	}
	return out
}
