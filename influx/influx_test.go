package influx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/abing-net/abing/internal/influxtest"
	"github.com/abing-net/abing/internal/testenv"
	"github.com/abing-net/abing/record"
)

func result(i int, t0 time.Time) []record.Record {
	f := func(v float64) *float64 { return &v }
	ttl := 60
	tm := t0.Add(time.Duration(i) * time.Minute).UTC()
	return []record.Record{
		{Time: tm, Target: "lab-b", Address: "198.18.2.2:8176", Labels: map[string]string{"site": "b"}, Direction: "forward",
			DBC: f(float64(90 + i)), XTR: f(40), ABW: f(float64(50 + i)), ABWLow: f(float64(45 + i)), ABWHigh: f(float64(55 + i)),
			XTRPooled: f(40), ABWPooled: f(float64(50 + i)), ABWPooledLow: f(float64(48 + i)), ABWPooledHigh: f(float64(52 + i)), PooledRuns: 5, RTT: &record.RTT{Min: 0.2, Avg: 0.3, Max: 0.5, Jitter: 0.05},
			TTL: &ttl, PairsUsed: 31, Loss: 0.01, Confidence: f(0.9)},
		{Time: tm, Target: "lab-b", Address: "198.18.2.2:8176", Labels: map[string]string{"site": "b"}, Direction: "reverse",
			Error: "too few usable samples: 4, need 5"},
	}
}

func waitSpoolEmpty(t *testing.T, s *Sink, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if files, _ := s.spooled(); len(files) == 0 {
			return
		}
	}
	files, _ := s.spooled()
	t.Fatalf("%d batches still spooled after %v", len(files), within)
}

// Points written and read back from a real InfluxDB, which the sink
// creates the database of; then an outage: every result of it arrives,
// once, and the outage is logged once.
func TestInfluxDB(t *testing.T) {
	srv := influxtest.Start(t)
	var log testenv.SyncBuffer
	cfg := Config{URL: srv.URL, Bucket: "abing/autogen", CreateDatabase: true, Spool: filepath.Join(t.TempDir(), "spool")}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	sink, err := Open(cfg, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close(0)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if err := sink.Write(ctx, result(i, t0)); err != nil {
			t.Fatal(err)
		}
	}
	waitSpoolEmpty(t, sink, 10*time.Second)
	rows := srv.Query(t, "abing", `SELECT * FROM abing WHERE direction = 'forward' ORDER BY time`)
	if len(rows) != 3 {
		t.Fatalf("%d forward points, want 3: %v\nlog: %s", len(rows), rows, log.String())
	}
	r := rows[2]
	if r["target"] != "lab-b" || r["site"] != "b" || r["dbc_mbps"] != 92.0 ||
		r["abw_mbps"] != 52.0 || r["abw_low_mbps"] != 47.0 || r["abw_high_mbps"] != 57.0 || r["rtt_avg_ms"] != 0.3 || r["ttl"] != 60.0 || r["pairs_used"] != 31.0 || r["time"] != "2026-11-23T00:02:00Z" {
		t.Errorf("point %v", r)
	}
	rev := srv.Query(t, "abing", `SELECT * FROM abing WHERE direction = 'reverse'`)
	if len(rev) != 3 || rev[0]["error"] != "too few usable samples: 4, need 5" || rev[0]["dbc_mbps"] != nil {
		t.Errorf("reverse points %v", rev)
	}

	// The outage: InfluxDB stops, results keep coming, InfluxDB returns.
	srv.Stop()
	for i := 3; i < 10; i++ {
		sink.Write(ctx, result(i, t0))
		time.Sleep(300 * time.Millisecond)
	}
	srv.Start(t)
	sink.Write(ctx, result(10, t0))
	waitSpoolEmpty(t, sink, 40*time.Second)
	all := srv.Query(t, "abing", `SELECT * FROM abing`)
	seen := map[string]bool{}
	for _, r := range all {
		k := fmt.Sprint(r["time"], r["direction"])
		if seen[k] {
			t.Errorf("duplicate point %s", k)
		}
		seen[k] = true
	}
	if len(all) != 22 {
		t.Errorf("%d points after the outage, want 22 (11 results × 2 directions)", len(all))
	}
	out := log.String()
	if n := strings.Count(out, "influxdb unreachable"); n != 1 {
		t.Errorf("outage logged %d times:\n%s", n, out)
	}
	if !strings.Contains(out, "influxdb reachable again") || !strings.Contains(out, "created database") {
		t.Errorf("log:\n%s", out)
	}
}

// An alarm's raise and clear are two events, read back from InfluxDB.
func TestAlarmEvents(t *testing.T) {
	srv, _, sink := serverAndSink(t)
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	a := record.Alarm{Kind: record.Capacity, Target: "lab", Direction: "forward", Severity: record.Critical, Start: t0,
		Before: 100, After: 40, Unit: "Mbit/s", Summary: "DBC forward changed from 100 to 40 Mbit/s (-60 %)"}
	ctx := context.Background()
	if err := sink.WriteAlarm(ctx, &a); err != nil {
		t.Fatal(err)
	}
	end := t0.Add(10 * time.Minute)
	a.End, a.Cleared = &end, "returned"
	hop := func(ip string) record.Hop { return record.Hop{TTL: 1, Addr: netip.MustParseAddr(ip)} }
	a.Route = &record.Route{Before: &record.Trace{Hops: []record.Hop{hop("198.18.2.2")}},
		After: &record.Trace{Hops: []record.Hop{hop("198.18.4.2"), hop("198.18.2.2")}}}
	if err := sink.WriteAlarm(ctx, &a); err != nil {
		t.Fatal(err)
	}
	waitSpoolEmpty(t, sink, 10*time.Second)
	rows := srv.Query(t, "abing", `SELECT * FROM abing_alarm ORDER BY time`)
	if len(rows) != 2 || rows[0]["status"] != "firing" || rows[0]["active"] != 1.0 || rows[0]["after"] != 40.0 ||
		rows[0]["summary"] != a.Summary || rows[1]["status"] != "resolved" || rows[1]["active"] != 0.0 ||
		rows[1]["cleared"] != "returned" || rows[1]["time"] != "2026-11-23T00:10:00Z" || rows[1]["kind"] != "capacity" ||
		rows[0]["route_after"] != nil || rows[1]["route_before"] != "198.18.2.2" || rows[1]["route_after"] != "198.18.4.2 198.18.2.2" {
		t.Errorf("alarm events %v", rows)
	}
}

// Batches spooled by a run that ended while InfluxDB was away are
// delivered by the next run.
func TestSpoolSurvivesRestart(t *testing.T) {
	srv := influxtest.Start(t)
	spool := filepath.Join(t.TempDir(), "spool")
	quiet := slog.New(slog.DiscardHandler)
	away := Config{URL: fmt.Sprintf("http://127.0.0.1:%d", influxtest.FreePort(t)), Bucket: "abing/autogen", CreateDatabase: true, Spool: spool}
	away.Check()
	s1, err := Open(away, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for i := range 4 {
		s1.Write(context.Background(), result(i, t0))
	}
	s1.Close(0)
	if files, _ := s1.spooled(); len(files) != 4 {
		t.Fatalf("%d batches spooled, want 4", len(files))
	}
	back := away
	back.URL = srv.URL
	s2, err := Open(back, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(0)
	s2.Write(context.Background(), result(4, t0))
	waitSpoolEmpty(t, s2, 10*time.Second)
	if rows := srv.Query(t, "abing", `SELECT * FROM abing`); len(rows) != 10 {
		t.Errorf("%d points, want 10", len(rows))
	}
}

func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{URL: "127.0.0.1:8086", Bucket: "a", Spool: "s"}, "want http(s)://"},
		{Config{URL: "http://127.0.0.1:8086", Spool: "s"}, "bucket missing"},
		{Config{URL: "http://127.0.0.1:8086", Bucket: "a"}, "spool"},
		{Config{URL: "http://127.0.0.1:8086", Bucket: "a", Spool: "s", SpoolMaxMB: -1}, "spool_max_mb"},
	} {
		if err := tc.c.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}

// A batch InfluxDB refuses for good (here a line it cannot parse: HTTP
// 400) is moved aside and counted, and the results after it are delivered;
// an unfinished *.tmp of an earlier run is removed at start.
func TestRefusedBatchMovedAside(t *testing.T) {
	srv := influxtest.Start(t)
	var log testenv.SyncBuffer
	spool := filepath.Join(t.TempDir(), "spool")
	os.MkdirAll(spool, 0o750)
	os.WriteFile(filepath.Join(spool, fmt.Sprintf("%020d.lp", 1)), []byte("abing,target=x this is not line protocol\n"), 0o640)
	os.WriteFile(filepath.Join(spool, fmt.Sprintf("%020d.lp.tmp", 2)), []byte("half a batch"), 0o640)
	cfg := Config{URL: srv.URL, Bucket: "abing/autogen", CreateDatabase: true, Spool: spool}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	sink, err := Open(cfg, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close(0)
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if err := sink.Write(context.Background(), result(i, t0)); err != nil {
			t.Fatal(err)
		}
	}
	waitSpoolEmpty(t, sink, 20*time.Second)
	if rows := srv.Query(t, "abing", `SELECT * FROM abing`); len(rows) != 6 {
		t.Errorf("%d points, want 6 (3 results × 2 directions)\nlog: %s", len(rows), log.String())
	}
	if sink.Rejected() != 1 {
		t.Errorf("%d batches rejected, want 1", sink.Rejected())
	}
	if _, err := os.Stat(filepath.Join(spool, RejectedDir, fmt.Sprintf("%020d.lp", 1))); err != nil {
		t.Errorf("refused batch not kept aside: %v", err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(spool, "*.tmp")); len(tmp) != 0 {
		t.Errorf("stale temporary files left: %v", tmp)
	}
	if !strings.Contains(log.String(), "refused a batch for good") {
		t.Errorf("log:\n%s", log.String())
	}
}

func TestRefusedForGood(t *testing.T) {
	for code, want := range map[int]bool{400: true, 413: true, 422: true, 401: false, 403: false, 404: false, 408: false, 429: false, 500: false, 503: false} {
		if got := refusedForGood(fmt.Errorf("write: %w", &ihttp.Error{StatusCode: code})); got != want {
			t.Errorf("HTTP %d: refused for good %v, want %v", code, got, want)
		}
	}
	if refusedForGood(errors.New("connection refused")) {
		t.Error("a network error is not a refusal")
	}
}

// Health says so once nothing could be delivered for unhealthy_after, and
// is fine again once InfluxDB takes the spool.
func TestHealth(t *testing.T) {
	srv := influxtest.Start(t)
	spool := filepath.Join(t.TempDir(), "spool")
	away := Config{URL: fmt.Sprintf("http://127.0.0.1:%d", influxtest.FreePort(t)), Bucket: "abing/autogen", CreateDatabase: true,
		Spool: spool, BlockedAfter: 500 * time.Millisecond}
	if err := away.Check(); err != nil {
		t.Fatal(err)
	}
	s1, err := Open(away, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	s1.Write(context.Background(), result(0, t0))
	if err := s1.Health(); err != nil {
		t.Errorf("healthy at once: %v", err)
	}
	time.Sleep(time.Second)
	if err := s1.Health(); err == nil || !strings.Contains(err.Error(), "1 batches spooled") {
		t.Errorf("after 1 s undelivered: %v", err)
	}
	s1.Close(0)
	back := away
	back.URL = srv.URL
	s2, err := Open(back, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(0)
	waitSpoolEmpty(t, s2, 10*time.Second)
	if err := s2.Health(); err != nil {
		t.Errorf("delivered: %v", err)
	}
}

// An InfluxDB URL with user:password, unreachable: the outage is logged,
// the password is not.
func TestCredentialsNotLogged(t *testing.T) {
	var log testenv.SyncBuffer
	cfg := Config{URL: fmt.Sprintf("http://admin:SECRETPW@127.0.0.1:%d", influxtest.FreePort(t)), Token: "SECRETTOKEN",
		Bucket: "abing/autogen", Spool: filepath.Join(t.TempDir(), "spool"), BlockedAfter: time.Millisecond}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(cfg, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.Write(context.Background(), result(0, time.Now()))
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(log.String(), "unreachable") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	health := s.Health()
	s.Close(0)
	out := log.String() + fmt.Sprint(health)
	if !strings.Contains(out, "influxdb unreachable") || health == nil {
		t.Fatalf("no outage logged, health %v:\n%s", health, out)
	}
	for _, secret := range []string{"SECRETPW", "SECRETTOKEN"} {
		if strings.Contains(out, secret) {
			t.Errorf("%s in the log or health:\n%s", secret, out)
		}
	}
}

// Records written through the sink come back from Read as they went in,
// as far as InfluxDB keeps them (not the address); a bad bucket, a dead
// server and a window with nothing in it say so.
func TestRead(t *testing.T) {
	_, cfg, sink := serverAndSink(t)
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var want []record.Record
	for i := range 3 {
		recs := result(i, t0)
		recs[0].Node, recs[0].Path, recs[1].Node, recs[1].Path = "n1", "overlay", "n1", "overlay"
		want = append(want, recs...)
		sink.Write(context.Background(), recs)
	}
	waitSpoolEmpty(t, sink, 10*time.Second)
	got, err := Read(context.Background(), cfg, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d records since the second run, want 4", len(got))
	}
	for _, r := range got {
		var w *record.Record
		for i := range want {
			if want[i].Time.Equal(r.Time) && want[i].Direction == r.Direction {
				w = &want[i]
			}
		}
		if w == nil {
			t.Fatalf("unexpected record %+v", r)
		}
		w.Address = "" // not kept in InfluxDB
		a, _ := json.Marshal(w)
		b, _ := json.Marshal(r)
		if string(a) != string(b) {
			t.Errorf("read back\n%s\nwrote\n%s", b, a)
		}
	}
	if got, err := Read(context.Background(), cfg, t0.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("an empty window: %d records, %v", len(got), err)
	}
	if got, err := Read(context.Background(), cfg, time.Time{}); err != nil || len(got) != 6 || !got[0].Time.Equal(t0) {
		t.Errorf("no window (the zero time): %d records, %v", len(got), err)
	}
	bad := cfg
	bad.Bucket = "nosuchdb/autogen"
	if _, err := Read(context.Background(), bad, t0); err == nil || !strings.Contains(err.Error(), "database not found") {
		t.Errorf("missing database: %v", err)
	}
	bad.URL = "http://127.0.0.1:1"
	if _, err := Read(context.Background(), bad, t0); err == nil || !strings.Contains(err.Error(), "influxdb http://127.0.0.1:1") {
		t.Errorf("no server: %v", err)
	}
}

// serverAndSink starts an InfluxDB and a sink writing to its database
// abing (created on the first write), both ended with the test.
func serverAndSink(t *testing.T) (*influxtest.Server, Config, *Sink) {
	t.Helper()
	srv := influxtest.Start(t)
	cfg := Config{URL: srv.URL, Bucket: "abing/autogen", CreateDatabase: true, Spool: filepath.Join(t.TempDir(), "spool")}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	sink, err := Open(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close(0) })
	return srv, cfg, sink
}
