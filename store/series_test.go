package store

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
)

// month writes 30 days of one-minute results of one target (two
// directions), and a few of another path and target.
func month(tb testing.TB, s *Store, end time.Time) {
	tb.Helper()
	f := func(v float64) *float64 { return &v }
	var batch []record.Record
	for i := range 30 * 24 * 60 {
		t := end.Add(-time.Duration(30*24*60-i) * time.Minute)
		for _, d := range []string{"forward", "reverse"} {
			r := record.Record{Time: t, Target: "lab-b", Address: "198.51.100.7:8176", Direction: d, DBC: f(100), ABW: f(60 + float64(i%10)),
				ABWLow: f(55), ABWHigh: f(70), XTR: f(40), RTT: &record.RTT{Avg: 12.5}, Loss: 0.01, Method: "abwe"}
			if i%1000 == 0 {
				r.DBC, r.ABW, r.ABWLow, r.ABWHigh, r.XTR = nil, nil, nil, nil, nil // a failed run
			}
			batch = append(batch, r)
		}
		if len(batch) >= 2000 {
			if err := s.Write(context.Background(), batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	batch = append(batch, record.Record{Time: end.Add(-time.Hour), Target: "lab-b", Path: "overlay", Direction: "forward", DBC: f(10)},
		record.Record{Time: end.Add(-time.Hour), Target: "lab-c", Direction: "forward", DBC: f(1)})
	if err := s.Write(context.Background(), batch); err != nil {
		tb.Fatal(err)
	}
}

func TestSeries(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "abing.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	end := time.Now().Truncate(time.Minute)
	f := func(v float64) *float64 { return &v }
	recs := []record.Record{
		{Time: end.Add(-2 * time.Minute), Target: "lab-b", Direction: "forward", DBC: f(100), ABW: f(61), ABWLow: f(55), ABWHigh: f(67), XTR: f(39), RTT: &record.RTT{Avg: 12.5}, Loss: 0.02},
		{Time: end.Add(-time.Minute), Target: "lab-b", Direction: "reverse", Error: "timeout", Loss: 1},
		{Time: end.Add(-time.Minute), Target: "lab-b", Path: "overlay", Direction: "forward", DBC: f(10)},
		{Time: end.Add(-time.Hour), Target: "lab-b", Direction: "forward", DBC: f(1)},
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	var got []Point
	err = s.Series(context.Background(), SeriesFilter{Target: "lab-b", Since: end.Add(-10 * time.Minute)}, func(p Point) error {
		got = append(got, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ABW != 61 || got[0].ABWLow != 55 || got[0].RTT != 12.5 || got[0].Loss != 0.02 || got[0].Direction != "forward" ||
		!math.IsNaN(got[1].DBC) || !math.IsNaN(got[1].RTT) || got[1].Loss != 1 || !got[1].Time.Equal(end.Add(-time.Minute)) {
		t.Errorf("%+v", got)
	}
	got = nil
	s.Series(context.Background(), SeriesFilter{Target: "lab-b", Path: "overlay"}, func(p Point) error { got = append(got, p); return nil })
	if len(got) != 1 || got[0].DBC != 10 {
		t.Errorf("overlay: %+v", got)
	}
}

// BenchmarkSeriesMonth reads 30 days of one-minute results of one path
// (86,400 points, both directions).
func BenchmarkSeriesMonth(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "abing.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	end := time.Now()
	month(b, s, end)
	b.ResetTimer()
	for b.Loop() {
		n := 0
		s.Series(context.Background(), SeriesFilter{Target: "lab-b", Since: end.Add(-31 * 24 * time.Hour)}, func(Point) error { n++; return nil })
		if n != 86400 {
			b.Fatalf("%d points", n)
		}
	}
}

// TestLatest: the last record of each target, path and direction, whatever
// order they were written in, and the last link cost published, which a
// later record without one does not erase.
func TestLatest(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "abing.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now().Truncate(time.Minute)
	f := func(v float64) *float64 { return &v }
	w := func(recs ...record.Record) {
		if err := s.Write(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	w(record.Record{Time: t0, Target: "lab-b", Direction: "forward", DBC: f(100), LinkCost: f(120)},
		record.Record{Time: t0, Target: "lab-b", Direction: "reverse", DBC: f(90)})
	w(record.Record{Time: t0.Add(time.Minute), Target: "lab-b", Direction: "forward", DBC: f(101)})
	w(record.Record{Time: t0.Add(-time.Minute), Target: "lab-b", Direction: "forward", DBC: f(99), LinkCost: f(500)}) // late
	w(record.Record{Time: t0, Target: "lab-d", Path: "overlay", Direction: "forward", DBC: f(10), LinkCost: f(200)})
	recs, costs, err := s.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Key()+" "+r.Direction+" "+strconv.FormatFloat(*r.DBC, 'f', -1, 64))
	}
	if want := []string{"lab-b forward 101", "lab-b reverse 90", "lab-d/overlay forward 10"}; !slices.Equal(got, want) {
		t.Errorf("latest %q, want %q", got, want)
	}
	if len(costs) != 2 || costs["lab-b"] != 120 || costs["lab-d/overlay"] != 200 {
		t.Errorf("costs %v", costs)
	}
	if _, err := s.Prune(context.Background(), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := s.Latest(context.Background()); len(recs) != 0 {
		t.Errorf("after pruning everything: %d", len(recs))
	}
}

// TestOpenWhileWriting: a reader (abing alarms, abing history) opens the
// store while a monitor is in the middle of a write, and does not wait for
// it: opening a database that is up to date takes no write lock. (The
// latest table's filling once did, and failed with SQLITE_BUSY.)
func TestOpenWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "abing.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f := 1.0
	if err := w.Write(context.Background(), []record.Record{{Time: time.Now(), Target: "lab-b", Direction: "forward", DBC: &f}}); err != nil {
		t.Fatal(err)
	}
	tx, err := w.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO results (time_ns, target, direction, record) VALUES (1, 'x', 'forward', '{}')`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := Open(path)
	if err != nil {
		t.Fatalf("opening while a write is in progress: %v", err)
	}
	defer r.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("opening waited %v for the writer", d)
	}
	if recs, _, err := r.Latest(context.Background()); err != nil || len(recs) != 1 {
		t.Errorf("reading: %v %v", recs, err)
	}
}
