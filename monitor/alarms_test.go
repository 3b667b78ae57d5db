package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/notify"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/reflector/reflectortest"
	"github.com/abing-net/abing/store"
)

// A reflector on loopback stops and comes back: the monitor raises a down
// alarm and clears it, stores both in one row, and a webhook receiver
// gets the raise and the clear once each.
func TestMonitorDownAlarm(t *testing.T) {
	r := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{})
	addr := r.String()
	var mu sync.Mutex
	var posts []notify.AMMessage
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m notify.AMMessage
		if err := json.NewDecoder(req.Body).Decode(&m); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		posts = append(posts, m)
		mu.Unlock()
	}))
	defer hook.Close()
	yaml := fmt.Sprintf("interval: 1s\njitter: 0.01\nprobe: {timeout: 300ms}\nalarms: {down_after: 2, clear: 2, webhook: %q}\ntargets:\n  - {address: %q, name: lo}\n",
		hook.URL, addr)
	db, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg, err := config.Parse([]byte(yaml), "hooks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hooks := notify.NewDispatcher(notify.DispatcherOptions{Hooks: cfg.Alarms.Hooks()})
	tm := newTestMonitor(t, yaml, Options{Sinks: []Sink{db}, Alarms: []func(record.Alarm){hooks.Send}})
	// The reflector stops once it has answered, and comes back once the
	// monitor has raised down.
	stopped, back := false, false
	tm.runUntil(t, 30*time.Second, func(b map[string][][]record.Record, as []record.Alarm) bool {
		switch {
		case !stopped && answered(b["lo"]) > 0:
			r.Stop()
			stopped = true
		case stopped && !back && len(as) > 0:
			reflectortest.Start(t, "udp4", addr, reflector.Config{})
			back = true
		}
		return back && len(as) >= 2
	})
	_, raised := tm.seen()
	if err := hooks.Close(5 * time.Second); err != nil {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(raised) != 2 || raised[0].Kind != record.Down || !raised[0].Active() || raised[1].Cleared != "up" {
		t.Fatalf("alarms %+v", raised)
	}
	var stored []record.Alarm
	db.Alarms(context.Background(), store.Filter{}, func(a *record.Alarm) error { stored = append(stored, *a); return nil })
	if len(stored) != 1 || stored[0].End == nil || stored[0].Kind != record.Down || stored[0].Target != "lo" {
		t.Errorf("stored %+v", stored)
	}
	if len(posts) != 2 || posts[0].Status != "firing" || posts[1].Status != "resolved" ||
		posts[0].Alerts[0].Labels["alertname"] != "AbingTargetDown" || posts[1].Alerts[0].EndsAt.IsZero() {
		t.Errorf("webhook got %+v", posts)
	}
	t.Logf("down %v, up %v: %s", raised[0].Start.Format("15:04:05.000"), raised[1].End.Format("15:04:05.000"), raised[0].Summary)
}
