// Package webapi serves the JSON API that abing monitor and abing mesh
// agent answer on their web listener, beside /metrics, from the embedded
// store (docs/monitor.md, "The API"):
//
//	GET /api/v1/targets                          every target and path: its last results and active alarms
//	GET /api/v1/history?target=&path=&since=&points=   one path's series, downsampled
//	GET /api/v1/alarms?since=&target=            alarms active at some time in the window
//
// A bad parameter is answered 400 with the reason as text. Long windows
// are downsampled on the server into buckets of minimum, median and
// maximum, so a 30-day plot of a one-minute series stays fast.
package webapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/store"
)

// Bounds of the parameters, and defaults.
const (
	DefaultSince  = 24 * time.Hour
	MaxSince      = 400 * 24 * time.Hour
	DefaultPoints = 500
	MinPoints     = 10
	MaxPoints     = 5000
	// queryTimeout bounds every answer's work in the store.
	queryTimeout = 10 * time.Second
)

// API answers from a store.
type API struct {
	Store *store.Store
	Now   func() time.Time // time.Now when nil
}

// Handlers are the API's routes, for a web listener's mux.
func (a *API) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		"/api/v1/targets": http.HandlerFunc(a.targets),
		"/api/v1/history": http.HandlerFunc(a.history),
		"/api/v1/alarms":  http.HandlerFunc(a.alarms),
	}
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// badRequest is a parameter's error, answered 400.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func bad(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

// answer writes v as JSON, or err: 400 for a bad parameter, 500 otherwise.
func answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		code := http.StatusInternalServerError
		if errors.As(err, new(badRequest)) {
			code = http.StatusBadRequest
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// since reads the since parameter: a duration back from now.
func since(r *http.Request, now time.Time) (time.Time, time.Duration, error) {
	d := DefaultSince
	if s := r.URL.Query().Get("since"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 || v > MaxSince {
			return time.Time{}, 0, bad("since %q: want a duration such as 1h or 720h, above 0 and at most %v", s, MaxSince)
		}
		d = v
	}
	return now.Add(-d), d, nil
}

// only allows the query parameters named.
func only(r *http.Request, names ...string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return bad("method %s: want GET", r.Method)
	}
	for k := range r.URL.Query() {
		if !slices.Contains(names, k) {
			return bad("unknown parameter %q (want %v)", k, names)
		}
	}
	return nil
}

// History is the answer of /api/v1/history.
type History struct {
	Target string    `json:"target"`
	Path   string    `json:"path,omitempty"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	// BucketSeconds is the width of each bucket; Runs how many runs the
	// buckets sum up (a run has a record of each direction: its forward
	// one counts).
	BucketSeconds float64  `json:"bucket_seconds"`
	Runs          int      `json:"runs"`
	Buckets       []Bucket `json:"buckets"`
}

func (a *API) history(w http.ResponseWriter, r *http.Request) {
	v, err := a.historyOf(r)
	answer(w, v, err)
}

func (a *API) historyOf(r *http.Request) (*History, error) {
	if err := only(r, "target", "path", "since", "points"); err != nil {
		return nil, err
	}
	q := r.URL.Query()
	now := a.now()
	from, window, err := since(r, now)
	if err != nil {
		return nil, err
	}
	target := q.Get("target")
	if target == "" {
		return nil, bad("target: missing (a name from /api/v1/targets)")
	}
	points := DefaultPoints
	if s := q.Get("points"); s != "" {
		if points, err = strconv.Atoi(s); err != nil || points < MinPoints || points > MaxPoints {
			return nil, bad("points %q: want %d to %d", s, MinPoints, MaxPoints)
		}
	}
	width := max(window/time.Duration(points), time.Second).Round(time.Second)
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	d, runs := newDownsampler(from, width), 0
	err = a.Store.Series(ctx, store.SeriesFilter{Target: target, Path: q.Get("path"), Since: from}, func(p store.Point) error {
		d.add(p)
		if p.Direction == "forward" {
			runs++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &History{Target: target, Path: q.Get("path"), Since: from.UTC(), Until: now.UTC(), BucketSeconds: width.Seconds(),
		Runs: runs, Buckets: d.done()}, nil
}

// Target is one target's path as /api/v1/targets lists it: its last
// record of each direction and its active alarms.
type Target struct {
	Target  string         `json:"target"`
	Path    string         `json:"path,omitempty"`
	Key     string         `json:"key"` // target/path, as alarms and metrics name it
	Address string         `json:"address"`
	Node    string         `json:"node,omitempty"`
	Last    time.Time      `json:"last"`
	Forward *record.Record `json:"forward,omitempty"`
	Reverse *record.Record `json:"reverse,omitempty"`
	Alarms  []record.Alarm `json:"alarms"`
	Cost    *float64       `json:"link_cost,omitempty"` // the last published
}

func (a *API) targets(w http.ResponseWriter, r *http.Request) {
	v, err := a.targetsOf(r)
	answer(w, v, err)
}

func (a *API) targetsOf(r *http.Request) ([]Target, error) {
	if err := only(r); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	latest, costs, err := a.Store.Latest(ctx)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*Target{}
	byName := map[string][]*Target{} // a target's paths, by its name
	var out []*Target
	for i := range latest {
		rec := &latest[i]
		t := byKey[rec.Key()]
		if t == nil {
			t = &Target{Target: rec.Target, Path: rec.Path, Key: rec.Key(), Address: rec.Address, Node: rec.Node, Alarms: []record.Alarm{}}
			byKey[rec.Key()] = t
			byName[rec.Target] = append(byName[rec.Target], t)
			out = append(out, t)
		}
		if rec.Time.After(t.Last) {
			t.Last = rec.Time
		}
		switch rec.Direction {
		case "forward":
			t.Forward = rec
		case "reverse":
			t.Reverse = rec
		}
	}
	// An alarm goes on its target's path; one raised for a whole target
	// (a mesh member that went down, named without a path) goes on each
	// of its paths, and a group alarm on each of its members'.
	err = a.Store.Alarms(ctx, store.Filter{Since: a.now()}, func(al *record.Alarm) error {
		if !al.Active() {
			return nil
		}
		on := map[*Target]bool{}
		for _, name := range append([]string{al.Target}, al.Members...) {
			if t := byKey[name]; t != nil {
				on[t] = true
				continue
			}
			for _, t := range byName[name] {
				on[t] = true
			}
		}
		for t := range on {
			t.Alarms = append(t.Alarms, *al)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := make([]Target, 0, len(out))
	for _, t := range out {
		if c, ok := costs[t.Key]; ok {
			t.Cost = &c
		}
		res = append(res, *t)
	}
	slices.SortFunc(res, func(a, b Target) int { return strings.Compare(a.Key, b.Key) })
	return res, nil
}

func (a *API) alarms(w http.ResponseWriter, r *http.Request) {
	v, err := a.alarmsOf(r)
	answer(w, v, err)
}

func (a *API) alarmsOf(r *http.Request) ([]record.Alarm, error) {
	if err := only(r, "since", "target"); err != nil {
		return nil, err
	}
	from, _, err := since(r, a.now())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	out := []record.Alarm{}
	err = a.Store.Alarms(ctx, store.Filter{Target: r.URL.Query().Get("target"), Since: from}, func(al *record.Alarm) error {
		out = append(out, *al)
		return nil
	})
	return out, err
}
