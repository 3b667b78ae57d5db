package webapi

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/store"
)

func f(v float64) *float64 { return &v }

// TestDownsample: buckets per direction aligned on since, with minimum,
// median and maximum, the band's extremes, and null for a value no run in
// the bucket had.
func TestDownsample(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	nan := math.NaN()
	p := func(min int, dir string, abw, lo, hi float64) store.Point {
		return store.Point{Time: t0.Add(time.Duration(min) * time.Minute), Direction: dir, DBC: 100, ABW: abw, ABWLow: lo, ABWHigh: hi, XTR: nan, RTT: 10, Loss: 0}
	}
	pts := []store.Point{
		p(0, "forward", 50, 45, 55), p(0, "reverse", 20, 15, 25), p(1, "forward", 60, 50, 70), p(2, "forward", 1000, 990, 1010), // an outlier
		p(10, "forward", nan, nan, nan), // a failed run
	}
	got := Downsample(pts, t0, 5*time.Minute)
	if len(got) != 3 {
		t.Fatalf("%d buckets: %+v", len(got), got)
	}
	b := got[0]
	if b.Direction != "forward" || b.N != 3 || b.ABW != (Stat{50, 60, 1000}) || *b.ABWLow != 45 || *b.ABWHigh != 1010 || !b.Time.Equal(t0) {
		t.Errorf("first bucket %+v", b)
	}
	if got[1].Direction != "reverse" || got[1].ABW != (Stat{20, 20, 20}) {
		t.Errorf("reverse %+v", got[1])
	}
	js, _ := json.Marshal(got[2])
	if !strings.Contains(string(js), `"abw_mbps":null`) || !strings.Contains(string(js), `"abw_low_mbps":null`) || !strings.Contains(string(js), `"dbc_mbps":[100,100,100]`) ||
		!strings.Contains(string(js), `"time":"2026-11-30T00:10:00Z"`) {
		t.Errorf("a failed run's bucket: %s", js)
	}
	// An even count's median is the mean of the middle two.
	if s := Downsample([]store.Point{p(0, "forward", 1, 1, 1), p(1, "forward", 3, 1, 1)}, t0, time.Hour)[0].ABW; s.Median != 2 {
		t.Errorf("median of 1 and 3: %g", s.Median)
	}
}

func newAPI(t testing.TB) (*API, *httptest.Server, time.Time) {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "abing.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	a := &API{Store: s, Now: func() time.Time { return now }}
	mux := http.NewServeMux()
	for p, h := range a.Handlers() {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return a, srv, now
}

func get(t testing.TB, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBadParameters: each bad parameter is answered 400 with its reason.
func TestBadParameters(t *testing.T) {
	_, srv, _ := newAPI(t)
	for _, tc := range []struct{ path, want string }{
		{"/api/v1/history", "target: missing"},
		{"/api/v1/history?target=lab-b&since=yesterday", `since "yesterday"`},
		{"/api/v1/history?target=lab-b&since=-1h", `since "-1h"`},
		{"/api/v1/history?target=lab-b&since=100000h", `since "100000h"`},
		{"/api/v1/history?target=lab-b&points=1", `points "1"`},
		{"/api/v1/history?target=lab-b&points=many", `points "many"`},
		{"/api/v1/history?target=lab-b&window=1h", `unknown parameter "window"`},
		{"/api/v1/alarms?since=0", `since "0"`},
		{"/api/v1/targets?all=1", `unknown parameter "all"`},
	} {
		code, body := get(t, srv, tc.path)
		if code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %q, want 400 with %q", tc.path, code, body, tc.want)
		}
	}
	resp, err := http.Post(srv.URL+"/api/v1/targets", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

// TestAPI: targets with their last results, active alarms and link
// cost; a path's history; the alarms of a window.
func TestAPI(t *testing.T) {
	a, srv, now := newAPI(t)
	ctx := context.Background()
	var recs []record.Record
	for i := range 120 {
		at := now.Add(-time.Duration(120-i) * time.Minute)
		for _, d := range []string{"forward", "reverse"} {
			recs = append(recs, record.Record{Time: at, Target: "lab-b", Address: "198.51.100.7:8176", Direction: d, DBC: f(100), ABW: f(float64(i)), RTT: &record.RTT{Avg: 10}})
		}
	}
	recs = append(recs, record.Record{Time: now.Add(-time.Minute), Target: "lab-d", Path: "overlay", Address: "[fd00::7]:8176", Direction: "forward", DBC: f(10), LinkCost: f(150)})
	if err := a.Store.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, al := range []record.Alarm{
		{Kind: record.Load, Target: "lab-b", Direction: "forward", Start: now.Add(-30 * time.Minute), Severity: record.Warning},
		{Kind: record.Capacity, Target: "lab-b", Direction: "reverse", Start: now.Add(-100 * time.Minute), End: ptr(now.Add(-90 * time.Minute)), Severity: record.Info},
		// A mesh member that went down is named without a path: its
		// alarm goes on each of its paths.
		{Kind: record.Down, Target: "lab-d", Direction: "both", Start: now.Add(-2 * time.Minute), Severity: record.Critical},
	} {
		if err := a.Store.WriteAlarm(ctx, &al); err != nil {
			t.Fatal(err)
		}
	}
	code, body := get(t, srv, "/api/v1/targets")
	var ts []Target
	if err := json.Unmarshal([]byte(body), &ts); code != 200 || err != nil {
		t.Fatalf("%d %v %s", code, err, body)
	}
	if len(ts) != 2 || ts[0].Key != "lab-b" || *ts[0].Forward.ABW != 119 || ts[0].Reverse == nil || len(ts[0].Alarms) != 1 || ts[0].Alarms[0].Kind != record.Load ||
		ts[1].Key != "lab-d/overlay" || ts[1].Path != "overlay" || *ts[1].Cost != 150 || ts[1].Reverse != nil ||
		len(ts[1].Alarms) != 1 || ts[1].Alarms[0].Kind != record.Down {
		t.Errorf("targets %s", body)
	}
	code, body = get(t, srv, "/api/v1/history?target=lab-b&since=1h&points=12")
	var h History
	if err := json.Unmarshal([]byte(body), &h); code != 200 || err != nil {
		t.Fatalf("%d %v %s", code, err, body)
	}
	// 60 runs in the hour (a record of each direction each), 5 minutes a
	// bucket.
	if h.BucketSeconds != 300 || h.Runs != 60 || len(h.Buckets) != 24 || h.Buckets[0].N != 5 || h.Buckets[0].ABW.Median != 62 {
		t.Errorf("history: %d buckets of %g s, %d runs; first %+v", len(h.Buckets), h.BucketSeconds, h.Runs, h.Buckets[0])
	}
	code, body = get(t, srv, "/api/v1/history?target=lab-d&path=overlay")
	if code != 200 || !strings.Contains(body, `"dbc_mbps":[10,10,10]`) {
		t.Errorf("overlay: %d %s", code, body)
	}
	if code, body = get(t, srv, "/api/v1/history?target=nobody"); code != 200 || !strings.Contains(body, `"buckets":[]`) {
		t.Errorf("a target with no results: %d %s", code, body)
	}
	code, body = get(t, srv, "/api/v1/alarms?since=1h")
	if code != 200 || strings.Count(body, `"kind"`) != 2 { // lab-b's load, lab-d's down
		t.Errorf("alarms of the last hour: %d %s", code, body)
	}
	if code, body = get(t, srv, "/api/v1/alarms?since=2h&target=lab-b"); strings.Count(body, `"kind"`) != 2 {
		t.Errorf("alarms of two hours: %d %s", code, body)
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkHistoryMonth: the answer to a 30-day window of a one-minute
// series (86,400 runs, both directions) through HTTP, downsampled to the
// default 500 buckets a direction. The target: under 200 ms.
func BenchmarkHistoryMonth(b *testing.B) {
	a, srv, now := newAPI(b)
	var batch []record.Record
	for i := range 30 * 24 * 60 {
		at := now.Add(-time.Duration(30*24*60-i) * time.Minute)
		for _, d := range []string{"forward", "reverse"} {
			batch = append(batch, record.Record{Time: at, Target: "lab-b", Direction: d, DBC: f(100), ABW: f(float64(i % 60)), ABWLow: f(1), ABWHigh: f(99),
				XTR: f(40), RTT: &record.RTT{Avg: 10}})
		}
		if len(batch) >= 5000 {
			if err := a.Store.Write(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := a.Store.Write(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		code, body := get(b, srv, "/api/v1/history?target=lab-b&since=720h")
		if code != 200 || strings.Count(body, `"direction"`) < 1000 {
			b.Fatalf("%d, %d bytes", code, len(body))
		}
	}
}
