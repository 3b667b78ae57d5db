package alarms

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/abing-net/abing/record"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func sample() record.Alarm {
	end := t0.Add(20 * time.Minute)
	return record.Alarm{Kind: record.Capacity, Target: "lab", Address: "198.18.2.2:8176", Labels: map[string]string{"site": "cern"},
		Direction: "forward", Severity: record.Critical, Start: t0, End: &end, Cleared: "returned", Before: 100, After: 40,
		Unit: "Mbit/s", Summary: "DBC forward changed from 100 to 40 Mbit/s (-60 %)",
		Evidence: []record.Point{{Time: t0, Value: 40}}}
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "hook.sh")
	os.WriteFile(script, []byte("#!/bin/sh\ncat > \"$1/stdin\"\nenv | grep ^ABING_ALARM_ | sort > \"$1/env\"\n"), 0o755)
	a := sample()
	if err := (&Command{Argv: []string{script, dir}}).Fire(context.Background(), &a); err != nil {
		t.Fatal(err)
	}
	stdin, _ := os.ReadFile(filepath.Join(dir, "stdin"))
	var got record.Alarm
	if err := json.Unmarshal(stdin, &got); err != nil || got.Kind != record.Capacity || got.After != 40 || got.End == nil || len(got.Evidence) != 1 {
		t.Errorf("stdin %s: %v", stdin, err)
	}
	env, _ := os.ReadFile(filepath.Join(dir, "env"))
	for _, want := range []string{"ABING_ALARM_KIND=capacity", "ABING_ALARM_STATUS=resolved", "ABING_ALARM_TARGET=lab",
		"ABING_ALARM_BEFORE=100", "ABING_ALARM_AFTER=40", "ABING_ALARM_END=2026-11-23T00:20:00Z", "ABING_ALARM_CLEARED=returned"} {
		if !strings.Contains(string(env), want+"\n") {
			t.Errorf("environment lacks %s:\n%s", want, env)
		}
	}
	// A failing program's output is in the error; a slow one is killed.
	err := (&Command{Argv: []string{"sh", "-c", "echo no route; exit 3"}}).Fire(context.Background(), &a)
	if err == nil || !strings.Contains(err.Error(), "no route") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("failing command: %v", err)
	}
	start := time.Now()
	err = (&Command{Argv: []string{"sleep", "10"}, Timeout: 200 * time.Millisecond}).Fire(context.Background(), &a)
	if err == nil || !strings.Contains(err.Error(), "killed after 200ms") || time.Since(start) > 3*time.Second {
		t.Errorf("slow command: %v after %v", err, time.Since(start))
	}
}

// A webhook receiver that fails twice gets the alarm on the third try, in
// Alertmanager's format; a 400 is not retried.
func TestWebhook(t *testing.T) {
	var calls atomic.Int32
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	a := sample()
	a.End, a.Cleared = nil, ""
	if err := (&Webhook{URL: srv.URL, Backoff: 10 * time.Millisecond}).Fire(context.Background(), &a); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d posts", calls.Load())
	}
	var m struct {
		Version, Status string
		Alerts          []struct {
			Status              string
			Labels, Annotations map[string]string
			StartsAt, EndsAt    time.Time
			Fingerprint         string
		}
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	al := m.Alerts[0]
	if m.Version != "4" || m.Status != "firing" || len(m.Alerts) != 1 || al.Status != "firing" ||
		al.Labels["alertname"] != "AbingCapacityChange" || al.Labels["target"] != "lab" || al.Labels["site"] != "cern" ||
		al.Labels["severity"] != "critical" || al.Annotations["after"] != "40" || !al.StartsAt.Equal(t0) || !al.EndsAt.IsZero() ||
		len(al.Fingerprint) != 16 {
		t.Errorf("body %s", body)
	}
	// Raise and clear share the fingerprint.
	b := sample()
	if f := AlertmanagerMessage(&b).Alerts[0].Fingerprint; f != al.Fingerprint {
		t.Errorf("fingerprints %s and %s", f, al.Fingerprint)
	}

	calls.Store(0)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "bad payload", http.StatusBadRequest)
	}))
	defer bad.Close()
	err := (&Webhook{URL: bad.URL, Backoff: time.Millisecond}).Fire(context.Background(), &a)
	if err == nil || !strings.Contains(err.Error(), "400") || calls.Load() != 1 {
		t.Errorf("400: %v after %d posts", err, calls.Load())
	}
}

// blockingHook holds every alarm until released.
type blockingHook struct {
	release chan struct{}
	mu      sync.Mutex
	got     []record.Alarm
}

func (h *blockingHook) Name() string { return "blocking" }

func (h *blockingHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}
func (h *blockingHook) Fire(ctx context.Context, a *record.Alarm) error {
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	h.mu.Lock()
	h.got = append(h.got, *a)
	h.mu.Unlock()
	return nil
}

// A hook that hangs blocks neither Send nor the other hooks; Close gives
// up on it after the grace time.
func TestDispatcher(t *testing.T) {
	stuck := &blockingHook{release: make(chan struct{})}
	open := make(chan struct{})
	close(open)
	quick := &blockingHook{release: open}
	d := NewDispatcher(DispatcherOptions{Hooks: []Hook{stuck, quick}, Queue: 4})
	start := time.Now()
	for range 10 {
		d.Send(sample()) // more than the queue: the rest are dropped, not waited for
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Errorf("Send blocked for %v", time.Since(start))
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		quick.mu.Lock()
		n := len(quick.got)
		quick.mu.Unlock()
		if n >= 4 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.Close(100 * time.Millisecond); err == nil {
		t.Error("Close with a stuck hook reported everything delivered")
	}
	if len(quick.got) < 4 || len(stuck.got) != 0 {
		t.Errorf("quick hook got %d, stuck hook %d", len(quick.got), len(stuck.got))
	}
	d.Send(sample()) // after Close: ignored, no panic
}

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

// Path and capacity alarms carry the hop list before and after; the first
// one comes from Watch.
func TestDispatcherRoute(t *testing.T) {
	got := &blockingHook{release: make(chan struct{})}
	close(got.release)
	var traced []record.Alarm
	tr := &fakeTracer{}
	d := NewDispatcher(DispatcherOptions{Hooks: []Hook{got}, Tracer: tr, Traced: func(a record.Alarm) { traced = append(traced, a) }})
	d.Watch("lab", "198.18.2.2")
	// The first traceroute is taken on a worker of its own; the alarms
	// below are to find it, so wait until it was handed over.
	for tr.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	a := sample()
	a.Kind = record.Path
	d.Send(a) // forward
	a.Direction = "reverse"
	d.Send(a) // reverse, right after: the same traceroute serves
	a.Kind = record.Load
	d.Send(a)
	if err := d.Close(time.Second); err != nil {
		t.Fatal(err)
	}
	if len(got.got) != 3 || len(traced) != 2 || tr.count() != 2 || got.got[2].Route != nil {
		t.Fatalf("hooks got %+v, traced %d, %d traceroutes", got.got, len(traced), tr.count())
	}
	for _, a := range got.got[:2] {
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
	return &record.Trace{Target: host}
}

// First traceroutes of many targets never stand in front of an alarm:
// they run on a worker of their own, and Close does not wait for them.
func TestBaselinesApart(t *testing.T) {
	got := &blockingHook{release: make(chan struct{})}
	close(got.release)
	d := NewDispatcher(DispatcherOptions{Hooks: []Hook{got}, Tracer: slowTracer{}})
	for i := range 5 {
		d.Watch(fmt.Sprintf("t%d", i), "198.18.2.2")
	}
	a := sample()
	a.Kind = record.Latency // no traceroute of its own
	start := time.Now()
	d.Send(a)
	for got.count() == 0 && time.Since(start) < 2*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(start); got.count() != 1 || took > time.Second {
		t.Errorf("alarm reached its hook after %v (%d alarms), behind first traceroutes", took, got.count())
	}
	start = time.Now()
	if err := d.Close(5 * time.Second); err != nil || time.Since(start) > time.Second {
		t.Errorf("Close took %v: %v", time.Since(start), err)
	}
}

func TestHost(t *testing.T) {
	for in, want := range map[string]string{"198.18.2.2:8176": "198.18.2.2", "[fd00::2]:8176": "fd00::2", "fd00::2": "fd00::2", "lab.example": "lab.example"} {
		if got := Host(in); got != want {
			t.Errorf("Host(%q) = %q, want %q", in, got, want)
		}
	}
}

// A webhook's URL often is its secret (Slack and others put the token in
// the path): no log line of a failing webhook shows it.
func TestWebhookSecretNotLogged(t *testing.T) {
	// A receiver that fails, and a port nothing listens on.
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", 500) }))
	defer fail.Close()
	var log strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return log.Write(p)
	}), nil))
	hooks := []Hook{
		&Webhook{URL: fail.URL + "/services/T0/B0/SECRETPATH?token=SECRETQUERY", Attempts: 2, Backoff: time.Millisecond},
		&Webhook{URL: "http://user:SECRETPW@127.0.0.1:1/hook/SECRETPATH", Attempts: 2, Backoff: time.Millisecond},
	}
	d := NewDispatcher(DispatcherOptions{Hooks: hooks, Logger: logger})
	d.Send(sample())
	if err := d.Close(10 * time.Second); err != nil {
		t.Log(err)
	}
	mu.Lock()
	defer mu.Unlock()
	out := log.String()
	if !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("no failure logged:\n%s", out)
	}
	for _, secret := range []string{"SECRETPATH", "SECRETQUERY", "SECRETPW"} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows %s:\n%s", secret, out)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
