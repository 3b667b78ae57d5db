// Package linkcost turns a path's measurements into the link cost a routing
// layer reads (Babel's metric shape: a base cost, an RTT penalty, loss and
// jitter), decides when a changed cost is worth publishing (Threshold,
// Publisher), and says what share of a path the probes themselves take
// (ProbeShare). The monitor computes it for every target; the mesh agent
// disseminates it. docs/mesh.md has the parameters and their sources.
package linkcost

import (
	"fmt"
	"math"
	"time"

	"github.com/abing-net/abing/estimator"
)

// Params weigh a path's measurements into a link cost for a routing
// layer: cost = Overall + A·latency + B·loss + C·jitter, where the latency
// term is shaped like Babel's RTT penalty (RFC 9616): 0 up to RTTMin,
// rising linearly to MaxPenalty at RTTMax, flat beyond.
type Params struct {
	Overall    float64 `yaml:"overall"`     // every link's base cost
	A          float64 `yaml:"a"`           // weight of the latency term
	B          float64 `yaml:"b"`           // per percentage point of loss
	C          float64 `yaml:"c"`           // per ms of jitter
	RTTMin     float64 `yaml:"rtt_min_ms"`  // ms
	RTTMax     float64 `yaml:"rtt_max_ms"`  // ms
	MaxPenalty float64 `yaml:"max_penalty"` //
}

// Default is Babel's: a hop costs 96 (a wired hop's metric), the RTT
// penalty starts at 10 ms and reaches 96 at 120 ms (babeld's defaults for
// tunnels; an overlay of long paths raises RTTMax, e.g. to 500 ms with a
// penalty of 5000, as the overlay in docs/mesh.md does). Loss: 9.6 a point,
// so 10 % loss doubles a hop's cost (Babel's ETX-like metric grows about
// so). Jitter: 1 a ms, which video and voice overlays raise, as the broker
// system of docs/mesh.md did per application.
func Default() Params {
	return Params{Overall: 96, A: 1, B: 9.6, C: 1, RTTMin: 10, RTTMax: 120, MaxPenalty: 96}
}

// Check says whether the parameters make sense: finite, not negative, and
// RTTMin below RTTMax.
func (p Params) Check() error {
	for _, v := range []float64{p.Overall, p.A, p.B, p.C, p.RTTMin, p.RTTMax, p.MaxPenalty} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("link cost %+v: every parameter must be a finite number, not negative", p)
		}
	}
	if p.RTTMin >= p.RTTMax {
		return fmt.Errorf("link cost: rtt_min %g ms must be below rtt_max %g ms", p.RTTMin, p.RTTMax)
	}
	return nil
}

// LatencyTerm is the RTT penalty of rtt ms.
func (p Params) LatencyTerm(rtt float64) float64 {
	switch {
	case rtt <= p.RTTMin:
		return 0
	case rtt >= p.RTTMax:
		return p.MaxPenalty
	}
	return p.MaxPenalty * (rtt - p.RTTMin) / (p.RTTMax - p.RTTMin)
}

// Cost is the link cost of a path with RTT rtt ms, loss (0 to 1) and
// jitter ms.
func (p Params) Cost(rtt, loss, jitter float64) float64 {
	return p.Overall + p.A*p.LatencyTerm(rtt) + p.B*100*loss + p.C*jitter
}

// Threshold says when a changed link cost is worth telling a routing
// layer: when it has moved from the cost last published by more than both
// Abs and Rel of it, and stayed beyond, on the same side, for Window
// observations in a row. Then the median of those observations is
// published. Noise that crosses the line and comes back publishes nothing.
type Threshold struct {
	Rel    float64 `yaml:"threshold"`     // of the published cost
	Abs    float64 `yaml:"threshold_abs"` // cost units
	Window int     `yaml:"window"`        // observations in a row
}

// DefaultThreshold: 10 % and 10 units (a tenth of a wired hop), held for 3
// runs. Tailscale changes its home relay only for 10 ms and a third better;
// Babel changes a route only when it is better on both the raw and the
// smoothed metric.
func DefaultThreshold() Threshold { return Threshold{Rel: 0.1, Abs: 10, Window: 3} }

// Publisher applies a Threshold to one link's costs.
type Publisher struct {
	th        Threshold
	published float64
	has       bool
	pending   []float64
	side      int
}

// NewPublisher returns a publisher that has published nothing yet.
func NewPublisher(th Threshold) *Publisher {
	th.Window = max(th.Window, 1)
	return &Publisher{th: th}
}

// Observe takes a new cost and says whether to publish, and what: the first
// cost is published at once; later ones only past the threshold, as
// Threshold says. A cost that is not a finite number is ignored.
func (p *Publisher) Observe(cost float64) (float64, bool) {
	if math.IsNaN(cost) || math.IsInf(cost, 0) {
		return 0, false
	}
	if !p.has {
		p.published, p.has = cost, true
		return cost, true
	}
	d := cost - p.published
	side := 0
	if math.Abs(d) > p.th.Abs && math.Abs(d) > p.th.Rel*math.Abs(p.published) {
		side = 1
		if d < 0 {
			side = -1
		}
	}
	if side == 0 || (len(p.pending) > 0 && side != p.side) {
		p.pending = p.pending[:0]
	}
	if side == 0 {
		return 0, false
	}
	p.side = side
	p.pending = append(p.pending, cost)
	if len(p.pending) < p.th.Window {
		return 0, false
	}
	p.published = estimator.Median(p.pending)
	p.pending = p.pending[:0]
	return p.published, true
}

// Published is the cost last published, and whether there is one.
func (p *Publisher) Published() (float64, bool) { return p.published, p.has }

// ProbeShare is the share of a path's capacity (dbc, Mbit/s) that probes
// of bytes (both directions of a run) every interval take. Measuring too
// often makes the probes the load they measure: a broker system that
// probed every 50 ms read link costs of 300–4000 where probing every
// 250 ms or more read 1–93 (docs/mesh.md).
func ProbeShare(bytes int, every time.Duration, dbc float64) float64 {
	if every <= 0 || dbc <= 0 {
		return math.Inf(1)
	}
	return float64(bytes) * 8 / every.Seconds() / (dbc * 1e6)
}
