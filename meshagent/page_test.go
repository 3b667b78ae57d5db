package meshagent

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/abing-net/abing/internal/browsertest"
	"github.com/abing-net/abing/webui"
)

// TestMeshPage: the page's mesh map, in headless Chromium, from an
// agent's /api/v1/mesh: three nodes, the three links between them
// coloured, and the relay shortcut a–b–c drawn.
func TestMeshPage(t *testing.T) {
	a := newTestAgent(t)
	now := time.Now()
	for _, n := range []string{"b", "c"} {
		a.view.setMember(n, member{alive: true})
	}
	a.view.Apply(&Part{Node: "a", Path: "direct", Coord: coord(0, 0), Links: []Link{{Peer: "b", RTT: 5, Cost: 96}, {Peer: "c", RTT: 50, Cost: 136}}}, now)
	a.view.Apply(&Part{Node: "b", Path: "direct", Coord: coord(0.004, 0.003), Links: []Link{{Peer: "a", RTT: 5, Cost: 96}, {Peer: "c", RTT: 5, Cost: 96}}}, now)
	a.view.Apply(&Part{Node: "c", Path: "direct", Coord: coord(0.009, 0), Links: []Link{{Peer: "a", RTT: 50, Cost: 136}, {Peer: "b", RTT: 5, Cost: 96}}}, now)
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
	if nodes != 3 || edges != 3 || relays != 1 {
		t.Errorf("the map shows %d nodes, %d edges, %d relay shortcuts; want 3, 3, 1", nodes, edges, relays)
	}
	if link := browsertest.Eval[bool](t, ctx, `!document.getElementById('mesh-link').hidden`); !link {
		t.Error("an agent's page does not offer the mesh")
	}
	browsertest.Shot(t, ctx, "mesh.png")
	if e := errs(); len(e) > 0 {
		t.Errorf("the page logged errors: %q", e)
	}
}
