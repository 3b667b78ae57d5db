package influx

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
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
		Annotations struct {
			List []struct {
				Name, Query string
				Datasource  struct{ Type string }
			}
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
	// A mesh node's path with its link cost, and an alarm, for the mesh
	// table and the annotations.
	cost := 123.0
	sink.Write(context.Background(), []record.Record{{Time: t0, Node: "lab-a", Target: "lab-d", Path: "overlay", Address: "[fd00::7]:8176", Direction: "forward",
		DBC: &cost, ABW: &cost, LinkCost: &cost, RTT: &record.RTT{Avg: 12}}})
	end := t0.Add(3 * time.Minute)
	for _, a := range []record.Alarm{
		{Kind: record.Capacity, Target: "lab-b", Direction: "forward", Severity: record.Critical, Start: t0.Add(time.Minute), Summary: "DBC 90 → 45 Mbit/s"},
		{Kind: record.Capacity, Target: "lab-b", Direction: "forward", Severity: record.Critical, Start: t0.Add(time.Minute), End: &end, Cleared: "returned", Summary: "back"},
	} {
		sink.WriteAlarm(context.Background(), &a)
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
	annotations := 0
	for _, a := range dash.Annotations.List {
		if a.Datasource.Type != "influxdb" {
			continue
		}
		rows := srv.Query(t, "abing", expand.Replace(strings.ReplaceAll(a.Query, "/^$target(\\/.*)?$/", "/^lab-b(\\/.*)?$/")))
		if len(rows) != 2 {
			t.Errorf("annotation %q: %d events, want the alarm's raise and clear: %s", a.Name, len(rows), a.Query)
		}
		annotations++
	}
	if queries < 10 || annotations != 1 {
		t.Errorf("%d queries and %d annotations in the dashboard", queries, annotations)
	}
}
