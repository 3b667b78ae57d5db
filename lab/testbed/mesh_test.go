//go:build linux

package testbed

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/abing-net/abing/internal/testenv"
)

// echo answers UDP datagrams on port 7 of addr, in host ns, until the test
// ends (bound to the address, so that answers leave from it).
func echo(t *testing.T, ns *Netns, addr netip.Addr) {
	t.Helper()
	var c *net.UDPConn
	if err := ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 7)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			c.WriteToUDP(buf[:n], from)
		}
	}()
}

// rtt is the shortest of five UDP round trips from host ns to addr. Echoes
// lost in the first seconds are tried again: a fresh namespace's IPv6
// link-local addresses are tentative for about a second (duplicate address
// detection), and until then the router cannot resolve its neighbours.
func rtt(t *testing.T, ns *Netns, addr netip.Addr) time.Duration {
	t.Helper()
	var c *net.UDPConn
	if err := ns.Do(func() (err error) {
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 7)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	best := time.Hour
	buf := make([]byte, 64)
	var err error
	for n, seq, end := 0, byte(0), time.Now().Add(3*time.Second); n < 5 && time.Now().Before(end); seq++ {
		start := time.Now()
		c.Write([]byte{'p', seq})
		c.SetReadDeadline(start.Add(300 * time.Millisecond))
		var k int
		for k, err = c.Read(buf); err == nil && (k != 2 || buf[1] != seq); k, err = c.Read(buf) {
			// a late echo of an earlier ping
		}
		if err == nil {
			best = min(best, time.Since(start))
			n++
		}
	}
	if best == time.Hour {
		t.Fatalf("%s: no echo in 3 s: %v", addr, err)
	}
	return best
}

// The delay elements slow exactly the paths they are given: every path
// 5 ms each way (DelayAll), host 1 to host 3 and host 2's slow address
// 20 ms instead; host 1 to host 2's first address stays at 5 ms. Undelay
// takes host 1 to host 3 back to 5 ms while the mesh runs.
func TestMeshDelay(t *testing.T) {
	m, err := NewMesh(context.Background(), 3)
	if errors.Is(err, ErrNotRoot) {
		testenv.NotRoot(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx := context.Background()
	const all, d = 5 * time.Millisecond, 20 * time.Millisecond
	if err := m.DelayAll(ctx, all); err != nil {
		t.Fatal(err)
	}
	if err := m.Delay(ctx, 3, 1, d); err != nil {
		t.Fatal(err)
	}
	if err := m.SlowAddr(ctx, 2, d); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]int{{1, 3}, {2, 2}, {0, 1}, {1, 4}} {
		if err := m.Delay(ctx, bad[0], bad[1], time.Millisecond); err == nil {
			t.Errorf("Delay(%d, %d) accepted", bad[0], bad[1])
		}
	}
	if err := m.Undelay(ctx, 1, 2); err == nil {
		t.Error("Undelay of a path without a delay of its own accepted")
	}
	for i, h := range m.Hosts {
		echo(t, h, MeshAddr(i+1))
	}
	echo(t, m.Hosts[1], MeshSlowAddr(2))
	check := func(from int, to netip.Addr, each time.Duration) {
		t.Helper()
		got := rtt(t, m.Hosts[from-1], to)
		t.Logf("host %d to %s: %v", from, to, got)
		if lo, hi := 2*each, 2*each+15*time.Millisecond; got < lo || got > hi {
			t.Errorf("host %d to %s: RTT %v, want %v to %v", from, to, got, lo, hi)
		}
	}
	check(1, MeshAddr(2), all)
	check(1, MeshAddr(3), d)
	check(3, MeshAddr(1), d)
	check(2, MeshAddr(3), all)
	check(1, MeshSlowAddr(2), d)
	check(3, MeshSlowAddr(2), d)
	if err := m.Undelay(ctx, 1, 3); err != nil {
		t.Fatal(err)
	}
	check(1, MeshAddr(3), all)
	check(3, MeshAddr(1), all)
}
