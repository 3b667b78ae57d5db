package notify

import (
	"context"
	"encoding/json"
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

	"github.com/abing-net/abing/record"
)

var t0 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

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
