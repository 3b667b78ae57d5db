package store

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
)

func TestMain(m *testing.M) {
	if p := os.Getenv("ABING_STORE_WRITER"); p != "" {
		writer(p)
		return
	}
	os.Exit(m.Run())
}

func rec(target, dir string, t time.Time, dbc float64) record.Record {
	ttl := 61
	return record.Record{Time: t.UTC(), Target: target, Direction: dir, DBC: &dbc,
		TTL: &ttl, Labels: map[string]string{"site": "b"}}
}

func all(t *testing.T, s *Store, f Filter) []record.Record {
	t.Helper()
	var out []record.Record
	if err := s.Query(context.Background(), f, func(r *record.Record) error { out = append(out, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteQueryPrune(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "abing.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var recs []record.Record
	for i := range 10 {
		for _, tg := range []string{"a:8176", "b:8176"} {
			recs = append(recs, rec(tg, "forward", t0.Add(time.Duration(i)*time.Hour), float64(100+i)), rec(tg, "reverse", t0.Add(time.Duration(i)*time.Hour), 50))
		}
	}
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if got := all(t, s, Filter{}); len(got) != 40 || !got[0].Time.Equal(recs[0].Time) || *got[0].DBC != 100 || *got[0].TTL != 61 || got[0].Labels["site"] != "b" {
		t.Fatalf("%d records, first %+v", len(got), got[0])
	}
	if got := all(t, s, Filter{Target: "a:8176", Since: t0.Add(5 * time.Hour)}); len(got) != 10 || *got[0].DBC != 105 {
		t.Fatalf("filtered: %d", len(got))
	}
	// A bad record fails the whole write.
	bad := []record.Record{rec("a:8176", "forward", t0, 1), {Target: "a:8176"}}
	if err := s.Write(ctx, bad); err == nil {
		t.Error("record without a time accepted")
	}
	if got := all(t, s, Filter{}); len(got) != 40 {
		t.Errorf("%d records after a failed write", len(got))
	}
	n, err := s.Prune(ctx, t0.Add(8*time.Hour))
	if err != nil || n != 32 {
		t.Errorf("pruned %d, %v", n, err)
	}
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := all(t, s, Filter{}); len(got) != 8 {
		t.Errorf("%d records after reopening", len(got))
	}
}

// writer is the child of TestKill: it writes batches as fast as it can and
// prints how many it committed.
func writer(path string) {
	s, err := Open(path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	t0 := time.Now()
	for i := 0; ; i++ {
		r := []record.Record{rec("k", "forward", t0.Add(time.Duration(i)), float64(i)), rec("k", "reverse", t0.Add(time.Duration(i)), float64(i))}
		if err := s.Write(context.Background(), r); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(i + 1)
	}
}

// TestKill: SIGKILL a writer in the middle of its writes, five times over;
// every batch it reported committed is there, the database opens clean, and
// no batch is half written.
func TestKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "abing.db")
	committed := 0
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "ABING_STORE_WRITER="+path)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		last := 0
		deadline := time.Now().Add(time.Duration(100+50*round) * time.Millisecond)
		for sc.Scan() {
			n, err := strconv.Atoi(sc.Text())
			if err != nil {
				t.Fatalf("child: %s", sc.Text())
			}
			last = n
			if time.Now().After(deadline) {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		cmd.Wait()
		committed += last
		s, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		got := all(t, s, Filter{})
		s.Close()
		if len(got) < 2*committed || len(got)%2 != 0 {
			t.Fatalf("round %d: %d records, %d batches committed", round, len(got), committed)
		}
		committed = len(got) / 2 // a batch may have committed after its line was read
		if last == 0 {
			t.Fatalf("round %d: the writer committed nothing", round)
		}
	}
	t.Logf("%d batches over 5 kills", committed)
}

// An alarm is one row from raise to clear; Alarms selects by target and by
// whether it was active since a time; Prune drops old ended ones.
func TestAlarms(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	old := record.Alarm{Kind: record.Capacity, Target: "lab", Direction: "forward", Start: t0, Before: 100, After: 40}
	end := t0.Add(time.Hour)
	current := record.Alarm{Kind: record.Path, Target: "far", Direction: "reverse", Start: t0.Add(48 * time.Hour), Before: 2, After: 3}
	for _, a := range []*record.Alarm{&old, &current} {
		if err := s.WriteAlarm(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	old.End, old.Cleared = &end, "returned"
	if err := s.WriteAlarm(ctx, &old); err != nil { // the clear updates the row
		t.Fatal(err)
	}
	get := func(f Filter) []record.Alarm {
		var out []record.Alarm
		if err := s.Alarms(ctx, f, func(a *record.Alarm) error { out = append(out, *a); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := get(Filter{}); len(got) != 2 || got[0].End == nil || !got[0].End.Equal(end) || got[0].Cleared != "returned" || got[1].End != nil {
		t.Errorf("all: %+v", got)
	}
	if got := get(Filter{Since: t0.Add(2 * time.Hour)}); len(got) != 1 || got[0].Target != "far" {
		t.Errorf("since: %+v", got)
	}
	if got := get(Filter{Target: "lab"}); len(got) != 1 || got[0].Kind != record.Capacity {
		t.Errorf("target: %+v", got)
	}
	if _, err := s.Prune(ctx, t0.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := get(Filter{}); len(got) != 1 || got[0].Target != "far" {
		t.Errorf("after prune: %+v", got)
	}
}

// One identity per target: its results and its alarms are found by its
// name and by its address alike; and databases made before results were
// keyed by name (the name in the JSON only, or in a column of its own) are
// brought up to date, their rows found by name and by address.
func TestOneIdentity(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	// A row as it was written: target the configured address, the name and
	// the address measured in the JSON.
	legacy := func(name string) string {
		r := rec("lab-b.example.org:8176", "forward", t0, 90)
		r.Address = "198.18.2.2:8176"
		js, _ := json.Marshal(r)
		var m map[string]any
		json.Unmarshal(js, &m)
		if name != "" {
			m["name"] = name
		}
		js, _ = json.Marshal(m)
		return string(js)
	}
	for _, tc := range []struct {
		name   string
		schema []string
		insert string
	}{
		{"before the name column", []string{
			`CREATE TABLE results (id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, target TEXT NOT NULL, direction TEXT NOT NULL, record TEXT NOT NULL)`,
			`CREATE TABLE alarms (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, direction TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER, alarm TEXT NOT NULL, UNIQUE (kind, target, direction, start_ns))`,
		}, `INSERT INTO results (time_ns, target, direction, record) VALUES (?, 'lab-b.example.org:8176', 'forward', ?)`},
		{"with the name column", []string{
			`CREATE TABLE results (id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, target TEXT NOT NULL, direction TEXT NOT NULL, record TEXT NOT NULL, name TEXT NOT NULL DEFAULT '')`,
			`CREATE INDEX results_name_time ON results (name, time_ns)`,
			`CREATE TABLE alarms (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, direction TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER, alarm TEXT NOT NULL, address TEXT NOT NULL DEFAULT '', UNIQUE (kind, target, direction, start_ns))`,
		}, `INSERT INTO results (time_ns, target, direction, record, name) VALUES (?, 'lab-b.example.org:8176', 'forward', ?, 'lab-b')`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "old.db")
			old, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range tc.schema {
				if _, err := old.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := old.Exec(tc.insert, t0.UnixNano(), legacy("lab-b")); err != nil {
				t.Fatal(err)
			}
			old.Close()

			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r1 := rec("lab-b", "forward", t0.Add(time.Minute), 91)
			r1.Address = "198.18.2.2:8176"
			unnamed := rec("198.18.3.3:8176", "forward", t0.Add(time.Minute), 50)
			unnamed.Address = "198.18.3.3:8176"
			if err := s.Write(context.Background(), []record.Record{r1, unnamed}); err != nil {
				t.Fatal(err)
			}
			a := record.Alarm{Kind: record.Capacity, Target: "lab-b", Address: "198.18.2.2:8176", Direction: "forward", Start: t0}
			if err := s.WriteAlarm(context.Background(), &a); err != nil {
				t.Fatal(err)
			}
			for _, by := range []string{"lab-b", "198.18.2.2:8176"} {
				got := all(t, s, Filter{Target: by})
				if len(got) != 2 || got[0].Target != "lab-b" || got[1].Target != "lab-b" {
					t.Errorf("results of %q: %+v, want 2 of lab-b (one from before the migration)", by, got)
				}
				n := 0
				s.Alarms(context.Background(), Filter{Target: by}, func(*record.Alarm) error { n++; return nil })
				if n != 1 {
					t.Errorf("alarms of %q: %d, want 1", by, n)
				}
			}
			if n := len(all(t, s, Filter{Target: "198.18.3.3:8176"})); n != 1 {
				t.Errorf("an unnamed target by its address: %d results", n)
			}
			// A plot's columns were filled from the old rows' JSON.
			var dbc []float64
			s.Series(context.Background(), SeriesFilter{Target: "lab-b"}, func(p Point) error { dbc = append(dbc, p.DBC); return nil })
			if len(dbc) != 2 || dbc[0] != 90 || dbc[1] != 91 {
				t.Errorf("series of lab-b across the migration: %v", dbc)
			}
			if latest, _, err := s.Latest(context.Background()); err != nil || len(latest) != 2 || *latest[0].DBC != 50 || *latest[1].DBC != 91 {
				t.Errorf("latest across the migration: %+v %v", latest, err)
			}
		})
	}
}
