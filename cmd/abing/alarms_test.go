package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/alarms"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/store"
)

// A series exported as CSV and as JSON lines replays into the same alarms:
// the capacity drop of both directions, still active (no end), with the
// levels in Mbit/s.
func TestAlarmsReplay(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	levels := make([]alarms.Level, 60)
	for i := range levels {
		levels[i] = alarms.Level{DBC: 1000, ABW: 600, RTT: 10, TTL: 60}
		if i >= 40 {
			levels[i].DBC, levels[i].ABW = 622, 370
		}
	}
	recs := alarms.Synthesize(1, t0, levels, 0.03, 0)
	dir := t.TempDir()
	csvPath, jsonPath := filepath.Join(dir, "h.csv"), filepath.Join(dir, "h.json")
	var csvBuf, jsonBuf bytes.Buffer
	cw := record.NewCSVWriter(&csvBuf)
	enc := json.NewEncoder(&jsonBuf)
	for i := range recs {
		cw.Write(&recs[i])
		enc.Encode(&recs[i])
	}
	cw.Flush()
	os.WriteFile(csvPath, csvBuf.Bytes(), 0o644)
	os.WriteFile(jsonPath, jsonBuf.Bytes(), 0o644)
	var outs []string
	for _, path := range []string{csvPath, jsonPath} {
		out, err := execute(t, alarmsCommand, nil, "replay", "--output", "json", path)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("%s: %d alarms:\n%s", path, len(lines), out)
		}
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			if m["kind"] != "capacity" || m["target"] != "lab" || m["severity"] != "critical" || m["end"] != nil ||
				m["before"].(float64) < 970 || m["before"].(float64) > 1030 || m["after"].(float64) < 600 || m["after"].(float64) > 645 ||
				!strings.HasPrefix(m["start"].(string), "2026-11-01T00:40:00") {
				t.Errorf("%s: %s", path, l)
			}
		}
	}
	if outs[0] != outs[1] {
		t.Errorf("CSV and JSON replays differ:\n%s\n%s", outs[0], outs[1])
	}
	// Tuning: a min_change above the drop hides it.
	if out, err := execute(t, alarmsCommand, nil, "replay", "--min-change", "0.5", csvPath); err != nil || strings.TrimSpace(out) != "no alarms" {
		t.Errorf("--min-change 0.5: %q %v", out, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--hysteresis", "2", csvPath}, "alarms hysteresis 2"},
		{[]string{"replay", "/no/such/file"}, "no such file"},
		{[]string{"replay", "--output", "xml", csvPath}, "--output"},
		{[]string{"replay", filepath.Join(dir)}, "is a directory"},
	} {
		if _, err := execute(t, alarmsCommand, nil, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{\"time\": \"2026-11-01T00:00:00Z\"}\n{nope\n"), 0o644)
	if _, err := execute(t, alarmsCommand, nil, "replay", bad); err == nil || !strings.Contains(err.Error(), "bad.json: line 2:") {
		t.Errorf("bad JSON line: %v", err)
	}
}

func TestAlarmsList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old := now.Add(-72 * time.Hour)
	end := old.Add(time.Hour)
	for _, a := range []record.Alarm{
		{Kind: record.Down, Target: "gone", Direction: "both", Severity: record.Critical, Start: old, End: &end, Cleared: "up", Unit: "up", Before: 1},
		{Kind: record.Path, Target: "lab", Direction: "forward", Severity: record.Warning, Start: now.Add(-time.Hour), Before: 2, After: 3, Unit: "hops",
			Summary: "path forward changed: 3 hops, was 2", Route: &record.Route{After: &record.Trace{}}},
	} {
		if err := s.WriteAlarm(context.Background(), &a); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	out, err := execute(t, alarmsCommand, nil, "--db", path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "gone") || !strings.Contains(out, "active") || !strings.Contains(out, "2 → 3 hops") || !strings.Contains(out, "route after:") {
		t.Errorf("last 24 h:\n%s", out)
	}
	out, _ = execute(t, alarmsCommand, nil, "--db", path, "--since", "0", "--output", "json")
	if n := strings.Count(out, "\n"); n != 2 || !strings.Contains(out, `"cleared":"up"`) {
		t.Errorf("all, json:\n%s", out)
	}
}

// One target, one identity: abing history and abing alarms find a
// monitor's target by its name and by its address alike, and nothing of
// another target.
func TestHistoryAndAlarmsByName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Add(-time.Minute)
	dbc := 18.5
	for _, r := range []record.Record{
		{Time: now, Target: "lab-b", Address: "198.18.2.2:8176", Direction: "forward", DBC: &dbc},
		{Time: now, Target: "lab-c", Address: "198.18.3.2:8176", Direction: "forward", DBC: &dbc},
	} {
		if err := s.Write(context.Background(), []record.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	a := record.Alarm{Kind: record.Down, Target: "lab-b", Address: "198.18.2.2:8176", Direction: "both", Start: now, Unit: "up", Summary: "lab-b does not answer"}
	if err := s.WriteAlarm(context.Background(), &a); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, by := range []string{"lab-b", "198.18.2.2:8176"} {
		out, err := execute(t, historyCommand, nil, "--db", path, by)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, "\n"); n != 1 || !strings.Contains(out, "lab-b") {
			t.Errorf("history %s:\n%s", by, out)
		}
		al, err := execute(t, alarmsCommand, nil, "--db", path, by)
		if err != nil || !strings.Contains(al, "lab-b does not answer") {
			t.Errorf("alarms %s: %v\n%s", by, err, al)
		}
	}
	if al, _ := execute(t, alarmsCommand, nil, "--db", path, "lab-c"); strings.Contains(al, "lab-b") {
		t.Errorf("alarms lab-c shows lab-b's:\n%s", al)
	}
}
