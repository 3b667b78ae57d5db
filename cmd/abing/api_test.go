package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/store"
	"github.com/abing-net/abing/webapi"
)

// apiServer serves the API of a store of two hours of one-minute runs of
// lab-b (its direct path) and one of lab-c, with an alarm of each: a
// monitor's web listener, over real HTTP.
func apiServer(t *testing.T) (db string, url string) {
	t.Helper()
	db = filepath.Join(t.TempDir(), "a.db")
	s, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Minute)
	var recs []record.Record
	for i := 120; i > 0; i-- {
		for _, dir := range []string{"forward", "reverse"} {
			dbc, abw, lo, hi, xtr := 18.5, 8.0+float64(i%3), 6.0, 10.0, 10.5-float64(i%3)
			recs = append(recs, record.Record{Time: now.Add(-time.Duration(i) * time.Minute), Target: "lab-b", Path: "direct",
				Address: "198.18.2.2:8176", Direction: dir, DBC: &dbc, ABW: &abw, ABWLow: &lo, ABWHigh: &hi, XTR: &xtr,
				RTT: &record.RTT{Min: 1, Avg: 2, Max: 3}})
		}
	}
	dbc := 9.5
	recs = append(recs, record.Record{Time: now.Add(-time.Minute), Target: "lab-c", Address: "198.18.3.2:8176", Direction: "forward", DBC: &dbc})
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	end := now.Add(-30 * time.Minute)
	for _, a := range []record.Alarm{
		{Kind: record.Load, Target: "lab-b/direct", Direction: "forward", Severity: record.Warning, Start: now.Add(-time.Hour), End: &end,
			Cleared: "recovered", Unit: "Mbit/s", Before: 9, After: 1, Summary: "heavy load forward"},
		{Kind: record.Down, Target: "lab-c", Direction: "both", Severity: record.Critical, Start: now.Add(-10 * time.Minute), Unit: "up", Before: 1,
			Summary: "lab-c does not answer"},
	} {
		if err := s.WriteAlarm(context.Background(), &a); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { s.Close() })
	mux := http.NewServeMux()
	// The API's clock stands still half a minute after the last run, so
	// that its windows hold a known number of runs.
	api := &webapi.API{Store: s, Now: func() time.Time { return now.Add(30 * time.Second) }}
	for p, h := range api.Handlers() {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return db, srv.URL
}

// abing alarms and abing history read a monitor's API as they read its
// database: the same alarms, line for line; the last results of every
// path; one path's history in buckets.
func TestFromAPI(t *testing.T) {
	db, url := apiServer(t)
	host := strings.TrimPrefix(url, "http://")
	for _, args := range [][]string{{"--since", "3h"}, {"--since", "0"}, {"--since", "3h", "lab-c"}, {"--output", "json", "--since", "3h"}} {
		local, err := execute(t, alarmsCommand, nil, append([]string{"--db", db}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		remote, err := execute(t, alarmsCommand, nil, append([]string{"--api", host}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if local != remote || !strings.Contains(local, "lab-c does not answer") {
			t.Errorf("alarms %v:\nfrom the database:\n%s\nfrom the API:\n%s", args, local, remote)
		}
	}

	out, err := execute(t, historyCommand, nil, "--api", url)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "lab-b/direct") || !strings.Contains(lines[0], "forward  DBC 18.5") ||
		!strings.HasPrefix(lines[2], "lab-c ") || !strings.Contains(lines[2], "1 active alarms") {
		t.Errorf("overview:\n%s", out)
	}

	out, err = execute(t, historyCommand, nil, "--api", url, "--since", "2h", "--points", "12", "--path", "direct", "lab-b")
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	// 2 h back from the API's clock holds 119 runs (a record of each
	// direction each), in 12 buckets of 10 min each.
	if !strings.HasPrefix(lines[0], "lab-b/direct: 119 runs") {
		t.Errorf("header %q", lines[0])
	}
	if n := len(lines) - 1; n != 24 || !strings.Contains(lines[5], "DBC 18.5 (18.5–18.5)  ABW 9.0 (8.0–10.0) [6.0–10.0]") {
		t.Errorf("%d buckets:\n%s", n, out)
	}
	out, err = execute(t, historyCommand, nil, "--api", url, "--output", "json", "--path", "direct", "lab-b")
	var h webapi.History
	if err != nil || json.Unmarshal([]byte(out), &h) != nil || h.Runs != 120 || h.Path != "direct" {
		t.Errorf("json: %v, %d runs\n%.300s", err, h.Runs, out)
	}
}

// What cannot work says why.
func TestAPIBadInput(t *testing.T) {
	db, url := apiServer(t)
	for _, tc := range []struct {
		cmd  func() *cobra.Command
		args []string
		want string
	}{
		{historyCommand, []string{"--api", url, "--output", "csv"}, "--output csv needs records"},
		{historyCommand, []string{"--api", url, "--db", db}, "--db and --api: give one or the other"},
		{historyCommand, []string{"--path", "direct", "lab-b"}, "--path and --points read the API: give --api too"},
		{historyCommand, []string{"--api", url, "--points", "3", "lab-b"}, `400 Bad Request: points "3": want 10 to 5000`},
		{alarmsCommand, []string{"--api", url, "--since", "10000h"}, "--since 10000h0m0s: the API answers at most 9600h0m0s"},
		{alarmsCommand, []string{"--api", "ftp://x"}, `api "ftp://x": want HOST:PORT`},
		{alarmsCommand, []string{"--api", url + "/nothing"}, "404 Not Found: no API there"},
		{alarmsCommand, []string{"--api", "127.0.0.1:1"}, "connection refused"},
	} {
		_, err := execute(t, tc.cmd, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
