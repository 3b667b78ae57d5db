package mesh

import (
	"math"
	"slices"
)

// Shortcut is a pair of hosts whose RTT through a third one is lower than
// their direct RTT: a triangle-inequality violation. The relay's own
// forwarding time is neglected, as in the study the analysis follows.
type Shortcut struct {
	A, B    string
	Direct  float64 // median direct RTT, ms
	Relay   string  // the best relay
	Relayed float64 // RTT(A, Relay) + RTT(Relay, B), ms
	Gain    float64 // Direct − Relayed, ms
	GainPct float64 // Gain / Direct, %
	CV      float64 // of the direct RTT over the window
	Relays  int     // how many relays improve the pair (by more than the minimum gain)
}

// hop is the RTT between two hosts through relay r.
type hop struct {
	r   string
	rtt float64 // RTT(A, r) + RTT(r, B), ms
}

// eachPair calls fn for every pair (a < b by name) with a median direct
// RTT, with the relayed RTT through every other host that has both legs,
// relays in name order. The slice is reused between calls.
func (m *Matrix) eachPair(fn func(a, b string, direct float64, via []hop)) {
	// The medians in a table indexed by the nodes' order: the n³ loop
	// below does array reads, not map lookups of name pairs (500 nodes:
	// 35 s of CPU per call with the lookups).
	n := len(m.Nodes)
	idx := make(map[string]int, n)
	for i, a := range m.Nodes {
		idx[a] = i
	}
	d := make([]float64, n*n)
	for i := range d {
		d[i] = math.NaN()
	}
	for k, v := range m.rtt {
		i, j := idx[k[0]], idx[k[1]]
		d[i*n+j], d[j*n+i] = v, v
	}
	var via []hop
	for i := range n {
		row := d[i*n : (i+1)*n]
		for j := i + 1; j < n; j++ {
			direct := row[j]
			if math.IsNaN(direct) {
				continue
			}
			via = via[:0]
			for r, ar := range row {
				if r == i || r == j || math.IsNaN(ar) {
					continue
				}
				if rb := d[r*n+j]; !math.IsNaN(rb) {
					via = append(via, hop{m.Nodes[r], ar + rb})
				}
			}
			fn(m.Nodes[i], m.Nodes[j], direct, via)
		}
	}
}

// Relays finds every pair (A < B by name) whose median direct RTT exceeds
// its best relayed RTT by more than minGain ms, and counts the pairs with a
// direct RTT. Ties between relays go to the first by name; a relayed RTT
// equal to the direct one is no shortcut.
func Relays(m *Matrix, minGain float64) (shortcuts []Shortcut, pairs int) {
	m.eachPair(func(a, b string, direct float64, via []hop) {
		pairs++
		best := Shortcut{A: a, B: b, Direct: direct, Relayed: math.Inf(1)}
		for _, h := range via {
			if direct-h.rtt > minGain {
				best.Relays++
			}
			if h.rtt < best.Relayed {
				best.Relay, best.Relayed = h.r, h.rtt
			}
		}
		if best.Relays == 0 {
			return
		}
		best.Gain = direct - best.Relayed
		if direct > 0 {
			best.GainPct = 100 * best.Gain / direct
		}
		best.CV = m.CV(a, b)
		shortcuts = append(shortcuts, best)
	})
	return shortcuts, pairs
}

// Coverage is one step of the greedy choice of relays: the relay that
// improves most of the pairs not improved yet, and the share of all pairs
// improved by the relays chosen so far.
type Coverage struct {
	Relay      string
	Adds       int     // pairs it improves that no earlier relay did
	Cumulative int     // pairs improved by this relay and the ones before
	Share      float64 // Cumulative over all pairs with a direct RTT, 0 to 1
}

// TopRelays chooses up to n relays greedily: each time the one that adds
// most pairs improved by more than minGain ms (between equals, the one
// whose gains on them add up to more; then the first by name), until n are
// chosen or no relay adds a pair.
func TopRelays(m *Matrix, minGain float64, n int) []Coverage {
	improves := map[string]map[[2]string]float64{} // relay → pairs it improves → gain
	pairs := 0
	m.eachPair(func(a, b string, direct float64, via []hop) {
		pairs++
		for _, h := range via {
			if gain := direct - h.rtt; gain > minGain {
				if improves[h.r] == nil {
					improves[h.r] = map[[2]string]float64{}
				}
				improves[h.r][[2]string{a, b}] = gain
			}
		}
	})
	covered := map[[2]string]bool{}
	var out []Coverage
	for len(out) < n {
		best, bestAdds, bestGain := "", 0, 0.0
		for _, r := range m.Nodes { // by name: full ties go to the first
			adds, gain := 0, 0.0
			for p, g := range improves[r] {
				if !covered[p] {
					adds++
					gain += g
				}
			}
			if adds > bestAdds || (adds == bestAdds && adds > 0 && gain > bestGain) {
				best, bestAdds, bestGain = r, adds, gain
			}
		}
		if bestAdds == 0 {
			break
		}
		for p := range improves[best] {
			covered[p] = true
		}
		out = append(out, Coverage{Relay: best, Adds: bestAdds, Cumulative: len(covered), Share: float64(len(covered)) / float64(pairs)})
	}
	return out
}

// BandwidthShortcut is a directed pair whose available bandwidth through a
// relay, the narrower of its two hops (the widest path), exceeds the direct
// path's.
type BandwidthShortcut struct {
	A, B    string // from A to B
	Direct  float64
	Relay   string
	Relayed float64 // min(ABW(A, Relay), ABW(Relay, B)), Mbit/s
	Gain    float64 // Relayed − Direct, Mbit/s
}

// BandwidthRelays finds every directed pair whose best relayed ABW exceeds
// the direct median ABW by more than minGain Mbit/s. Bandwidth through a
// relay does not add up, as latency does: it is the narrower hop.
func BandwidthRelays(m *Matrix, minGain float64) []BandwidthShortcut {
	var out []BandwidthShortcut
	for _, a := range m.Nodes {
		for _, b := range m.Nodes {
			if a == b {
				continue
			}
			direct, ok := m.ABW(a, b)
			if !ok {
				continue
			}
			best := BandwidthShortcut{A: a, B: b, Direct: direct, Relayed: -1}
			for _, r := range m.Nodes {
				if r == a || r == b {
					continue
				}
				ar, ok1 := m.ABW(a, r)
				rb, ok2 := m.ABW(r, b)
				if ok1 && ok2 && math.Min(ar, rb) > best.Relayed {
					best.Relay, best.Relayed = r, math.Min(ar, rb)
				}
			}
			if best.Relay != "" && best.Relayed-direct > minGain {
				best.Gain = best.Relayed - direct
				out = append(out, best)
			}
		}
	}
	slices.SortStableFunc(out, func(x, y BandwidthShortcut) int {
		switch {
		case x.Gain > y.Gain:
			return -1
		case x.Gain < y.Gain:
			return 1
		}
		return 0
	})
	return out
}
