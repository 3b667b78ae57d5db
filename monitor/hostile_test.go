package monitor

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/reflector/reflectortest"
	"github.com/abing-net/abing/store"
	"github.com/abing-net/abing/train"
)

// A reflector that claims 65,535 arrivals in every other train once made
// loss negative, and the probes-lost counter then panicked in the sink
// goroutine and killed the monitor. Now: every stored record keeps loss in
// [0, 1], and a panic in a result handler (here, the first call of the
// Results callback) is recovered, counted, and the monitor goes on.
func TestMonitorHostileReflector(t *testing.T) {
	h := reflectortest.StartHostile(t, reflector.Config{}, func(hd train.Header, b []byte) [][]byte {
		if hd.Type == train.TypeReply && hd.Train%2 == 1 {
			r, _ := train.ParseReplyBody(b)
			r.Arrived = 65535
			train.PutReplyBody(b, &r)
		}
		return [][]byte{b}
	})
	cfg, err := config.Parse([]byte(fmt.Sprintf("interval: 1s\njitter: 0.05\nprobe: {timeout: 500ms}\ntargets:\n  - {address: %q, name: liar}\n", h)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	calls := 0
	panics := map[string]int{}
	m := newTestMonitorOf(t, cfg, Options{Sinks: []Sink{db}, Panicked: func(where string) { mu.Lock(); panics[where]++; mu.Unlock() },
		Records: []func([]record.Record){func([]record.Record) {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n == 1 {
				panic("a bug in a result handler")
			}
		}}})
	// Each observer is called on its own: the test monitor's sees every
	// batch, the one whose first observer panicked too.
	m.runUntil(t, 20*time.Second, func(b map[string][][]record.Record, _ []record.Alarm) bool { return len(b["liar"]) >= 2 })
	var n int
	db.Query(context.Background(), store.Filter{}, func(r *record.Record) error {
		n++
		if !(r.Loss >= 0 && r.Loss <= 1) {
			t.Errorf("%s loss %v", r.Direction, r.Loss)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if n < 4 || calls < 2 {
		t.Errorf("%d records stored, results callback called %d times: want the monitor to go on after the panic", n, calls)
	}
	if len(panics) != 1 || panics["records"] != 1 {
		t.Errorf("panics recovered %v, want records=1", panics)
	}
}

// A monitor target with key_file measures a reflector run with keys; one
// without is refused by it, and its records say why.
func TestMonitorKeyedTarget(t *testing.T) {
	key := auth.Key{Name: "site-a", Secret: []byte("0123456789abcdef")}
	r := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{Keys: []auth.Key{key}})
	keys := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keys, []byte("site-a "+hex.EncodeToString(key.Secret)+"\n"), 0o600)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`interval: 1s
probe: {timeout: 300ms}
targets:
  - {address: %q, name: signed, probe: {key_file: %q}}
  - {address: %q, name: unsigned}
`, r, keys, r)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]record.Record{}
	keyed := newTestMonitorOf(t, cfg, Options{})
	keyed.runUntil(t, 20*time.Second, func(b map[string][][]record.Record, _ []record.Alarm) bool {
		return len(b["signed"]) > 0 && len(b["unsigned"]) > 0
	})
	seen, _ := keyed.seen()
	for name, bs := range seen {
		for _, b := range bs {
			got[name] = append(got[name], b...)
		}
	}
	for _, r := range got["signed"] {
		if r.PairsReceived == 0 || r.Unauthenticated != 0 {
			t.Errorf("signed target: %+v", r)
		}
	}
	for _, r := range got["unsigned"] {
		if r.PairsReceived != 0 || !strings.Contains(r.Error, "--key-file") {
			t.Errorf("unsigned target: %d pairs, error %q", r.PairsReceived, r.Error)
		}
	}
}

// flakyAlarms is a sink whose alarm writes fail until told otherwise.
type flakyAlarms struct {
	broken bool
	got    []string
}

func (f *flakyAlarms) Write(context.Context, []record.Record) error { return nil }
func (f *flakyAlarms) WriteAlarm(_ context.Context, a *record.Alarm) error {
	if f.broken {
		return errors.New("database is locked")
	}
	f.got = append(f.got, a.Summary)
	return nil
}

// Alarm writes are retried as results are: kept in order while the sink
// fails, written once it works again, before anything newer.
func TestAlarmWritesRetried(t *testing.T) {
	sink := &flakyAlarms{broken: true}
	cfg, err := config.Parse([]byte("targets: [{address: a}]\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := New(cfg, Options{Sinks: []Sink{sink}})
	states := []*sinkState{{name: "flaky", sink: sink}}
	m.emit(record.Alarm{Kind: record.Capacity, Target: "a", Summary: "one"}, states)
	m.emit(record.Alarm{Kind: record.Capacity, Target: "a", Summary: "two"}, states)
	if len(sink.got) != 0 || len(states[0].alarms) != 2 {
		t.Fatalf("while failing: written %v, waiting %d", sink.got, len(states[0].alarms))
	}
	sink.broken = false
	m.emit(record.Alarm{Kind: record.Capacity, Target: "a", Summary: "three"}, states)
	if strings.Join(sink.got, " ") != "one two three" || len(states[0].alarms) != 0 {
		t.Errorf("after recovery: written %v, waiting %d", sink.got, len(states[0].alarms))
	}
}

// A target whose reflector answers the hello and then stalls holds its
// interface lock for its timeout at most: a healthy target behind the same
// interface keeps its cadence.
func TestStalledTargetReleasesLock(t *testing.T) {
	stalled := reflectortest.StartHostile(t, reflector.Config{}, func(h train.Header, b []byte) [][]byte {
		if h.Type == train.TypeCookie {
			return [][]byte{b}
		}
		return nil // no replies, no reports, ever
	})
	live := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{})
	cfg, err := config.Parse([]byte(fmt.Sprintf(`interval: 1s
jitter: 0.05
probe: {timeout: 400ms}
targets:
  - {address: %q, name: stalled}
  - {address: %q, name: live}
`, stalled, live)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := newTestMonitorOf(t, cfg, Options{})
	m.runUntil(t, 20*time.Second, func(b map[string][][]record.Record, _ []record.Alarm) bool {
		return answered(b["live"]) >= 4 && len(b["stalled"]) > 0
	})
	seen, _ := m.seen()
	var liveRuns []time.Time
	for _, b := range seen["live"] {
		if b[0].PairsReceived > 0 {
			liveRuns = append(liveRuns, b[0].Time)
		}
	}
	stalledErr := seen["stalled"][0][0].Error
	// A live run may wait behind one stalled run (half a timeout for the
	// first train, a timeout for the rest: 0.6 s) but no more: 1.05 s of
	// cadence plus that, with room for a loaded machine.
	for i := 1; i < len(liveRuns); i++ {
		if gap := liveRuns[i].Sub(liveRuns[i-1]); gap > 2500*time.Millisecond {
			t.Errorf("live target: runs %v apart", gap)
		}
	}
	if !strings.Contains(stalledErr, "no reply") {
		t.Errorf("stalled target: %q", stalledErr)
	}
}
