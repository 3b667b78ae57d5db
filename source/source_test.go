package source

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/store"
	"github.com/abing-net/abing/webapi"
)

// Every source a reading command may name, as real ones: a store on disk,
// the API of that store served over HTTP, and a file of records. Each
// returns what the filter asks, and says what it does not keep.
func TestSources(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	f := func(v float64) *float64 { return &v }
	recs := []record.Record{
		{Time: now.Add(-48 * time.Hour), Target: "old", Address: "198.18.2.9:8176", Direction: "forward", DBC: f(10)},
		{Time: now.Add(-time.Hour), Target: "lab-b", Address: "198.18.2.2:8176", Direction: "forward", DBC: f(20)},
		{Time: now.Add(-time.Hour), Target: "lab-c", Path: "overlay", Address: "198.18.2.3:8176", Direction: "forward", DBC: f(30)},
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "abing.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	alarm := record.Alarm{Kind: record.Down, Target: "lab-b", Direction: "both", Severity: "critical", Start: now.Add(-time.Hour)}
	if err := st.WriteAlarm(ctx, &alarm); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for p, h := range (&webapi.API{Store: st}).Handlers() {
		mux.Handle(p, h)
	}
	api := httptest.NewServer(mux)
	defer api.Close()
	defer st.Close()
	var buf bytes.Buffer
	p, _ := record.NewPrinter(&buf, "json")
	for i := range recs {
		p.Print(&recs[i])
	}
	file := filepath.Join(dir, "recs.jsonl")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		args    []string
		target  string
		records string // targets read, in order; "error: ..." for an error
		alarms  string
	}{
		{"store, all", []string{"--db", db}, "", "old lab-b lab-c", "lab-b"},
		{"store, a day", []string{"--db", db, "--since", "24h"}, "", "lab-b lab-c", "lab-b"},
		{"store, one target by address", []string{"--db", db}, "198.18.2.2:8176", "lab-b", ""}, // alarms are found by the target's name
		{"file, a day", []string{"--input", file, "--since", "24h"}, "", "lab-b lab-c", "error: a file of records holds none"},
		{"file, one path by its key", []string{"--input", file}, "lab-c/overlay", "lab-c", "error: a file of records holds none"},
		{"api", []string{"--api", api.URL}, "", "error: a monitor's API serves the last results", "lab-b"},
		{"two sources", []string{"--input", file, "--api", api.URL}, "", "error: give one source", "error: give one source"},
		{"--db with another", []string{"--db", db, "--input", file}, "", "error: --db and --input", "error: --db and --input"},
		{"negative since", []string{"--since", "-1h"}, "", "error: must not be negative", "error: must not be negative"},
	} {
		read := func(alarms bool) string {
			var fl Flags
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			fl.Bind(fs, 0, API, Agent, Influx, Input)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var args []string
			if tc.target != "" {
				args = []string{tc.target}
			}
			filter, err := fl.Filter(args)
			if err != nil {
				return "error: " + err.Error()
			}
			src, err := fl.Open()
			if err != nil {
				return "error: " + err.Error()
			}
			defer src.Close()
			var got []string
			if alarms {
				err = src.Alarms(ctx, filter, func(a *record.Alarm) error { got = append(got, a.Target); return nil })
			} else {
				err = src.Records(ctx, filter, func(r *record.Record) error { got = append(got, r.Target); return nil })
			}
			if err != nil {
				return "error: " + err.Error()
			}
			return strings.Join(got, " ")
		}
		for _, w := range []struct {
			alarms bool
			want   string
		}{{false, tc.records}, {true, tc.alarms}} {
			got := read(w.alarms)
			if got != w.want && !(strings.HasPrefix(w.want, "error: ") && strings.Contains(got, strings.TrimPrefix(w.want, "error: "))) {
				t.Errorf("%s (alarms %v): %q, want %q", tc.name, w.alarms, got, w.want)
			}
		}
	}
}
