package meshagent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"
	"github.com/hashicorp/serf/serf"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/monitor"
	"github.com/abing-net/abing/netloc"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/timestamp"
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
	cfg  *monitor.Config
	set  Settings
	log  *slog.Logger
	view *View
	// A Vivaldi client per path, fed by this node's RTTs on that path.
	clients map[string]*coordinate.Client
	serf    *serf.Serf

	mu       sync.Mutex
	own      map[string]map[string]Link // path → peer → latest link
	dirty    map[string]map[string]bool // path → peers not published since they changed
	iters    map[string]uint64          // path → coordinate updates
	pubCoord map[string]*coordinate.Coordinate
	targets  bool                    // the members changed: the monitor's targets are stale
	down     map[string]record.Alarm // active down alarms, by member
	alarms   []record.Alarm          // raised or cleared, for the monitor
	ignored  map[string]string       // members that are not agents, and why (logged once)
	refused  int                     // row parts refused
	warned   time.Time               // when refused parts were last logged
	cycle    cycle
	budget   *budget // under mu
	metrics  *metrics
}

// cycle tracks one full cycle: every path of every member measured once.
type cycle struct {
	start time.Time
	done  map[string]bool // target key → measured since start
	paths int             // of the last full cycle
}

// New makes an agent of a completed agent configuration
// (monitor.ParseAgentConfig) and completed settings.
func New(cfg *monitor.Config, set Settings, logger *slog.Logger) (*Agent, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := CheckName(cfg.Node); err != nil {
		return nil, fmt.Errorf("node %w", err)
	}
	a := &Agent{cfg: cfg, set: set, log: logger, view: NewView(cfg.Node, set.NetlocPath, 3*time.Duration(set.Refresh)),
		clients: map[string]*coordinate.Client{}, own: map[string]map[string]Link{}, dirty: map[string]map[string]bool{},
		iters: map[string]uint64{}, budget: newBudget(profile(set.Profile), len(set.Paths)), pubCoord: map[string]*coordinate.Coordinate{}, down: map[string]record.Alarm{}, ignored: map[string]string{}}
	a.metrics = newMetrics(a)
	for _, p := range set.Paths {
		cc := coordinate.DefaultConfig()
		cc.Dimensionality = uint(set.Dimensions)
		c, err := coordinate.NewClient(cc)
		if err != nil {
			return nil, fmt.Errorf("coordinates of path %s: %w", p.Name, err)
		}
		a.clients[p.Name] = c
		a.own[p.Name], a.dirty[p.Name] = map[string]Link{}, map[string]bool{}
	}
	return a, nil
}

// View is the agent's full map.
func (a *Agent) View() *View { return a.view }

// Tags are what this member advertises.
func (a *Agent) tags() map[string]string {
	var paths []string
	for _, p := range a.set.Paths {
		paths = append(paths, p.Name+"="+p.Addr.String())
	}
	return map[string]string{tagRole: rowVer, tagPort: strconv.Itoa(a.set.Port), tagPaths: strings.Join(paths, ",")}
}

// parseMember reads a serf member's tags, or says why it is not an agent
// this one can measure.
func parseMember(m serf.Member) (member, error) {
	out := member{port: 0, paths: map[string]netip.Addr{}}
	if a, ok := netip.AddrFromSlice(m.Addr); ok {
		out.addr = a.Unmap()
	}
	if m.Tags[tagRole] != rowVer {
		return out, fmt.Errorf("tag %s=%q: not an abing agent of row format %s", tagRole, m.Tags[tagRole], rowVer)
	}
	port, err := strconv.Atoi(m.Tags[tagPort])
	if err != nil || port < 1 || port > 65535 {
		return out, fmt.Errorf("tag %s=%q: want a UDP port", tagPort, m.Tags[tagPort])
	}
	out.port = uint16(port)
	paths, err := ParsePaths(m.Tags[tagPaths])
	if err != nil || len(paths) > MaxPaths {
		return out, fmt.Errorf("tag %s=%q: want up to %d NAME=ADDRESS", tagPaths, m.Tags[tagPaths], MaxPaths)
	}
	for _, p := range paths {
		out.paths[p.Name] = p.Addr
	}
	return out, nil
}

// Run runs the agent until ctx ends: the reflector, the serf member, the
// monitor (with what setup asks of it: store, web listener, ...) and the
// netloc API; then it leaves the mesh (bounded) and returns.
func (a *Agent) Run(ctx context.Context, setup monitor.Setup) error {
	var keys []auth.Key
	if a.cfg.Probe.KeyFile != "" {
		var err error
		if keys, err = auth.LoadKeys(a.cfg.Probe.KeyFile); err != nil {
			return fmt.Errorf("reflector: %w", err)
		}
	}
	conn, err := timestamp.Listen("udp", ":"+strconv.Itoa(a.set.Port), timestamp.Options{})
	if err != nil {
		return fmt.Errorf("reflector: %w", err)
	}
	defer conn.Close()
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
	a.log.Info("mesh member", "node", a.cfg.Node, "gossip", a.set.Bind, "advertise", a.set.Advertise, "encrypted", a.set.Keyring != "",
		"paths", a.tags()[tagPaths], "reflector_port", a.set.Port, "landmark", len(a.set.Join) == 0)
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
	setup.Results = a.results
	setup.Attach = a.attach
	setup.Handlers = a.Handlers()
	setup.Collectors = a.metrics.collectors()
	return monitor.Serve(runCtx, a.cfg, setup)
}

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
	conf.UserEventSizeLimit = a.set.EventSize
	conf.DisableCoordinates = true // ours come from abing's probes
	conf.ValidateNodeNames = true
	conf.RejoinAfterLeave = true // a restarted agent comes back under its name
	conf.BroadcastTimeout = 2 * time.Second
	logger := log.New(&logWriter{log: a.log.With("part", "serf")}, "", 0)
	conf.Logger = logger
	ml := profile(a.set.Profile)
	host, port, _ := splitPort(a.set.Bind, DefaultBindPort)
	if host == "" {
		host = "0.0.0.0"
	}
	ml.BindAddr, ml.BindPort = host, port
	ahost, aport, _ := splitPort(a.set.Advertise, port)
	ml.AdvertiseAddr, ml.AdvertisePort = ahost, aport
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
		if n > 0 {
			a.log.Info("joined the mesh", "through", strings.Join(a.set.Join, ","), "members", len(a.serf.Members()))
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

// events takes serf's events until ctx ends.
func (a *Agent) events(ctx context.Context, events <-chan serf.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-events:
			switch e := e.(type) {
			case serf.MemberEvent:
				for _, m := range e.Members {
					a.member(m, e.Type, time.Now())
				}
			case serf.UserEvent:
				a.userEvent(e, time.Now())
			}
		}
	}
}

// member takes a member's change of state.
func (a *Agent) member(m serf.Member, typ serf.EventType, now time.Time) {
	if m.Name == a.cfg.Node {
		return
	}
	mem, err := parseMember(m)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if a.ignored[m.Name] != err.Error() {
			a.ignored[m.Name] = err.Error()
			a.log.Warn("a member that is not an agent this one can measure: ignored", "member", m.Name, "why", err)
		}
		return
	}
	delete(a.ignored, m.Name)
	a.targets = true
	if typ == serf.EventMemberReap {
		// serf forgets a failed member after a day (a left one too): so
		// does the map, and its alarm ends.
		a.view.forget(m.Name)
		for _, c := range a.clients {
			c.ForgetNode(m.Name)
		}
		a.clear(m.Name, "forgotten", "forgotten by serf", now)
		return
	}
	mem.alive, mem.since = m.Status == serf.StatusAlive && typ != serf.EventMemberFailed && typ != serf.EventMemberLeave, now
	a.view.setMember(m.Name, mem)
	a.log.Info("member "+typ.String(), "member", m.Name, "addr", mem.addr.String(), "status", m.Status.String())
	if _, isDown := a.down[m.Name]; (typ == serf.EventMemberFailed || typ == serf.EventMemberLeave) && !isDown {
		how, sev := "failed: serf's failure detector lost it", record.Critical
		if typ == serf.EventMemberLeave {
			how, sev = "left the mesh", record.Warning
		}
		al := record.Alarm{Kind: record.Down, Target: m.Name, Address: mem.addr.String(), Direction: "both", Severity: sev, Start: now,
			Before: 1, After: 0, Unit: "up", Summary: fmt.Sprintf("member %s %s", m.Name, how), Evidence: []record.Point{{Time: now, Value: 0}}}
		a.down[m.Name] = al
		a.alarms = append(a.alarms, al)
	} else if mem.alive {
		a.clear(m.Name, "up", "is back", now)
	}
}

// clear ends the down alarm of a member, if it has one. Under mu.
func (a *Agent) clear(name, how, what string, now time.Time) {
	d, ok := a.down[name]
	if !ok {
		return
	}
	end := now
	d.End, d.Cleared, d.Summary = &end, how, fmt.Sprintf("member %s %s", name, what)
	d.Evidence = append(slices.Clone(d.Evidence), record.Point{Time: now, Value: 1})
	delete(a.down, name)
	a.alarms = append(a.alarms, d)
}

// userEvent takes a row's part.
func (a *Agent) userEvent(e serf.UserEvent, now time.Time) {
	if !strings.HasPrefix(e.Name, EventPrefix) {
		return
	}
	p, err := Decode(e.Name, e.Payload, a.set.Dimensions)
	if err != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.refused++
		a.metrics.refused.Inc()
		if now.Sub(a.warned) >= time.Minute { // a member that floods bad rows cannot flood the log
			a.warned = now
			a.log.Warn("a row's part refused (logged once a minute)", "err", err, "refused_so_far", a.refused)
		}
		return
	}
	if p.Node == a.cfg.Node {
		return // ours, applied when published
	}
	a.view.Apply(p, now)
	a.metrics.received.Inc()
}

// results takes the monitor's records: this node's links, its coordinates,
// the cycle.
func (a *Agent) results(recs []record.Record) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range recs {
		r := &recs[i]
		if r.Direction != "forward" || r.Node != a.cfg.Node || a.own[r.Path] == nil {
			continue
		}
		a.cycleSeen(r.Key(), now)
		if r.RTT == nil {
			continue // no answer; a run that answered but could not estimate the bandwidth still has the RTT
		}
		l := Link{Peer: r.Target, RTT: r.RTT.Avg, Loss: r.Loss, Jitter: r.RTT.Jitter, ABW: r.ABW, DBC: r.DBC}
		if old, ok := a.own[r.Path][r.Target]; ok {
			l.Cost = old.Cost
		}
		if r.LinkCost != nil {
			l.Cost = *r.LinkCost
			a.dirty[r.Path][r.Target] = true // past its thresholds (or the first)
		}
		if checkLink(l) != nil {
			continue // nothing a record holds is out of range, but a row must never carry it
		}
		a.own[r.Path][r.Target] = l
		// Vivaldi on the minimum RTT of the run: the train's own queueing
		// lifts the others.
		if other, ok := a.view.Coordinate(r.Target, r.Path); ok && r.RTT.Min > 0 {
			if _, err := a.clients[r.Path].Update(r.Target, other, time.Duration(r.RTT.Min*float64(time.Millisecond))); err == nil {
				a.iters[r.Path]++
			}
		}
	}
}

// cycleSeen notes a target measured, and logs a full cycle when every
// target has been. Under mu.
func (a *Agent) cycleSeen(key string, now time.Time) {
	if a.cycle.done == nil {
		a.cycle = cycle{start: now, done: map[string]bool{}}
	}
	a.cycle.done[key] = true
	want := a.wantTargets()
	for _, t := range want {
		if !a.cycle.done[t] {
			return
		}
	}
	level := slog.LevelDebug
	if len(want) != a.cycle.paths {
		level = slog.LevelInfo // the first, and when the members change
	}
	a.log.Log(context.Background(), level, "full cycle: every path of every member measured", "paths", len(want), "took", now.Sub(a.cycle.start).Round(time.Second).String())
	a.cycle = cycle{start: now, done: map[string]bool{}, paths: len(want)}
}

// wantTargets are the keys (member/path) of what this node measures.
func (a *Agent) wantTargets() []string {
	var out []string
	for _, t := range a.targetList() {
		for p := range t.Paths {
			out = append(out, t.Name+"/"+p)
		}
	}
	return out
}

// targetList is every alive member on each path both have.
func (a *Agent) targetList() []monitor.Target {
	a.view.mu.Lock()
	defer a.view.mu.Unlock()
	var out []monitor.Target
	for _, name := range slices.Sorted(maps.Keys(a.view.members)) {
		m := a.view.members[name]
		if !m.alive {
			continue
		}
		t := monitor.Target{Name: name, Paths: map[string]string{}}
		for _, p := range a.set.Paths {
			if addr, ok := m.paths[p.Name]; ok {
				t.Paths[p.Name] = net.JoinHostPort(addr.String(), strconv.Itoa(int(m.port)))
			}
		}
		if len(t.Paths) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// attach runs beside the monitor: hands it the members as targets and the
// alarms, and publishes this node's row.
func (a *Agent) attach(ctx context.Context, mon *monitor.Monitor) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastFull := time.Now()
	for {
		a.mu.Lock()
		stale, alarms := a.targets, a.alarms
		a.targets, a.alarms = false, nil
		a.mu.Unlock()
		if stale {
			cfg, err := a.cfg.WithTargets(a.targetList())
			if err != nil {
				a.log.Error("members as targets", "err", err)
			} else {
				mon.Reload(ctx, cfg)
				a.log.Info("measuring the mesh", "paths", len(cfg.Targets), "interval", time.Duration(cfg.Interval).String())
			}
		}
		for _, al := range alarms {
			mon.Raise(ctx, al)
		}
		now := time.Now()
		n := a.view.size()
		a.mu.Lock()
		refresh := a.budget.refresh(n, time.Duration(a.set.Refresh), a.log)
		a.mu.Unlock()
		full := now.Sub(lastFull) >= refresh
		if a.publish(full, now) && full {
			lastFull = now
		}
		a.view.expireLinks(now)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// publish sends this node's row: on each path, the links that changed
// past their thresholds and the coordinate if it moved (or the whole row
// when full), as parts under the event size, if the gossip budget admits
// them now; else nothing is sent and what changed waits for the next
// call. It says whether it sent (or had nothing to send).
func (a *Agent) publish(full bool, now time.Time) bool {
	outs, ok := a.collect(full, now)
	for _, o := range outs {
		a.view.Apply(&o.part, now)
		for _, b := range o.payloads {
			if err := a.serf.UserEvent(EventPrefix+a.cfg.Node, b, false); err != nil {
				a.log.Error("publishing the row", "path", o.part.Path, "err", err)
				break
			}
			a.metrics.published.Inc()
		}
	}
	return ok
}

// outgoing is a path's part to publish, as payloads.
type outgoing struct {
	part     Part
	payloads [][]byte
}

// collect is what publish sends, taken from the budget and marked as
// published; nothing (and false) when the budget does not admit it now.
func (a *Agent) collect(full bool, now time.Time) ([]outgoing, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var outs []outgoing
	n := 0
	for _, p := range a.set.Paths {
		part, ok := a.part(p.Name, full)
		if !ok {
			continue
		}
		payloads, err := Split(part, a.set.EventSize)
		if err != nil {
			a.log.Error("publishing the row", "err", err)
			continue
		}
		outs = append(outs, outgoing{part, payloads})
		n += len(payloads)
	}
	if full {
		a.budget.fullParts = n
	}
	if n == 0 {
		return nil, true
	}
	if !a.budget.allow(now, n) {
		a.metrics.deferred.Inc()
		return nil, false
	}
	for _, o := range outs {
		a.pubCoord[o.part.Path] = o.part.Coord
		for _, l := range o.part.Links {
			delete(a.dirty[o.part.Path], l.Peer)
		}
	}
	return outs, true
}

// part is what to publish of a path's row, if anything. Under mu.
func (a *Agent) part(path string, full bool) (Part, bool) {
	coord := a.clients[path].GetCoordinate()
	moved := a.pubCoord[path] == nil || displacement(a.pubCoord[path], coord) >= time.Duration(a.set.CoordMove).Seconds()
	var peers []string
	for peer := range a.own[path] {
		if full || a.dirty[path][peer] {
			peers = append(peers, peer)
		}
	}
	if !full && !moved && len(peers) == 0 {
		return Part{}, false
	}
	slices.Sort(peers)
	p := Part{Node: a.cfg.Node, Path: path, Coord: coord, Iter: a.iters[path]}
	for _, peer := range peers {
		p.Links = append(p.Links, a.own[path][peer])
	}
	return p, true
}

// displacement is how far a coordinate moved, in seconds of predicted RTT
// to any node at most: the vector's move plus the height's and the
// adjustment's changes. (DistanceTo would add both heights.)
func displacement(from, to *coordinate.Coordinate) float64 {
	var sq float64
	for i := range min(len(from.Vec), len(to.Vec)) {
		d := to.Vec[i] - from.Vec[i]
		sq += d * d
	}
	return math.Sqrt(sq) + math.Abs(to.Height-from.Height) + math.Abs(to.Adjustment-from.Adjustment)
}

// Handlers are the agent's API on the web listener.
func (a *Agent) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		"/api/v1/netloc": netloc.Handler(a.view),
		"/api/v1/mesh": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"node": a.cfg.Node, "nodes": a.view.Map()})
		}),
		"/api/v1/mesh/records": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var since time.Time
			if s := r.URL.Query().Get("since"); s != "" {
				d, err := time.ParseDuration(s)
				if err != nil || d < 0 {
					http.Error(w, fmt.Sprintf("since %q: want a duration such as 10m", s), http.StatusBadRequest)
					return
				}
				since = time.Now().Add(-d)
			}
			w.Header().Set("Content-Type", "application/x-ndjson")
			enc := json.NewEncoder(w)
			for _, rec := range a.view.Records(since) {
				if err := enc.Encode(rec); err != nil {
					return
				}
			}
		}),
	}
}

// logWriter turns serf's and memberlist's log lines ("[WARN] memberlist:
// ...") into slog records of the same level.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(b []byte) (int, error) {
	line := string(bytes.TrimSpace(b))
	level := slog.LevelInfo
	for tag, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[TRACE]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError} {
		if i := strings.Index(line, tag); i >= 0 {
			level, line = l, strings.TrimSpace(line[i+len(tag):])
			break
		}
	}
	w.log.Log(context.Background(), level, line)
	return len(b), nil
}
