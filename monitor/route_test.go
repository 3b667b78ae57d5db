package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
)

// fakeTracer returns a numbered hop list each time.
type fakeTracer struct {
	mu sync.Mutex
	n  int
}

func (f *fakeTracer) Trace(_ context.Context, host string) *record.Trace {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return &record.Trace{Target: host, Hops: make([]record.Hop, f.n)}
}

func (f *fakeTracer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func routeAlarm(kind record.Kind, dir string) record.Alarm {
	return record.Alarm{Kind: kind, Target: "lab", Address: "198.18.2.2:8176", Direction: dir, Start: t0()}
}

// drain collects what routes hands on until it closes out.
func drain(r *routes) []record.Alarm {
	var out []record.Alarm
	for a := range r.out {
		out = append(out, a)
	}
	return out
}

// Path and capacity alarms carry the hop list before and after, the first
// one from watchTarget; both directions of one change share a traceroute;
// other kinds pass untouched, in order.
func TestRoutes(t *testing.T) {
	tr := &fakeTracer{}
	r := newRoutes(tr, slog.New(slog.DiscardHandler))
	r.watchTarget("lab", "198.18.2.2")
	// The first traceroute is taken on a worker of its own; the alarms
	// below are to find it, so wait until it was handed over.
	for tr.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	r.send(routeAlarm(record.Path, "forward"))
	r.send(routeAlarm(record.Path, "reverse")) // right after: the same traceroute serves
	r.send(routeAlarm(record.Load, "forward"))
	go r.close()
	got := drain(r)
	if len(got) != 3 || tr.count() != 2 || got[2].Route != nil || got[2].Kind != record.Load {
		t.Fatalf("got %+v, %d traceroutes", got, tr.count())
	}
	for _, a := range got[:2] {
		if a.Route == nil || len(a.Route.Before.Hops) != 1 || len(a.Route.After.Hops) != 2 {
			t.Errorf("%s: route %+v", a.Direction, a.Route)
		}
	}
}

// slowTracer takes a while for each traceroute, unless cancelled.
type slowTracer struct{}

func (slowTracer) Trace(ctx context.Context, host string) *record.Trace {
	select {
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
	}
	return &record.Trace{Target: host, Error: fmt.Sprint(ctx.Err())}
}

// First traceroutes of many targets never stand in front of an alarm:
// they run on a worker of their own, and close does not wait for them
// (nor for an alarm's: it is cut short, and the alarm still comes out).
func TestRoutesBaselinesApart(t *testing.T) {
	r := newRoutes(slowTracer{}, slog.New(slog.DiscardHandler))
	for i := range 5 {
		r.watchTarget(fmt.Sprintf("t%d", i), "198.18.2.2")
	}
	start := time.Now()
	r.send(routeAlarm(record.Latency, "both")) // no traceroute of its own
	select {
	case a := <-r.out:
		if took := time.Since(start); took > time.Second || a.Kind != record.Latency {
			t.Errorf("%s alarm came out after %v, behind first traceroutes", a.Kind, took)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("alarm held behind first traceroutes")
	}
	r.send(routeAlarm(record.Capacity, "forward"))
	time.Sleep(50 * time.Millisecond) // its traceroute has begun
	start = time.Now()
	go r.close()
	got := drain(r)
	if took := time.Since(start); took > time.Second || len(got) != 1 || got[0].Route == nil || got[0].Route.After.Error == "" {
		t.Errorf("close took %v, then %+v", took, got)
	}
}

func t0() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) }

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{"198.18.2.2:8176": "198.18.2.2", "[fd00::2]:8176": "fd00::2", "fd00::2": "fd00::2", "lab.example": "lab.example"} {
		if got := hostOf(in); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", in, got, want)
		}
	}
}
