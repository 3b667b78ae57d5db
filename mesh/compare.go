package mesh

import (
	"cmp"
	"math"
	"slices"

	"github.com/abing-net/abing/record"
)

// PathStats are one path's figures over a window, from the forward records
// of its runs (a run's RTT is the same in both records).
type PathStats struct {
	Node, Host, Path string
	Rounds           int     // runs
	Failed           int     // runs without an RTT
	RTT              float64 // ms: mean of the successful runs' mean RTTs after a centred rolling median of 3; NaN: none
	Loss             float64 // %: mean of every run's loss, a failed run counting 100 %
	ABW, DBC         float64 // Mbit/s, forward: mean over the runs with an estimate; NaN: none
}

// Comparison is a path to a host against the reference path to the same
// host, as measured from one node.
type Comparison struct {
	Node, Host string
	Reference  PathStats // the path named "direct", or else the first by name
	Path       PathStats
	RTT, Loss  Verdict
	ABW, DBC   Verdict // "" when either path lacks the estimate
}

// ReferencePath is the path every other path to a host is compared with,
// when the host has one of that name.
const ReferencePath = "direct"

// Compare groups records by node, host (record target) and path, and
// compares every path of a host that has two or more with its reference
// path. Records without a path name are left out.
func Compare(recs []record.Record) []Comparison {
	type key struct{ node, host, path string }
	runs := map[key][]*record.Record{}
	for i := range recs {
		r := &recs[i]
		if r.Path == "" || r.Direction != "forward" {
			continue
		}
		k := key{r.Node, r.Target, r.Path}
		runs[k] = append(runs[k], r)
	}
	hosts := map[[2]string][]PathStats{}
	for k, rs := range runs {
		slices.SortFunc(rs, func(a, b *record.Record) int { return a.Time.Compare(b.Time) })
		hosts[[2]string{k.node, k.host}] = append(hosts[[2]string{k.node, k.host}], pathStats(k.node, k.host, k.path, rs))
	}
	var out []Comparison
	for nh, paths := range hosts {
		if len(paths) < 2 {
			continue
		}
		slices.SortFunc(paths, func(a, b PathStats) int {
			switch {
			case a.Path == ReferencePath:
				return -1
			case b.Path == ReferencePath:
				return 1
			}
			return cmp.Compare(a.Path, b.Path)
		})
		ref := paths[0]
		for _, p := range paths[1:] {
			c := Comparison{Node: nh[0], Host: nh[1], Reference: ref, Path: p, Loss: LossVerdict(ref.Loss, p.Loss)}
			switch { // a path that never answered is no alternative
			case math.IsNaN(ref.RTT) && math.IsNaN(p.RTT):
			case math.IsNaN(p.RTT):
				c.RTT = Bad
			case math.IsNaN(ref.RTT):
				c.RTT = Optimized
			default:
				c.RTT = RTTVerdict(ref.RTT, p.RTT)
			}
			if !math.IsNaN(ref.ABW) && !math.IsNaN(p.ABW) {
				c.ABW = BandwidthVerdict(ref.ABW, p.ABW)
			}
			if !math.IsNaN(ref.DBC) && !math.IsNaN(p.DBC) {
				c.DBC = BandwidthVerdict(ref.DBC, p.DBC)
			}
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Comparison) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path.Path, b.Path.Path))
	})
	return out
}

// pathStats sums up one path's runs, in time order.
func pathStats(node, host, path string, rs []*record.Record) PathStats {
	p := PathStats{Node: node, Host: host, Path: path, Rounds: len(rs), RTT: math.NaN(), ABW: math.NaN(), DBC: math.NaN()}
	var rtt, loss, abw, dbc []float64
	for _, r := range rs {
		if r.RTT == nil {
			p.Failed++
			loss = append(loss, 100)
			continue
		}
		rtt = append(rtt, r.RTT.Avg)
		loss = append(loss, 100*r.Loss)
		if r.ABW != nil {
			abw = append(abw, *r.ABW)
		}
		if r.DBC != nil {
			dbc = append(dbc, *r.DBC)
		}
	}
	if len(rtt) > 0 {
		p.RTT = mean(RollingMedian3(rtt))
	}
	p.Loss = mean(loss)
	if len(abw) > 0 {
		p.ABW = mean(abw)
	}
	if len(dbc) > 0 {
		p.DBC = mean(dbc)
	}
	return p
}
