package webui_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/daemon"
	"github.com/abing-net/abing/internal/browsertest"
	"github.com/abing-net/abing/internal/web"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/reflector/reflectortest"
	"github.com/abing-net/abing/store"
	"github.com/abing-net/abing/webapi"
	"github.com/abing-net/abing/webui"
)

// server serves the page and the API of a store holding a day of two
// paths, every 5 minutes, with a load alarm on one, through the daemons'
// own web listener (its headers, its Content-Security-Policy); it returns
// the listener's base URL.
func server(t *testing.T) (string, time.Time) {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "abing.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Now().UTC().Truncate(time.Minute)
	f := func(v float64) *float64 { return &v }
	var recs []record.Record
	for i := range 288 {
		at := now.Add(-time.Duration(288-i) * 5 * time.Minute)
		abw := 60 + 20*math.Sin(float64(i)/20)
		if i > 200 && i < 230 {
			abw = 15 // an afternoon of heavy load
		}
		for _, d := range []string{"forward", "reverse"} {
			recs = append(recs, record.Record{Time: at, Target: "lab-b", Address: "198.51.100.7:8176", Direction: d, DBC: f(100), ABW: f(abw),
				ABWLow: f(abw - 5), ABWHigh: f(abw + 5), XTR: f(100 - abw), RTT: &record.RTT{Avg: 12 + float64(i%7)}, Loss: 0.001})
		}
		recs = append(recs, record.Record{Time: at, Target: "lab-d", Path: "overlay", Address: "[fd00::7]:8176", Direction: "forward", DBC: f(20), ABW: f(12),
			RTT: &record.RTT{Avg: 40}})
	}
	// The last hour: a path whose runs fail, and one faster than its host
	// can probe, which has a bound and no capacity.
	for i := range 12 {
		at := now.Add(-time.Duration(12-i) * 5 * time.Minute)
		for _, d := range []string{"forward", "reverse"} {
			recs = append(recs, record.Record{Time: at, Target: "lab-e", Address: "198.51.100.9:8176", Direction: d, Loss: 1,
				Error: "reflector 198.51.100.9:8176: no answer to hello within 2s (no reflector there, or a firewall drops UDP port 8176)"},
				record.Record{Time: at, Target: "lab-f", Address: "198.51.100.10:8176", Direction: d, DBCMin: f(79), RTT: &record.RTT{Avg: 0.1},
					Error: "the path is faster than this host can probe: capacity above 79 Mbit/s"})
		}
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	end := now.Add(-(288 - 230) * 5 * time.Minute)
	load := record.Alarm{Kind: record.Load, Target: "lab-b", Direction: "forward", Severity: record.Warning, Start: now.Add(-(288 - 203) * 5 * time.Minute), End: &end,
		Cleared: "returned", Summary: "ABW below 25 % of DBC for 15 min",
		Route: &record.Route{Before: &record.Trace{Hops: []record.Hop{{TTL: 1}}, Reached: true}, After: &record.Trace{Hops: []record.Hop{{TTL: 1}}, Reached: true}}}
	if err := s.WriteAlarm(context.Background(), &load); err != nil {
		t.Fatal(err)
	}
	// And one still raised: the failing path stopped answering.
	down := record.Alarm{Kind: record.Down, Target: "lab-e", Direction: "forward", Severity: record.Critical, Start: now.Add(-55 * time.Minute),
		Summary: "no answer for 5 runs"}
	if err := s.WriteAlarm(context.Background(), &down); err != nil {
		t.Fatal(err)
	}
	handlers := (&webapi.API{Store: s}).Handlers()
	maps.Copy(handlers, webui.Handlers(false))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.Serve(l, web.Options{Handlers: handlers, Config: web.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.URL(""), now
}

// TestPage: the overview lists the targets; a path's plot has as many
// points as the API answered buckets; the alarm span is drawn where the
// alarm is; no error is logged or thrown.
func TestPage(t *testing.T) {
	base, _ := server(t)
	ctx, errs := browsertest.Start(t)
	browsertest.Open(t, ctx, base+"/", "overview")
	names := browsertest.Eval[[]string](t, ctx, `[...document.querySelectorAll('#targets tr.target td.name a')].map(a => a.textContent)`)
	if rows := browsertest.Eval[int](t, ctx, `window.abing.rows`); rows != 4 || len(names) != 4 || names[0] != "lab-b" || names[1] != "lab-d/overlay" {
		t.Errorf("overview: %d rows, %q", rows, names)
	}
	// A failed path says why, with 100 % loss, and a path faster than its
	// host shows its bound; units in the headers, times in UTC.
	type row struct{ DBC, Loss, Err, Last string }
	rows := browsertest.Eval[map[string]row](t, ctx, `Object.fromEntries([...document.querySelectorAll('#targets tr.target')].map(tr =>
		[tr.querySelector('td.name a').textContent, {DBC: tr.querySelector('td.dbc').textContent, Loss: tr.children[10].textContent,
		 Err: tr.querySelector('td.error-cell').textContent, Last: tr.children[2].textContent}]))`)
	if r := rows["lab-e"]; r.DBC != "–" || r.Loss != "100.0" || !strings.Contains(r.Err, "no answer to hello") || !strings.HasSuffix(r.Last, " UTC") {
		t.Errorf("failing path: %+v", r)
	}
	if r := rows["lab-f"]; r.DBC != "> 79.0" || !strings.Contains(r.Err, "capacity above 79") {
		t.Errorf("path faster than its host: %+v", r)
	}
	if r := rows["lab-b"]; r.DBC != "100.0" || r.Err != "" {
		t.Errorf("healthy path: %+v", r)
	}
	if heads := browsertest.Eval[string](t, ctx, `[...document.querySelectorAll('#targets th')].map(th => th.textContent).join('|')`); !strings.Contains(heads, "DBC → Mbit/s") || !strings.Contains(heads, "last run (UTC)") {
		t.Errorf("headers: %s", heads)
	}
	browsertest.Shot(t, ctx, "overview.png")
	browsertest.DocImage(t, ctx, "../docs/images/page-overview.png")
	// Sorting by ABW → puts lab-d (12) first.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#targets th:nth-child(5)`))); err != nil {
		t.Fatal(err)
	}
	if first := browsertest.Eval[string](t, ctx, `document.querySelector('#targets tr.target td.name a').textContent`); first != "lab-d/overlay" {
		t.Errorf("sorted by ABW: %q first", first)
	}

	// The path page: as many points as the API's forward buckets.
	resp, err := http.Get(base + "/api/v1/history?target=lab-b&since=24h")
	if err != nil {
		t.Fatal(err)
	}
	var h webapi.History
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	want := 0
	for _, b := range h.Buckets {
		if b.Direction == "forward" {
			want++
		}
	}
	browsertest.Open(t, ctx, base+"/#/path/lab-b?since=24h&dir=forward", "path")
	points, spans := browsertest.Eval[int](t, ctx, `window.abing.points`), browsertest.Eval[int](t, ctx, `window.abing.spans`)
	type geometry struct{ Left, Width, PlotWidth float64 }
	span := browsertest.Eval[geometry](t, ctx, `(() => { const s = document.querySelector('.alarm-span'); const o = s.parentElement;
			return {Left: s.offsetLeft, Width: s.offsetWidth, PlotWidth: o.clientWidth}; })()`)
	if points != want || want < 200 {
		t.Errorf("plot: %d points, the API answered %d forward buckets", points, want)
	}
	// The alarm ran from 85 to 58 five-minute steps before now: 70.5 % to
	// 79.9 % of the day's width.
	if spans != 1 || math.Abs(span.Left/span.PlotWidth-0.705) > 0.02 || math.Abs((span.Left+span.Width)/span.PlotWidth-0.799) > 0.02 {
		t.Errorf("alarm span: %d spans, %+v (want from 70.5 %% to 79.9 %% of the plot)", spans, span)
	}
	// The axis says UTC and counts the hours of the day in 24.
	ticks := browsertest.Eval[[]string](t, ctx, `window.abing.xTicks`)
	for _, tick := range ticks {
		if len(tick) != 5 || tick[2] != ':' {
			t.Errorf("x axis tick %q of %q: want HH:MM", tick, ticks)
		}
	}
	if len(ticks) < 3 {
		t.Errorf("x axis: ticks %q", ticks)
	}
	// Runs counted once, not once a direction: a day of 5-minute runs.
	if runs := browsertest.Eval[string](t, ctx, `document.querySelector('main p.muted').textContent`); h.Runs > 288 || !strings.HasPrefix(runs, fmt.Sprintf("%d runs", h.Runs)) || !strings.Contains(runs, "times in UTC") {
		t.Errorf("runs: %q (the API: %d)", runs, h.Runs)
	}
	browsertest.Shot(t, ctx, "path.png")
	browsertest.DocImage(t, ctx, "../docs/images/page-path.png")

	// A path faster than its host, measured for the last hour only: its
	// bound and error on the page and on the plot, the plot zoomed to the
	// hour of data in a day's window.
	browsertest.Open(t, ctx, base+"/#/path/lab-f?since=24h&dir=forward", "path")
	if s := browsertest.Eval[string](t, ctx, `document.getElementById('last-run').textContent`); !strings.Contains(s, "DBC > 79.0 Mbit/s") || !strings.Contains(s, "error: the path is faster") {
		t.Errorf("last run: %q", s)
	}
	if s := browsertest.Eval[string](t, ctx, `document.querySelector('#bw-plot .plot-note')?.textContent || ''`); !strings.Contains(s, "DBC > 79.0 Mbit/s") {
		t.Errorf("plot note: %q", s)
	}
	if span := browsertest.Eval[float64](t, ctx, `Date.now() / 1000 - window.abing.xFrom`); span > 2*3600 {
		t.Errorf("the plot spans %.0f s for an hour of data", span)
	}
	browsertest.Open(t, ctx, base+"/#/path/lab-e?since=24h&dir=forward", "path")
	if s := browsertest.Eval[string](t, ctx, `document.querySelector('#bw-plot .plot-note')?.textContent || ''`); !strings.Contains(s, "no estimate in this window") || !strings.Contains(s, "no answer to hello") {
		t.Errorf("plot note of a failing path: %q", s)
	}
	if e := errs(); len(e) > 0 {
		t.Errorf("the page logged errors: %q", e)
	}
}

// TestPageOfMonitor: abing monitor on loopback, measuring two reflectors
// for a few seconds, serves the page, whose overview lists both targets.
func TestPageOfMonitor(t *testing.T) {
	ctx, errs := browsertest.Start(t)
	var targets []string
	for _, name := range []string{"r1", "r2"} {
		r := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{})
		targets = append(targets, fmt.Sprintf("  - {name: %s, address: %q}\n", name, r.String()))
	}
	cfg, err := config.Parse([]byte("interval: 1s\nprobe: {timeout: 1s}\nalarms: {disabled: true}\ntargets:\n"+strings.Join(targets, "")), "monitor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := l.Addr().String()
	mctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Monitor(mctx, cfg, daemon.Setup{DB: filepath.Join(t.TempDir(), "abing.db"), WebListener: l})
	}()
	t.Cleanup(func() { stop(); <-done })
	// Until each target has a result.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + web + "/api/v1/targets")
		if err == nil {
			var ts []webapi.Target
			json.NewDecoder(resp.Body).Decode(&ts)
			resp.Body.Close()
			if len(ts) == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the monitor's API did not list two targets within 20 s")
		}
	}
	browsertest.Open(t, ctx, "http://"+web+"/", "overview")
	if names := browsertest.Eval[[]string](t, ctx, `[...document.querySelectorAll('#targets tr.target td.name a')].map(a => a.textContent)`); len(names) != 2 || names[0] != "r1" || names[1] != "r2" {
		t.Errorf("the monitor's page lists %q", names)
	}
	if e := errs(); len(e) > 0 {
		t.Errorf("the page logged errors: %q", e)
	}
}

// /ui/ serves the page's files, not the page itself (whose mesh flag only
// / fills in) and no directory listings; the page and its files carry the
// listener's Content-Security-Policy.
func TestAssets(t *testing.T) {
	base, _ := server(t)
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/", 200}, {"/ui/app.js", 200}, {"/ui/vendor/uPlot.min.css", 200},
		{"/ui/", 404}, {"/ui/index.html", 404}, {"/ui/vendor/", 404}, {"/ui/../go.mod", 404},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.code)
		}
		if strings.Contains(string(b), "{{MESH}}") {
			t.Errorf("%s: the page's template marker served", tc.path)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); tc.code == 200 && !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", tc.path, csp)
		}
	}
}

// TestDocImagesCurrent: the page's pictures in the docs were made
// (scripts/doc-images) from the page as it is: docs/images/page.sum holds
// the digests of the page's files they were made from.
func TestDocImagesCurrent(t *testing.T) {
	b, err := os.ReadFile("../docs/images/page.sum")
	if err != nil {
		t.Fatal(err)
	}
	made := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if sum, name, ok := strings.Cut(line, "  "); ok {
			made[name] = sum
		}
	}
	for _, name := range []string{"app.css", "app.js", "index.html"} {
		f, err := os.ReadFile(filepath.Join("assets", name))
		if err != nil {
			t.Fatal(err)
		}
		if sum := fmt.Sprintf("%x", sha256.Sum256(f)); made[name] != sum {
			t.Errorf("assets/%s changed after the docs' pictures were made: run scripts/doc-images (it needs chromium)", name)
		}
	}
}
