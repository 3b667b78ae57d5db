package monitor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/record"
)

// testMonitor is a monitor of a test, made from a configuration's text,
// that keeps every batch and alarm it hands on.
type testMonitor struct {
	*Monitor
	mu      sync.Mutex
	batches [][]record.Record
	alarms  []record.Alarm
	changed chan struct{} // a batch or an alarm came
}

// newTestMonitor parses yaml and makes its monitor with opts, besides which
// the test monitor observes every batch and alarm.
func newTestMonitor(t *testing.T, yaml string, opts Options) *testMonitor {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return newTestMonitorOf(t, cfg, opts)
}

// newTestMonitorOf is newTestMonitor of a parsed configuration.
func newTestMonitorOf(t *testing.T, cfg *config.Config, opts Options) *testMonitor {
	tm := &testMonitor{changed: make(chan struct{}, 1)}
	opts.Records = append(opts.Records, func(recs []record.Record) {
		tm.mu.Lock()
		tm.batches = append(tm.batches, recs)
		tm.mu.Unlock()
		tm.poke()
	})
	opts.Alarms = append(opts.Alarms, func(a record.Alarm) {
		tm.mu.Lock()
		tm.alarms = append(tm.alarms, a)
		tm.mu.Unlock()
		tm.poke()
	})
	tm.Monitor = New(cfg, opts)
	return tm
}

func (tm *testMonitor) poke() {
	select {
	case tm.changed <- struct{}{}:
	default:
	}
}

// seen is what the monitor has handed on so far, by target key: its
// batches, and every alarm.
func (tm *testMonitor) seen() (map[string][][]record.Record, []record.Alarm) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	out := map[string][][]record.Record{}
	for _, b := range tm.batches {
		out[b[0].Key()] = append(out[b[0].Key()], b)
	}
	return out, append([]record.Alarm(nil), tm.alarms...)
}

// runUntil runs the monitor until done, asked after every batch and alarm
// (and may act, e.g. stop a reflector), says it has seen enough; then it
// stops the monitor and waits for Run to return. Not within d fails the
// test: a wait on a condition, with a deadline, not a sleep.
func (tm *testMonitor) runUntil(t *testing.T, d time.Duration, done func(batches map[string][][]record.Record, alarms []record.Alarm) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- tm.Run(ctx) }()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if b, a := tm.seen(); done(b, a) {
			break
		}
		select {
		case <-tm.changed:
			continue
		case <-deadline.C:
			cancel()
			<-ran
			b, a := tm.seen()
			t.Fatalf("not done within %v: %d targets' batches, %d alarms", d, len(b), len(a))
		}
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
}

// answered counts the batches in which the reflector answered.
func answered(batches [][]record.Record) int {
	n := 0
	for _, b := range batches {
		if b[0].PairsReceived > 0 {
			n++
		}
	}
	return n
}
