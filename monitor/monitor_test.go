package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/linkcost"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/reflector/reflectortest"
	"github.com/abing-net/abing/store"
)

// Three reflectors on loopback, one stopped after two answers: its
// failures are stored as errors, the other two keep their cadence, and
// everything measured is in the store when the monitor returns.
func TestMonitorKeepsCadence(t *testing.T) {
	var addrs []string
	var stops []func()
	for range 3 {
		r := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{})
		addrs, stops = append(addrs, r.String()), append(stops, r.Stop)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tm := newTestMonitor(t, fmt.Sprintf("interval: 2s\njitter: 0.05\nprobe: {timeout: 500ms}\ntargets:\n  - {address: %q, name: a}\n  - {address: %q, name: b}\n  - {address: %q, name: dies}\n",
		addrs[0], addrs[1], addrs[2]), Options{Sinks: []Sink{db}})
	stopped := false
	tm.runUntil(t, 30*time.Second, func(b map[string][][]record.Record, _ []record.Alarm) bool {
		if !stopped && answered(b["dies"]) == 2 {
			stops[2]()
			stopped = true
		}
		return stopped && len(b["a"]) >= 4 && len(b["b"]) >= 4 && len(b["dies"]) > answered(b["dies"])
	})
	seen, _ := tm.seen()
	byName := map[string][]record.Record{}
	db.Query(context.Background(), store.Filter{}, func(r *record.Record) error {
		byName[r.Target] = append(byName[r.Target], *r)
		return nil
	})
	for _, name := range []string{"a", "b", "dies"} {
		if n := 2 * len(seen[name]); len(byName[name]) != n {
			t.Errorf("%s: %d records stored of the %d handed on", name, len(byName[name]), n)
		}
	}
	for _, name := range []string{"a", "b"} {
		// On loopback the estimate itself may be refused (no bottleneck
		// to speak of); the reflector must have answered every time.
		for _, r := range byName[name] {
			if r.PairsReceived == 0 || r.RTT == nil {
				t.Errorf("%s: no answer: %s", name, r.Error)
			}
		}
		// The cadence: 2 s ± 5 % jitter, whatever the dying target does
		// (its runs hold their interface for up to their timeout).
		ts := seen[name]
		for i := 1; i < len(ts); i++ {
			if gap := ts[i][0].Time.Sub(ts[i-1][0].Time); gap < 1500*time.Millisecond || gap > 2600*time.Millisecond {
				t.Errorf("%s: runs %v apart", name, gap)
			}
		}
	}
	var ok, failed int
	for _, r := range byName["dies"] {
		switch {
		case r.PairsReceived > 0:
			ok++
		case strings.Contains(r.Error, "no answer to hello") || strings.Contains(r.Error, "refused"):
			failed++
		default:
			t.Errorf("dying target: %+v", r)
		}
	}
	if ok == 0 || failed == 0 {
		t.Errorf("dying target: %d good and %d failed records", ok, failed)
	}
	if len(byName["dies"])%2 != 0 {
		t.Errorf("dying target: %d records, not one per direction", len(byName["dies"]))
	}
}

// A target with two paths (two reflectors on loopback stand for a host's
// direct and overlay addresses): each path is measured as its own, and its
// records carry the target's name, the path's and the node's.
func TestMonitorPaths(t *testing.T) {
	a := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{})
	b := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{})
	yaml := fmt.Sprintf("node: n1\ninterval: 1s\nprobe: {timeout: 500ms}\ntargets:\n  - name: h\n    paths: {direct: %q, overlay: %q}\n", a.String(), b.String())
	tm := newTestMonitor(t, yaml, Options{})
	if cfg := tm.cfg; len(cfg.Targets) != 2 || cfg.Targets[0].Name != "h/direct" || cfg.Targets[1].Address != b.String() {
		t.Fatalf("targets %+v", cfg.Targets)
	}
	tm.runUntil(t, 20*time.Second, func(b map[string][][]record.Record, _ []record.Alarm) bool {
		return len(b["h/direct"]) >= 2 && len(b["h/overlay"]) >= 2
	})
	var got []record.Record
	seen, _ := tm.seen()
	for _, bs := range seen {
		for _, b := range bs {
			got = append(got, b...)
		}
	}
	paths, costs := map[string]int{}, map[string]int{}
	for _, r := range got {
		if r.Target != "h" || r.Node != "n1" || r.Key() != "h/"+r.Path {
			t.Errorf("record %s of %q, node %q, path %q", r.Key(), r.Target, r.Node, r.Path)
		}
		paths[r.Path]++
		if r.LinkCost != nil {
			costs[r.Path]++
			if *r.LinkCost < 96 || *r.LinkCost > 100 {
				t.Errorf("%s: link cost %g on loopback, want about 96 (a hop, no latency penalty)", r.Key(), *r.LinkCost)
			}
		}
	}
	// The first cost of a path is published (in both records of its run);
	// loopback's steady RTT publishes nothing after it.
	if costs["direct"] != 2 || costs["overlay"] != 2 {
		t.Errorf("records with a link cost by path: %v, want the two of the first run of each", costs)
	}
	if paths["direct"] < 2 || paths["overlay"] < 2 {
		t.Errorf("records by path: %v", paths)
	}
}

// Probes that take more of a path than max_probe_share are logged, once.
func TestProbeShareWarning(t *testing.T) {
	cfg, err := config.Parse([]byte("targets: [{address: 198.18.2.2, interval: 60s}]\n"), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	m := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	l := &targetLoop{t: cfg.Targets[0], linkCost: cfg.LinkCost, cost: linkcost.NewPublisher(cfg.LinkCost.Threshold)}
	res := &measure.Result{}
	// 546 KB a minute on a 1 Mbit/s path: 7.3 %, over 5 %.
	res.Forward.Capacity.DBC, res.Reverse.Capacity.DBC = 1e6, 2e6
	res.Forward.Bytes, res.Reverse.Bytes = 273_000, 273_000
	recs := []record.Record{{Direction: "forward", RTT: &record.RTT{Avg: 30}}, {Direction: "reverse"}}
	for range 3 {
		m.linkCost(l, res, recs)
	}
	if n := strings.Count(log.String(), "level=WARN"); n != 1 || !strings.Contains(log.String(), "share=\"7.3 %\"") {
		t.Errorf("%d warnings:\n%s", n, log.String())
	}
	// 30 ms: 96 + 96·20/110.
	if recs[0].LinkCost == nil || math.Abs(*recs[0].LinkCost-(96+96*20.0/110)) > 1e-9 {
		t.Errorf("link cost %v", recs[0].LinkCost)
	}
}
