package meshagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"
	"github.com/hashicorp/serf/serf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/mesh"
	"github.com/abing-net/abing/netloc"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
)

// Tags a member advertises in serf (memberlist carries at most 512 bytes
// of them).
const (
	tagRole  = "abing" // its value: the row format's version
	tagPort  = "port"  // the reflector's UDP port
	tagPaths = "paths" // name=addr,...
	rowVer   = "1"
)

// Agent is one host of a mesh. Make it with New, run it with Run.
type Agent struct {
	cfg  *config.Config
	set  config.Agent
	log  *slog.Logger
	view *View
	// A Vivaldi client per path, fed by this node's RTTs on that path.
	clients map[string]*coordinate.Client
	guards  map[string]*coordGuard // per path, under mu
	serf    *serf.Serf

	mu          sync.Mutex
	own         map[string]map[string]Link // path → peer → latest link
	dirty       map[string]map[string]bool // path → peers not published since they changed
	iters       map[string]uint64          // path → coordinate updates
	pubCoord    map[string]*coordinate.Coordinate
	targets     bool                    // the members changed: the monitor's targets are stale
	down        map[string]record.Alarm // active down alarms, by member
	alarms      []record.Alarm          // raised or cleared, for the monitor
	ignored     map[string]string       // members that are not agents, and why (logged once)
	refused     int                     // row parts refused
	warned      time.Time               // when refused parts were last logged
	coordWarned time.Time               // when refused coordinate samples were last logged
	cycle       cycle
	budget      *budget // under mu
	// announce: this node has just joined (or the mesh has found it
	// again): its whole row goes out now. What it published while alone
	// reached the member it joined through by serf's state exchange, which
	// does not gossip it on.
	announce bool
	metrics  *metrics
	bound    chan Bound // one value once Run has opened its sockets
	answer   meshAnswer // of /api/v1/mesh
	// conflict: serf said this node lost a name conflict (another member
	// has its name) and quit; gone: why the agent is no longer a member
	// (nil while it is, or before it joined anything).
	conflict atomic.Bool
	gone     atomic.Pointer[error]
	guard    nameGuard
	routes   *Router
}

// ErrLeftMesh is what Run returns, and Health says, when serf shut down
// while the agent ran: the node is no longer a member of the mesh, whatever
// else still runs.
var ErrLeftMesh = errors.New("this node is no longer a member of the mesh")

// Health is nil while the agent is a member of its mesh (or still
// starting), and why not otherwise: for /healthz.
func (a *Agent) Health() error {
	if err := a.gone.Load(); err != nil {
		return *err
	}
	return nil
}

// ErrDuplicateName is what Run returns, and Health says, when the agent
// did not join its mesh because another member already has its name.
var ErrDuplicateName = errors.New("another member of the mesh already has this node's name")

// nameGuard refuses a member list that serf would merge into this node's
// (when it joins, and at each push-pull) or an alive message in which
// another member, at another address, has this node's name: joining would
// start serf's name conflict resolution, in which one of the two quits.
// The member already there keeps the name; this one stays out and says
// why. (Two that join at the same moment, through members that have not
// heard of either, still meet serf's resolution: see left.)
type nameGuard struct {
	name  string
	self  atomic.Pointer[netip.AddrPort] // this node's gossip address, once serf is up
	other atomic.Pointer[netip.AddrPort] // the other member's, once seen
}

// NotifyMerge is serf's MergeDelegate.
func (g *nameGuard) NotifyMerge(members []*serf.Member) error {
	self := g.self.Load()
	if self == nil {
		return nil
	}
	for _, m := range members {
		ip, ok := netip.AddrFromSlice(m.Addr)
		if m.Name != g.name || m.Status == serf.StatusLeft || !ok {
			continue
		}
		if at := netip.AddrPortFrom(ip.Unmap(), m.Port); at != *self {
			g.other.Store(&at)
			return fmt.Errorf("%w: %q, at %s", ErrDuplicateName, m.Name, at)
		}
	}
	return nil
}

// left records why serf shut down under the agent, and returns it.
func (a *Agent) left() error {
	if err := a.gone.Load(); err != nil {
		return *err // the join refused (join)
	}
	err := fmt.Errorf("%w: serf shut down", ErrLeftMesh)
	if a.conflict.Load() {
		err = fmt.Errorf("%w: another member is named %q too, and serf's name conflict resolution kept that one; give each agent its own name (--node or node: in its configuration; the default is the hostname)",
			ErrLeftMesh, a.cfg.Node)
	}
	a.gone.Store(&err)
	return err
}

// cycle tracks one full cycle: every path of every member measured once.
type cycle struct {
	start time.Time
	done  map[string]bool // target key → measured since start
	paths int             // of the last full cycle
}

// New makes an agent of a completed agent configuration (config.ParseAgent,
// or config.Config.Complete of one), its settings in cfg.Agent.
func New(cfg *config.Config, logger *slog.Logger) (*Agent, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	set := cfg.Agent
	if err := config.CheckName(cfg.Node); err != nil {
		return nil, fmt.Errorf("node %w", err)
	}
	a := &Agent{cfg: cfg, set: set, log: logger, view: NewView(cfg.Node, set.NetlocPath, 3*time.Duration(set.Refresh)),
		clients: map[string]*coordinate.Client{}, guards: map[string]*coordGuard{}, own: map[string]map[string]Link{}, dirty: map[string]map[string]bool{},
		iters: map[string]uint64{}, budget: newBudget(profile(set.Profile), len(set.Paths)), pubCoord: map[string]*coordinate.Coordinate{}, down: map[string]record.Alarm{}, ignored: map[string]string{}}
	a.routes = NewRouter(cfg.Node, set.Routes)
	a.metrics = newMetrics(a)
	a.bound = make(chan Bound, 1)
	for _, p := range set.Paths {
		cc := coordinate.DefaultConfig()
		cc.Dimensionality = uint(set.Dimensions)
		c, err := coordinate.NewClient(cc)
		if err != nil {
			return nil, fmt.Errorf("coordinates of path %s: %w", p.Name, err)
		}
		a.clients[p.Name], a.guards[p.Name] = c, &coordGuard{}
		a.own[p.Name], a.dirty[p.Name] = map[string]Link{}, map[string]bool{}
	}
	return a, nil
}

// Run runs the agent until ctx ends: the reflector, the serf member and the
// netloc API, and the members as targets: reload is handed a monitor
// configuration that measures them each time they change, raise the alarms
// of members that fail and come back. The monitor's records come back
// through Observe. Then it leaves the mesh (bounded) and returns. It
// returns at once with an error when a part cannot start.
func (a *Agent) Run(ctx context.Context, reload func(context.Context, *config.Config), raise func(context.Context, record.Alarm)) error {
	var keys []auth.Key
	if a.cfg.Probe.KeyFile != "" {
		var err error
		if keys, err = auth.LoadKeys(a.cfg.Probe.KeyFile); err != nil {
			return fmt.Errorf("reflector: %w", err)
		}
	}
	conn, err := dispersion.Listen("udp", ":"+strconv.Itoa(a.set.Port), dispersion.Options{})
	if err != nil {
		return fmt.Errorf("reflector: %w", err)
	}
	defer conn.Close()
	// Port 0 is any free port; the members learn the one taken from the
	// tags.
	a.set.Port = int(conn.LocalAddr().Port())
	srv, err := reflector.New(conn, reflector.Config{Keys: keys, Logger: a.log.With("part", "reflector")})
	if err != nil {
		return fmt.Errorf("reflector: %w", err)
	}
	var nl net.Listener
	if a.set.Netloc != "none" {
		if nl, err = net.Listen("tcp", a.set.Netloc); err != nil {
			return fmt.Errorf("netloc API %s: %w", a.set.Netloc, err)
		}
		defer nl.Close()
	}
	events := make(chan serf.Event, 4096)
	if a.serf, err = serf.Create(a.serfConfig(events)); err != nil {
		return fmt.Errorf("serf %s: %w", a.set.Bind, err)
	}
	ml := a.serf.Memberlist().LocalNode()
	gossip := net.JoinHostPort(ml.Addr.String(), strconv.Itoa(int(ml.Port)))
	if ip, ok := netip.AddrFromSlice(ml.Addr); ok {
		self := netip.AddrPortFrom(ip.Unmap(), ml.Port)
		a.guard.self.Store(&self)
	}
	a.log.Info("mesh member", "node", a.cfg.Node, "gossip", gossip, "bind", a.set.Bind, "encrypted", a.set.Keyring != "",
		"paths", a.tags()[tagPaths], "reflector_port", a.set.Port, "landmark", len(a.set.Join) == 0)
	b := Bound{Gossip: gossip, Reflector: a.set.Port}
	if nl != nil {
		b.Netloc = nl.Addr().String()
	}
	select {
	case a.bound <- b:
	default: // told once
	}
	var wg sync.WaitGroup
	runCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		a.leave()
		wg.Wait()
	}()
	wg.Go(func() { srv.Serve(runCtx) })
	wg.Go(func() { a.events(runCtx, events) })
	if nl != nil {
		a.log.Info("netloc API", "addr", nl.Addr().String(), "path", a.set.NetlocPath)
		wg.Go(func() {
			if err := netloc.Serve(runCtx, nl, a.view, netloc.Options{}); err != nil {
				a.log.Error("netloc API", "err", err)
			}
		})
	}
	if len(a.set.Join) > 0 {
		wg.Go(func() { a.join(runCtx) })
	}
	if !a.feed(runCtx, reload, raise) {
		err := a.left()
		a.log.Error("left the mesh", "err", err)
		return err
	}
	return nil
}

// Bound is where a running agent listens: serf's advertised address, the
// reflector's UDP port and the netloc API's address ("" when off).
type Bound struct {
	Gossip    string
	Reflector int
	Netloc    string
}

// Bound waits until Run has opened every socket and says where, or returns
// ctx's error. It answers once per Run.
func (a *Agent) Bound(ctx context.Context) (Bound, error) {
	select {
	case b := <-a.bound:
		return b, nil
	case <-ctx.Done():
		return Bound{}, ctx.Err()
	}
}

// Collectors are the agent's metrics, for /metrics beside the monitor's.
func (a *Agent) Collectors() []prometheus.Collector { return a.metrics.collectors() }

// leaveTimeout bounds the goodbye at exit, so that SIGTERM ends the agent
// within a few seconds even when no member answers.
const leaveTimeout = 3 * time.Second

// leave tells the mesh this node is leaving (so that the others raise a
// warning, not a failure), then shuts serf down.
func (a *Agent) leave() {
	done := make(chan error, 1)
	go func() { done <- a.serf.Leave() }()
	select {
	case err := <-done:
		if err != nil {
			a.log.Warn("leaving the mesh", "err", err)
		}
	case <-time.After(leaveTimeout):
		a.log.Warn("leaving the mesh: no answer in time; shutting down")
	}
	a.serf.Shutdown()
}

func (a *Agent) serfConfig(events chan serf.Event) *serf.Config {
	conf := serf.DefaultConfig()
	conf.NodeName = a.cfg.Node
	conf.Tags = a.tags()
	conf.EventCh = events
	a.guard.name = a.cfg.Node
	conf.Merge = &a.guard
	conf.UserEventSizeLimit = a.set.EventSize
	conf.DisableCoordinates = true // ours come from abing's probes
	// Names are checked by the agent: its own by config.CheckName, the
	// members' as they arrive (ignored, with the reason). serf's own check
	// runs only with a Merge delegate (the nameGuard), where one bad name
	// in a list cancels the whole merge: a member with a bad name would
	// then keep every later member from joining through that list.
	conf.ValidateNodeNames = false
	conf.RejoinAfterLeave = true // a restarted agent comes back under its name
	conf.BroadcastTimeout = 2 * time.Second
	logger := log.New(&logWriter{log: a.log.With("part", "serf"), conflict: &a.conflict}, "", 0)
	conf.Logger = logger
	ml := profile(a.set.Profile)
	host, port := a.set.BindAddr()
	if host == "" {
		host = "0.0.0.0"
	}
	ml.BindAddr, ml.BindPort = host, port
	ml.AdvertiseAddr, ml.AdvertisePort = a.set.AdvertiseAddr()
	ml.Logger = logger
	if a.set.Keyring != "" {
		kr, _ := LoadKeyring(a.set.Keyring) // checked by Open
		ml.Keyring = kr
	}
	conf.MemberlistConfig = ml
	return conf
}

// Open checks what Run will need before anything starts: the keyring
// (its permissions too) and the tags' size.
func (a *Agent) Open() error {
	if a.set.Keyring != "" {
		if _, err := LoadKeyring(a.set.Keyring); err != nil {
			return err
		}
	}
	n := 0
	for k, v := range a.tags() {
		n += len(k) + len(v) + 2
	}
	if n > memberlist.MetaMaxSize-32 { // serf's encoding of the tags
		return fmt.Errorf("paths %s: %d bytes of tags, serf carries at most %d", a.tags()[tagPaths], n, memberlist.MetaMaxSize-32)
	}
	return nil
}

// join joins the mesh through any of the members given, retrying (the
// landmark may start later) with a growing pause until one answers.
func (a *Agent) join(ctx context.Context) {
	wait := time.Second
	for {
		n, err := a.serf.Join(a.set.Join, false)
		if other := a.guard.other.Load(); n == 0 && other != nil {
			// Refused before joining: stay out, and end Run (feed sees
			// serf shut down, and left returns this).
			err := fmt.Errorf("%w: %q is taken by the member at %s; give each agent its own name (--node, or node: in its configuration; the default is the hostname). If that member is this host's earlier run, start again once the mesh has marked it failed",
				ErrDuplicateName, a.cfg.Node, *other)
			a.gone.Store(&err)
			a.log.Error("not joining the mesh", "err", err)
			a.serf.Shutdown()
			return
		}
		if n > 0 {
			a.log.Info("joined the mesh", "through", strings.Join(a.set.Join, ","), "members", len(a.serf.Members()))
			a.mu.Lock()
			a.announce = true
			a.mu.Unlock()
			return
		}
		a.log.Warn("joining the mesh: no member answered; retrying", "join", strings.Join(a.set.Join, ","), "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// route recomputes the route table from the map as it is at now, logs
// and raises each change (a route event for the hooks) and updates the
// routes' metrics.
func (a *Agent) route(ctx context.Context, now time.Time, raise func(context.Context, record.Alarm)) {
	byPath, down := a.view.routeSamples()
	for _, c := range a.routes.Update(byPath, down, now) {
		al := a.routeAlarm(c)
		a.log.Info("route changed", "path", c.Path, "destination", c.Dst, "reason", c.Reason,
			"old_route", al.Labels["old_route"], "new_route", al.Labels["new_route"], "old_value", c.OldValue, "new_value", c.NewValue, "flap", c.Flap)
		raise(ctx, al)
	}
	a.metrics.routes(a.routes.Table())
}

// routeAlarm is a route change as an event for the hooks (kind route,
// severity info, started and ended at once): the destination as target,
// its values before and after, and labels for an overlay to program its
// routes from: path, reason, metric, old and new route and next hop, the
// addresses on that path of the destination and of both next hops ("" for
// none), and whether it was a flap.
func (a *Agent) routeAlarm(c RouteChange) record.Alarm {
	at := c.At.UTC()
	route := func(hops []string) string {
		if hops == nil {
			return "unreachable"
		}
		return strings.Join(hops, ">")
	}
	value := func(v float64) float64 {
		if math.IsNaN(v) {
			return 0
		}
		return v
	}
	unit := a.routes.p.Metric
	switch unit {
	case mesh.MetricRTT:
		unit = "ms"
	case mesh.MetricBandwidth:
		unit = "Mbit/s"
	}
	was, now := route(c.OldHops), route(c.NewHops)
	return record.Alarm{Kind: record.MeshRoute, Target: c.Dst, Direction: "forward", Severity: record.Info, Start: at, End: &at, Cleared: "event",
		Before: value(c.OldValue), After: value(c.NewValue), Unit: unit,
		Summary: fmt.Sprintf("route to %s on %s: %s (%.1f %s) instead of %s (%.1f %s): %s", c.Dst, c.Path, now, value(c.NewValue), unit, was, value(c.OldValue), unit, c.Reason),
		Labels: map[string]string{"path": c.Path, "reason": c.Reason, "metric": a.routes.p.Metric, "old_route": was, "new_route": now,
			"old_next_hop": mesh.NextHop(c.OldHops), "new_next_hop": mesh.NextHop(c.NewHops), "destination_addr": a.view.pathAddr(c.Dst, c.Path),
			"old_next_hop_addr": a.view.pathAddr(mesh.NextHop(c.OldHops), c.Path), "new_next_hop_addr": a.view.pathAddr(mesh.NextHop(c.NewHops), c.Path),
			"flap": strconv.FormatBool(c.Flap)}}
}

// feed hands the monitor the members as targets (reload) and the members'
// alarms (raise), and publishes this node's row, until ctx ends.
// It reports false when it ended because serf shut down under it.
func (a *Agent) feed(ctx context.Context, reload func(context.Context, *config.Config), raise func(context.Context, record.Alarm)) bool {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastFull, lastExpiry := time.Now(), time.Now()
	for {
		a.mu.Lock()
		stale, alarms := a.targets, a.alarms
		a.targets, a.alarms = false, nil
		a.mu.Unlock()
		if stale {
			if cfg := a.targetConfig(); cfg != nil {
				reload(ctx, cfg)
				a.log.Info("measuring the mesh", "paths", len(cfg.Targets), "interval", time.Duration(cfg.Interval).String())
			}
		}
		for _, al := range alarms {
			raise(ctx, al)
		}
		now := time.Now()
		n := a.view.size()
		a.mu.Lock()
		refresh := a.budget.refresh(n, time.Duration(a.set.Refresh), a.log)
		a.mu.Unlock()
		a.mu.Lock()
		announce := a.announce
		a.mu.Unlock()
		full := announce || now.Sub(lastFull) >= refresh
		if a.publish(full, now) && full {
			lastFull = now
			if announce {
				a.mu.Lock()
				a.announce = false
				a.mu.Unlock()
			}
		}
		// The route table, every second: a changed map within a second,
		// and the smoothed metrics and the hold move on without one (one
		// path network of 1,000 members takes about 1 ms).
		a.route(ctx, now, raise)
		if now.Sub(lastExpiry) >= time.Minute { // a walk over every link of the map
			a.view.expireLinks(now)
			lastExpiry = now
		}
		select {
		case <-ctx.Done():
			return true
		case <-a.serf.ShutdownCh():
			return ctx.Err() != nil
		case <-tick.C:
		}
	}
}

// targetConfig is the monitor's configuration with the members as
// targets. parseMember let through only IP addresses and ports, which the
// monitor takes, so one member cannot make the whole set fail.
func (a *Agent) targetConfig() *config.Config {
	cfg, err := a.cfg.WithTargets(a.targetList())
	if err != nil {
		a.log.Error("members as targets", "err", err)
		return nil
	}
	return cfg
}

// logWriter turns serf's and memberlist's log lines ("[WARN] memberlist:
// ...") into slog records of the same level.
type logWriter struct {
	log *slog.Logger
	// conflict is set when serf says this node lost a name conflict
	// (the line that comes before it shuts itself down).
	conflict *atomic.Bool
}

func (w *logWriter) Write(b []byte) (int, error) {
	line := string(bytes.TrimSpace(b))
	level := slog.LevelInfo
	for tag, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[TRACE]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError} {
		if i := strings.Index(line, tag); i >= 0 {
			level, line = l, strings.TrimSpace(line[i+len(tag):])
			break
		}
	}
	if w.conflict != nil && strings.Contains(line, "minority in name conflict resolution") {
		w.conflict.Store(true)
	}
	w.log.Log(context.Background(), level, line)
	return len(b), nil
}
