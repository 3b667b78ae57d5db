package mesh

import (
	"container/heap"
	"fmt"
	"math"
	"slices"

	"github.com/abing-net/abing/estimator"
	"github.com/abing-net/abing/linkcost"
)

// Route metrics: what a route minimises or, for bandwidth, maximises.
const (
	// MetricCost is the sum of the links' costs (package linkcost), as a
	// distance-vector overlay such as Babel adds its links' metrics.
	MetricCost = "cost"
	// MetricRTT is the sum of the links' median RTTs, ms.
	MetricRTT = "rtt"
	// MetricBandwidth is the widest path: the route whose narrowest link
	// has the most available bandwidth, Mbit/s.
	MetricBandwidth = "bandwidth"
)

// Metrics are the route metrics, the default first.
var Metrics = []string{MetricCost, MetricRTT, MetricBandwidth}

// Graph is the measured links of one path network under one metric: a
// weight per directed link, and the members that are down, which no
// route crosses or reaches.
type Graph struct {
	Metric string
	Nodes  []string // sorted
	index  map[string]int
	out    [][]arc // by node: its measured links, by peer
	down   []bool
}

type arc struct {
	to int
	w  float64
}

// NewGraph makes the graph of m's links under metric:
//   - cost: the median of the link costs published for the link from a to
//     b (Sample.Cost), or, where none was, the cost p gives the median RTT,
//     mean loss and median jitter a measured to b. Where both ends measured
//     the link, each direction has its own cost; where one did, the other
//     direction has the same (a round trip's RTT, loss and jitter are the
//     pair's);
//   - rtt: the pair's median RTT, a link both ways whichever end measured;
//   - bandwidth: the median ABW from a to b (a link without one is not a
//     link for this metric).
func NewGraph(m *Matrix, metric string, p linkcost.Params) (*Graph, error) {
	if !slices.Contains(Metrics, metric) {
		return nil, fmt.Errorf("route metric %q: want one of %v", metric, Metrics)
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	g := &Graph{Metric: metric, Nodes: m.Nodes, index: make(map[string]int, len(m.Nodes)), out: make([][]arc, len(m.Nodes)), down: make([]bool, len(m.Nodes))}
	for i, n := range m.Nodes {
		g.index[n] = i
	}
	add := func(from, to string, w float64) {
		a, b := g.index[from], g.index[to]
		g.out[a] = append(g.out[a], arc{to: b, w: w})
	}
	if metric == MetricRTT {
		for k, w := range m.rtt { // a round trip is the same both ways
			add(k[0], k[1], w)
			add(k[1], k[0], w)
		}
	}
	for k, ss := range m.byDir {
		switch metric {
		case MetricBandwidth:
			if w, ok := m.ABW(k[0], k[1]); ok && w > 0 {
				add(k[0], k[1], w)
			}
		case MetricCost:
			if w, ok := linkCost(ss, p); ok {
				add(k[0], k[1], w)
				if _, back := m.byDir[[2]string{k[1], k[0]}]; !back {
					add(k[1], k[0], w) // its RTT, loss and jitter are the pair's
				}
			}
		}
	}
	for _, o := range g.out {
		slices.SortFunc(o, func(x, y arc) int { return x.to - y.to })
	}
	return g, nil
}

// linkCost is the cost of a link from its samples: the median of the
// costs published (at least 1: a cost below is no link cost), or p's of
// the samples' median RTT, mean loss and median jitter (absent: 0).
func linkCost(ss []Sample, p linkcost.Params) (float64, bool) {
	var costs, rtt, loss, jitter []float64
	for _, s := range ss {
		if s.Cost >= 1 && !math.IsInf(s.Cost, 0) {
			costs = append(costs, s.Cost)
		}
		for _, v := range []struct {
			x   float64
			out *[]float64
		}{{s.RTT, &rtt}, {s.Loss, &loss}, {s.Jitter, &jitter}} {
			if !math.IsNaN(v.x) {
				*v.out = append(*v.out, v.x)
			}
		}
	}
	if len(costs) > 0 {
		return estimator.Median(costs), true
	}
	if len(rtt) == 0 {
		return 0, false
	}
	l, j := 0.0, 0.0
	if len(loss) > 0 {
		l = mean(loss)
	}
	if len(jitter) > 0 {
		j = estimator.Median(jitter)
	}
	return p.Cost(estimator.Median(rtt), l, j), true
}

// Down marks the members that failed: no route crosses them, and a route
// to one is unreachable. Names not in the graph are ignored.
func (g *Graph) Down(names ...string) {
	for _, n := range names {
		if i, ok := g.index[n]; ok {
			g.down[i] = true
		}
	}
}

// Route is the best route from Src to Dst: Hops from Src to Dst (nil when
// Dst is unreachable), its Value (the sum of its links' costs or RTTs, or
// its narrowest link's bandwidth), and the direct link's (NaN when the
// direct link was not measured).
type Route struct {
	Metric    string
	Src, Dst  string
	Reachable bool
	Hops      []string
	Value     float64 // NaN when unreachable
	Direct    float64 // NaN when not measured
}

// NextHop is the first hop of the route ("" when unreachable).
func (r *Route) NextHop() string { return NextHop(r.Hops) }

// NextHop is the first hop of a route's hops, "" with none.
func NextHop(hops []string) string {
	if len(hops) < 2 {
		return ""
	}
	return hops[1]
}

// Better says whether the route beats the direct link (or there is none).
func (r *Route) Better() bool {
	return r.Reachable && len(r.Hops) > 2
}

// label is what the search knows of the best route to a node: its value,
// its hops, and its first hop (index, for ties: the first in name order).
type label struct {
	v     float64
	hops  int
	first int
}

// better says whether a beats b under the metric: a lower sum (a wider
// bottleneck for bandwidth), within a relative 1e-9 a tie; then fewer
// hops; then the first hop first in name order. The order is kept by
// extending both with the same link, so the search is exact with it.
func (g *Graph) better(a, b label) bool {
	eps := 1e-9 * max(1, math.Abs(b.v))
	if g.Metric == MetricBandwidth {
		if a.v > b.v+eps {
			return true
		}
		if a.v < b.v-eps {
			return false
		}
	} else {
		if a.v < b.v-eps {
			return true
		}
		if a.v > b.v+eps {
			return false
		}
	}
	if a.hops != b.hops {
		return a.hops < b.hops
	}
	return a.first < b.first
}

// From is the best route from src to every other node of the graph, in
// name order: Dijkstra's search over the labels above (for bandwidth, the
// widest-path variant), skipping members that are down. A src not in the
// graph has no routes.
func (g *Graph) From(src string) []Route {
	s, ok := g.index[src]
	if !ok {
		return nil
	}
	n := len(g.Nodes)
	best := make([]label, n)
	seen := make([]bool, n) // has a label
	done := make([]bool, n)
	pred := make([]int, n)
	start := label{v: 0, first: -1}
	if g.Metric == MetricBandwidth {
		start.v = math.Inf(1)
	}
	q := &labelQueue{g: g}
	if !g.down[s] {
		best[s], seen[s], pred[s] = start, true, -1
		heap.Push(q, item{node: s, l: start})
	}
	for q.Len() > 0 {
		it := heap.Pop(q).(item)
		u := it.node
		if done[u] || it.l != best[u] {
			continue
		}
		done[u] = true
		for _, a := range g.out[u] {
			if g.down[a.to] || done[a.to] {
				continue
			}
			l := label{hops: best[u].hops + 1, first: best[u].first}
			if u == s {
				l.first = a.to
			}
			if g.Metric == MetricBandwidth {
				l.v = min(best[u].v, a.w)
			} else {
				l.v = best[u].v + a.w
			}
			if !seen[a.to] || g.better(l, best[a.to]) {
				best[a.to], seen[a.to], pred[a.to] = l, true, u
				heap.Push(q, item{node: a.to, l: l})
			}
		}
	}
	routes := make([]Route, 0, n-1)
	for d := range n {
		if d == s {
			continue
		}
		r := Route{Metric: g.Metric, Src: src, Dst: g.Nodes[d], Value: math.NaN(), Direct: g.direct(s, d)}
		if done[d] {
			r.Reachable, r.Value = true, best[d].v
			for v := d; v != -1; v = pred[v] {
				r.Hops = append(r.Hops, g.Nodes[v])
			}
			slices.Reverse(r.Hops)
		}
		routes = append(routes, r)
	}
	return routes
}

// Routes is every ordered pair's best route: From every node, in name
// order.
func (g *Graph) Routes() []Route {
	var all []Route
	for _, n := range g.Nodes {
		all = append(all, g.From(n)...)
	}
	return all
}

// Value is the value of the route along hops under the graph's metric
// (the sum of its links', or its narrowest link's bandwidth), and false
// when one of its links is not in the graph or one of its hops is down:
// what a route chosen earlier is worth now.
func (g *Graph) Value(hops []string) (float64, bool) {
	if len(hops) < 2 {
		return math.NaN(), false
	}
	v := 0.0
	if g.Metric == MetricBandwidth {
		v = math.Inf(1)
	}
	for i := 1; i < len(hops); i++ {
		a, okA := g.index[hops[i-1]]
		b, okB := g.index[hops[i]]
		if !okA || !okB || g.down[a] || g.down[b] {
			return math.NaN(), false
		}
		w := g.direct(a, b)
		if math.IsNaN(w) {
			return math.NaN(), false
		}
		if g.Metric == MetricBandwidth {
			v = min(v, w)
		} else {
			v += w
		}
	}
	return v, true
}

// direct is the weight of the measured link from a to b, NaN without one.
func (g *Graph) direct(a, b int) float64 {
	o := g.out[a]
	if i, ok := slices.BinarySearchFunc(o, b, func(x arc, t int) int { return x.to - t }); ok {
		return o[i].w
	}
	return math.NaN()
}

type item struct {
	node int
	l    label
}

// labelQueue is the search's priority queue: the best label first.
type labelQueue struct {
	g     *Graph
	items []item
}

func (q *labelQueue) Len() int           { return len(q.items) }
func (q *labelQueue) Less(i, j int) bool { return q.g.better(q.items[i].l, q.items[j].l) }
func (q *labelQueue) Swap(i, j int)      { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *labelQueue) Push(x any)         { q.items = append(q.items, x.(item)) }
func (q *labelQueue) Pop() any {
	it := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return it
}
