//go:build linux

package accuracy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/lab/testbed"
	"github.com/abing-net/abing/monitor"
	"github.com/abing-net/abing/notify"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/traceroute"
)

// The monitor watches a reflector behind a 20 Mbit/s bottleneck (a stable
// rate on this machine kind: see CapacityBound) with the default detector
// settings. The bottleneck drops to 8 Mbit/s: a capacity
// alarm per direction within 5 measurements, which the command hook and a
// webhook receiver each get once, and which clears once the rate is back.
// Then a second router is put on the path: a path alarm, whose traceroutes
// show the new hop.
func TestMonitorAlarms(t *testing.T) {
	env := setup(t, 20e6, 20e6)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	// The hooks: a script appending each alarm's JSON to a file, and a
	// webhook receiver.
	dir := t.TempDir()
	hookOut := filepath.Join(dir, "hook.jsonl")
	script := filepath.Join(dir, "hook.sh")
	os.WriteFile(script, []byte("#!/bin/sh\ncat >> \""+hookOut+"\"\n"), 0o755)
	var mu sync.Mutex
	var posts []notify.AMMessage
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m notify.AMMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("webhook: %v", err)
		}
		mu.Lock()
		posts = append(posts, m)
		mu.Unlock()
	}))
	defer receiver.Close()

	cfg, err := config.Parse([]byte(fmt.Sprintf(`
interval: 1s
jitter: 0.05
probe: {timeout: 1s}
alarms:
  command: [%q]
  webhook: %q
  traceroute: true
targets:
  - {address: "%s", name: lab}
`, script, receiver.URL, env.Target())), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hooks := notify.NewDispatcher(notify.DispatcherOptions{Hooks: cfg.Alarms.Hooks()})
	events := make(chan record.Alarm, 100)
	var runs []time.Time // start of every measurement
	m := monitor.New(cfg, monitor.Options{Bind: env.Bind,
		Tracer: &traceroute.Tracer{MaxHops: 8, Do: env.TB.Sender.Do},
		Alarms: []func(record.Alarm){hooks.Send, func(a record.Alarm) { events <- a }},
		Records: []func([]record.Record){func(recs []record.Record) {
			at := recs[0].Time
			mu.Lock()
			runs = append(runs, at)
			mu.Unlock()
		}}})
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// wait collects alarms until pred has seen what it wants.
	var all []record.Alarm
	wait := func(what string, within time.Duration, pred func([]record.Alarm) bool) {
		t.Helper()
		timeout := time.After(within)
		for !pred(all) {
			select {
			case a := <-events:
				t.Logf("%s %s %s %s: %s (%s)", a.Status(), a.Kind, a.Direction, a.Severity, a.Summary, a.Cleared)
				all = append(all, a)
			case <-timeout:
				t.Fatalf("no %s within %v; alarms: %+v", what, within, all)
			}
		}
	}
	count := func(as []record.Alarm, kind record.Kind, firing bool) int {
		n := 0
		for _, a := range as {
			if a.Kind == kind && a.Active() == firing {
				n++
			}
		}
		return n
	}
	measurementsSince := func(from, to time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range runs {
			if r.After(from) && !r.After(to) {
				n++
			}
		}
		return n
	}

	// 20 s of history at 20 Mbit/s (the detector needs 16 values).
	time.Sleep(20 * time.Second)
	if len(all) > 0 || len(events) > 0 {
		t.Fatalf("alarms on a steady path: %+v", append(all, <-events))
	}
	for _, d := range []testbed.Direction{testbed.Forward, testbed.Reverse} {
		if err := env.TB.SetRate(ctx, d, 8e6); err != nil {
			t.Fatal(err)
		}
	}
	changed := time.Now()
	wait("capacity alarms", 30*time.Second, func(as []record.Alarm) bool { return count(as, record.Capacity, true) == 2 })
	for _, a := range all {
		if a.Kind != record.Capacity {
			t.Errorf("unexpected alarm: %s", a.Summary)
			continue
		}
		raisedBy := a.Evidence[len(a.Evidence)-1].Time
		n := measurementsSince(changed, raisedBy)
		t.Logf("%s: raised by measurement %d after the change, %.1f → %.1f Mbit/s", a.Direction, n, a.Before, a.After)
		if n > 5 {
			t.Errorf("%s capacity alarm came with measurement %d after the change, want ≤ 5", a.Direction, n)
		}
		if a.After > 0.6*a.Before || a.Severity != record.Critical {
			t.Errorf("%s: before %.1f after %.1f severity %s", a.Direction, a.Before, a.After, a.Severity)
		}
	}
	for _, d := range []testbed.Direction{testbed.Forward, testbed.Reverse} {
		if err := env.TB.SetRate(ctx, d, 20e6); err != nil {
			t.Fatal(err)
		}
	}
	wait("capacity clears", 30*time.Second, func(as []record.Alarm) bool { return count(as, record.Capacity, false) == 2 })

	if err := env.TB.AddHop(ctx); err != nil {
		t.Fatal(err)
	}
	wait("path alarms", 30*time.Second, func(as []record.Alarm) bool { return count(as, record.Path, true) == 2 })
	cancel()
	<-done
	if err := hooks.Close(30 * time.Second); err != nil {
		t.Error(err)
	}

	// Each hook got each capacity and path alarm once, raise and clear.
	f, err := os.Open(hookOut)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fromHook []record.Alarm
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var a record.Alarm
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("hook input %q: %v", sc.Text(), err)
		}
		fromHook = append(fromHook, a)
	}
	mu.Lock()
	defer mu.Unlock()
	var fromWebhook []record.Alarm
	for _, p := range posts {
		for _, al := range p.Alerts {
			a := record.Alarm{Kind: record.Kind(al.Labels["kind"]), Direction: al.Labels["direction"]}
			if al.Status == "resolved" {
				a.End = &al.EndsAt
			}
			fromWebhook = append(fromWebhook, a)
		}
	}
	for name, got := range map[string][]record.Alarm{"command hook": fromHook, "webhook": fromWebhook} {
		for _, w := range []struct {
			kind   record.Kind
			firing bool
			n      int
		}{{record.Capacity, true, 2}, {record.Capacity, false, 2}, {record.Path, true, 2}} {
			if n := count(got, w.kind, w.firing); n != w.n {
				t.Errorf("%s got %d %s alarms (firing %v), want %d (one per direction)", name, n, w.kind, w.firing, w.n)
			}
		}
	}
	// The path alarms carry the hop lists, the same for every receiver (the
	// route is attached before the alarm goes anywhere): the new router is
	// in the after.
	for _, a := range append(fromHook, all...) {
		if a.Kind != record.Path {
			continue
		}
		if a.Route == nil || a.Route.Before == nil || a.Route.After == nil {
			t.Errorf("path alarm without traceroutes: %+v", a)
			continue
		}
		t.Logf("%s: route before %s, after %s", a.Direction, a.Route.Before, a.Route.After)
		if a.Before+1 != a.After || !slices.ContainsFunc(a.Route.After.Hops, func(h record.Hop) bool { return h.Addr == testbed.HopAddr }) ||
			len(a.Route.After.Hops) != len(a.Route.Before.Hops)+1 || !a.Route.After.Reached {
			t.Errorf("%s path alarm: hops %g → %g, route %s → %s", a.Direction, a.Before, a.After, a.Route.Before, a.Route.After)
		}
	}
}
