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
// last was and since when, a scale in ms, and the links in a table, each
// once, whichever end published it (b–e by e only: a link was drawn only
// from the lesser name's end); a member whose direct link to a is not measured yet (e, known by
// its link to b) routed through b, provisionally, and said so.
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
	a.view.setMember("e", member{alive: true})
	a.view.Apply(&Part{Node: "e", Path: "direct", Coord: coord(0.007, 0.0055), Links: []Link{{Peer: "b", RTT: 6, Cost: 96}}}, now)
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
	if nodes != 5 || edges != 4 || relays != 1 {
		t.Errorf("the map shows %d nodes, %d edges, %d relay shortcuts; want 5 (one down), 4 (none to d), 1", nodes, edges, relays)
	}
	if down := browsertest.Eval[string](t, ctx, `[...document.querySelectorAll('#mesh-map text.down')].map(t => t.textContent).join()`); down != "d (down since 2026-12-07 04:00:00 UTC)" {
		t.Errorf("down member: %q", down)
	}
	colours := browsertest.Eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#mesh-map line[data-cost]')].map(l => [l.dataset.cost, l.getAttribute('stroke')]))`)
	if colours["96"] != "hsl(120, 70%, 40%)" || colours["136"] != "hsl(70, 70%, 40%)" {
		t.Errorf("edge colours by cost: %v", colours)
	}
	if ms, rows := browsertest.Eval[float64](t, ctx, `window.abing.scaleMs`), browsertest.Eval[int](t, ctx, `document.querySelectorAll('#mesh-links tr').length`); ms <= 0 || rows != 5 {
		t.Errorf("scale %g ms, %d rows in the links table (want 4 and a header)", ms, rows)
	}
	if link := browsertest.Eval[bool](t, ctx, `!document.getElementById('mesh-link').hidden`); !link {
		t.Error("an agent's page does not offer the mesh")
	}
	// This node's routes: a table of four (d unreachable, being down; e
	// through b, provisional); clicking c draws the route to it, clicking
	// d says it is unreachable, clicking e draws a>b>e and says it is
	// provisional.
	if n, rows := browsertest.Eval[int](t, ctx, `window.abing.routes`), browsertest.Eval[int](t, ctx, `document.querySelectorAll('#mesh-routes tr.route-row').length`); n != 4 || rows != 4 {
		t.Errorf("routes: %d, %d rows; want 4 (b, c, d unreachable, e)", n, rows)
	}
	if p, cells := browsertest.Eval[int](t, ctx, `window.abing.provisional`), browsertest.Eval[string](t, ctx, `[...document.querySelectorAll('#mesh-routes tr.route-row td:nth-child(2)')].map(td => td.textContent).join("|")`); p != 1 || cells != "a → b|a → c|unreachable|a → b → e (provisional)" {
		t.Errorf("%d provisional routes; route cells %q", p, cells)
	}
	for _, c := range []struct{ node, route, points, note string }{
		{"c", "a>c", "2", "route to c: a → c, 136.0"},
		{"d", "unreachable", "none", "d is unreachable"},
		{"e", "a>b>e", "3", "route to e: a → b → e, 192.0; provisional until the direct link to e is measured"},
	} {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#mesh-map circle[data-name="`+c.node+`"]`))); err != nil {
			t.Fatal(err)
		}
		got := browsertest.Eval[string](t, ctx, `window.abing.route`)
		points := browsertest.Eval[string](t, ctx, `(() => { const p = document.getElementById('mesh-route'); return p ? String(p.getAttribute('points').split(' ').length) : 'none'; })()`)
		if got != c.route || points != c.points {
			t.Errorf("clicked %s: route %q drawn with %s points; want %q, %s", c.node, got, points, c.route, c.points)
		}
		if note := browsertest.Eval[string](t, ctx, `document.getElementById('route-note').textContent`); note != c.note {
			t.Errorf("clicked %s: note %q, want %q", c.node, note, c.note)
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
