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

// Handlers are the page's routes: the page at /, its files under /ui/
// (not the page itself, whose mesh flag only / fills in, and no directory
// listings). mesh says whether /api/v1/mesh is served (an agent), so that
// the page offers the map. The listener (package internal/web) gives every
// answer its Content-Security-Policy and the other security headers.
func Handlers(mesh bool) map[string]http.Handler {
	sub, _ := fs.Sub(assets, "assets") // the folder is embedded above
	index, _ := fs.ReadFile(sub, "index.html")
	flag := "0"
	if mesh {
		flag = "1"
	}
	index = bytes.ReplaceAll(index, []byte("{{MESH}}"), []byte(flag))
	files := http.StripPrefix("/ui/", http.FileServerFS(assetFS{sub}))
	return map[string]http.Handler{
		"GET /{$}": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(index)
		}),
		"GET /ui/": files,
	}
}

// assetFS is the page's files without index.html and without directories.
type assetFS struct{ fs.FS }

func (a assetFS) Open(name string) (fs.File, error) {
	if name == "index.html" {
		return nil, fs.ErrNotExist
	}
	f, err := a.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		return nil, fs.ErrNotExist
	}
	return f, nil
}
