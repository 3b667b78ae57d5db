//go:build linux

package testbed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abing-net/abing/internal/testenv"
)

func TestMain(m *testing.M) {
	RunChild()
	os.Exit(m.Run())
}

func newTestbed(t *testing.T, cfg Config) *Testbed {
	t.Helper()
	tb, err := New(context.Background(), cfg)
	if errors.Is(err, ErrNotRoot) {
		testenv.NotRoot(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

func exists(name string) bool {
	_, err := os.Stat(filepath.Join(netnsDir, name))
	return err == nil
}

// Traffic through a shaped direction shows in that bottleneck's counters,
// not in the other's, at about the rate sent; Close removes every namespace.
func TestTrafficAndCounters(t *testing.T) {
	tb := newTestbed(t, Config{Forward: 50e6, Reverse: 20e6})
	ctx := context.Background()
	tr, err := tb.StartTraffic(ctx, Flow{Kind: Poisson, Dir: Forward, Rate: 10e6, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	time.Sleep(300 * time.Millisecond) // the generator process starts
	f0, _ := tb.Counters(ctx, Forward)
	r0, _ := tb.Counters(ctx, Reverse)
	start := time.Now()
	time.Sleep(time.Second)
	f1, _ := tb.Counters(ctx, Forward)
	r1, _ := tb.Counters(ctx, Reverse)
	el := time.Since(start).Seconds()
	if err := tr.Stop(); err != nil {
		t.Fatal(err)
	}
	rate := float64(f1.Sub(f0).IPBytes()*8) / el
	if rate < 7e6 || rate > 12e6 {
		t.Errorf("forward bottleneck forwarded %.1f Mbit/s of a 10 Mbit/s flow", rate/1e6)
	}
	if n := r1.Sub(r0).Packets; n > 5 {
		t.Errorf("reverse bottleneck forwarded %d packets of forward traffic", n)
	}
	names := []string{tb.Sender.Name, tb.Router.Name, tb.Reflector.Name, tb.Cross.Name}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if exists(n) {
			t.Errorf("namespace %s left behind", n)
		}
	}
}

func TestTCPTraffic(t *testing.T) {
	tb := newTestbed(t, Config{Forward: 20e6, Reverse: 20e6})
	ctx := context.Background()
	c0, _ := tb.Counters(ctx, Forward)
	tr, err := tb.StartTraffic(ctx, Flow{Kind: TCP, Dir: Forward})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	tr.Stop()
	c1, _ := tb.Counters(ctx, Forward)
	if c := c1.Sub(c0); c.Packets < 400 {
		t.Errorf("TCP flow moved %d packets through a 20 Mbit/s bottleneck in a second", c.Packets)
	}
}

// Namespaces of a process that no longer exists are removed; those of a
// live one are kept.
func TestCleanStale(t *testing.T) {
	newTestbed(t, Config{}) // skips when not root
	dead := namePrefix + "999999999-1-snd"
	live := namePrefix + "1-1-snd" // pid 1 always exists
	for _, n := range []string{dead, live} {
		if _, err := addNetns(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	defer (&Netns{Name: live}).delete()
	defer (&Netns{Name: dead}).delete()
	removed, err := CleanStale()
	if err != nil {
		t.Fatal(err)
	}
	if exists(dead) || !exists(live) || len(removed) != 1 || removed[0] != dead {
		t.Errorf("removed %v; dead left: %v, live kept: %v", removed, exists(dead), exists(live))
	}
}
