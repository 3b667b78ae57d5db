package alarms

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
)

// TestGrouper: down alarms are held GroupHold; a flap shorter than that
// raises nothing; many targets down at once raise one alarm that says how
// many, ended with the last of them; a trickle raises one each until
// GroupMin are down, then one group raised again only as its count
// doubles or GroupUpdate after it was last raised; other kinds pass at
// once.
func TestGrouper(t *testing.T) {
	type ev struct {
		at   float64 // seconds
		op   string  // fail, warn, up, forget, flush, close, capacity
		name string  // or "N*prefix": N targets prefix000..
	}
	many := func(n int, prefix string) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%03d", prefix, i))
		}
		return out
	}
	hold := GroupHold.Seconds()
	trickle := func(n int) []ev {
		var out []ev
		for i, name := range many(n, "t") {
			out = append(out, ev{float64(10 * i), "fail", name}, ev{float64(10*i) + hold, "flush", ""})
		}
		return out
	}
	for _, c := range []struct {
		name   string
		events []ev
		want   []string // target severity status cleared down-count
	}{
		{"one, raised after the hold and ended", []ev{{0, "fail", "b"}, {hold - 1, "flush", ""}, {hold, "flush", ""}, {60, "up", "b"}},
			[]string{"b critical firing  0", "b critical resolved up 0"}},
		{"a flap shorter than the hold", []ev{{0, "fail", "b"}, {hold - 1, "up", "b"}, {60, "flush", ""}}, nil},
		{"two at once: one each", []ev{{0, "fail", "b"}, {1, "fail", "c"}, {hold, "flush", ""}},
			[]string{"b critical firing  0", "c critical firing  0"}},
		{"a hundred at once: one alarm", []ev{{0, "fail", "100*g"}, {hold, "flush", ""}, {60, "up", "99*g"}, {61, "flush", ""}, {70, "forget", "g099"}},
			[]string{GroupTarget + " critical firing  100", GroupTarget + " critical resolved forgotten 100"}},
		{"a trickle: one each, then a group raised as it doubles", trickle(10),
			[]string{"t000 critical firing  0", "t001 critical firing  0", GroupTarget + " critical firing  1", GroupTarget + " critical firing  2",
				GroupTarget + " critical firing  4", GroupTarget + " critical firing  7"}},
		{"a slow trickle: raised again every GroupUpdate while it grows", append(trickle(5), ev{40 + hold + GroupUpdate.Seconds(), "flush", ""}),
			[]string{"t000 critical firing  0", "t001 critical firing  0", GroupTarget + " critical firing  1", GroupTarget + " critical firing  2",
				GroupTarget + " critical firing  3"}},
		{"a slower trickle", func() []ev {
			var out []ev
			for i, name := range many(8, "t") {
				out = append(out, ev{float64(40 * i), "fail", name}, ev{float64(40*i) + hold, "flush", ""})
			}
			return out
		}(), []string{"t000 critical firing  0", "t001 critical firing  0", GroupTarget + " critical firing  1", GroupTarget + " critical firing  2",
			GroupTarget + " critical firing  3", GroupTarget + " critical firing  4", GroupTarget + " critical firing  5", GroupTarget + " critical firing  6"}},
		{"a failure ended by a leave (the mesh agent), then its warning", []ev{{0, "fail", "b"}, {hold, "flush", ""}, {10, "left", "b"}, {10, "warn", "b"}, {10 + hold, "flush", ""}},
			[]string{"b critical firing  0", "b critical resolved left 0", "b warning firing  0"}},
		{"the same within the hold: only the warning", []ev{{0, "fail", "b"}, {1, "left", "b"}, {1, "warn", "b"}, {1 + hold, "flush", ""}},
			[]string{"b warning firing  0"}},
		{"many fail and many leave: a group each", []ev{{0, "fail", "3*f"}, {0, "warn", "3*l"}, {hold, "flush", ""}},
			[]string{GroupTarget + " critical firing  3", GroupTarget + " warning firing  3"}},
		{"other kinds pass at once", []ev{{0, "capacity", "b"}}, []string{"b critical firing  0"}},
		{"the end of an alarm from before", []ev{{0, "up", "b"}}, []string{"b critical resolved up 0"}},
		{"at close, what is held goes out", []ev{{0, "fail", "5*c"}, {1, "close", ""}}, []string{GroupTarget + " critical firing  5"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := NewGrouper()
			t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
			start := map[string]time.Time{}
			var got []record.Alarm
			for _, e := range c.events {
				now := t0.Add(time.Duration(e.at * float64(time.Second)))
				names := []string{e.name}
				if n, prefix, ok := strings.Cut(e.name, "*"); ok {
					var k int
					fmt.Sscan(n, &k)
					names = many(k, prefix)
				}
				for _, name := range names {
					a := record.Alarm{Kind: record.Down, Target: name, Direction: "both", Severity: record.Critical, Start: now}
					end := func(how string) {
						a.Start, a.End, a.Cleared = start[name], &now, how
					}
					switch e.op {
					case "fail":
						start[name] = now
					case "warn":
						a.Severity, start[name] = record.Warning, now
					case "up", "forget", "left":
						end(map[string]string{"up": "up", "forget": "forgotten", "left": "left"}[e.op])
					case "capacity":
						a.Kind = record.Capacity
					case "flush":
						got = append(got, g.Flush(now)...)
						continue
					case "close":
						got = append(got, g.Close(now)...)
						continue
					}
					got = append(got, g.Take(a, now)...)
				}
			}
			var lines []string
			for _, a := range got {
				lines = append(lines, fmt.Sprintf("%s %s %s %s %g", a.Target, a.Severity, a.Status(), a.Cleared, a.After))
				if a.Target == GroupTarget && a.Active() && (!strings.HasPrefix(a.Summary, targets(len(a.Members))) || len(a.Members) < int(a.After)) {
					t.Errorf("group alarm: summary %q, %d members, %g down", a.Summary, len(a.Members), a.After)
				}
			}
			if !slices.Equal(lines, c.want) {
				t.Errorf("alarms\n%q\nwant\n%q", lines, c.want)
			}
		})
	}
}
