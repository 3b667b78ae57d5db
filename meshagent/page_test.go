package meshagent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/abing-net/abing/internal/browsertest"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/webui"
)

// TestMeshPage: the page's mesh map, in headless Chromium, from an
// agent's /api/v1/mesh: three nodes, the three links between them
// coloured on the link-cost scale (96 green, 136 part way to red), the
// relay shortcut a–b–c drawn, a member that went down greyed where it
// last was and since when, a scale in ms, and the links in a table.
func TestMeshPage(t *testing.T) {
	a := newTestAgent(t)
	now := time.Now()
	for _, n := range []string{"b", "c"} {
		a.view.setMember(n, member{alive: true})
	}
	a.view.Apply(&Part{Node: "a", Path: "direct", Coord: coord(0, 0), Links: []Link{{Peer: "b", RTT: 5, Cost: 96}, {Peer: "c", RTT: 50, Cost: 136}}}, now)
	a.view.Apply(&Part{Node: "b", Path: "direct", Coord: coord(0.004, 0.003), Links: []Link{{Peer: "a", RTT: 5, Cost: 96}, {Peer: "c", RTT: 5, Cost: 96}}}, now)
	a.view.Apply(&Part{Node: "c", Path: "direct", Coord: coord(0.009, 0), Links: []Link{{Peer: "a", RTT: 50, Cost: 136}, {Peer: "b", RTT: 5, Cost: 96}}}, now)
	a.view.setMember("d", member{alive: true})
	a.view.Apply(&Part{Node: "d", Path: "direct", Coord: coord(0.002, 0.008), Links: []Link{{Peer: "a", RTT: 9, Cost: 96}}}, now)
	a.view.setMember("d", member{alive: false, since: time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)})
	a.route(context.Background(), now, func(context.Context, record.Alarm) {})
	mux := http.NewServeMux()
	for p, h := range a.Handlers() {
		mux.Handle(p, h)
	}
	for p, h := range webui.Handlers(true) {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, errs := browsertest.Start(t)
	browsertest.Open(t, ctx, srv.URL+"/#/mesh", "mesh")
	nodes, edges, relays := browsertest.Eval[int](t, ctx, `window.abing.nodes`), browsertest.Eval[int](t, ctx, `window.abing.edges`), browsertest.Eval[int](t, ctx, `window.abing.relays`)
	if nodes != 4 || edges != 3 || relays != 1 {
		t.Errorf("the map shows %d nodes, %d edges, %d relay shortcuts; want 4 (one down), 3, 1", nodes, edges, relays)
	}
	if down := browsertest.Eval[string](t, ctx, `[...document.querySelectorAll('#mesh-map text.down')].map(t => t.textContent).join()`); down != "d (down since 2026-12-07 04:00:00 UTC)" {
		t.Errorf("down member: %q", down)
	}
	colours := browsertest.Eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#mesh-map line[data-cost]')].map(l => [l.dataset.cost, l.getAttribute('stroke')]))`)
	if colours["96"] != "hsl(120, 70%, 40%)" || colours["136"] != "hsl(70, 70%, 40%)" {
		t.Errorf("edge colours by cost: %v", colours)
	}
	if ms, rows := browsertest.Eval[float64](t, ctx, `window.abing.scaleMs`), browsertest.Eval[int](t, ctx, `document.querySelectorAll('#mesh-links tr').length`); ms <= 0 || rows != 4 {
		t.Errorf("scale %g ms, %d rows in the links table (want 3 and a header)", ms, rows)
	}
	if link := browsertest.Eval[bool](t, ctx, `!document.getElementById('mesh-link').hidden`); !link {
		t.Error("an agent's page does not offer the mesh")
	}
	// This node's routes: a table of three (d unreachable, being down);
	// clicking c draws the route to it, clicking d says it is unreachable.
	if n, rows := browsertest.Eval[int](t, ctx, `window.abing.routes`), browsertest.Eval[int](t, ctx, `document.querySelectorAll('#mesh-routes tr.route-row').length`); n != 3 || rows != 3 {
		t.Errorf("routes: %d, %d rows; want 3 (b, c, and d unreachable)", n, rows)
	}
	for _, c := range []struct{ node, route, points string }{{"c", "a>c", "2"}, {"d", "unreachable", "none"}} {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#mesh-map circle[data-name="`+c.node+`"]`))); err != nil {
			t.Fatal(err)
		}
		got := browsertest.Eval[string](t, ctx, `window.abing.route`)
		points := browsertest.Eval[string](t, ctx, `(() => { const p = document.getElementById('mesh-route'); return p ? String(p.getAttribute('points').split(' ').length) : 'none'; })()`)
		if got != c.route || points != c.points {
			t.Errorf("clicked %s: route %q drawn with %s points; want %q, %s", c.node, got, points, c.route, c.points)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#mesh-map circle[data-name="c"]`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Shot(t, ctx, "mesh.png")
	browsertest.DocImage(t, ctx, "../docs/images/page-mesh.png")
	if e := errs(); len(e) > 0 {
		t.Errorf("the page logged errors: %q", e)
	}
}
