package meshagent

import (
	"cmp"
	"maps"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/serf/coordinate"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/mesh"
	"github.com/abing-net/abing/netloc"
	"github.com/abing-net/abing/record"
)

// MaxHistory is how many published values of each link the map keeps, for
// abing mesh compare and the API.
const MaxHistory = 64

// linkState is one published link and its recent values.
type linkState struct {
	at   time.Time // when it was last received
	hist []published
}

type published struct {
	at time.Time
	l  Link
}

// pathRow is one node's row on one path.
type pathRow struct {
	coord *coordinate.Coordinate
	iter  uint64
	at    time.Time // when the coordinate was last received
	links map[string]*linkState
}

// member is a serf member as the map knows it.
type member struct {
	addr  netip.Addr // its serf address
	port  uint16     // its reflector's port
	paths map[string]netip.Addr
	alive bool
	since time.Time // of its state
}

// View is the full map a node holds: every member, and every node's row
// as received (its own included). Rows of members that left or failed are
// not shown; links older than the expiry are dropped. Safe for concurrent
// use.
type View struct {
	self    string
	netloc  string        // the path whose coordinates the netloc API serves
	expire  time.Duration // links not refreshed this long are dropped
	mu      sync.Mutex
	members map[string]*member
	rows    map[string]map[string]*pathRow // node → path → row
	version uint64                         // counts the changes, for caches of what is computed from the map
}

// Version changes whenever the map does.
func (v *View) Version() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.version
}

// NewView returns an empty map of node self.
func NewView(self, netlocPath string, expire time.Duration) *View {
	return &View{self: self, netloc: netlocPath, expire: expire, members: map[string]*member{}, rows: map[string]map[string]*pathRow{}}
}

// setMember records a member's state and advertised paths.
func (v *View) setMember(name string, m member) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.members[name] = &m
	v.version++
}

// forget drops a member and its row (serf reaped it).
func (v *View) forget(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.members, name)
	delete(v.rows, name)
	v.version++
}

// known says whether name is a member the map holds.
func (v *View) known(name string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.members[name]
	return ok
}

// count is how many members the map holds, alive or not.
func (v *View) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.members)
}

// size counts the alive members, this node included.
func (v *View) size() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 1
	for _, m := range v.members {
		if m.alive {
			n++
		}
	}
	return n
}

// alive says whether a member is known and alive.
func (v *View) alive(name string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := v.members[name]
	return m != nil && m.alive
}

// Apply upserts a decoded part, received at now. What it keeps is
// bounded by the members: links to a peer that is neither this node nor a
// member are left out (a member publishes links only to members it
// learned of), and a node has at most config.MaxPaths paths.
func (v *View) Apply(p *Part, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.version++
	paths := v.rows[p.Node]
	if paths == nil {
		paths = map[string]*pathRow{}
		v.rows[p.Node] = paths
	}
	r := paths[p.Path]
	if r == nil {
		if len(paths) >= config.MaxPaths {
			return
		}
		r = &pathRow{links: map[string]*linkState{}}
		paths[p.Path] = r
	}
	r.coord, r.iter, r.at = p.Coord, p.Iter, now
	for _, l := range p.Links {
		if _, member := v.members[l.Peer]; !member && l.Peer != v.self {
			continue
		}
		s := r.links[l.Peer]
		if s == nil {
			s = &linkState{}
			r.links[l.Peer] = s
		}
		s.at = now
		if n := len(s.hist); n > 0 && sameLink(s.hist[n-1].l, l) {
			continue // a refresh of the same value
		}
		if len(s.hist) == MaxHistory {
			s.hist = slices.Delete(s.hist, 0, 1)
		}
		s.hist = append(s.hist, published{at: now, l: l})
	}
}

// sameLink compares two links by value.
func sameLink(a, b Link) bool {
	same := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Peer == b.Peer && a.Cost == b.Cost && a.RTT == b.RTT && a.Loss == b.Loss && a.Jitter == b.Jitter && same(a.ABW, b.ABW) && same(a.DBC, b.DBC)
}

// expireLinks drops links older than the expiry, and rows of nodes that
// are not members any more.
func (v *View) expireLinks(now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for node, paths := range v.rows {
		if _, ok := v.members[node]; !ok && node != v.self {
			delete(v.rows, node)
			v.version++
			continue
		}
		for _, r := range paths {
			for peer, s := range r.links {
				if now.Sub(s.at) > v.expire {
					delete(r.links, peer)
					v.version++
				}
			}
		}
	}
}

// shown says whether node's row is part of the map: the node itself, or
// an alive member. Under mu.
func (v *View) shown(node string) bool {
	if node == v.self {
		return true
	}
	m := v.members[node]
	return m != nil && m.alive
}

// Coordinate is node's last published coordinate on path.
func (v *View) Coordinate(node, path string) (*coordinate.Coordinate, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r := v.rows[node][path]; r != nil && v.shown(node) {
		return r.coord, true
	}
	return nil, false
}

// Local is the netloc location of this node (netloc.Source).
func (v *View) Local() netloc.Location {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r := v.rows[v.self][v.netloc]; r != nil {
		return location(r)
	}
	return netloc.Location{}
}

// Nodes are the alive members with a coordinate on the netloc path, most
// recently updated first (netloc.Source).
func (v *View) Nodes() []netloc.Node {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []netloc.Node
	for name, paths := range v.rows {
		r := paths[v.netloc]
		m := v.members[name]
		if r == nil || name == v.self || m == nil || !m.alive {
			continue
		}
		addr := m.paths[v.netloc]
		if !addr.IsValid() {
			addr = m.addr
		}
		out = append(out, netloc.Node{Name: name, Addr: netip.AddrPortFrom(addr, m.port), Location: location(r), UpdatedAt: r.at})
	}
	slices.SortFunc(out, func(a, b netloc.Node) int {
		return cmp.Or(b.UpdatedAt.Compare(a.UpdatedAt), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// location is a row's coordinate as netloc has it: two dimensions (more
// are left out; this mesh's default has two), height and error.
func location(r *pathRow) netloc.Location {
	l := netloc.Location{Height: r.coord.Height, PosErr: r.coord.Error, Iteration: r.iter}
	if len(r.coord.Vec) > 0 {
		l.X1 = r.coord.Vec[0]
	}
	if len(r.coord.Vec) > 1 {
		l.X2 = r.coord.Vec[1]
	}
	return l
}

// Records are the published links of the map newer than since, one
// forward record per published value, from the measuring node (Node) to
// its peer (Target) on the path: what abing mesh compare, relays and
// coords read (abing mesh ... --agent).
func (v *View) Records(since time.Time) []record.Record {
	var out []record.Record
	v.eachPublished(func(node, path, peer string, h published) {
		if h.at.Before(since) {
			return
		}
		cost := h.l.Cost
		out = append(out, record.Record{Time: h.at.UTC(), Node: node, Target: peer, Path: path, Direction: "forward",
			Method: "mesh", RTT: &record.RTT{Avg: h.l.RTT, Jitter: h.l.Jitter}, Loss: h.l.Loss, ABW: h.l.ABW, DBC: h.l.DBC, LinkCost: &cost})
	})
	// Sorted with the lock released: gossip and netloc go on meanwhile.
	slices.SortFunc(out, func(a, b record.Record) int { return keyOf(&a).compare(keyOf(&b)) })
	return out
}

// rttSamples are the published RTTs of the shown links, by path, as the
// mesh analysis takes them.
func (v *View) rttSamples() map[string][]mesh.Sample {
	byPath := map[string][]mesh.Sample{}
	v.eachPublished(func(node, path, peer string, h published) {
		byPath[path] = append(byPath[path], mesh.Sample{Src: node, Dst: peer, RTT: h.l.RTT, Loss: h.l.Loss, ABW: math.NaN(), DBC: math.NaN()})
	})
	return byPath
}

// pathAddr is member name's address on path, "" when it has none (or
// name is "").
func (v *View) pathAddr(name, path string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if m := v.members[name]; m != nil {
		if a, ok := m.paths[path]; ok && a.IsValid() {
			return a.String()
		}
	}
	return ""
}

// routeSamples are the latest published value of every link between
// known nodes, by path, costs included, and the members that are down:
// what the route table is computed from (a member that is down keeps its
// row, so that routes to it and through it say unreachable).
func (v *View) routeSamples() (map[string][]mesh.Sample, []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	byPath := map[string][]mesh.Sample{}
	known := func(name string) bool { _, ok := v.members[name]; return ok || name == v.self }
	for node, paths := range v.rows {
		if !known(node) {
			continue
		}
		for path, r := range paths {
			for peer, s := range r.links {
				if len(s.hist) == 0 || !known(peer) {
					continue
				}
				l := s.hist[len(s.hist)-1].l
				smp := mesh.Sample{Src: node, Dst: peer, RTT: l.RTT, Loss: l.Loss, Jitter: l.Jitter, ABW: math.NaN(), DBC: math.NaN(), Cost: l.Cost}
				if l.ABW != nil {
					smp.ABW = *l.ABW
				}
				byPath[path] = append(byPath[path], smp)
			}
		}
	}
	var down []string
	for name, m := range v.members {
		if !m.alive {
			down = append(down, name)
		}
	}
	return byPath, down
}

// eachPublished calls fn, under the lock, with every published value of
// every link between shown nodes.
func (v *View) eachPublished(fn func(node, path, peer string, h published)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for node, paths := range v.rows {
		if !v.shown(node) {
			continue
		}
		for path, r := range paths {
			for peer, s := range r.links {
				if !v.shown(peer) {
					continue
				}
				for _, h := range s.hist {
					fn(node, path, peer, h)
				}
			}
		}
	}
}

// MapNode is one node of the map as the API shows it.
type MapNode struct {
	Name  string `json:"name"`
	Addr  string `json:"addr,omitempty"`
	Alive bool   `json:"alive"`
	// Since is when a member that is not alive left or failed; it keeps
	// its last coordinates, so that the map can show where it was.
	Since  *time.Time                        `json:"since,omitempty"`
	Paths  map[string]string                 `json:"paths,omitempty"`
	Coords map[string]*coordinate.Coordinate `json:"coordinates,omitempty"` // by path
	Links  map[string][]Link                 `json:"links,omitempty"`       // by path, latest value of each
}

// Map is every known node with its coordinates and latest links, sorted
// by name: what /api/v1/mesh/map answers.
func (v *View) Map() []MapNode {
	v.mu.Lock()
	defer v.mu.Unlock()
	names := map[string]bool{v.self: true}
	for n := range v.members {
		names[n] = true
	}
	var out []MapNode
	for _, name := range slices.Sorted(maps.Keys(names)) {
		n := MapNode{Name: name, Alive: v.shown(name)}
		if m := v.members[name]; m != nil {
			if m.addr.IsValid() {
				n.Addr = m.addr.String()
			}
			n.Paths = map[string]string{}
			for p, a := range m.paths {
				n.Paths[p] = a.String()
			}
			if !n.Alive && !m.since.IsZero() {
				since := m.since.UTC()
				n.Since = &since
			}
		}
		for path, r := range v.rows[name] {
			if n.Coords == nil {
				n.Coords, n.Links = map[string]*coordinate.Coordinate{}, map[string][]Link{}
			}
			n.Coords[path] = r.coord // a member that is down keeps its last
			if n.Alive {
				for _, peer := range slices.Sorted(maps.Keys(r.links)) {
					if s := r.links[peer]; len(s.hist) > 0 && v.shown(peer) {
						n.Links[path] = append(n.Links[path], s.hist[len(s.hist)-1].l)
					}
				}
			}
		}
		out = append(out, n)
	}
	return out
}

// MapRelayGain is the least gain, in ms, of the relay shortcuts the map
// shows: below it, a shortcut is within the RTTs' own noise.
const MapRelayGain = 1.0

// Relay is a relay shortcut as /api/v1/mesh shows it.
type Relay struct {
	Path   string  `json:"path"`
	A      string  `json:"a"`
	B      string  `json:"b"`
	Relay  string  `json:"relay"`
	Direct float64 `json:"direct_ms"`
	Gain   float64 `json:"gain_ms"`
}

// Relays are the relay shortcuts of each path, from the links' published
// RTTs (package mesh: the medians of their recent values), with a gain
// above MapRelayGain.
func (v *View) Relays() []Relay {
	byPath := v.rttSamples()
	out := []Relay{}
	for _, path := range slices.Sorted(maps.Keys(byPath)) {
		shortcuts, _ := mesh.Relays(mesh.NewMatrix(byPath[path]), MapRelayGain)
		for _, s := range shortcuts {
			out = append(out, Relay{Path: path, A: s.A, B: s.B, Relay: s.Relay, Direct: s.Direct, Gain: s.Gain})
		}
	}
	return out
}
