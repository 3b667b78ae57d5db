package meshagent

import (
	"encoding/json"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/mesh"
	"github.com/abing-net/abing/notify"
	"github.com/abing-net/abing/record"
)

// costLinks are the published costs of node a's mesh, both ways: a–b, b–c and
// a–c, the last at direct.
func costLinks(direct float64) map[string][]mesh.Sample {
	var s []mesh.Sample
	for _, l := range []struct {
		x, y string
		c    float64
	}{{"a", "b", 10}, {"b", "c", 10}, {"a", "c", direct}} {
		for _, d := range [][2]string{{l.x, l.y}, {l.y, l.x}} {
			s = append(s, mesh.Sample{Src: d[0], Dst: d[1], RTT: math.NaN(), Loss: math.NaN(), Jitter: math.NaN(), ABW: math.NaN(), DBC: math.NaN(), Cost: l.c})
		}
	}
	return map[string][]mesh.Sample{"direct": s}
}

// toC is a's route to c and the changes so far, as "a>c".
func toC(r *Router) string {
	for _, e := range r.Table() {
		if e.Dst == "c" {
			if !e.Reachable {
				return "unreachable"
			}
			return strings.Join(e.Hops, ">")
		}
	}
	return "none"
}

// run feeds the router the direct cost of each second from t0 and
// returns the changes.
func run(r *Router, t0 time.Time, from int, costs []float64, down ...string) []RouteChange {
	var out []RouteChange
	for i, c := range costs {
		out = append(out, r.Update(costLinks(c), down, t0.Add(time.Duration(from+i)*time.Second))...)
	}
	return out
}

func TestRouterDiscipline(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	repeat := func(v float64, n int) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	r := NewRouter("a", config.DefaultAgent().Routes)
	// Installed at first sight, without a change: direct (15 < 20).
	if c := run(r, t0, 0, []float64{15}); len(c) != 0 || toC(r) != "a>c" {
		t.Fatalf("first sight: %v, route %s", c, toC(r))
	}
	// The direct cost jumps to 50 for a second, then back: the smoothed
	// metric hardly moves, and nothing changes.
	if c := run(r, t0, 40, []float64{50, 15, 15}); len(c) != 0 || toC(r) != "a>c" {
		t.Errorf("a one-second spike: %+v, route %s", c, toC(r))
	}
	// Noise around the alternative's cost (20 ± 0.8): within the margin.
	if c := run(r, t0, 50, []float64{20.8, 19.2, 20.5, 19.5, 20.8, 19.3, 20.1, 19.9}); len(c) != 0 {
		t.Errorf("noise within the margin: %+v", c)
	}
	// Settled at 15 again, then a lasting change to 50: once the smoothed
	// metric follows, one switch to a>b>c, and no more while it lasts.
	run(r, t0, 60, repeat(15, 20))
	c := run(r, t0, 80, repeat(50, 60))
	if len(c) != 1 || c[0].Reason != "better" || strings.Join(c[0].NewHops, ">") != "a>b>c" || c[0].OldValue != 50 || c[0].NewValue != 20 || c[0].Flap {
		t.Fatalf("a lasting change: %+v", c)
	}
	if took := c[0].At.Sub(t0.Add(80 * time.Second)); took < 2*time.Second || took > 20*time.Second {
		t.Errorf("switched %v after the change, want once the smoothed metric followed (seconds, not at once)", took)
	}
	// Back to 15 at once: the new route is held for 30 s before the
	// discipline lets it go; then one change back, a flap (within 5 min).
	switched := c[0].At
	c = run(r, t0, 140, repeat(15, 60))
	if len(c) != 1 || strings.Join(c[0].NewHops, ">") != "a>c" || !c[0].Flap || c[0].At.Sub(switched) < 30*time.Second {
		t.Fatalf("back: %+v (switched at %v)", c, switched)
	}
	if changes, flaps := r.Counts(); changes != 2 || flaps != 1 {
		t.Errorf("counts: %d changes, %d flaps", changes, flaps)
	}
	// A link of the route goes: replaced at once, hold or not.
	r.Update(costLinks(15), nil, t0.Add(201*time.Second))
	broken := costLinks(15)
	broken["direct"] = broken["direct"][:4] // a–c gone both ways
	c = r.Update(broken, nil, t0.Add(202*time.Second))
	if len(c) != 1 || c[0].Reason != "broken" || strings.Join(c[0].NewHops, ">") != "a>b>c" {
		t.Errorf("a link gone: %+v", c)
	}
	// b goes down: c is unreachable (a–c is gone too), and said so.
	c = r.Update(broken, []string{"b"}, t0.Add(203*time.Second))
	if len(c) != 2 || c[0].Dst != "b" || c[0].Reason != "unreachable" || c[1].Dst != "c" || c[1].NewHops != nil || !math.IsNaN(c[1].NewValue) {
		t.Errorf("b down: %+v", c)
	}
	if toC(r) != "unreachable" {
		t.Errorf("table: c by %s", toC(r))
	}
	// b back, a–c back: c reachable again, by the best route.
	c = r.Update(costLinks(15), nil, t0.Add(204*time.Second))
	if len(c) != 2 || c[1].Reason != "reachable" || strings.Join(c[1].NewHops, ">") != "a>c" {
		t.Errorf("back up: %+v", c)
	}
}

// Until the direct link to a destination is in the map, its route is
// provisional: it follows the best route at once, without the hold, and
// raises nothing, nor does it count as the route a later change replaced
// (no flap); the direct link settles it, silently, and from then on the
// discipline holds. A measurement without an answer settles it too, and a
// provisional route that goes is unreachable silently.
func TestRouterProvisional(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	r := NewRouter("a", config.DefaultAgent().Routes)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	withoutAC := func(direct float64) map[string][]mesh.Sample {
		l := costLinks(direct)
		l["direct"] = l["direct"][:4] // a–b and b–c only
		return l
	}
	provisional := func() bool {
		for _, e := range r.Table() {
			if e.Dst == "c" {
				return e.Provisional
			}
		}
		return false
	}
	// Others' links first: a>b>c, provisional.
	if c := r.Update(withoutAC(0), nil, at(0)); len(c) != 0 || toC(r) != "a>b>c" || !provisional() {
		t.Fatalf("before the direct link: %+v, route %s, provisional %v", c, toC(r), provisional())
	}
	// The direct link arrives a second later, cheaper: taken at once (no
	// 30 s hold), silently, and settled.
	if c := r.Update(costLinks(15), nil, at(1)); len(c) != 0 || toC(r) != "a>c" || provisional() {
		t.Fatalf("the direct link: %+v, route %s, provisional %v", c, toC(r), provisional())
	}
	// A lasting change to 50 switches to a>b>c once, loudly, and it is no
	// flap: the provisional a>b>c was never a route the discipline
	// replaced.
	c := run(r, t0, 40, slices.Repeat([]float64{50}, 60))
	if len(c) != 1 || c[0].Reason != "better" || strings.Join(c[0].NewHops, ">") != "a>b>c" || c[0].Flap {
		t.Fatalf("a lasting change after settling: %+v", c)
	}
	if changes, flaps := r.Counts(); changes != 1 || flaps != 0 {
		t.Errorf("counts: %d changes, %d flaps", changes, flaps)
	}

	// A destination reached only through others, whose direct path does
	// not answer: provisional until the unanswered measurement, then
	// settled; a provisional route that goes is unreachable silently.
	r = NewRouter("a", config.DefaultAgent().Routes)
	if c := r.Update(withoutAC(0), nil, at(0)); len(c) != 0 || !provisional() {
		t.Fatalf("before the measurement: %+v, provisional %v", c, provisional())
	}
	// (b, whose direct link is there, is settled: its changes are said.)
	toCOnly := func(cs []RouteChange) []RouteChange {
		return slices.DeleteFunc(cs, func(c RouteChange) bool { return c.Dst != "c" })
	}
	if c := toCOnly(r.Update(withoutAC(0), []string{"b"}, at(1))); len(c) != 0 || toC(r) != "unreachable" {
		t.Errorf("a provisional route gone: %+v, route %s", c, toC(r))
	}
	r.Unanswered("direct", "c", at(2))
	if c := toCOnly(r.Update(withoutAC(0), nil, at(2))); len(c) != 0 || toC(r) != "a>b>c" || provisional() {
		t.Fatalf("settled by an unanswered measurement: %+v, route %s, provisional %v", c, toC(r), provisional())
	}
	if c := toCOnly(r.Update(withoutAC(0), []string{"b"}, at(3))); len(c) != 1 || c[0].Reason != "unreachable" {
		t.Errorf("a settled route gone: %+v", c)
	}
}

// A destination no graph has (a member gone from the mesh) is
// unreachable, said once, and forgotten after ForgetRoutes, as is a
// destination measured without an answer that no graph ever had: the
// table holds the members of the last hour, not every name ever seen.
func TestRouterForgets(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	r := NewRouter("a", config.DefaultAgent().Routes)
	dsts := func() (out []string) {
		for _, e := range r.Table() {
			out = append(out, e.Dst)
		}
		return out
	}
	r.Update(costLinks(15), nil, t0)
	onlyAB := costLinks(15)
	onlyAB["direct"] = onlyAB["direct"][:2] // a–b
	if c := r.Update(onlyAB, nil, t0.Add(time.Second)); len(c) != 1 || c[0].Dst != "c" || c[0].Reason != "unreachable" {
		t.Errorf("c gone: %+v", c)
	}
	r.Unanswered("direct", "x", t0.Add(time.Second))
	if c := r.Update(onlyAB, nil, t0.Add(ForgetRoutes)); len(c) != 0 || !slices.Equal(dsts(), []string{"b", "c", "x"}) {
		t.Errorf("within the hour: %+v, destinations %v", c, dsts())
	}
	if c := r.Update(onlyAB, nil, t0.Add(ForgetRoutes+2*time.Second)); len(c) != 0 || !slices.Equal(dsts(), []string{"b"}) {
		t.Errorf("after the hour: %+v, destinations %v", c, dsts())
	}
}

// The widest path: more bandwidth is better.
func TestRouterBandwidth(t *testing.T) {
	p := config.DefaultAgent().Routes
	p.Metric, p.Hold = mesh.MetricBandwidth, 0
	r := NewRouter("a", p)
	abw := func(direct float64) map[string][]mesh.Sample {
		nan := math.NaN()
		return map[string][]mesh.Sample{"overlay": {
			{Src: "a", Dst: "b", RTT: nan, ABW: 100}, {Src: "b", Dst: "c", RTT: nan, ABW: 100}, {Src: "a", Dst: "c", RTT: nan, ABW: direct}}}
	}
	t0 := time.Now()
	// Others' links known before a's own (as when an agent starts, and
	// bandwidth has a direction): c unreachable, and its first route, when
	// a's links come, no change.
	early := abw(200)
	early["overlay"] = slices.DeleteFunc(early["overlay"], func(s mesh.Sample) bool { return s.Src == "a" })
	early["overlay"] = append(early["overlay"], mesh.Sample{Src: "c", Dst: "a", RTT: math.NaN(), ABW: 50})
	if c := r.Update(early, nil, t0.Add(-time.Second)); len(c) != 0 || toC(r) != "unreachable" {
		t.Fatalf("before a's links: %v, route %s", c, toC(r))
	}
	if c := r.Update(abw(200), nil, t0); len(c) != 0 || toC(r) != "a>c" {
		t.Fatalf("200 direct against 100 through b: %v, %s", c, toC(r))
	}
	var c []RouteChange
	for i := range 60 {
		c = append(c, r.Update(abw(20), nil, t0.Add(time.Duration(i+1)*time.Second))...)
	}
	if len(c) != 1 || c[0].Path != "overlay" || strings.Join(c[0].NewHops, ">") != "a>b>c" || c[0].NewValue != 100 {
		t.Errorf("20 direct: %+v", c)
	}
}

// A route change as the hooks get it: kind route, severity info, an event
// (ended at once), the destination as target, and labels that an overlay
// programs its routes from; deploy/mesh-route-hook.sh, run with it as the
// command hook runs it, prints the ip route line it would run.
func TestRouteEvent(t *testing.T) {
	a := newTestAgent(t)
	a.view.setMember("b", member{alive: true, paths: map[string]netip.Addr{"overlay": netip.MustParseAddr("fd00::b")}})
	a.view.setMember("c", member{alive: true, paths: map[string]netip.Addr{"overlay": netip.MustParseAddr("fd00::c")}})
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		change RouteChange
		labels map[string]string
		line   string
	}{
		{RouteChange{Path: "overlay", Dst: "c", OldHops: []string{"a", "c"}, NewHops: []string{"a", "b", "c"}, OldValue: 157.1, NewValue: 20.4, Reason: "better", At: at},
			map[string]string{"new_next_hop": "b", "old_next_hop": "c", "new_route": "a>b>c", "old_route": "a>c", "destination_addr": "fd00::c", "new_next_hop_addr": "fd00::b", "reason": "better", "flap": "false"},
			"ip route replace fd00::c via fd00::b"},
		{RouteChange{Path: "overlay", Dst: "c", OldHops: []string{"a", "b", "c"}, NewHops: []string{"a", "c"}, OldValue: 20.4, NewValue: 15, Reason: "better", Flap: true, At: at},
			map[string]string{"new_next_hop": "c", "new_route": "a>c", "flap": "true"},
			"ip route replace fd00::c via fd00::c"},
		{RouteChange{Path: "overlay", Dst: "c", OldHops: []string{"a", "c"}, OldValue: 15, NewValue: math.NaN(), Reason: "unreachable", At: at},
			map[string]string{"new_next_hop": "", "new_route": "unreachable", "new_next_hop_addr": ""},
			"ip route del fd00::c"},
	} {
		al := a.routeAlarm(c.change)
		if al.Kind != record.MeshRoute || al.Severity != record.Info || al.Target != "c" || al.End == nil || !al.End.Equal(at) || al.Status() != "resolved" {
			t.Errorf("%s: alarm %+v", c.line, al)
		}
		if _, err := json.Marshal(al); err != nil { // no NaN for an unreachable value
			t.Errorf("%s: %v", c.line, err)
		}
		for k, v := range c.labels {
			if al.Labels[k] != v {
				t.Errorf("%s: label %s %q, want %q", c.line, k, al.Labels[k], v)
			}
		}
		cmd := exec.Command("sh", "../deploy/mesh-route-hook.sh")
		cmd.Env = append(os.Environ(), notify.Env(&al)...)
		out, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) != c.line {
			t.Errorf("the hook printed %q (%v), want %q", out, err, c.line)
		}
	}
}
