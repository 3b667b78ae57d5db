package meshagent

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/abing-net/abing/netloc"
	"github.com/abing-net/abing/record"
)

// Bounds of the API.
const (
	// MeshAnswerAge is how old /api/v1/mesh's answer may be when the map
	// has changed since: the relays take O(n³) of the members, so many
	// clients, or one asking in a loop, share one computation a while.
	MeshAnswerAge = 2 * time.Second
	// RecordsPage is the most records one answer of /api/v1/mesh/records
	// holds (and its default); the header RecordsNext says where the next
	// page starts.
	RecordsPage = 100_000
	// RecordsNext is the header of a records answer that is not the last
	// page: the value of the next request's "after" parameter.
	RecordsNext = "X-Abing-Next"
)

// meshAnswer is the cached answer of /api/v1/mesh.
type meshAnswer struct {
	mu      sync.Mutex // held while computing: one computation at a time
	version uint64
	at      time.Time
	body    []byte
}

// Handlers are the agent's API on the web listener.
func (a *Agent) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		"/api/v1/netloc": netloc.Handler(a.view),
		"/api/v1/mesh": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := a.meshJSON(time.Now())
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}),
		"/api/v1/mesh/records": http.HandlerFunc(a.serveRecords),
		"/api/v1/mesh/routes": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := json.Marshal(a.routes.Table())
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}),
	}
}

// meshJSON is /api/v1/mesh's answer: computed again when the map changed
// and the last answer is older than MeshAnswerAge, by one request while
// the others wait for it.
func (a *Agent) meshJSON(now time.Time) ([]byte, error) {
	c := &a.answer
	c.mu.Lock()
	defer c.mu.Unlock()
	v := a.view.Version()
	if c.body != nil && (c.version == v || now.Sub(c.at) < MeshAnswerAge) {
		return c.body, nil
	}
	body, err := json.Marshal(map[string]any{"node": a.cfg.Node, "nodes": a.view.Map(), "relays": a.view.Relays()})
	if err != nil {
		return nil, fmt.Errorf("mesh map: %w", err)
	}
	c.version, c.at, c.body = v, now, append(body, '\n')
	return c.body, nil
}

// serveRecords answers /api/v1/mesh/records: the published links newer
// than since, oldest first, at most limit (RecordsPage) an answer, from
// the one after the cursor of the previous page ("after").
func (a *Agent) serveRecords(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			http.Error(w, fmt.Sprintf("since %q: want a duration such as 10m", s), http.StatusBadRequest)
			return
		}
		since = time.Now().Add(-d)
	}
	limit := RecordsPage
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > RecordsPage {
			http.Error(w, fmt.Sprintf("limit %q: want 1 to %d", s, RecordsPage), http.StatusBadRequest)
			return
		}
		limit = n
	}
	var after *cursor
	if s := q.Get("after"); s != "" {
		c, err := parseCursor(s)
		if err != nil {
			http.Error(w, fmt.Sprintf("after %q: %v", s, err), http.StatusBadRequest)
			return
		}
		after = &c
	}
	recs := a.view.Records(since)
	if after != nil {
		i, _ := slices.BinarySearchFunc(recs, *after, func(rec record.Record, c cursor) int { return keyOf(&rec).compare(c) })
		for i < len(recs) && keyOf(&recs[i]).compare(*after) == 0 {
			i++
		}
		recs = recs[i:]
	}
	if len(recs) > limit {
		recs = recs[:limit]
		w.Header().Set(RecordsNext, keyOf(&recs[len(recs)-1]).String())
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for i := range recs {
		if err := enc.Encode(&recs[i]); err != nil {
			return
		}
	}
}

// cursor is a record's place in the order of Records: time, node, target,
// path.
type cursor struct {
	Time               time.Time
	Node, Target, Path string
}

func keyOf(r *record.Record) cursor { return cursor{r.Time, r.Node, r.Target, r.Path} }

func (c cursor) compare(o cursor) int {
	return cmp.Or(c.Time.Compare(o.Time), cmp.Compare(c.Node, o.Node), cmp.Compare(c.Target, o.Target), cmp.Compare(c.Path, o.Path))
}

// String is the cursor as the "after" parameter carries it.
func (c cursor) String() string {
	b, _ := json.Marshal([]string{c.Time.Format(time.RFC3339Nano), c.Node, c.Target, c.Path})
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseCursor(s string) (cursor, error) {
	if len(s) > 4096 {
		return cursor{}, fmt.Errorf("longer than 4096 bytes")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, fmt.Errorf("not a cursor of this API: %w", err)
	}
	var f []string
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&f); err != nil || len(f) != 4 {
		return cursor{}, fmt.Errorf("not a cursor of this API")
	}
	t, err := time.Parse(time.RFC3339Nano, f[0])
	if err != nil {
		return cursor{}, fmt.Errorf("not a cursor of this API: %w", err)
	}
	return cursor{t, f[1], f[2], f[3]}, nil
}
