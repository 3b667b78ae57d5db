//go:build linux

package accuracy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/influx"
	"github.com/abing-net/abing/internal/influxtest"
	"github.com/abing-net/abing/lab/testbed"
	"github.com/abing-net/abing/mesh"
	"github.com/abing-net/abing/monitor"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/train"
)

// Four hosts around a router, each running a reflector and a monitor of
// the three others, every monitor writing to one InfluxDB. The direct path between hosts 1 and 4 passes a delay
// element (20 ms each way); host 3 also has a slow address, through the same
// element, which host 1 measures as a second path. From the records read
// back from InfluxDB, the mesh analysis finds the one relay shortcut (1–4 through 2
// or 3, about 40 ms better) and judges host 3's slow path BAD against its
// direct one.
func TestMeshEndToEnd(t *testing.T) {
	ctx := context.Background()
	m := fourHosts(t)
	const d = 20 * time.Millisecond
	if err := m.SlowAddr(ctx, 3, d); err != nil {
		t.Fatal(err)
	}
	for _, h := range m.Hosts {
		var conn *dispersion.Conn
		if err := h.Do(func() (err error) {
			conn, err = dispersion.Listen("udp4", fmt.Sprintf(":%d", train.DefaultPort), dispersion.Options{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		srv, err := reflector.New(conn, reflector.Config{})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { srv.Serve(rctx); conn.Close(); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	db := influxtest.Start(t)
	var mu sync.Mutex
	var recs []record.Record
	var wg sync.WaitGroup
	var sinks []*influx.Sink
	runCtx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	for i := 1; i <= 4; i++ {
		var targets []string
		for j := 1; j <= 4; j++ {
			switch {
			case j == i:
			case i == 1 && j == 3:
				targets = append(targets, fmt.Sprintf("  - {name: h3, paths: {direct: \"%s\", slow: \"%s\"}}\n", testbed.MeshAddr(3), testbed.MeshSlowAddr(3)))
			default:
				targets = append(targets, fmt.Sprintf("  - {name: h%d, address: \"%s\"}\n", j, testbed.MeshAddr(j)))
			}
		}
		cfg, err := config.Parse([]byte(fmt.Sprintf("node: h%d\ninterval: 1s\njitter: 0.05\nprobe: {timeout: 1s}\ntargets:\n%s", i, strings.Join(targets, ""))), "mesh.yaml")
		if err != nil {
			t.Fatal(err)
		}
		ns := m.Hosts[i-1]
		icfg := influx.Config{URL: db.URL, Bucket: "abing/autogen", CreateDatabase: true, Spool: filepath.Join(t.TempDir(), "spool")}
		if err := icfg.Check(); err != nil {
			t.Fatal(err)
		}
		sink, err := influx.Open(icfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		sinks = append(sinks, sink)
		mon := monitor.New(cfg, monitor.Options{
			Sinks: []monitor.Sink{sink},
			Bind: func(network, addr string, opts dispersion.Options) (c *dispersion.Conn, err error) {
				err = ns.Do(func() (err error) {
					c, err = dispersion.Listen(network, addr, opts)
					return err
				})
				return c, err
			},
			Records: []func([]record.Record){func(r []record.Record) {
				mu.Lock()
				defer mu.Unlock()
				recs = append(recs, r...)
			}},
		})
		wg.Add(1)
		go func() { defer wg.Done(); mon.Run(runCtx) }()
	}
	wg.Wait()
	for _, s := range sinks {
		if err := s.Close(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := influx.Read(ctx, influx.Config{URL: db.URL, Bucket: "abing/autogen"}, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(recs) {
		t.Errorf("%d records in InfluxDB, %d measured", len(stored), len(recs))
	}
	recs = stored

	var samples []mesh.Sample
	for _, r := range recs {
		if r.Direction == "forward" && r.RTT != nil && (r.Path == "" || r.Path == "direct") {
			samples = append(samples, mesh.Sample{Src: r.Node, Dst: r.Target, RTT: r.RTT.Avg, ABW: math.NaN(), DBC: math.NaN()})
		}
	}
	mx := mesh.NewMatrix(samples)
	for _, a := range mx.Nodes {
		for _, b := range mx.Nodes {
			if v, ok := mx.RTT(a, b); ok && a < b {
				t.Logf("%s–%s: median RTT %.2f ms over %d samples", a, b, v, len(mx.RTTs(a, b)))
			}
		}
	}
	shortcuts, pairs := mesh.Relays(mx, 5)
	if pairs != 6 || len(shortcuts) != 1 {
		t.Fatalf("%d pairs, shortcuts %+v", pairs, shortcuts)
	}
	s := shortcuts[0]
	t.Logf("shortcut: %+v", s)
	// The element adds 2d to the round trip; the relayed path crosses
	// the router twice without it.
	if s.A != "h1" || s.B != "h4" || (s.Relay != "h2" && s.Relay != "h3") || s.Gain < 30 || s.Gain > 50 || s.Relays != 2 {
		t.Errorf("shortcut %+v: want h1–h4 through h2 or h3, about 40 ms better", s)
	}
	// The same through the commands a user runs, reading the InfluxDB.
	bin := filepath.Join(t.TempDir(), "abing")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/abing-net/abing/cmd/abing").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	abing := func(args ...string) []map[string]any {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--influx", db.URL, "--since", "5m", "--output", "json")...).CombinedOutput()
		if err != nil {
			t.Fatalf("abing %v: %v\n%s", args, err, out)
		}
		var objs []map[string]any
		if err := json.Unmarshal(out, &objs); err != nil {
			t.Fatalf("abing %v: %q: %v", args, out, err)
		}
		return objs
	}
	var rtts []string
	for _, o := range abing("mesh", "relays", "--min-gain", "5") {
		if o["kind"] == "rtt" {
			rtts = append(rtts, fmt.Sprintf("%v-%v via %v (%.0f ms)", o["a"], o["b"], o["relay"], o["gain_ms"]))
		}
	}
	t.Logf("abing mesh relays: %v", rtts)
	if len(rtts) != 1 || (!strings.HasPrefix(rtts[0], "h1-h4 via h2") && !strings.HasPrefix(rtts[0], "h1-h4 via h3")) {
		t.Errorf("abing mesh relays: %v", rtts)
	}
	if c := abing("mesh", "compare"); len(c) != 1 || c[0]["path"] != "slow" || !strings.HasPrefix(fmt.Sprint(c[0]["rtt"]), "BAD") {
		t.Errorf("abing mesh compare: %v", c)
	}

	cmp := mesh.Compare(recs)
	if len(cmp) != 1 {
		t.Fatalf("comparisons %+v", cmp)
	}
	c := cmp[0]
	t.Logf("h1 to h3: direct %.2f ms, slow %.2f ms: %s; loss %s", c.Reference.RTT, c.Path.RTT, c.RTT, c.Loss)
	if c.Node != "h1" || c.Host != "h3" || c.Path.Path != "slow" || c.Reference.Path != "direct" || c.RTT != mesh.Bad || c.Path.Rounds < 3 {
		t.Errorf("comparison %+v", c)
	}
}
