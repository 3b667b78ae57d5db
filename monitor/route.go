package monitor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/abing-net/abing/record"
)

// Tracer runs a traceroute to a host (package traceroute). Trace may be
// called from two goroutines at once (a target's first traceroute and an
// alarm's).
type Tracer interface {
	Trace(ctx context.Context, host string) *record.Trace
}

// routes attaches the hop lists before and after to path and capacity
// alarms, before they go anywhere: every sink and hook gets the same alarm.
// Alarms pass through it in order, on a goroutine of its own, so a
// traceroute holds back alarms but never measurements or results. Each
// target's first traceroute (the "before" of its first alarm) is taken on
// another goroutine, so that a hundred targets starting together do not
// hold the first alarm back behind a hundred traceroutes.
type routes struct {
	tracer Tracer
	log    *slog.Logger
	in     chan routeJob
	out    chan record.Alarm // enriched alarms, in order; closed after close
	watch  chan routeJob
	traces map[string]*traces // per target; owned by the enrich goroutine
	ctx    context.Context
	cancel context.CancelFunc
	baseWG sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

// routeJob is an alarm, or a target's first traceroute (asked for: host;
// taken: trace).
type routeJob struct {
	alarm        *record.Alarm
	target, host string
	trace        *record.Trace
}

// routeQueue bounds the alarms and first traceroutes waiting.
const routeQueue = 1024

func newRoutes(tr Tracer, log *slog.Logger) *routes {
	ctx, cancel := context.WithCancel(context.Background())
	r := &routes{tracer: tr, log: log, in: make(chan routeJob, routeQueue), out: make(chan record.Alarm, routeQueue),
		watch: make(chan routeJob, routeQueue), traces: map[string]*traces{}, ctx: ctx, cancel: cancel}
	r.baseWG.Add(1)
	go r.baselines()
	go r.enrich()
	return r
}

// send queues an alarm and returns at once.
func (r *routes) send(a record.Alarm) { r.put(routeJob{alarm: &a}) }

// watchTarget asks for a first traceroute of a target.
func (r *routes) watchTarget(target, host string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	select {
	case r.watch <- routeJob{target: target, host: host}:
	default:
		r.log.Warn("traceroute: too many first traceroutes waiting; this target's is skipped", "target", target)
	}
}

func (r *routes) put(j routeJob) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	select {
	case r.in <- j:
	default:
		if j.alarm != nil {
			r.log.Error("traceroute: queue full, alarm dropped", "kind", j.alarm.Kind, "target", j.alarm.Target)
		}
	}
}

func (r *routes) baselines() {
	defer r.baseWG.Done()
	for j := range r.watch {
		if r.ctx.Err() != nil {
			continue // closing: drain
		}
		j.trace = r.tracer.Trace(r.ctx, j.host)
		r.put(j)
	}
}

func (r *routes) enrich() {
	defer close(r.out)
	for j := range r.in {
		if j.alarm == nil { // a first traceroute, taken by baselines
			if _, ok := r.traces[j.target]; !ok {
				r.traces[j.target] = &traces{after: j.trace} // old enough to be traced anew
			}
			continue
		}
		a := *j.alarm
		if a.Kind == record.Path || a.Kind == record.Capacity {
			a.Route = r.route(&a)
		}
		r.out <- a
	}
}

// close stops taking alarms; those queued still come out, their
// traceroutes cut short, and then out is closed.
func (r *routes) close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.watch)
	}
	r.mu.Unlock()
	r.cancel()
	r.baseWG.Wait()
	close(r.in)
}

// shareTrace is how long a traceroute serves the alarms of a target of the
// same kind and status that come after it: the forward and reverse alarms
// of one route change come together, and a second traceroute right after
// the first would mostly meet ICMP rate limits.
const shareTrace = 30 * time.Second

// route returns the hop lists before and after for alarm a, tracing anew
// unless the last traceroute was for the other direction of the same
// change.
func (r *routes) route(a *record.Alarm) *record.Route {
	st := r.traces[a.Target]
	if st == nil {
		st = &traces{}
		r.traces[a.Target] = st
	}
	why := string(a.Kind) + " " + a.Status()
	if st.after == nil || st.why != why || time.Since(st.taken) > shareTrace {
		st.before, st.after = st.after, r.tracer.Trace(r.ctx, hostOf(a.Address))
		st.taken, st.why = time.Now(), why
	}
	return &record.Route{Before: st.before, After: st.after}
}

// traces are a target's last two traceroutes, and why the last was taken.
type traces struct {
	before, after *record.Trace
	taken         time.Time
	why           string
}
