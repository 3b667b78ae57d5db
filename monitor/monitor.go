// Package monitor measures many paths around the clock: each target on its
// own cadence with random jitter, a bounded number of measurements at once,
// none two at once through the same outgoing interface (or, if configured,
// to the same target), and every result, failures included, handed to the
// store, the other sinks, the metrics and the alarm detectors (package
// alarms). Their alarms get their route traced (package traceroute) and then
// go, the same alarm to each, to the sinks, the metrics and the hooks
// (package notify). Serve opens all of that from a configuration.
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
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abing-net/abing/alarms"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/linkcost"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/notify"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/store"
	"github.com/abing-net/abing/traceroute"
	"github.com/abing-net/abing/train"
)

// Sink takes results: the embedded store, InfluxDB.
type Sink interface {
	Write(ctx context.Context, recs []record.Record) error
}

// Options are what a monitor runs with besides its configuration.
type Options struct {
	Store *store.Store // nil: results are not stored locally (and not pruned)
	// Sinks take every result after the store.
	Sinks  []Sink
	Logger *slog.Logger
	// Bind opens measurement sockets; nil means dispersion.Listen. The
	// testbed opens them inside a network namespace.
	Bind func(network, addr string, opts dispersion.Options) (*dispersion.Conn, error)
	// Metrics, if set, are updated with every result.
	Metrics *Metrics
	// Results, if set, receives every batch of records once it has been
	// handed to the store.
	Results func([]record.Record)
	// Tracer, if set, traces the route to a target when a path or capacity
	// alarm is raised or cleared (and once when the target is first
	// measured, for the route before); the alarm carries both.
	Tracer Tracer
	// Notify, if set, is told of every alarm raised or cleared.
	Notify *notify.Dispatcher
	// Alarms, if set, receives every alarm raised or cleared, once stored.
	Alarms func(record.Alarm)
}

// AlarmWriter is a sink that also takes alarms.
type AlarmWriter interface {
	WriteAlarm(ctx context.Context, a *record.Alarm) error
}

// Monitor runs a configuration.
type Monitor struct {
	cfg    *Config
	opts   Options
	slots  chan struct{}
	reload chan *Config
	mu     sync.Mutex
	locks  map[string]*sync.Mutex // by exclusivity key
	// Alarm detection; the engine belongs to the sink goroutine.
	engine  *alarms.Engine
	params  map[string]alarms.Params // by target name; under mu
	others  alarms.Params            // of targets not configured (any more); under mu
	forget  []string                 // targets whose alarm state to drop; under mu
	watched map[string]bool          // targets whose first traceroute was asked for
	routes  *routes                  // nil without a Tracer
	// sinks: the store, then Options.Sinks; their backlogs belong to the
	// sink goroutine.
	sinks  []*sinkState
	health health
	// raised: alarms from outside the detectors (Raise), for the sink
	// goroutine.
	raised chan record.Alarm
}

// New returns a monitor of a completed configuration (see Config.Complete).
func New(cfg *Config, o Options) *Monitor {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, opts: o, slots: make(chan struct{}, cfg.MaxInFlight), reload: make(chan *Config),
		raised: make(chan record.Alarm, 64), locks: map[string]*sync.Mutex{}, watched: map[string]bool{}}
	m.health.started = time.Now()
	if o.Store != nil {
		m.sinks = append(m.sinks, &sinkState{name: "store", sink: o.Store})
	}
	for _, s := range o.Sinks {
		m.sinks = append(m.sinks, &sinkState{name: fmt.Sprintf("%T", s), sink: s})
	}
	if !cfg.Alarms.Disabled {
		m.params, m.others = m.alarmParams(cfg), alarms.Defaults().Merge(cfg.Alarms.Params)
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

func (m *Monitor) alarmParams(cfg *Config) map[string]alarms.Params {
	out := map[string]alarms.Params{}
	for i := range cfg.Targets {
		out[cfg.Targets[i].Name] = cfg.AlarmParams(&cfg.Targets[i])
	}
	return out
}

// Run measures until ctx ends, then stores what was measured and returns.
func (m *Monitor) Run(ctx context.Context) error {
	results := make(chan []record.Record, 1024)
	var targets sync.WaitGroup
	running := map[string]*targetLoop{}
	startLoop := func(t Target, start time.Time) {
		r := &targetLoop{t: t, probe: m.cfg.Probe, jitter: m.cfg.Jitter, pool: pool{size: m.cfg.Pool}, stop: make(chan struct{}),
			linkCost: m.cfg.LinkCost, cost: linkcost.NewPublisher(m.cfg.LinkCost.Threshold)}
		running[t.Name] = r
		targets.Add(1)
		go func() {
			defer targets.Done()
			m.loop(ctx, r, start, results)
		}()
	}
	start := time.Now()
	for _, t := range m.cfg.Targets {
		startLoop(t, start)
	}
	if m.opts.Tracer != nil && m.engine != nil {
		m.routes = newRoutes(m.opts.Tracer, m.opts.Logger)
	}
	done := make(chan struct{})
	go func() { defer close(done); m.sink(results) }()
	go m.prune(ctx)
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
	t      Target
	probe  Probe // the configuration's defaults
	jitter float64
	pool   pool
	stop   chan struct{} // closed: finish the run in progress, then stop
	// The path's link cost and when to publish it; warned: the probes'
	// share of the path was logged once.
	linkCost LinkCost
	cost     *linkcost.Publisher
	warned   bool
}

// Reload replaces the targets with those of cfg (a completed
// configuration): loops of unchanged targets go on with their cadence,
// removed or changed ones stop after their run in progress, new ones start.
// Settings that need a restart (max_in_flight, exclusive, store) are kept
// and logged. Reload returns once Run has taken the change, or when ctx
// ends.
func (m *Monitor) Reload(ctx context.Context, cfg *Config) {
	select {
	case m.reload <- cfg:
	case <-ctx.Done():
	}
}

func (m *Monitor) apply(cfg *Config, running map[string]*targetLoop, startLoop func(Target, time.Time)) {
	na, oa := cfg.Alarms, m.cfg.Alarms
	if cfg.MaxInFlight != m.cfg.MaxInFlight || cfg.Exclusive != m.cfg.Exclusive || cfg.Store != m.cfg.Store ||
		(cfg.InfluxDB == nil) != (m.cfg.InfluxDB == nil) || (cfg.InfluxDB != nil && *cfg.InfluxDB != *m.cfg.InfluxDB) ||
		na.Disabled != oa.Disabled || !slices.Equal(na.Command, oa.Command) || na.CommandTimeout != oa.CommandTimeout ||
		na.Webhook != oa.Webhook || na.Traceroute != oa.Traceroute || cfg.Node != m.cfg.Node {
		m.opts.Logger.Warn("reload: max_in_flight, exclusive, node, store, influxdb and the alarm hooks take effect at restart; kept",
			"max_in_flight", m.cfg.MaxInFlight, "exclusive", m.cfg.Exclusive, "node", m.cfg.Node)
	}
	wanted := map[string]Target{}
	for _, t := range cfg.Targets {
		wanted[t.Name] = t
	}
	var stopped, started, kept int
	for name, r := range running {
		if t, ok := wanted[name]; ok && sameTarget(t, r.t, cfg.Probe, r.probe) && cfg.Jitter == r.jitter && cfg.Pool == r.pool.size && cfg.LinkCost == r.linkCost {
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
		m.params, m.others = params, alarms.Defaults().Merge(cfg.Alarms.Params)
		m.mu.Unlock()
	}
	m.mu.Lock() // Health reads them
	m.cfg.Targets, m.cfg.Probe, m.cfg.Interval, m.cfg.Jitter, m.cfg.Pool, m.cfg.LinkCost = cfg.Targets, cfg.Probe, cfg.Interval, cfg.Jitter, cfg.Pool, cfg.LinkCost
	m.mu.Unlock()
	now := time.Now()
	for _, t := range cfg.Targets {
		if _, ok := running[t.Name]; !ok {
			startLoop(t, now)
			started++
		}
	}
	if m.opts.Metrics != nil {
		m.opts.Metrics.targets(cfg)
	}
	m.opts.Logger.Info("configuration reloaded", "targets", len(cfg.Targets), "kept", kept, "started", started, "stopped", stopped)
}

// sameTarget says whether a target's measurements are unchanged.
func sameTarget(a, b Target, probeA, probeB Probe) bool {
	ma, _ := a.measureConfig(probeA)
	mb, _ := b.measureConfig(probeB)
	if a.Address != b.Address || a.Interval != b.Interval || len(a.Labels) != len(b.Labels) ||
		ma.Trains != mb.Trains || ma.TrainLen != mb.TrainLen || ma.Size != mb.Size || ma.Timeout != mb.Timeout ||
		ma.Method != mb.Method || ma.Timestamps != mb.Timestamps || ma.Interface != mb.Interface ||
		(ma.Key == nil) != (mb.Key == nil) || (ma.Key != nil && (ma.Key.Name != mb.Key.Name || !bytes.Equal(ma.Key.Secret, mb.Key.Secret))) {
		return false
	}
	for k, v := range a.Labels {
		if b.Labels[k] != v {
			return false
		}
	}
	return true
}

// loop measures one target on its cadence until ctx ends or stop closes.
func (m *Monitor) loop(ctx context.Context, l *targetLoop, start time.Time, results chan<- []record.Record) {
	t := &l.t
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(t.line)+uint64(len(t.Name))))
	interval := time.Duration(t.Interval)
	// Spread the first runs over one interval, so that targets added
	// together do not probe together.
	next := start.Add(time.Duration(rng.Float64() * float64(interval)))
	for {
		if !sleepUntil(ctx, l.stop, next) {
			return
		}
		next = next.Add(time.Duration(float64(interval) * (1 + l.jitter*(2*rng.Float64()-1))))
		if now := time.Now(); next.Before(now) {
			next = now.Add(interval / 2) // fell behind (suspend, long run): do not catch up in a burst
		}
		recs, res := m.measure(ctx, t, l.probe)
		if ctx.Err() != nil {
			return // a cancelled run is not a result
		}
		l.pool.add(res, recs)
		m.linkCost(l, res, recs)
		results <- recs
	}
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

// measure runs one measurement of t within the concurrency limits and
// returns its records and result, or the records of its failure and nil.
func (m *Monitor) measure(ctx context.Context, t *Target, probe Probe) ([]record.Record, *measure.Result) {
	cfg, _ := t.measureConfig(probe) // checked by Complete
	cfg.Bind = m.opts.Bind
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, nil
	}
	defer func() { <-m.slots }()
	lock := m.lock(m.exclusive(t, cfg.Timeout))
	lock.Lock()
	start := time.Now()
	res, err := measure.Run(ctx, cfg)
	lock.Unlock()
	var recs []record.Record
	if err != nil {
		recs = measure.FailedRecords(cfg, start, err)
		m.opts.Logger.Debug("measurement failed", "target", t.Name, "err", err)
	} else {
		recs = res.Records()
	}
	for i := range recs {
		recs[i].Target, recs[i].Labels, recs[i].Node = t.Name, t.Labels, m.cfg.Node
		if t.path != "" {
			recs[i].Target, recs[i].Path = t.host, t.path
		}
	}
	return recs, res
}

// exclusive is the key of what t's measurements must not share: its
// outgoing interface, found as the local address the kernel would send
// from (no packet is sent), or the target itself.
func (m *Monitor) exclusive(t *Target, timeout time.Duration) string {
	if m.cfg.Exclusive == ExclusiveTarget {
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
	for results != nil || routed != nil {
		var recs []record.Record
		select {
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
		if m.opts.Metrics != nil {
			m.safely("metrics", func() { m.opts.Metrics.observe(recs) })
		}
		if m.engine != nil {
			m.safely("alarms", func() { m.detect(recs, sinks) })
		}
		if m.opts.Results != nil {
			m.safely("results", func() { m.opts.Results(recs) })
		}
	}
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
			if m.opts.Metrics != nil {
				m.opts.Metrics.panics.WithLabelValues(where).Inc()
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
			m.routes.watchTarget(name, traceroute.Host(r.Address))
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
// failed, and came back) to the store, the sinks, the metrics and the hooks,
// as the detectors' alarms go. It waits while 64 are queued, until ctx
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

// deliver logs an alarm and hands it to the sinks that take alarms, the
// metrics, Options.Alarms and the hooks.
func (m *Monitor) deliver(a record.Alarm, sinks []*sinkState) {
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
	if m.opts.Metrics != nil {
		m.opts.Metrics.alarm(&a)
	}
	if m.opts.Alarms != nil {
		m.opts.Alarms(a)
	}
	if m.opts.Notify != nil {
		m.opts.Notify.Send(a)
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
		m.opts.Logger.Info("stored", "target", r.Target, "time", r.Time.Format(time.RFC3339Nano), "sink", s.name, "error", r.Error)
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

// prune applies the store's retention at start and then hourly.
func (m *Monitor) prune(ctx context.Context) {
	if m.opts.Store == nil {
		return
	}
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		n, err := m.opts.Store.Prune(ctx, time.Now().Add(-time.Duration(m.cfg.Store.Retention)))
		if err != nil && ctx.Err() == nil {
			m.opts.Logger.Error("pruning the store", "err", err)
		} else if n > 0 {
			m.opts.Logger.Info("pruned old results", "rows", n, "retention", time.Duration(m.cfg.Store.Retention).String())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
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
