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
	run := func(m *Monitor, d time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		m.Run(ctx)
	}

	t.Run("dead targets", func(t *testing.T) {
		m := New(parse(dead.LocalAddr().String()), Options{})
		go run(m, 4500*time.Millisecond)
		time.Sleep(1500 * time.Millisecond)
		if err := m.Health(); err != nil {
			t.Errorf("unhealthy after 1.5 s, before 3 intervals passed: %v", err)
		}
		time.Sleep(2500 * time.Millisecond)
		if err := m.Health(); err == nil || !strings.Contains(err.Error(), "no target has answered since the monitor started") {
			t.Errorf("after 4 s of a dead target: %v", err)
		}
	})
	t.Run("live target, broken sink", func(t *testing.T) {
		addrs := make([]string, 12)
		for i := range addrs {
			addrs[i] = live
		}
		m := New(parse(addrs...), Options{Sinks: []Sink{brokenSink{}}})
		healthy := m.Health()
		run(m, 5*time.Second)
		if healthy != nil {
			t.Errorf("unhealthy at start: %v", healthy)
		}
		err := m.Health()
		if err == nil || !strings.Contains(err.Error(), "results not written") || strings.Contains(err.Error(), "answered") {
			t.Errorf("12 targets answering into a broken sink for 5 s: %v", err)
		}
	})
}
