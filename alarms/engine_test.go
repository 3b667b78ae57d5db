package alarms

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
)

func records(seed uint64, runs []Level) []record.Record { return Synthesize(seed, t0, runs, 0.03, 0) }

func repeat(n int, s Level) []Level {
	out := make([]Level, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func concat(parts ...[]Level) []Level {
	var out []Level
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// observe feeds records to an engine and returns what it raised and
// cleared, with the index of the run that did it.
func observe(t *testing.T, p Params, recs []record.Record) (events []record.Alarm, at []int) {
	t.Helper()
	e := NewEngine(func(string) Params { return p })
	for i := range recs {
		as, err := e.Observe(&recs[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			events = append(events, a)
			at = append(at, i/2)
		}
	}
	return events, at
}

func describe(events []record.Alarm, at []int) string {
	var b strings.Builder
	for i, a := range events {
		fmt.Fprintf(&b, "\n  run %d: %s %s %s %s before %g after %g (%s)", at[i], a.Status(), a.Kind, a.Direction, a.Severity,
			a.Before, a.After, a.Cleared)
	}
	return b.String()
}

// want is an expected event: kind, direction, raised (or cleared) within
// runs [from, to].
type want struct {
	kind     record.Kind
	dir      string
	firing   bool
	from, to int
	severity string
	cleared  string
}

func TestEngine(t *testing.T) {
	normal := Level{DBC: 100, ABW: 60, RTT: 10, TTL: 62}
	with := func(f func(*Level)) Level { s := normal; f(&s); return s }
	narrow := with(func(s *Level) { s.DBC, s.ABW = 40, 24 })
	loaded := with(func(s *Level) { s.ABW = 10 })
	slow := with(func(s *Level) { s.RTT = 30 })
	jittery := with(func(s *Level) { s.RTT = 10.5 }) // +0.5 ms: below min_rtt_change
	longer := with(func(s *Level) { s.TTL = 61 })
	dead := Level{Down: true}
	for _, tc := range []struct {
		name   string
		runs   []Level
		params Params
		want   []want
	}{
		{"quiet", repeat(200, normal), Params{}, nil},
		{"capacity 100→40 and back", concat(repeat(30, normal), repeat(20, narrow), repeat(30, normal)), Params{}, []want{
			{record.Capacity, "forward", true, 30, 34, record.Critical, ""}, {record.Capacity, "reverse", true, 30, 34, record.Critical, ""},
			{record.Capacity, "forward", false, 50, 57, "", "returned"}, {record.Capacity, "reverse", false, 50, 57, "", "returned"},
		}},
		{"heavy load 10 min", concat(repeat(30, normal), repeat(10, loaded), repeat(20, normal)), Params{}, []want{
			{record.Load, "forward", true, 35, 37, record.Critical, ""}, {record.Load, "reverse", true, 35, 37, record.Critical, ""},
			{record.Load, "forward", false, 40, 45, "", "returned"}, {record.Load, "reverse", false, 40, 45, "", "returned"},
		}},
		{"load shorter than load_for", concat(repeat(30, normal), repeat(4, loaded), repeat(20, normal)), Params{}, nil},
		{"load_for 2m", concat(repeat(30, normal), repeat(6, loaded), repeat(20, normal)), Params{LoadFor: 2 * time.Minute}, []want{
			{record.Load, "forward", true, 34, 34, record.Critical, ""}, {record.Load, "reverse", true, 34, 34, record.Critical, ""},
			{record.Load, "forward", false, 36, 41, "", "returned"}, {record.Load, "reverse", false, 36, 41, "", "returned"},
		}},
		{"latency 10→30 ms", concat(repeat(30, normal), repeat(30, slow)), Params{}, []want{
			{record.Latency, "both", true, 30, 34, record.Warning, ""},
		}},
		{"latency +0.5 ms is not a change", concat(repeat(30, normal), repeat(30, jittery)), Params{}, nil},
		{"one more hop", concat(repeat(30, normal), repeat(30, longer)), Params{}, []want{
			{record.Path, "forward", true, 32, 32, record.Warning, ""}, {record.Path, "reverse", true, 32, 32, record.Warning, ""},
		}},
		{"hop count blip", concat(repeat(30, normal), repeat(2, longer), repeat(30, normal)), Params{}, nil},
		{"path back", concat(repeat(30, normal), repeat(5, longer), repeat(10, normal)), Params{}, []want{
			{record.Path, "forward", true, 32, 32, record.Warning, ""}, {record.Path, "reverse", true, 32, 32, record.Warning, ""},
			{record.Path, "forward", false, 37, 37, "", "returned"}, {record.Path, "reverse", false, 37, 37, "", "returned"},
		}},
		{"down and up", concat(repeat(30, normal), repeat(5, dead), repeat(10, normal)), Params{}, []want{
			{record.Down, "both", true, 32, 32, record.Critical, ""}, {record.Down, "both", false, 37, 37, "", "up"},
		}},
		{"two failures are not down", concat(repeat(30, normal), repeat(2, dead), repeat(10, normal)), Params{}, nil},
		{"hold 5 and min_duration 6m", concat(repeat(30, normal), repeat(30, longer)), Params{Hold: 5, MinDuration: 6 * time.Minute}, []want{
			{record.Path, "forward", true, 36, 36, record.Warning, ""}, {record.Path, "reverse", true, 36, 36, record.Warning, ""},
		}},
		// A drop that lasts accept_after becomes normal; the upgrade back
		// from it is a change of its own.
		{"upgrade accepted, then a return", concat(repeat(30, with(func(s *Level) { s.DBC, s.ABW = 155, 90 })), repeat(70, normal), repeat(30, with(func(s *Level) { s.DBC, s.ABW = 155, 90 }))),
			Params{AcceptAfter: time.Hour}, []want{
				{record.Capacity, "forward", true, 30, 34, record.Critical, ""}, {record.Capacity, "reverse", true, 30, 34, record.Critical, ""},
				{record.Capacity, "forward", false, 90, 94, "", "accepted"}, {record.Capacity, "reverse", false, 90, 94, "", "accepted"},
				{record.Capacity, "forward", true, 100, 104, record.Info, ""}, {record.Capacity, "reverse", true, 100, 104, record.Info, ""},
			}},
		// Gaps (failed runs) inside a capacity change delay nothing.
		{"capacity drop across a gap", concat(repeat(30, normal), repeat(2, dead), repeat(20, narrow)), Params{}, []want{
			{record.Capacity, "forward", true, 32, 36, record.Critical, ""}, {record.Capacity, "reverse", true, 32, 36, record.Critical, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Defaults().Merge(tc.params)
			if err := p.Check(); err != nil {
				t.Fatal(err)
			}
			for seed := range uint64(10) {
				events, at := observe(t, p, records(seed, tc.runs))
				// Each event matches one wanted, in any order.
				ok := len(events) == len(tc.want)
				used := make([]bool, len(events))
				for _, w := range tc.want {
					found := false
					for i, a := range events {
						if !used[i] && a.Kind == w.kind && a.Direction == w.dir && a.Active() == w.firing && at[i] >= w.from && at[i] <= w.to &&
							(w.severity == "" || a.Severity == w.severity) && a.Cleared == w.cleared && len(a.Evidence) > 0 && a.Target == "lab" {
							used[i], found = true, true
							break
						}
					}
					ok = ok && found
				}
				if !ok {
					t.Fatalf("seed %d: got%s\nwant %+v", seed, describe(events, at), tc.want)
				}
			}
		})
	}
}

// The levels of an alarm are those of the series, in its units, and the
// episode starts where the change did.
func TestAlarmLevels(t *testing.T) {
	normal := Level{DBC: 1000, ABW: 600, RTT: 10, TTL: 62}
	backup := Level{DBC: 622, ABW: 400, RTT: 25, TTL: 59}
	events, _ := observe(t, Defaults(), records(1, concat(repeat(30, normal), repeat(30, backup))))
	seen := map[record.Kind]bool{}
	for _, a := range events {
		if a.Direction == "reverse" {
			continue
		}
		seen[a.Kind] = true
		var before, after, tol float64
		switch a.Kind {
		case record.Capacity:
			before, after, tol = 1000, 622, 30
		case record.Latency:
			before, after, tol = 10, 25, 1
		case record.Path:
			before, after, tol = 2, 5, 0
		default:
			t.Errorf("unexpected %s alarm: %s", a.Kind, a.Summary)
			continue
		}
		if d := a.Before - before; d > tol || d < -tol {
			t.Errorf("%s before %g, want %g", a.Kind, a.Before, before)
		}
		if d := a.After - after; d > tol || d < -tol {
			t.Errorf("%s after %g, want %g", a.Kind, a.After, after)
		}
		if start := t0.Add(30 * time.Minute); a.Start.Before(start) || a.Start.After(start.Add(3*time.Minute)) {
			t.Errorf("%s starts %v, change at %v", a.Kind, a.Start, start)
		}
	}
	if !seen[record.Capacity] || !seen[record.Latency] || !seen[record.Path] {
		t.Errorf("raised %v; want capacity, latency and path: %s", seen, describe(events, make([]int, len(events))))
	}
}

func TestParams(t *testing.T) {
	p := Defaults().Merge(Params{Hold: 5, LoadBelow: 0.1})
	if p.Hold != 5 || p.LoadBelow != 0.1 || p.Clear != 3 || p.Window != 5 {
		t.Errorf("merge: %+v", p)
	}
	if err := p.Check(); err != nil {
		t.Error(err)
	}
	for _, bad := range []Params{{Hysteresis: 1.5}, {Hold: -1}, {LoadBelow: 2}, {Window: 2}, {Reference: 4}, {MinDuration: -time.Second}} {
		err := Defaults().Merge(bad).Check()
		if err == nil || !strings.HasPrefix(err.Error(), "alarms ") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if err := (Params{}).Check(); err == nil {
		t.Error("zero params checked")
	}
}

func TestHops(t *testing.T) {
	for ttl, want := range map[int]int{64: 0, 63: 1, 50: 14, 128: 0, 120: 8, 255: 0, 240: 15, 30: 2} {
		if got := Hops(ttl); got != want {
			t.Errorf("Hops(%d) = %d, want %d", ttl, got, want)
		}
	}
}

func TestBadTime(t *testing.T) {
	e := NewEngine(func(string) Params { return Defaults() })
	if _, err := e.Observe(&record.Record{Target: "x"}); err == nil || !strings.Contains(err.Error(), "without a time") {
		t.Errorf("error %v", err)
	}
}
