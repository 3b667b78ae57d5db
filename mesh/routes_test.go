package mesh

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/abing-net/abing/linkcost"
)

// link is a link from a to b with a published cost and nothing else.
func link(a, b string, cost float64) Sample {
	return Sample{Src: a, Dst: b, RTT: math.NaN(), Loss: math.NaN(), Jitter: math.NaN(), ABW: math.NaN(), DBC: math.NaN(), Cost: cost}
}

// both is the link both ways.
func both(a, b string, cost float64) []Sample { return []Sample{link(a, b, cost), link(b, a, cost)} }

func graph(t *testing.T, metric string, samples ...[]Sample) *Graph {
	t.Helper()
	g, err := NewGraph(NewMatrix(slices.Concat(samples...)), metric, linkcost.Default())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// route is the route from src to dst as "a>b>c value", or "unreachable".
func route(g *Graph, src, dst string) string {
	for _, r := range g.From(src) {
		if r.Dst == dst {
			if !r.Reachable {
				return "unreachable"
			}
			return fmt.Sprintf("%s %g", strings.Join(r.Hops, ">"), r.Value)
		}
	}
	return "no such node"
}

// The seeds' example (Gunduz & Fox's performance-based routing): two
// routes from node 2 to node 3, 2→1→3 at cost 86 and 2→4→3 at cost 3; the
// second wins, and when the costs swap, the first.
func TestRoutesSeedsExample(t *testing.T) {
	before := graph(t, MetricCost, both("2", "1", 43), both("1", "3", 43), both("2", "4", 1), both("4", "3", 2))
	if got := route(before, "2", "3"); got != "2>4>3 3" {
		t.Errorf("before: 2 to 3 by %s, want 2>4>3 at 3", got)
	}
	after := graph(t, MetricCost, both("2", "1", 1), both("1", "3", 2), both("2", "4", 43), both("4", "3", 43))
	if got := route(after, "2", "3"); got != "2>1>3 3" {
		t.Errorf("after the swap: 2 to 3 by %s, want 2>1>3 at 3", got)
	}
}

func TestRoutes(t *testing.T) {
	for _, c := range []struct {
		name     string
		metric   string
		samples  [][]Sample
		down     []string
		src, dst string
		want     string
	}{
		{"direct when it is cheapest", MetricCost, [][]Sample{both("a", "b", 96), both("a", "c", 96), both("c", "b", 96)}, nil, "a", "b", "a>b 96"},
		{"four hops past a costly direct link", MetricCost,
			[][]Sample{both("a", "b", 10), both("b", "c", 10), both("c", "d", 10), both("d", "e", 10), both("a", "e", 100)}, nil, "a", "e", "a>b>c>d>e 40"},
		{"costs have a direction", MetricCost, [][]Sample{{link("a", "b", 500), link("b", "a", 5)}, both("a", "c", 10), both("c", "b", 10)}, nil, "a", "b", "a>c>b 20"},
		{"and back the direct way", MetricCost, [][]Sample{{link("a", "b", 500), link("b", "a", 5)}, both("a", "c", 10), both("c", "b", 10)}, nil, "b", "a", "b>a 5"},
		{"a link measured one way serves both", MetricCost, [][]Sample{{link("a", "b", 7)}}, nil, "b", "a", "b>a 7"},
		// Ties: the fewer hops, then the next hop first in name order.
		{"tie: fewer hops", MetricCost, [][]Sample{both("a", "d", 20), both("a", "b", 10), both("b", "d", 10)}, nil, "a", "d", "a>d 20"},
		{"tie: next hop by name", MetricCost, [][]Sample{both("a", "c", 10), both("c", "d", 10), both("a", "b", 10), both("b", "d", 10)}, nil, "a", "d", "a>b>d 20"},
		{"disconnected", MetricCost, [][]Sample{both("a", "b", 10), both("c", "d", 10)}, nil, "a", "d", "unreachable"},
		{"only through a member that is down", MetricCost, [][]Sample{both("a", "b", 10), both("b", "c", 10)}, []string{"b"}, "a", "c", "unreachable"},
		{"around a member that is down", MetricCost, [][]Sample{both("a", "b", 10), both("b", "c", 10), both("a", "d", 50), both("d", "c", 50)}, []string{"b"}, "a", "c", "a>d>c 100"},
		{"to a member that is down", MetricCost, [][]Sample{both("a", "b", 10)}, []string{"b"}, "a", "b", "unreachable"},
		{"from a member that is down", MetricCost, [][]Sample{both("a", "b", 10)}, []string{"a"}, "a", "b", "unreachable"},
	} {
		g := graph(t, c.metric, c.samples...)
		g.Down(c.down...)
		if got := route(g, c.src, c.dst); got != c.want {
			t.Errorf("%s: %s to %s by %s, want %s", c.name, c.src, c.dst, got, c.want)
		}
	}
}

// Ties are broken the same way whatever order the measurements came in.
func TestRoutesStable(t *testing.T) {
	var samples []Sample
	for _, mid := range []string{"m3", "m1", "m4", "m2"} {
		samples = append(samples, both("a", mid, 10)...)
		samples = append(samples, both(mid, "z", 10)...)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		r.Shuffle(len(samples), func(i, j int) { samples[i], samples[j] = samples[j], samples[i] })
		if got := route(graph(t, MetricCost, samples), "a", "z"); got != "a>m1>z 20" {
			t.Fatalf("a to z by %s, want a>m1>z (the first relay by name)", got)
		}
	}
}

func abw(a, b string, mbps float64) Sample {
	s := link(a, b, 0)
	s.ABW = mbps
	return s
}

// The widest path: the route whose narrowest link has the most
// bandwidth; bandwidth has a direction.
func TestRoutesWidest(t *testing.T) {
	g := graph(t, MetricBandwidth, []Sample{abw("a", "c", 20), abw("a", "b", 100), abw("b", "c", 50), abw("b", "d", 500), abw("d", "c", 40), abw("c", "a", 900)})
	for _, c := range []struct{ src, dst, want string }{
		{"a", "c", "a>b>c 50"}, // not a>b>d>c (40), not direct (20)
		{"c", "a", "c>a 900"},
		{"c", "b", "c>a>b 100"},
		{"d", "a", "d>c>a 40"},
	} {
		if got := route(g, c.src, c.dst); got != c.want {
			t.Errorf("%s to %s by %s, want %s", c.src, c.dst, got, c.want)
		}
	}
	direct := g.From("a")
	if i := slices.IndexFunc(direct, func(r Route) bool { return r.Dst == "c" }); direct[i].Direct != 20 || !direct[i].Better() || direct[i].NextHop() != "b" {
		t.Errorf("a to c: %+v", direct[i])
	}
}

// RTT routes add the pairs' median RTTs; a link without a published cost
// gets the one its RTT, loss and jitter give (linkcost.Default: 96 up to
// 10 ms, the latency term above).
func TestRoutesRTTAndComputedCost(t *testing.T) {
	samples := []Sample{rtt("a", "b", 100), rtt("a", "c", 20), rtt("c", "b", 30), rtt("c", "b", 31), rtt("c", "b", 90)}
	if got := route(graph(t, MetricRTT, samples), "b", "a"); got != "b>c>a 51" {
		t.Errorf("RTT: b to a by %s, want b>c>a at 51 (31, the median of 30, 31 and 90, and 20)", got)
	}
	// Costs: a>b 96+78.5 = 174.5 against a>c>b (96+8.7)+(96+18.3) = 219.1: direct wins.
	if got := route(graph(t, MetricCost, samples), "a", "b"); !strings.HasPrefix(got, "a>b 174.54") {
		t.Errorf("cost: a to b by %s, want direct at 174.55", got)
	}
	if _, err := NewGraph(NewMatrix(samples), "hops", linkcost.Default()); err == nil {
		t.Error("an unknown metric was accepted")
	}
}

// sparse is n nodes in a plane, each measuring 32 others chosen at random
// (RTT from the distance, 1 to 200 ms, loss and jitter from it too).
func sparse(n int) *Matrix {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	x, y := make([]float64, n), make([]float64, n)
	for i := range n {
		x[i], y[i] = r.Float64()*100, r.Float64()*100
	}
	var samples []Sample
	for i := range n {
		for range 32 {
			j := r.IntN(n)
			if j == i {
				continue
			}
			ms := 1 + math.Hypot(x[i]-x[j], y[i]-y[j])
			samples = append(samples, Sample{Src: fmt.Sprintf("n%05d", i), Dst: fmt.Sprintf("n%05d", j), RTT: ms, Loss: ms / 1e4, Jitter: ms / 20,
				ABW: 1000 / ms, DBC: math.NaN(), Cost: math.NaN()})
		}
	}
	return NewMatrix(samples)
}

// BenchmarkRoutesFrom: one node's route table (what a mesh agent
// computes for itself), in meshes of 100, 1,000 and 10,000 members each
// measuring 32 others. BenchmarkRoutesAll: every pair's, 100 and 1,000.
func BenchmarkRoutesFrom(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		g, err := NewGraph(sparse(n), MetricCost, linkcost.Default())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for b.Loop() {
				if len(g.From(g.Nodes[0])) != n-1 {
					b.Fatal("routes missing")
				}
			}
		})
	}
}

func BenchmarkRoutesAll(b *testing.B) {
	for _, n := range []int{100, 1000} {
		g, err := NewGraph(sparse(n), MetricCost, linkcost.Default())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for b.Loop() {
				g.Routes()
			}
		})
	}
}

// Value prices a route chosen earlier under the links as they are now.
func TestRouteValue(t *testing.T) {
	g := graph(t, MetricCost, both("a", "b", 10), both("b", "c", 20), both("a", "c", 100))
	g.Down("d")
	for _, c := range []struct {
		hops []string
		want float64
		ok   bool
	}{
		{[]string{"a", "b", "c"}, 30, true},
		{[]string{"a", "c"}, 100, true},
		{[]string{"a", "x", "c"}, 0, false},
		{[]string{"c", "a", "b"}, 110, true},
		{[]string{"a"}, 0, false},
	} {
		if v, ok := g.Value(c.hops); ok != c.ok || ok && v != c.want {
			t.Errorf("%v: %g, %v; want %g, %v", c.hops, v, ok, c.want, c.ok)
		}
	}
	g.Down("b")
	if _, ok := g.Value([]string{"a", "b", "c"}); ok {
		t.Error("a route through a member that is down has a value")
	}
}
