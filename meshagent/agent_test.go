package meshagent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/internal/web"
	"github.com/abing-net/abing/monitor"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/store"
	"github.com/abing-net/abing/webapi"
)

// testLogger logs to the test's log with ABING_TEST_LOG=1.
func testLogger(t *testing.T, name string) *slog.Logger {
	if os.Getenv("ABING_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("agent", name)
}

// loopAgent is an agent of the loopback test: every member on 127.0.0.1,
// every socket on a port the kernel chose, its whole row published again
// every 5 s (a part lost in gossip, which a busy machine's UDP buffers can
// drop, is made good by that refresh: 10 min by default, longer than a
// test), and beside it what abing mesh
// agent runs beside it (package daemon, which builds on this package):
// a monitor of the members with a store, and a web listener with the
// agent's API and the monitor's.
type loopAgent struct {
	name   string
	agent  *Agent
	db     string
	gossip string // where serf listens: what the others join through
	netloc string
	web    string
	cancel context.CancelFunc
	done   chan error
}

func startLoop(t *testing.T, name string, join []string, db string) *loopAgent {
	t.Helper()
	return startLoopWith(t, name, db, loopOpts{join: join})
}

// loopOpts are what an agent of a loopback test may have besides its
// name and database.
type loopOpts struct {
	join     []string
	bind     string // serf's address; default 127.0.0.1 on a port the kernel chooses
	keyring  string
	keysFile string // signs the probes and makes the reflector want signed ones
}

func startLoopWith(t *testing.T, name string, db string, o loopOpts) *loopAgent {
	t.Helper()
	probe := "{timeout: 1s}"
	if o.keysFile != "" {
		probe = fmt.Sprintf("{timeout: 1s, key_file: %q}", o.keysFile)
	}
	join, _ := json.Marshal(o.join)
	if o.bind == "" {
		o.bind = "127.0.0.1:0"
	}
	text := fmt.Sprintf("node: %s\ninterval: 1s\njitter: 0.05\nprobe: %s\nagent:\n  paths: {direct: 127.0.0.1}\n  bind: '%s'\n  port: 0\n  netloc: '127.0.0.1:0'\n  profile: local\n  refresh: 5s\n  join: %s\n  keyring: %q\n",
		name, probe, o.bind, join, o.keyring)
	cfg, err := config.ParseAgent([]byte(text), name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.UseDB(db)
	la := &loopAgent{name: name, db: db}
	log := testLogger(t, name)
	if la.agent, err = New(cfg, log); err != nil {
		t.Fatal(err)
	}
	if err := la.agent.Open(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	monCfg := *cfg
	mon := monitor.New(&monCfg, monitor.Options{Sinks: []monitor.Sink{st}, Records: []func([]record.Record){la.agent.Observe}, Logger: log})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	la.web = l.Addr().String()
	handlers := la.agent.Handlers()
	maps.Copy(handlers, (&webapi.API{Store: st}).Handlers())
	hs, err := web.Serve(l, web.Options{Registry: web.Registry(la.agent.Collectors()...), Log: log, Health: mon.Health, Handlers: handlers, Config: web.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	la.cancel, la.done = cancel, make(chan error, 1)
	monDone := make(chan struct{})
	go func() { mon.Run(ctx); close(monDone) }()
	go func() {
		err := la.agent.Run(ctx, mon.Reload, mon.Raise)
		cancel()
		<-monDone
		hs.Close()
		st.Close()
		la.done <- err
	}()
	t.Cleanup(la.stop)
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	b, err := la.agent.Bound(wait)
	if err != nil {
		la.stop()
		t.Fatalf("agent %s did not start: %v", name, err)
	}
	la.gossip, la.netloc = b.Gossip, b.Netloc
	return la
}

// counters are the agent's counters on one line, for a test's log.
func (la *loopAgent) counters() string {
	var out []string
	for _, c := range []prometheus.Counter{la.agent.metrics.published, la.agent.metrics.received, la.agent.metrics.refused, la.agent.metrics.deferred} {
		var m dto.Metric
		c.Write(&m)
		out = append(out, fmt.Sprint(m.GetCounter().GetValue()))
	}
	return "parts published/received/refused, publications deferred: " + strings.Join(out, "/")
}

// stop ends the agent (leaving the mesh) and waits for it, once; an
// agent that ended with an error fails the test.
func (la *loopAgent) stop() {
	if la.cancel == nil {
		return
	}
	la.cancel()
	la.cancel = nil
	if err := <-la.done; err != nil {
		panic(fmt.Sprintf("agent %s: %v", la.name, err))
	}
}

// crash ends the agent without a goodbye: serf shuts down as a killed
// process would, then the rest stops.
func (la *loopAgent) crash() {
	la.agent.serf.Shutdown()
	la.cancel()
	la.cancel = nil
	if err := <-la.done; err != nil && !errors.Is(err, ErrLeftMesh) {
		panic(fmt.Sprintf("agent %s: %v", la.name, err))
	}
}

// ask sends one netloc request and reads the answer; nil while the agent
// does not listen yet.
func ask(t *testing.T, addr, req string) map[string]any {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintln(c, req)
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(line, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// mapNames are the names of get_full_map's nodes that have a coordinate
// updated at least once.
func mapNames(t *testing.T, addr string) map[string]bool {
	out := map[string]bool{}
	m := ask(t, addr, `{"action":"get_full_map"}`)
	if m == nil {
		return out
	}
	for _, n := range m["nodes"].([]any) {
		out[n.(map[string]any)["name"].(string)] = true
	}
	return out
}

// waitFor waits until ok, for at most within; on the way out it logs the
// state of the agents given.
func waitFor(t *testing.T, what string, within time.Duration, ok func() bool, show ...*loopAgent) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > within {
			for _, la := range show {
				t.Logf("%s: map %v, members %d, %s", la.name, mapNames(t, la.netloc), la.agent.view.size(), la.counters())
			}
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start)
}

// downAlarms are the down alarms in an agent's store, by target, with
// their state.
func downAlarms(t *testing.T, db string) map[string]string {
	s, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string]string{}
	err = s.Alarms(context.Background(), store.Filter{}, func(a *record.Alarm) error {
		if a.Kind == record.Down && a.Direction == "both" {
			out[a.Target] = a.Severity + " " + a.Status()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLoopbackMesh runs three agents in this process on loopback: they
// join through the first, every one's map lists the others with
// coordinates and links, one that crashes is marked failed with a down
// alarm at the others, and comes back under its name.
func TestLoopbackMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs agents for about 20 s")
	}
	dir := t.TempDir()
	agents := []*loopAgent{startLoop(t, "a", nil, filepath.Join(dir, "a.db"))}
	landmark := agents[0].gossip
	for _, name := range []string{"b", "c"} {
		agents = append(agents, startLoop(t, name, []string{landmark}, filepath.Join(dir, name+".db")))
	}
	took := waitFor(t, "every map lists the two others", 20*time.Second, func() bool {
		for _, a := range agents {
			if len(mapNames(t, a.netloc)) != 2 {
				return false
			}
		}
		return true
	}, agents...)
	t.Logf("full maps in %v", took.Round(100*time.Millisecond))
	// Links: each agent's records hold all six directed links once a
	// round has gone by.
	held := map[string]string{} // by agent, the links it holds, for the log
	defer func() {
		if t.Failed() {
			t.Logf("links held: %v", held)
		}
	}()
	waitFor(t, "every agent holds the six links", 20*time.Second, func() bool {
		for _, a := range agents {
			links := map[string]bool{}
			resp, err := http.Get("http://" + a.web + "/api/v1/mesh/records")
			if err != nil {
				return false
			}
			recs, err := record.Read(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				links[r.Node+">"+r.Target] = true
			}
			held[a.name] = strings.Join(slices.Sorted(maps.Keys(links)), " ")
			if len(links) != 6 {
				return false
			}
		}
		return true
	}, agents...)
	// Routes: on loopback every link costs about the same, so each
	// member is reached directly.
	routes := func(a *loopAgent) map[string]string {
		resp, err := http.Get("http://" + a.web + "/api/v1/mesh/routes")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var table []Route
		if err := json.NewDecoder(resp.Body).Decode(&table); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, e := range table {
			out[e.Path+"/"+e.Dst] = strings.Join(e.Hops, ">")
			if !e.Reachable {
				out[e.Path+"/"+e.Dst] = "unreachable"
			}
		}
		return out
	}
	waitFor(t, "a's routes to b and c, direct", 10*time.Second, func() bool {
		r := routes(agents[0])
		return r["direct/b"] == "a>b" && r["direct/c"] == "a>c"
	}, agents...)
	resp, err := http.Get("http://" + agents[0].web + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"abing_mesh_members 3\n", "abing_mesh_row_parts_published_total ", "abing_mesh_row_parts_received_total ",
		`abing_mesh_route_value{destination="b",path="direct"} `, "abing_mesh_route_changes_total 0\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The monitor's API, from the agent's store: each member's path.
	resp, err = http.Get("http://" + agents[0].web + "/api/v1/targets")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"key":"b/direct"`, `"key":"c/direct"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/api/v1/targets lacks %s: %.300s", want, body)
		}
	}
	loc := ask(t, agents[0].netloc, `{"action":"get_location"}`)
	if loc["type"] != "location" || loc["loc"].(map[string]any)["iteration"].(float64) < 1 {
		t.Errorf("get_location: %v", loc)
	}
	// A crash: the others mark it failed and raise down.
	agents[2].crash()
	took = waitFor(t, "a and b raise down for c", 30*time.Second, func() bool {
		return downAlarms(t, agents[0].db)["c"] == "critical firing" && downAlarms(t, agents[1].db)["c"] == "critical firing"
	})
	t.Logf("down raised %v after the crash", took.Round(100*time.Millisecond))
	waitFor(t, "a's route to c unreachable", 10*time.Second, func() bool { return routes(agents[0])["direct/c"] == "unreachable" })
	if n := mapNames(t, agents[0].netloc); n["c"] {
		t.Errorf("a's map still lists the failed c: %v", n)
	}
	// It comes back under its name: the alarm clears, the maps fill.
	// On its old address: memberlist does not let a name that died come
	// back from another address and port until its reclaim time.
	agents[2] = startLoopWith(t, "c", filepath.Join(dir, "c.db"), loopOpts{join: []string{landmark}, bind: agents[2].gossip})
	waitFor(t, "c is back in every map and its alarm cleared", 30*time.Second, func() bool {
		return downAlarms(t, agents[0].db)["c"] == "critical resolved" && len(mapNames(t, agents[2].netloc)) == 2 && mapNames(t, agents[0].netloc)["c"]
	})
	// A graceful leave is a warning.
	agents[1].stop()
	waitFor(t, "a raises down for b, which left", 15*time.Second, func() bool { return downAlarms(t, agents[0].db)["b"] == "warning firing" })
	if _, err := os.Stat(agents[0].db); err != nil {
		t.Fatal(err)
	}
}

// Two agents under one name (three on one host without --node all take
// the hostname): the second sees, in the member list it would merge as it
// joins, the first under its name at another address, and stays out
// (nameGuard). It must not look healthy: its Run ends with
// ErrDuplicateName, which names the name and the other member and says
// what to do, and its Health says so (the daemon's /healthz answers 503
// with it). The first and the landmark never see it as a member.
func TestDuplicateNodeName(t *testing.T) {
	dir := t.TempDir()
	l := startLoop(t, "landmark", nil, filepath.Join(dir, "l.db"))
	first := startLoop(t, "twin", []string{l.gossip}, filepath.Join(dir, "t1.db"))
	waitFor(t, "the first twin to join", 10*time.Second, func() bool { return len(l.agent.serf.Members()) == 2 }, l, first)
	second := startLoop(t, "twin", []string{l.gossip}, filepath.Join(dir, "t2.db"))
	var err error
	waitFor(t, "the second twin to leave", 20*time.Second, func() bool {
		select {
		case err = <-second.done:
			second.cancel()
			second.cancel = nil
			return true
		default:
			return false
		}
	}, l, first, second)
	if !errors.Is(err, ErrDuplicateName) || !strings.Contains(err.Error(), `"twin" is taken by the member at `+first.gossip) || !strings.Contains(err.Error(), "--node") {
		t.Errorf("the second twin ended with %v", err)
	}
	if h := second.agent.Health(); !errors.Is(h, ErrDuplicateName) {
		t.Errorf("its health: %v", h)
	}
	if h := first.agent.Health(); h != nil {
		t.Errorf("the first twin's health: %v", h)
	}
	for _, m := range l.agent.serf.Members() {
		if m.Name == "twin" && net.JoinHostPort(m.Addr.String(), fmt.Sprint(m.Port)) != first.gossip {
			t.Errorf("the landmark lists the second twin: %s at %s:%d", m.Name, m.Addr, m.Port)
		}
	}
}

// Two that join at the same moment, through members that have heard of
// neither, meet serf's name conflict resolution instead: the one that
// loses ends with ErrLeftMesh, which says what happened and what to do.
func TestNameConflictLost(t *testing.T) {
	a := newTestAgent(t)
	w := &logWriter{log: slog.New(slog.DiscardHandler), conflict: &a.conflict}
	w.Write([]byte("[ERR] serf: Node name conflicts with another node at 127.0.0.1:7946. Names must be unique! (Resolution enabled: true)\n"))
	w.Write([]byte("[WARN] serf: minority in name conflict resolution, quiting [1 / 3]\n"))
	err := a.left()
	if !errors.Is(err, ErrLeftMesh) || !strings.Contains(err.Error(), "name conflict resolution") || !strings.Contains(err.Error(), "--node") {
		t.Errorf("left: %v", err)
	}
	if h := a.Health(); !errors.Is(h, ErrLeftMesh) {
		t.Errorf("health: %v", h)
	}
}
