package meshagent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/abing-net/abing/netloc"
)

// Handlers are the agent's API on the web listener.
func (a *Agent) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		"/api/v1/netloc": netloc.Handler(a.view),
		"/api/v1/mesh": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"node": a.cfg.Node, "nodes": a.view.Map(), "relays": a.view.Relays()})
		}),
		"/api/v1/mesh/records": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var since time.Time
			if s := r.URL.Query().Get("since"); s != "" {
				d, err := time.ParseDuration(s)
				if err != nil || d < 0 {
					http.Error(w, fmt.Sprintf("since %q: want a duration such as 10m", s), http.StatusBadRequest)
					return
				}
				since = time.Now().Add(-d)
			}
			w.Header().Set("Content-Type", "application/x-ndjson")
			enc := json.NewEncoder(w)
			for _, rec := range a.view.Records(since) {
				if err := enc.Encode(rec); err != nil {
					return
				}
			}
		}),
	}
}
