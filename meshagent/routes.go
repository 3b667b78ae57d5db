package meshagent

import (
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/linkcost"
	"github.com/abing-net/abing/mesh"
)

// The route table follows Babel's discipline (RFC 8966 and babeld), with
// the numbers of the agent's configuration (config.Routes): a route is
// replaced only by one better on both the latest and the smoothed metric
// by the margin (of the current route's value, and at least margin_abs),
// and a route just installed is kept for the hold, so that noise in the
// costs never flaps a route. A route whose links are gone, or that crosses
// a member that is down, is replaced at once. Until the direct link to a
// destination is in the map (measured by either end), or this node's
// measurement of it went unanswered, the route to it is provisional: it
// follows the best route at once and raises nothing, for an agent that
// starts (or a member that joins) knows others' links before its own, and
// would otherwise change routes, loudly, as its own links arrive.

// RouteChange is a change of the route to one destination on one path
// network: what a route hook gets.
type RouteChange struct {
	Path, Dst          string
	OldHops, NewHops   []string // nil: unreachable
	OldValue, NewValue float64  // NaN: unreachable
	Reason             string   // better, broken (its links or a hop went), reachable, unreachable
	Flap               bool     // back to the route replaced within the flap window
	At                 time.Time
}

// Router keeps this node's route table: per path network and destination,
// the route chosen under the discipline above. Safe for concurrent use.
type Router struct {
	self string
	p    config.Routes
	mu   sync.Mutex
	tab  map[routeKey]*routeState
	// changes and flaps count the table's changes since the start.
	changes, flaps uint64
}

// ForgetRoutes is how long a destination stays in the table while no
// graph has it (a member gone from the mesh): it is unreachable, then
// forgotten, so that the table holds the members of the last hour, not
// every name ever seen.
const ForgetRoutes = time.Hour

type routeKey struct{ path, dst string }

// compareKeys orders keys by path network, then destination: the table's
// order, and the order in which Update reports destinations gone.
func compareKeys(a, b routeKey) int {
	if c := strings.Compare(a.path, b.path); c != 0 {
		return c
	}
	return strings.Compare(a.dst, b.dst)
}

type routeState struct {
	// installed: the route is under the discipline; until then it is
	// provisional (see above) and follows the best route silently.
	installed bool
	// unanswered: this node measured its path to the destination without
	// an answer, which settles the route as a direct link would.
	unanswered bool
	seen       time.Time // last in a graph (or made)
	hops       []string  // nil: unreachable
	value      float64   // latest
	since      time.Time
	smooth     map[string]*smoothed // by route (hops joined): the installed one and the best candidate
	prev       []string             // the route replaced last, and when
	replaced   time.Time
}

// smoothed is a route's smoothed value v at at, and its latest value,
// which holds from at on.
type smoothed struct {
	v, last float64
	at      time.Time
}

// NewRouter is the route table of node self.
func NewRouter(self string, p config.Routes) *Router {
	return &Router{self: self, p: p, tab: map[routeKey]*routeState{}}
}

// Unanswered notes that this node measured its path to dst on path without
// an answer (at now): the route to dst settles without a direct link.
func (r *Router) Unanswered(path, dst string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state(routeKey{path, dst}, now).unanswered = true
}

// state is k's entry of the table, made at now if there was none. Under mu.
func (r *Router) state(k routeKey, now time.Time) *routeState {
	st := r.tab[k]
	if st == nil {
		st = &routeState{value: math.NaN(), smooth: map[string]*smoothed{}, since: now, seen: now}
		r.tab[k] = st
	}
	return st
}

// better says whether a beats b by the margin under the metric.
func (r *Router) better(a, b float64) bool {
	m := max(r.p.MarginAbs, r.p.Margin*math.Abs(b))
	if r.p.Metric == mesh.MetricBandwidth {
		return a > b+m
	}
	return a < b-m
}

// smooth brings the smoothed value of route key to now, the value it had
// since the last call having held until now, takes v as its value from
// now on, and returns the smoothed value: a value just seen has no weight
// yet, and one that lasts the time constant has most of it.
func (r *Router) smooth(st *routeState, key string, v float64, now time.Time) float64 {
	s := st.smooth[key]
	if s == nil {
		s = &smoothed{v: v, last: v, at: now}
		st.smooth[key] = s
		return v
	}
	if dt := now.Sub(s.at); dt > 0 {
		s.v += (1 - math.Exp(-dt.Seconds()/time.Duration(r.p.Smooth).Seconds())) * (s.last - s.v)
		s.at = now
	}
	s.last = v
	return s.v
}

// Update recomputes the table from the links of every path network
// (byPath: the latest published value of each, costs included) with the
// members that are down, at now, and returns the changes, by path and
// destination. A provisional route (see above) changes without a
// report, and its settling is none.
func (r *Router) Update(byPath map[string][]mesh.Sample, down []string, now time.Time) []RouteChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []RouteChange
	seen := map[routeKey]bool{}
	for _, path := range slices.Sorted(maps.Keys(byPath)) {
		g, err := mesh.NewGraph(mesh.NewMatrix(byPath[path]), r.p.Metric, linkcost.Default())
		if err != nil {
			continue // a metric the parameters were checked for
		}
		g.Down(down...)
		for _, best := range g.From(r.self) {
			k := routeKey{path, best.Dst}
			seen[k] = true
			if c, ok := r.decide(g, k, best, now); ok {
				out = append(out, c)
			}
		}
	}
	// Destinations no longer in any graph: unreachable, and forgotten
	// after ForgetRoutes.
	for _, k := range slices.SortedFunc(maps.Keys(r.tab), compareKeys) {
		st := r.tab[k]
		switch {
		case seen[k]:
		case st.hops == nil:
			if now.Sub(st.seen) > ForgetRoutes {
				delete(r.tab, k)
			}
		case !st.installed:
			st.hops, st.value = nil, math.NaN() // provisional: silently
		default:
			out = append(out, r.install(k, st, nil, math.NaN(), "unreachable", now))
		}
	}
	return out
}

// decide applies the discipline to the route to k, best being the best
// route now; it reports the change, if any.
func (r *Router) decide(g *mesh.Graph, k routeKey, best mesh.Route, now time.Time) (RouteChange, bool) {
	st := r.state(k, now)
	st.seen = now
	if !st.installed {
		_, own := g.Value([]string{r.self, k.dst})
		st.hops, st.value, st.since = nil, math.NaN(), now
		clear(st.smooth)
		if best.Reachable {
			st.hops, st.value = best.Hops, best.Value
			r.smooth(st, strings.Join(best.Hops, ">"), best.Value, now)
		}
		st.installed = best.Reachable && (own || st.unanswered)
		return RouteChange{}, false
	}
	bestKey := strings.Join(best.Hops, ">")
	if st.hops == nil {
		if !best.Reachable {
			return RouteChange{}, false
		}
		return r.install(k, st, best.Hops, best.Value, "reachable", now), true
	}
	cur, ok := g.Value(st.hops)
	if !ok {
		if !best.Reachable {
			return r.install(k, st, nil, math.NaN(), "unreachable", now), true
		}
		return r.install(k, st, best.Hops, best.Value, "broken", now), true
	}
	st.value = cur
	curKey := strings.Join(st.hops, ">")
	curSmooth := r.smooth(st, curKey, cur, now)
	if !best.Reachable || bestKey == curKey {
		return RouteChange{}, false
	}
	candSmooth := r.smooth(st, bestKey, best.Value, now)
	for key := range st.smooth { // the installed route and the best candidate only
		if key != curKey && key != bestKey {
			delete(st.smooth, key)
		}
	}
	if r.better(best.Value, cur) && r.better(candSmooth, curSmooth) && now.Sub(st.since) >= time.Duration(r.p.Hold) {
		return r.install(k, st, best.Hops, best.Value, "better", now), true
	}
	return RouteChange{}, false
}

// install makes hops (nil: unreachable) the route to k, and says so.
func (r *Router) install(k routeKey, st *routeState, hops []string, v float64, reason string, now time.Time) RouteChange {
	c := RouteChange{Path: k.path, Dst: k.dst, OldHops: st.hops, NewHops: hops, OldValue: st.value, NewValue: v, Reason: reason, At: now}
	if st.hops == nil {
		c.OldValue = math.NaN()
	}
	c.Flap = st.prev != nil && slices.Equal(st.prev, hops) && now.Sub(st.replaced) < time.Duration(r.p.FlapWindow)
	st.prev, st.replaced = st.hops, now
	st.hops, st.value, st.since = hops, v, now
	clear(st.smooth)
	if hops != nil {
		r.smooth(st, strings.Join(hops, ">"), v, now)
	}
	r.changes++
	if c.Flap {
		r.flaps++
	}
	return c
}

// Route is one entry of the table, as /api/v1/mesh/routes shows it.
type Route struct {
	Path      string `json:"path"`
	Dst       string `json:"destination"`
	Reachable bool   `json:"reachable"`
	// Provisional: not yet under the discipline (the direct link to the
	// destination is not in the map yet).
	Provisional bool      `json:"provisional,omitempty"`
	NextHop     string    `json:"next_hop,omitempty"`
	Hops        []string  `json:"hops,omitempty"`
	Value       *float64  `json:"value,omitempty"`
	Smoothed    *float64  `json:"smoothed,omitempty"`
	Since       time.Time `json:"since"`
}

// Table is the route table, by path and destination.
func (r *Router) Table() []Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []Route{}
	for k, st := range r.tab {
		e := Route{Path: k.path, Dst: k.dst, Reachable: st.hops != nil, Provisional: !st.installed, NextHop: mesh.NextHop(st.hops), Hops: st.hops, Since: st.since.UTC()}
		if st.hops != nil {
			v := st.value
			e.Value = &v
			if s := st.smooth[strings.Join(st.hops, ">")]; s != nil {
				sv := s.v
				e.Smoothed = &sv
			}
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Route) int { return compareKeys(routeKey{a.Path, a.Dst}, routeKey{b.Path, b.Dst}) })
	return out
}

// Counts are the table's changes and flaps since the start.
func (r *Router) Counts() (changes, flaps uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changes, r.flaps
}
