//go:build linux

package testbed

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

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

// The delay element slows the sender–reflector path each way, over IPv4
// and IPv6, and no other; and it keeps a paced train paced: of probes sent
// 500 µs apart, at most a tenth arrive (kernel stamps) less than 150 µs
// apart. An element inside the test's own process released 4–11 of 39 so,
// in clumps; this one 0 of 39 in each of four runs.
func TestPathDelay(t *testing.T) {
	const d = 10 * time.Millisecond
	tb := newTestbed(t, Config{Forward: 20e6, Reverse: 20e6, Delay: d})
	for _, a := range []netip.Addr{ReflectorAddr, ReflectorAddr6, CrossAddr} {
		echo(t, map[bool]*Netns{true: tb.Cross, false: tb.Reflector}[a == CrossAddr], a)
	}
	for _, tc := range []struct {
		from   *Netns
		to     netip.Addr
		lo, hi time.Duration
	}{
		{tb.Sender, ReflectorAddr, 2 * d, 2*d + 15*time.Millisecond},
		{tb.Sender, ReflectorAddr6, 2 * d, 2*d + 15*time.Millisecond},
		{tb.Sender, CrossAddr, 0, 5 * time.Millisecond},
		{tb.Cross, ReflectorAddr, 0, 5 * time.Millisecond},
	} {
		got := rtt(t, tc.from, tc.to)
		t.Logf("%s to %s: %v", tc.from.Name, tc.to, got)
		if got < tc.lo || got > tc.hi {
			t.Errorf("%s to %s: RTT %v, want %v to %v", tc.from.Name, tc.to, got, tc.lo, tc.hi)
		}
	}

	// A paced train: 40 packets 500 µs apart (a 20 Mbit/s link passes a
	// 1000-byte packet in 400 µs, so the tbf does not space them).
	var rx *net.UDPConn
	if err := tb.Reflector.Do(func() (err error) {
		rx, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ReflectorAddr, 9)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var tx *net.UDPConn
	if err := tb.Sender.Do(func() (err error) {
		tx, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ReflectorAddr, 9)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	// Kernel receive stamps: the reading goroutine's wake-ups would add
	// gaps of their own.
	raw, err := rx.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) })
	if err != nil {
		t.Fatal(err)
	}
	const n, gap = 40, 500 * time.Microsecond
	got := make(chan []time.Time, 1)
	go func() {
		var at []time.Time
		buf, oob := make([]byte, 2048), make([]byte, 128)
		rx.SetReadDeadline(time.Now().Add(2 * time.Second))
		for len(at) < n {
			_, k, _, _, err := rx.ReadMsgUDP(buf, oob)
			if err != nil {
				break
			}
			msgs, _ := unix.ParseSocketControlMessage(oob[:k])
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
					ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
					at = append(at, time.Unix(ts.Unix()))
				}
			}
		}
		got <- at
	}()
	pkt := make([]byte, 1000)
	start := time.Now()
	for i := range n {
		for time.Since(start) < time.Duration(i)*gap {
		}
		tx.Write(pkt)
	}
	at := <-got
	if len(at) < n {
		t.Fatalf("%d of %d packets arrived", len(at), n)
	}
	close := 0
	for i := 1; i < n; i++ {
		if at[i].Sub(at[i-1]) < 150*time.Microsecond {
			close++
		}
	}
	t.Logf("%d of %d gaps under 150 µs (sent 500 µs apart)", close, n-1)
	if close > (n-1)/10 {
		t.Errorf("%d of %d gaps under 150 µs: the delay element clumps a paced train", close, n-1)
	}
}
