// Package webui is abing's page, served by abing monitor and abing mesh
// agent on their web listener: the paths (sortable, with their last
// results and active alarms), one path's DBC, ABW with its 95 % band, XTR
// and RTT over a window from an hour to 30 days with its alarms shaded and
// their routes, and, on an agent, the mesh map. It reads the JSON API of
// package webapi (and the agent's /api/v1/mesh).
//
// Its assets are embedded: no CDN, no build step. The plots are drawn by
// uPlot 1.6.32 (MIT, assets/vendor, with its licence): one 51 KB file,
// fast on tens of thousands of points, no dependencies.
package webui

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handlers are the page's routes: the page at /, its files under /ui/.
// mesh says whether /api/v1/mesh is served (an agent), so that the page
// offers the map.
func Handlers(mesh bool) map[string]http.Handler {
	sub, _ := fs.Sub(assets, "assets") // the folder is embedded above
	index, _ := fs.ReadFile(sub, "index.html")
	flag := "0"
	if mesh {
		flag = "1"
	}
	index = bytes.ReplaceAll(index, []byte("{{MESH}}"), []byte(flag))
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return map[string]http.Handler{
		"GET /{$}": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
			w.Write(index)
		}),
		"GET /ui/": files,
	}
}
