package influx

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// The Grafana dashboard's queries, run against a real InfluxDB holding
// points of this sink: each panel query and each variable query answers
// with data.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../deploy/grafana/abing-paths.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Query string }
		}
		Templating struct {
			List []struct{ Name, Type, Query string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	srv, _, sink := serverAndSink(t)
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		sink.Write(context.Background(), result(i, t0))
	}
	waitSpoolEmpty(t, sink, 10*time.Second)
	expand := strings.NewReplacer("$timeFilter", "time >= '2026-11-22T00:00:00Z'", "$__interval", "1m",
		"/^$target$/", "/^.*$/", "/^$direction$/", "/^forward$/")
	queries := 0
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			if rows := srv.Query(t, "abing", expand.Replace(q.Query)); len(rows) == 0 {
				t.Errorf("panel %q: no data for %s", p.Title, q.Query)
			}
			queries++
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		if rows := srv.Query(t, "abing", v.Query); len(rows) == 0 {
			t.Errorf("variable %s: no values from %s", v.Name, v.Query)
		}
		queries++
	}
	if queries < 8 {
		t.Errorf("only %d queries in the dashboard", queries)
	}
}
