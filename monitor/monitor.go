// Package monitor measures many paths around the clock: each target on its
// own cadence with random jitter, a bounded number of measurements at once,
// none two at once through the same outgoing interface (or, if configured,
// to the same target). Each run becomes its final records in one step
// (finish: the measurement, the target's identity, the pooled estimates,
// the link cost), and every batch, failures included, goes in order to the
// sinks (which may fail and then keep a backlog), to the observers and to
// the alarm detectors (package alarms). Alarms get their route traced
// (Tracer) and then go, the same alarm to each, to the sinks that take
// alarms and to the alarm observers. What the sinks and observers are (a
// store, InfluxDB, metrics, hooks, a mesh) is decided by whoever builds the
// monitor (package daemon); the monitor knows only these interfaces.
//
// Measurements that share an outgoing link distort each other: the probes
// of one are cross traffic to the other. So by default the monitor never
// runs two at once through one interface, and spreads targets over their
// interval. A target that is slow or dead holds its interface for at most
// its timeout; the others keep their cadence, which is set by the clock,
// not by when the previous run ended.
package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abing-net/abing/alarms"
	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/linkcost"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/train"
)

// Sink keeps results: the embedded store, InfluxDB. A batch it refuses is
// kept in memory and written again before the next (up to maxBacklog).
// A sink may also take alarms (AlarmWriter), say its name (Named) and say
// that it is in trouble (HealthChecker).
type Sink interface {
	Write(ctx context.Context, recs []record.Record) error
}

// Named is a sink that says its name in logs and in Health; others are
// named by their type.
type Named interface {
	Name() string
}

// Options are what a monitor runs with besides its configuration.
type Options struct {
	// Sinks take every batch, in order, the first first.
	Sinks []Sink
	// Records are told of every batch once the sinks have had it (the
	// metrics, a mesh agent's rows), Alarms of every alarm raised or
	// cleared once the sinks that take alarms have had it (the metrics,
	// the hooks). They must not block.
	Records []func([]record.Record)
	Alarms  []func(record.Alarm)
	// Reloaded, if set, is told of every configuration Run takes (the
	// metrics' series follow the targets).
	Reloaded func(*config.Config)
	// Panicked, if set, is told where a panic was recovered.
	Panicked func(where string)
	Logger   *slog.Logger
	// Bind opens measurement sockets; nil means dispersion.Listen. The
	// testbed opens them inside a network namespace.
	Bind func(network, addr string, opts dispersion.Options) (*dispersion.Conn, error)
	// Tracer, if set, traces the route to a target when a path or capacity
	// alarm is raised or cleared (and once when the target is first
	// measured, for the route before); the alarm carries both.
	Tracer Tracer
}

// AlarmWriter is a sink that also takes alarms.
type AlarmWriter interface {
	WriteAlarm(ctx context.Context, a *record.Alarm) error
}

// Monitor runs a configuration.
type Monitor struct {
	cfg    *config.Config
	opts   Options
	slots  chan struct{}
	reload chan *config.Config
	mu     sync.Mutex
	locks  map[string]*sync.Mutex // by exclusivity key
	// Alarm detection; the engine belongs to the sink goroutine.
	engine  *alarms.Engine
	params  map[string]alarms.Params // by target name; under mu
	others  alarms.Params            // of targets not configured (any more); under mu
	forget  []string                 // targets whose alarm state to drop; under mu
	watched map[string]bool          // targets whose first traceroute was asked for
	routes  *routes                  // nil without a Tracer
	// sinks: Options.Sinks; their backlogs belong to the sink goroutine.
	sinks  []*sinkState
	health health
	// raised: alarms from outside the detectors (Raise), for the sink
	// goroutine.
	raised chan record.Alarm
	group  *alarms.Grouper // belongs to the sink goroutine
}

// New returns a monitor of a completed configuration (see
// config.Config.Complete).
func New(cfg *config.Config, o Options) *Monitor {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, opts: o, slots: make(chan struct{}, cfg.MaxInFlight), reload: make(chan *config.Config),
		raised: make(chan record.Alarm, 64), group: alarms.NewGrouper(), locks: map[string]*sync.Mutex{}, watched: map[string]bool{}}
	m.health.started = time.Now()
	for _, s := range o.Sinks {
		name := fmt.Sprintf("%T", s)
		if n, ok := s.(Named); ok {
			name = n.Name()
		}
		m.sinks = append(m.sinks, &sinkState{name: name, sink: s})
	}
	if !cfg.Alarms.Disabled {
		m.params, m.others = m.alarmParams(cfg), cfg.Alarms.Params()
		m.engine = alarms.NewEngine(func(name string) alarms.Params {
			m.mu.Lock()
			defer m.mu.Unlock()
			if p, ok := m.params[name]; ok {
				return p
			}
			return m.others // a target measured before a reload removed it
		})
	}
	return m
}

func (m *Monitor) alarmParams(cfg *config.Config) map[string]alarms.Params {
	out := map[string]alarms.Params{}
	for i := range cfg.Targets {
		out[cfg.Targets[i].Name] = cfg.Targets[i].AlarmParams()
	}
	return out
}

// Run measures until ctx ends, then stores what was measured and returns.
func (m *Monitor) Run(ctx context.Context) error {
	results := make(chan []record.Record, 1024)
	var targets sync.WaitGroup
	running := map[string]*targetLoop{}
	startLoop := func(cfg *config.Config, t config.Target, start time.Time) {
		r := &targetLoop{t: t, meas: cfg.Measure(&t), node: cfg.Node, jitter: cfg.Jitter, pool: pool{size: cfg.Pool}, stop: make(chan struct{}),
			linkCost: cfg.LinkCost, cost: linkcost.NewPublisher(cfg.LinkCost.Threshold)}
		running[t.Name] = r
		targets.Add(1)
		go func() {
			defer targets.Done()
			m.loop(ctx, r, start, results)
		}()
	}
	start := time.Now()
	for _, t := range m.cfg.Targets {
		startLoop(m.cfg, t, start)
	}
	if m.opts.Tracer != nil && m.engine != nil {
		m.routes = newRoutes(m.opts.Tracer, m.opts.Logger)
	}
	done := make(chan struct{})
	go func() { defer close(done); m.sink(results) }()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case cfg := <-m.reload:
			m.apply(cfg, running, startLoop)
		}
	}
	targets.Wait()
	close(results)
	<-done
	return nil
}

// targetLoop is one target's loop and the settings it runs with.
type targetLoop struct {
	t      config.Target
	meas   measure.Config // its measurement
	node   string         // this host's name, in its records
	jitter float64
	pool   pool
	stop   chan struct{} // closed: finish the run in progress, then stop
	// The path's link cost and when to publish it; warned: the probes'
	// share of the path was logged once.
	linkCost config.LinkCost
	cost     *linkcost.Publisher
	warned   bool
}

// Reload replaces the targets with those of cfg (a completed
// configuration): loops of unchanged targets go on with their cadence,
// removed or changed ones stop after their run in progress, new ones start.
// Settings that need a restart (max_in_flight, exclusive, store) are kept
// and logged. Reload returns once Run has taken the change, or when ctx
// ends.
func (m *Monitor) Reload(ctx context.Context, cfg *config.Config) {
	select {
	case m.reload <- cfg:
	case <-ctx.Done():
	}
}

func (m *Monitor) apply(cfg *config.Config, running map[string]*targetLoop, startLoop func(*config.Config, config.Target, time.Time)) {
	na, oa := cfg.Alarms, m.cfg.Alarms
	if cfg.MaxInFlight != m.cfg.MaxInFlight || cfg.Exclusive != m.cfg.Exclusive || cfg.Store != m.cfg.Store ||
		(cfg.InfluxDB == nil) != (m.cfg.InfluxDB == nil) || (cfg.InfluxDB != nil && *cfg.InfluxDB != *m.cfg.InfluxDB) ||
		na.Disabled != oa.Disabled || !slices.Equal(na.Command, oa.Command) || na.CommandTimeout != oa.CommandTimeout ||
		na.Webhook != oa.Webhook || na.Traceroute != oa.Traceroute || cfg.Node != m.cfg.Node {
		m.opts.Logger.Warn("reload: max_in_flight, exclusive, node, store, influxdb and the alarm hooks take effect at restart; kept",
			"max_in_flight", m.cfg.MaxInFlight, "exclusive", m.cfg.Exclusive, "node", m.cfg.Node)
	}
	node := m.cfg.Node
	wanted := map[string]config.Target{}
	for _, t := range cfg.Targets {
		wanted[t.Name] = t
	}
	var stopped, started, kept int
	for name, r := range running {
		if t, ok := wanted[name]; ok && sameTarget(t, cfg.Measure(&t), r.t, r.meas) && cfg.Jitter == r.jitter && cfg.Pool == r.pool.size && cfg.LinkCost == r.linkCost {
			kept++
			continue
		}
		close(r.stop)
		delete(running, name)
		stopped++
	}
	if m.engine != nil {
		// Targets that left, or whose detector settings changed, start
		// their alarm state afresh.
		params := m.alarmParams(cfg)
		m.mu.Lock()
		for name, p := range m.params {
			if np, ok := params[name]; !ok || np != p {
				m.forget = append(m.forget, name)
			}
		}
		m.params, m.others = params, cfg.Alarms.Params()
		m.mu.Unlock()
	}
	m.mu.Lock() // Health reads them
	m.cfg.Targets, m.cfg.Probe, m.cfg.Interval, m.cfg.Jitter, m.cfg.Pool, m.cfg.LinkCost = cfg.Targets, cfg.Probe, cfg.Interval, cfg.Jitter, cfg.Pool, cfg.LinkCost
	m.mu.Unlock()
	runCfg := *cfg
	runCfg.Node = node // it takes effect at restart
	now := time.Now()
	for _, t := range cfg.Targets {
		if _, ok := running[t.Name]; !ok {
			startLoop(&runCfg, t, now)
			started++
		}
	}
	if m.opts.Reloaded != nil {
		m.opts.Reloaded(cfg)
	}
	m.opts.Logger.Info("configuration reloaded", "targets", len(cfg.Targets), "kept", kept, "started", started, "stopped", stopped)
}

// sameTarget says whether a target's measurements are unchanged.
func sameTarget(a config.Target, ma measure.Config, b config.Target, mb measure.Config) bool {
	if a.Address != b.Address || a.Interval != b.Interval || !maps.Equal(a.Labels, b.Labels) ||
		ma.Trains != mb.Trains || ma.TrainLen != mb.TrainLen || ma.Size != mb.Size || ma.Timeout != mb.Timeout ||
		ma.Method != mb.Method || ma.Protocol != mb.Protocol || ma.Timestamps != mb.Timestamps || ma.Interface != mb.Interface ||
		ma.Precision != mb.Precision || ma.MaxBytes != mb.MaxBytes || ma.PacedTrainLen != mb.PacedTrainLen ||
		(ma.Key == nil) != (mb.Key == nil) || (ma.Key != nil && (ma.Key.Name != mb.Key.Name || !bytes.Equal(ma.Key.Secret, mb.Key.Secret))) {
		return false
	}
	return true
}

// loop measures one target on its cadence until ctx ends or stop closes.
func (m *Monitor) loop(ctx context.Context, l *targetLoop, start time.Time, results chan<- []record.Record) {
	t := &l.t
	seed := fnv.New64a()
	seed.Write([]byte(t.Name))
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), seed.Sum64()))
	interval := time.Duration(t.Interval)
	// Spread the first runs over one interval, so that targets added
	// together do not probe together.
	next := start.Add(time.Duration(rng.Float64() * float64(interval)))
	silent := 0 // runs in a row that never heard from the reflector
	for {
		if !sleepUntil(ctx, l.stop, next) {
			return
		}
		next = next.Add(time.Duration(float64(interval) * (1 + l.jitter*(2*rng.Float64()-1))))
		if now := time.Now(); next.Before(now) {
			next = now.Add(interval / 2) // fell behind (suspend, long run): do not catch up in a burst
		}
		res, start, err := m.measure(ctx, t, l.meas)
		if ctx.Err() != nil {
			return // a cancelled run is not a result
		}
		if errors.Is(err, measure.ErrNoAnswer) {
			silent++
		} else {
			silent = 0
		}
		if wait := backoff(interval, silent); wait > interval {
			next = start.Add(wait)
		}
		results <- m.finish(l, res, err, start)
	}
}

// Back-off from a target that never answers (measure.ErrNoAnswer: no
// reflector there, or an address advertised to mislead): after
// backoffAfter such runs in a row each wait doubles, up to backoffMax
// times the interval and at most maxBackoffWait (unless the interval is
// longer). An answer restores the interval. The down alarm, raised after
// the alarms' hold of failed runs, comes before the waits grow; its clear
// can come up to one long wait late.
const (
	backoffAfter   = 3
	backoffMax     = 16
	maxBackoffWait = 10 * time.Minute
)

// backoff is the wait before the next run after silent unanswered runs in
// a row.
func backoff(interval time.Duration, silent int) time.Duration {
	if silent < backoffAfter {
		return interval
	}
	f := min(1<<min(silent-backoffAfter+1, 10), backoffMax)
	return min(interval*time.Duration(f), max(interval, maxBackoffWait))
}

// finish turns one run into its final records, in one place: the
// measurement's own fields (its result's, or its error's), the target's
// identity (name, labels, this node, the path), the estimates pooled over
// the target's last runs, and the path's link cost when it has moved past
// its thresholds. It also warns once when the probes take more of the path
// than they should.
func (m *Monitor) finish(l *targetLoop, res *measure.Result, err error, start time.Time) []record.Record {
	var recs []record.Record
	if err != nil {
		recs = measure.FailedRecords(l.meas, start, err)
		m.opts.Logger.Debug("measurement failed", "target", l.t.Name, "err", err)
		res = nil
	} else {
		recs = res.Records()
	}
	for i := range recs {
		recs[i].Target, recs[i].Path, recs[i].Labels, recs[i].Node = l.t.Host(), l.t.Path(), l.t.Labels, l.node
	}
	l.pool.add(res, recs)
	m.linkCost(l, res, recs)
	return recs
}

// linkCost publishes the path's new link cost in recs when it has moved
// past its thresholds, and warns once when the probes take more of the
// path than they should.
func (m *Monitor) linkCost(l *targetLoop, res *measure.Result, recs []record.Record) {
	var fwd *record.Record
	for i := range recs {
		if recs[i].Direction == "forward" {
			fwd = &recs[i]
		}
	}
	if fwd == nil || fwd.RTT == nil {
		return
	}
	if v, ok := l.cost.Observe(l.linkCost.Cost(fwd.RTT.Avg, fwd.Loss, fwd.RTT.Jitter)); ok {
		for i := range recs {
			recs[i].LinkCost = &v
		}
	}
	if res == nil || l.warned || res.Forward.CapErr != nil || res.Reverse.CapErr != nil {
		return
	}
	dbc := min(res.Forward.Capacity.DBC, res.Reverse.Capacity.DBC) / 1e6
	share := linkcost.ProbeShare(res.Forward.Bytes+res.Reverse.Bytes, time.Duration(l.t.Interval), dbc)
	if share > l.linkCost.MaxProbeShare {
		l.warned = true
		m.opts.Logger.Warn("the probes take more of the path than max_probe_share: lengthen the interval, or lower max_bytes, or the measurements measure their own load",
			"target", l.t.Name, "share", fmt.Sprintf("%.1f %%", 100*share), "bytes_per_run", res.Forward.Bytes+res.Reverse.Bytes,
			"interval", time.Duration(l.t.Interval), "dbc_mbps", dbc, "max_probe_share", l.linkCost.MaxProbeShare)
	}
}

// measure runs one measurement of t within the concurrency limits, and
// says when it started. A run that waited for a slot until ctx ended
// returns ctx's error.
func (m *Monitor) measure(ctx context.Context, t *config.Target, cfg measure.Config) (*measure.Result, time.Time, error) {
	cfg.Bind = m.opts.Bind
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, time.Now(), ctx.Err()
	}
	defer func() { <-m.slots }()
	lock := m.lock(m.exclusive(t, cfg.Timeout))
	lock.Lock()
	defer lock.Unlock()
	start := time.Now()
	res, err := measure.Run(ctx, cfg)
	return res, start, err
}

// exclusive is the key of what t's measurements must not share: its
// outgoing interface, found as the local address the kernel would send
// from (no packet is sent), or the target itself.
func (m *Monitor) exclusive(t *config.Target, timeout time.Duration) string {
	if m.cfg.Exclusive == config.ExclusiveTarget {
		return "target " + t.Name
	}
	addr := t.Address
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, strconv.Itoa(train.DefaultPort))
	}
	// A name is resolved here too: bounded like the measurement itself.
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("udp", addr)
	if err != nil {
		return "interface ?" // unknown: share one lock, which is safe
	}
	defer c.Close()
	return "interface " + c.LocalAddr().(*net.UDPAddr).IP.String()
}

func (m *Monitor) lock(key string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		m.locks[key] = l
	}
	return l
}

// maxBacklog bounds the batches kept in memory while a sink fails.
const maxBacklog = 10000

// sinkState is one sink and what it has not taken yet.
type sinkState struct {
	name    string
	sink    Sink
	backlog [][]record.Record
	failing bool
	// alarms the sink (an AlarmWriter) has not taken yet, oldest first.
	alarms        []record.Alarm
	alarmsFailing bool
	// unwritten is len(backlog)+len(alarms), for Health (other goroutines).
	unwritten atomic.Int64
}

// pushBounded appends v to q, first dropping the oldest (and telling drop)
// when q holds maxBacklog already.
func pushBounded[T any](q []T, v T, drop func(oldest T)) []T {
	if len(q) == maxBacklog {
		drop(q[0])
		q = q[1:]
	}
	return append(q, v)
}

// sink hands every batch, in order, to every sink until results is
// closed, and every alarm once its route is attached. Batches a sink
// refuses (disk full, say) are kept, up to maxBacklog, and written before
// the next one.
func (m *Monitor) sink(results <-chan []record.Record) {
	sinks := m.sinks
	var routed <-chan record.Alarm
	if m.routes != nil {
		routed = m.routes.out
	}
	tick := time.NewTicker(time.Second) // the grouper's held alarms
	defer tick.Stop()
	for results != nil || routed != nil {
		var recs []record.Record
		select {
		case now := <-tick.C:
			m.sendAll(m.group.Flush(now), sinks)
			continue
		case r, ok := <-results:
			if !ok {
				results = nil
				if m.routes != nil {
					m.routes.close() // what it holds still comes out
				}
				continue
			}
			recs = r
		case a, ok := <-routed:
			if !ok {
				routed = nil
				continue
			}
			m.safely("alarms", func() { m.deliver(a, sinks) })
			continue
		case a := <-m.raised:
			m.safely("alarms", func() { m.deliver(a, sinks) })
			continue
		}
		m.health.observe(recs)
		for _, s := range sinks {
			s.backlog = pushBounded(s.backlog, recs, func(old []record.Record) {
				m.opts.Logger.Error("sink backlog full: dropping the oldest result", "sink", s.name, "target", old[0].Target, "time", old[0].Time)
			})
			m.safely("sink "+s.name, func() { m.flush(s); m.flushAlarms(s) })
			s.unwritten.Store(int64(len(s.backlog) + len(s.alarms)))
		}
		for _, f := range m.opts.Records {
			m.safely("records", func() { f(recs) })
		}
		if m.engine != nil {
			m.safely("alarms", func() { m.detect(recs, sinks) })
		}
	}
	m.sendAll(m.group.Close(time.Now()), sinks)
	for _, s := range sinks {
		if len(s.backlog) > 0 {
			m.opts.Logger.Error("results not written at exit", "sink", s.name, "batches", len(s.backlog))
		}
	}
}

// safely runs one step of result handling; a panic there (a bug) is
// recovered, logged with its stack and counted, and the monitor goes on:
// one bad record must not end a process that watches every path.
func (m *Monitor) safely(where string, f func()) {
	defer func() {
		if p := recover(); p != nil {
			m.opts.Logger.Error("panic recovered", "where", where, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if m.opts.Panicked != nil {
				m.opts.Panicked(where)
			}
		}
	}()
	f()
}

// detect runs the alarm detectors over a batch and hands what they raise
// or clear to the sinks that take alarms, the metrics and the hooks.
func (m *Monitor) detect(recs []record.Record, sinks []*sinkState) {
	m.mu.Lock()
	forget := m.forget
	m.forget = nil
	m.mu.Unlock()
	for _, name := range forget {
		for _, a := range m.engine.Forget(name, time.Now()) {
			m.emit(a, sinks)
		}
		delete(m.watched, name)
	}
	for i := range recs {
		r := &recs[i]
		if name := r.Key(); !m.watched[name] && m.routes != nil {
			m.watched[name] = true
			m.routes.watchTarget(name, hostOf(r.Address))
		}
		as, err := m.engine.Observe(r)
		if err != nil {
			m.opts.Logger.Error("alarms", "err", err)
			continue
		}
		for _, a := range as {
			m.emit(a, sinks)
		}
	}
}

// Raise hands an alarm that no detector raised (the mesh agent's: a member
// failed, and came back) to the sinks and the alarm observers, as the
// detectors' alarms go. It waits while 64 are queued, until ctx
// ends.
func (m *Monitor) Raise(ctx context.Context, a record.Alarm) {
	select {
	case m.raised <- a:
	case <-ctx.Done():
	}
}

// emit hands an alarm on: through the traceroute stage when there is one,
// else straight to deliver.
func (m *Monitor) emit(a record.Alarm, sinks []*sinkState) {
	if m.routes != nil {
		m.routes.send(a)
		return
	}
	m.deliver(a, sinks)
}

// deliver hands an alarm to the grouper (alarms.Grouper: down alarms are
// held a few seconds, and many at once become one), and what it lets out
// to send.
func (m *Monitor) deliver(a record.Alarm, sinks []*sinkState) {
	for _, x := range m.group.Take(a, time.Now()) {
		m.send(x, sinks)
	}
}

// sendAll sends what the grouper let out, each on its own (safely).
func (m *Monitor) sendAll(as []record.Alarm, sinks []*sinkState) {
	for _, a := range as {
		m.safely("alarms", func() { m.send(a, sinks) })
	}
}

// send logs an alarm and hands it to the sinks that take alarms, then
// to Options.Alarms.
func (m *Monitor) send(a record.Alarm, sinks []*sinkState) {
	args := []any{"kind", a.Kind, "target", a.Target, "direction", a.Direction, "severity", a.Severity,
		"before", a.Before, "after", a.After, "unit", a.Unit, "summary", a.Summary}
	if a.Active() {
		m.opts.Logger.Warn("alarm raised", args...)
	} else {
		m.opts.Logger.Info("alarm cleared", append(args, "how", a.Cleared)...)
	}
	for _, s := range sinks {
		if _, ok := s.sink.(AlarmWriter); ok {
			s.alarms = pushBounded(s.alarms, a, func(old record.Alarm) {
				m.opts.Logger.Error("sink alarm backlog full: dropping the oldest alarm", "sink", s.name, "kind", old.Kind, "target", old.Target)
			})
			m.flushAlarms(s)
		}
	}
	for _, f := range m.opts.Alarms {
		f(a)
	}
}

// flush writes a sink's backlog in order, stopping at the first failure.
func (m *Monitor) flush(s *sinkState) {
	for len(s.backlog) > 0 {
		// Not cancellable: what was measured is written even while the
		// monitor shuts down.
		if err := s.sink.Write(context.Background(), s.backlog[0]); err != nil {
			if !s.failing {
				m.opts.Logger.Error("sink write failed; results are kept in memory and retried", "sink", s.name, "err", err)
			}
			s.failing = true
			return
		}
		if s.failing {
			m.opts.Logger.Info("sink writes work again", "sink", s.name, "written", len(s.backlog))
			s.failing = false
		}
		r := s.backlog[0][0]
		args := []any{"target", r.Target, "time", r.Time.Format(time.RFC3339Nano), "sink", s.name}
		if r.Error != "" {
			// The run's own error, stored with it: not the sink's.
			args = append(args, "run_error", r.Error)
		}
		m.opts.Logger.Info("stored", args...)
		s.backlog = s.backlog[1:]
	}
}

// flushAlarms writes a sink's waiting alarms in order, stopping at the first
// failure: they are tried again with the next alarm or result, as results
// are.
func (m *Monitor) flushAlarms(s *sinkState) {
	w, ok := s.sink.(AlarmWriter)
	if !ok {
		return
	}
	for len(s.alarms) > 0 {
		a := &s.alarms[0]
		if err := w.WriteAlarm(context.Background(), a); err != nil {
			if !s.alarmsFailing {
				m.opts.Logger.Error("writing an alarm failed; alarms are kept in memory and retried", "sink", s.name, "kind", a.Kind, "target", a.Target, "err", err)
			}
			s.alarmsFailing = true
			return
		}
		if s.alarmsFailing {
			m.opts.Logger.Info("alarm writes work again", "sink", s.name, "written", len(s.alarms))
			s.alarmsFailing = false
		}
		s.alarms = s.alarms[1:]
	}
}

// hostOf is the host part of a "host:port" address (or the address
// itself), for the traceroute.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func sleepUntil(ctx context.Context, stop <-chan struct{}, t time.Time) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	case <-tm.C:
		return true
	}
}
