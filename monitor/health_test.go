package monitor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/reflector/reflectortest"
)

// brokenSink refuses every write, as a store on a full disk would.
type brokenSink struct{}

func (brokenSink) Write(context.Context, []record.Record) error { return errors.New("disk full") }

// Health tells the truth: fine while targets answer and results are
// written; unhealthy when no target has answered for 3 intervals, and when
// a sink holds 10 results it could not write.
func TestHealth(t *testing.T) {
	dead, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}) // nobody answers
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	live := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{}).String()
	parse := func(addrs ...string) *config.Config {
		// exclusive: target, so that results come fast enough (4 at once).
		y := "interval: 1s\njitter: 0.05\nexclusive: target\nprobe: {timeout: 300ms}\ntargets:\n"
		for i, a := range addrs {
			y += fmt.Sprintf("  - {address: %q, name: t%d}\n", a, i)
		}
		cfg, err := config.Parse([]byte(y), "test.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	// until runs m until Health says what it should, for at most d, and
	// says when it did (since New).
	until := func(t *testing.T, m *Monitor, d time.Duration, ok func(error) bool) time.Duration {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { m.Run(ctx); close(ran) }()
		defer func() { cancel(); <-ran }()
		for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
			if err := m.Health(); ok(err) {
				return time.Since(m.health.started)
			} else if time.Now().After(deadline) {
				t.Fatalf("health within %v: %v", d, err)
			}
		}
	}

	t.Run("dead targets", func(t *testing.T) {
		m := New(parse(dead.LocalAddr().String()), Options{})
		if err := m.Health(); err != nil {
			t.Errorf("unhealthy at start: %v", err)
		}
		took := until(t, m, 15*time.Second, func(err error) bool { return err != nil })
		if err := m.Health(); !strings.Contains(err.Error(), "no target has answered since the monitor started") {
			t.Errorf("a dead target: %v", err)
		}
		if want := DeadIntervals * time.Second; took < want {
			t.Errorf("unhealthy after %v, before %d intervals of 1 s passed", took, DeadIntervals)
		}
	})
	t.Run("live target, broken sink", func(t *testing.T) {
		addrs := make([]string, 12)
		for i := range addrs {
			addrs[i] = live
		}
		m := New(parse(addrs...), Options{Sinks: []Sink{brokenSink{}}})
		if err := m.Health(); err != nil {
			t.Errorf("unhealthy at start: %v", err)
		}
		until(t, m, 20*time.Second, func(err error) bool { return err != nil && strings.Contains(err.Error(), "results not written") })
		if err := m.Health(); strings.Contains(err.Error(), "answered") {
			t.Errorf("12 targets answering into a broken sink: %v", err)
		}
	})
}
