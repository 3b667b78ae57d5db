package meshagent

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/serf/serf"

	dto "github.com/prometheus/client_model/go"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/record"
)

func newTestAgent(t testing.TB) *Agent {
	t.Helper()
	cfg, err := config.ParseAgent([]byte("node: a\nagent: {paths: {direct: 127.0.0.1}, bind: '127.0.0.1:7946'}\n"), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// rec is a forward record of a's run to peer; cost, when not nil, is the
// link cost the monitor published with it (past its thresholds).
func rec(peer string, rtt float64, cost *float64) record.Record {
	return record.Record{Node: "a", Target: peer, Path: "direct", Direction: "forward", RTT: &record.RTT{Min: rtt, Avg: rtt}, LinkCost: cost}
}

func f(v float64) *float64 { return &v }

// TestPublication: a link goes out when the monitor published its cost
// (the first, and each past the thresholds), not on every run; the
// coordinate when it moved past coord_move; the whole row at a refresh.
func TestPublication(t *testing.T) {
	a := newTestAgent(t)
	peers := func(p Part) []string {
		var out []string
		for _, l := range p.Links {
			out = append(out, l.Peer)
		}
		return out
	}
	now := time.Now()
	pub := func(full bool) (Part, bool) {
		now = now.Add(time.Minute) // within the gossip budget
		outs, _ := a.collect(full, now)
		if len(outs) == 0 {
			return Part{}, false
		}
		return outs[0].part, true
	}
	// Nothing measured yet: the coordinate goes out once (at the origin).
	if p, ok := pub(false); !ok || len(p.Links) != 0 || p.Coord == nil {
		t.Fatalf("first publication: %+v %v", p, ok)
	}
	if p, ok := pub(false); ok {
		t.Fatalf("nothing changed, yet published %+v", p)
	}
	a.Observe([]record.Record{rec("b", 10, f(100)), rec("c", 20, f(120))})
	p, ok := pub(false)
	if !ok || len(p.Links) != 2 || p.Links[0].Peer != "b" || p.Links[0].Cost != 100 || p.Links[1].RTT != 20 {
		t.Fatalf("first costs: %+v", p)
	}
	// Runs whose cost stayed within the thresholds: nothing to publish;
	// the link keeps its published cost and takes the new RTT.
	a.Observe([]record.Record{rec("b", 11, nil), rec("c", 21, nil)})
	if p, ok := pub(false); ok {
		t.Fatalf("no cost past its threshold, yet published %v", peers(p))
	}
	a.Observe([]record.Record{rec("c", 60, f(200))})
	if p, ok := pub(false); !ok || len(p.Links) != 1 || p.Links[0].Peer != "c" || p.Links[0].Cost != 200 {
		t.Fatalf("c's cost moved: %+v", p)
	}
	// A refresh sends every link, with the latest values.
	if p, ok := pub(true); !ok || len(p.Links) != 2 || p.Links[0].RTT != 11 || p.Links[0].Cost != 100 {
		t.Fatalf("refresh: %+v", p)
	}
	// Coordinates move only against a peer whose coordinate is known.
	if a.iters["direct"] != 0 {
		t.Fatalf("updated without a peer's coordinate: %d", a.iters["direct"])
	}
	a.view.setMember("b", member{alive: true})
	a.view.Apply(&Part{Node: "b", Path: "direct", Coord: coord(0.05, 0)}, now)
	for range 5 {
		a.Observe([]record.Record{rec("b", 100, nil)})
	}
	if a.iters["direct"] != 5 {
		t.Fatalf("%d coordinate updates, want 5", a.iters["direct"])
	}
	p, ok = pub(false)
	if !ok || len(p.Links) != 0 || p.Iter != 5 {
		t.Fatalf("the coordinate moved: %+v %v", p, ok)
	}
	// b sits 50 ms from the origin; five samples of 100 ms push a away.
	if d := coord(0.05, 0).DistanceTo(p.Coord); d < 60*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("after five 100 ms samples the coordinate predicts %v to b", d)
	}
	// A run with no answer is no link.
	a.Observe([]record.Record{{Node: "a", Target: "d", Path: "direct", Direction: "forward", Error: "timeout", LinkCost: f(1)}})
	if p, ok := pub(false); ok {
		t.Fatalf("a failed run published %v", peers(p))
	}
}

// TestView: rows of members that fail are not shown; links expire; the
// records and the netloc nodes come from what is shown.
func TestView(t *testing.T) {
	v := NewView("a", "direct", time.Minute)
	now := time.Now()
	for _, n := range []string{"b", "c"} {
		v.setMember(n, member{alive: true, addr: netip.MustParseAddr("198.18.0.2"), port: 8765})
	}
	v.Apply(&Part{Node: "a", Path: "direct", Coord: coord(0, 0), Links: []Link{{Peer: "b", RTT: 5}, {Peer: "c", RTT: 7}}}, now)
	v.Apply(&Part{Node: "b", Path: "direct", Coord: coord(0.005, 0), Iter: 4, Links: []Link{{Peer: "a", RTT: 5}}}, now)
	v.Apply(&Part{Node: "b", Path: "direct", Coord: coord(0.005, 0), Iter: 5, Links: []Link{{Peer: "a", RTT: 6}}}, now.Add(time.Second))
	v.Apply(&Part{Node: "c", Path: "direct", Coord: coord(0, 0.007), Links: []Link{{Peer: "a", RTT: 7}}}, now)
	if recs := v.Records(time.Time{}); len(recs) != 5 {
		t.Errorf("%d records, want 5 (b's link to a twice)", len(recs))
	}
	if recs := v.Records(now.Add(time.Second)); len(recs) != 1 || recs[0].Node != "b" || recs[0].RTT.Avg != 6 {
		t.Errorf("records since: %+v", recs)
	}
	nodes := v.Nodes()
	if len(nodes) != 2 || nodes[0].Name != "b" || nodes[0].Location.Iteration != 5 || nodes[0].Addr.String() != "198.18.0.2:8765" {
		t.Errorf("nodes %+v", nodes)
	}
	v.setMember("c", member{alive: false})
	if nodes := v.Nodes(); len(nodes) != 1 {
		t.Errorf("c failed, yet %+v", nodes)
	}
	for _, r := range v.Records(time.Time{}) {
		if r.Node == "c" || r.Target == "c" {
			t.Errorf("a record of failed c: %+v", r)
		}
	}
	if m := v.Map(); len(m) != 3 || !m[0].Alive || m[2].Alive || len(m[0].Links["direct"]) != 1 {
		t.Errorf("map %+v", m)
	}
	// Links not refreshed within the expiry go; b's was refreshed later.
	v.expireLinks(now.Add(time.Minute + time.Millisecond))
	if recs := v.Records(time.Time{}); len(recs) != 2 {
		t.Errorf("after expiry: %+v", recs)
	}
}

// TestBudget: rows take at most their share of the gossip, which shrinks
// with the members; the whole row goes out less often when it must; what
// the budget does not admit now waits, and is not lost.
func TestBudget(t *testing.T) {
	b := newBudget(profile("lan"), 1)
	// LAN: 3 packets every 200 ms; 4 members retransmit 4 × 1 times.
	for _, tc := range []struct {
		n    int
		rate float64
	}{{4, 0.5 * 15 / 4 / 4}, {100, 0.5 * 15 / 12 / 100}, {1000, 0.5 * 15 / 16 / 1000}} {
		if got := b.Rate(tc.n); math.Abs(got-tc.rate) > 1e-12 {
			t.Errorf("%d members: %g parts/s, want %g", tc.n, got, tc.rate)
		}
	}
	log := slog.New(slog.DiscardHandler)
	if r := b.refresh(4, 10*time.Minute, log); r != 10*time.Minute {
		t.Errorf("4 members: refresh %v", r)
	}
	b.fullParts = 10 // a row of 100 links
	if r := b.refresh(100, 10*time.Minute, log); r < 50*time.Minute || r > 55*time.Minute {
		t.Errorf("100 members, 10 parts: refresh %v, want 2 × 10 parts at 1/160 parts/s", r)
	}
	// The agent: a change the budget does not admit waits for it.
	a := newTestAgent(t)
	a.view.setMember("b", member{alive: true})
	a.budget.set(100)
	now := time.Now()
	a.Observe([]record.Record{rec("b", 10, f(100))})
	if outs, ok := a.collect(false, now); !ok || len(outs) != 1 {
		t.Fatalf("the first part: %v %v", outs, ok)
	}
	a.Observe([]record.Record{rec("b", 30, f(300))})
	if outs, ok := a.collect(false, now.Add(time.Second)); ok || len(outs) != 0 {
		t.Fatalf("a second part a second later among 100 members: %v %v", outs, ok)
	}
	if outs, ok := a.collect(false, now.Add(200*time.Second)); !ok || len(outs) != 1 || outs[0].part.Links[0].Cost != 300 {
		t.Fatalf("once the budget admits it: %+v %v", outs, ok)
	}
}

// TestMembers: serf's member events as the agent takes them: a member that
// is not an agent is ignored; failure raises down (critical), return
// clears it, leave raises a warning, reaping forgets the member and ends
// its alarm; links to peers nobody knows are not kept.
func TestMembers(t *testing.T) {
	a := newTestAgent(t)
	tags := map[string]string{"abing": "1", "port": "8176", "paths": "direct=198.51.100.7,overlay=fd00::7"}
	m := serf.Member{Name: "b", Addr: net.ParseIP("198.51.100.7"), Tags: tags, Status: serf.StatusAlive}
	now := time.Now()
	a.member(serf.Member{Name: "x", Tags: map[string]string{"role": "consul"}, Status: serf.StatusAlive}, serf.EventMemberJoin, now)
	a.member(m, serf.EventMemberJoin, now)
	if ts := a.targetList(); len(ts) != 1 || ts[0].Name != "b" || ts[0].Paths["direct"] != "198.51.100.7:8176" || len(ts[0].Paths) != 1 {
		t.Fatalf("targets %+v", ts)
	}
	m.Status = serf.StatusFailed
	a.member(m, serf.EventMemberFailed, now)
	m.Status = serf.StatusAlive
	a.member(m, serf.EventMemberJoin, now.Add(time.Minute))
	m.Status = serf.StatusLeft
	a.member(m, serf.EventMemberLeave, now.Add(2*time.Minute))
	a.member(m, serf.EventMemberReap, now.Add(25*time.Hour))
	var got []string
	for _, al := range a.alarms {
		got = append(got, fmt.Sprintf("%s %s %s %s", al.Target, al.Severity, al.Status(), al.Cleared))
	}
	want := []string{"b critical firing ", "b critical resolved up", "b warning firing ", "b warning resolved forgotten"}
	if !slices.Equal(got, want) {
		t.Errorf("alarms %q, want %q", got, want)
	}
	if ts := a.targetList(); len(ts) != 0 {
		t.Errorf("targets after reaping %+v", ts)
	}
	// A leave that comes after serf's failure detector declared the
	// member dead (the two race when a member leaves): it left, a warning.
	a.alarms = nil
	m.Status = serf.StatusAlive
	a.member(m, serf.EventMemberJoin, now)
	m.Status = serf.StatusFailed
	a.member(m, serf.EventMemberFailed, now.Add(time.Second))
	m.Status = serf.StatusLeft
	a.member(m, serf.EventMemberLeave, now.Add(time.Second))
	got = nil
	for _, al := range a.alarms {
		got = append(got, fmt.Sprintf("%s %s %s %s", al.Target, al.Severity, al.Status(), al.Cleared))
	}
	if want := []string{"b critical firing ", "b critical resolved left", "b warning firing "}; !slices.Equal(got, want) {
		t.Errorf("a leave after a failure: alarms %q, want %q", got, want)
	}
	// Links to nobody the map knows are not kept.
	a.view.setMember("c", member{alive: true})
	a.view.Apply(&Part{Node: "c", Path: "direct", Coord: coord(0, 0), Links: []Link{{Peer: "a"}, {Peer: "ghost"}}}, now)
	if recs := a.view.Records(time.Time{}); len(recs) != 1 || recs[0].Target != "a" {
		t.Errorf("records %+v", recs)
	}
}

// TestMapRelays: the map's relay shortcuts come from the published RTTs:
// a–c is slow, through b it is fast.
func TestMapRelays(t *testing.T) {
	v := NewView("a", "direct", time.Hour)
	now := time.Now()
	for _, n := range []string{"b", "c"} {
		v.setMember(n, member{alive: true})
	}
	v.Apply(&Part{Node: "a", Path: "direct", Coord: coord(0, 0), Links: []Link{{Peer: "b", RTT: 5}, {Peer: "c", RTT: 50}}}, now)
	v.Apply(&Part{Node: "b", Path: "direct", Coord: coord(0, 0), Links: []Link{{Peer: "a", RTT: 5}, {Peer: "c", RTT: 5}}}, now)
	v.Apply(&Part{Node: "c", Path: "direct", Coord: coord(0, 0), Links: []Link{{Peer: "a", RTT: 50}, {Peer: "b", RTT: 5}}}, now)
	rs := v.Relays()
	if len(rs) != 1 || rs[0].A != "a" || rs[0].B != "c" || rs[0].Relay != "b" || rs[0].Gain != 40 || rs[0].Path != "direct" {
		t.Errorf("relays %+v", rs)
	}
}

// An agent takes at most MaxMembers members into its map and its targets;
// the ones beyond are ignored with the reason, and a member it holds
// already is still followed.
func TestMaxMembers(t *testing.T) {
	a := newTestAgent(t)
	now := time.Now()
	member := func(i int) serf.Member {
		return serf.Member{Name: fmt.Sprintf("m%04d", i), Addr: net.IPv4(198, 18, byte(i/250), byte(1+i%250)),
			Tags: map[string]string{"abing": "1", "port": "8176", "paths": fmt.Sprintf("direct=198.18.%d.%d", i/250, 1+i%250)}, Status: serf.StatusAlive}
	}
	for i := range MaxMembers + 5 {
		a.member(member(i), serf.EventMemberJoin, now)
	}
	if n := len(a.targetList()); n != MaxMembers {
		t.Errorf("%d targets from %d members, want %d", n, MaxMembers+5, MaxMembers)
	}
	if why := a.ignored[member(MaxMembers).Name]; !strings.Contains(why, "1000 members") {
		t.Errorf("the member beyond the cap ignored because %q", why)
	}
	m := member(0)
	m.Status = serf.StatusFailed
	a.member(m, serf.EventMemberFailed, now)
	if len(a.alarms) != 1 {
		t.Errorf("a known member's failure at the cap: %d alarms", len(a.alarms))
	}
}

// TestForgedCoordinates: rows forged under a peer's name with a
// coordinate seconds away (what a holder of the gossip key can publish)
// do not drag this node's coordinate while its other peers agree with
// their RTTs; and a node whose own coordinate is the wrong one (all its
// peers disagree) takes their samples and finds its place again: the
// refusal locks nothing out.
func TestForgedCoordinates(t *testing.T) {
	const rtt = 1.0 // ms, every path
	dist := func(a *Agent) time.Duration {
		return a.clients["direct"].GetCoordinate().DistanceTo(coord(0, 0))
	}
	rounds := func(a *Agent, n int, forge bool) {
		now := time.Now()
		for i := range n {
			for _, p := range []string{"b", "c", "d"} {
				c := coord(0, 0)
				if forge && p == "b" && i%2 == 0 {
					c = coord(maxCoord, -maxCoord) // a forged row; b's own comes between
				}
				a.view.Apply(&Part{Node: p, Path: "direct", Coord: c}, now)
				a.Observe([]record.Record{rec(p, rtt, nil)})
			}
		}
	}
	newAgent := func() *Agent {
		a := newTestAgent(t)
		for _, p := range []string{"b", "c", "d"} {
			a.view.setMember(p, member{alive: true})
		}
		return a
	}
	a := newAgent()
	rounds(a, 200, true)
	if d := dist(a); d > 20*time.Millisecond {
		t.Errorf("forged rows of b: a's coordinate %v from its peers (RTT %g ms)", d, rtt)
	}
	var m dto.Metric
	if err := a.metrics.coordRefused.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n < 90 {
		t.Errorf("%g samples refused, want b's 100 forged ones", n)
	}
	// A node whose own coordinate was poisoned before: every sample
	// disagrees, and every one is taken.
	a = newAgent()
	a.clients["direct"].SetCoordinate(coord(maxCoord, maxCoord))
	rounds(a, 200, false)
	if d := dist(a); d > 20*time.Millisecond {
		t.Errorf("a poisoned node stays %v from its honest peers", d)
	}
}
