package dispersion

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func listen(t *testing.T, network, addr string, m Mode) *Conn {
	t.Helper()
	c, err := Listen(network, addr, Options{Mode: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The kernel turns receive stamping on asynchronously (a workqueue) when
	// the first stamping socket appears; give it a moment.
	time.Sleep(5 * time.Millisecond)
	return c
}

// recv reads events until one of kind k arrives.
func recv(t *testing.T, c *Conn, k Kind) Event {
	t.Helper()
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		ev, err := c.Recv(buf)
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if ev.Kind == k {
			return ev
		}
	}
}

func TestLoopbackTimestamps(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		mode          Mode
		src           Source
		// inherit: b is the socket as a process that inherited it sees
		// it (FileConn), its first Conn closed.
		inherit bool
	}{
		{"udp4", "127.0.0.1:0", ModeAuto, SourceKernel, false},
		{"udp4", "127.0.0.1:0", ModeSoftware, SourceKernel, false},
		{"udp4", "127.0.0.1:0", ModeUser, SourceUser, false},
		{"udp6", "[::1]:0", ModeAuto, SourceKernel, false},
		{"udp4", "127.0.0.1:0", ModeAuto, SourceKernel, true},
		{"udp4", "127.0.0.1:0", ModeUser, SourceUser, true},
		{"udp6", "[::1]:0", ModeSoftware, SourceKernel, true},
	} {
		t.Run(fmt.Sprintf("%s/%v/inherited=%v", tc.network, tc.mode, tc.inherit), func(t *testing.T) {
			a := listen(t, tc.network, tc.addr, tc.mode)
			b := listen(t, tc.network, tc.addr, tc.mode)
			if tc.inherit { // both: b's receive stamps, a's transmit stamps
				a, b = swapInherited(t, a, tc.mode), swapInherited(t, b, tc.mode)
			}
			if rx, tx := a.Sources(); rx != tc.src || tx != tc.src {
				t.Fatalf("sources %v/%v, want %v", rx, tx, tc.src)
			}
			if rx, tx := b.Sources(); rx != tc.src || tx != tc.src {
				t.Fatalf("b's sources %v/%v, want %v", rx, tx, tc.src)
			}
			p := a.Peer(b.LocalAddr())
			key := p.FirstKey()
			before := time.Now().UnixNano()
			if _, err := p.WriteBatch([][]byte{make([]byte, 100), make([]byte, 200)}); err != nil {
				t.Fatal(err)
			}
			first := recv(t, b, Data)
			second := recv(t, b, Data)
			if first.N != 100 || second.N != 200 || first.From != a.LocalAddr() {
				t.Errorf("got %d and %d bytes from %v", first.N, second.N, first.From)
			}
			if first.Source != tc.src || first.Ns < before || second.Ns < first.Ns {
				t.Errorf("rx stamps %d %d (%v), sent after %d", first.Ns, second.Ns, first.Source, before)
			}
			if first.TTL != 64 {
				t.Errorf("TTL %d, want 64", first.TTL)
			}
			if tc.src == SourceUser {
				return
			}
			tx := recv(t, a, TxStamp)
			if tx.Key != key || tx.Source != SourceKernel || tx.Ns < before || tx.Ns > first.Ns {
				t.Errorf("tx stamp key %d (want %d) at %d source %v; rx at %d", tx.Key, key, tx.Ns, tx.Source, first.Ns)
			}
			if tx2 := recv(t, a, TxStamp); tx2.Key != key+1 {
				t.Errorf("second tx key %d, want %d", tx2.Key, key+1)
			}
		})
	}
}

// swapInherited is c as a process that inherited it sees it.
func swapInherited(t *testing.T, c *Conn, m Mode) *Conn {
	t.Helper()
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c.Close()
	n, err := FileConn(f, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestUnreachable(t *testing.T) {
	a := listen(t, "udp4", "127.0.0.1:0", ModeAuto)
	dead := listen(t, "udp4", "127.0.0.1:0", ModeUser)
	to := dead.LocalAddr()
	dead.Close()
	if _, err := a.Peer(to).Write(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	ev := recv(t, a, Unreachable)
	if ev.From != to || !errors.Is(ev.Err, syscall.ECONNREFUSED) {
		t.Errorf("unreachable from %v: %v, want %v refused", ev.From, ev.Err, to)
	}
}

func TestHardwareRefusedOnLoopback(t *testing.T) {
	_, err := Listen("udp4", "127.0.0.1:0", Options{Mode: ModeHardware})
	if err == nil || !strings.Contains(err.Error(), "hardware timestamps unavailable") {
		t.Fatalf("err = %v, want hardware timestamps unavailable", err)
	}
	c, err := Listen("udp4", "127.0.0.1:0", Options{Mode: ModeAuto, Interface: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rx, _ := c.Sources(); rx != SourceKernel {
		t.Errorf("auto on lo fell back to %v, want kernel", rx)
	}
	if c.Capabilities().HardwareProblem == nil {
		t.Error("no reason recorded for missing hardware timestamps")
	}
}

func TestPeerAddrFamilies(t *testing.T) {
	c := listen(t, "udp", ":0", ModeAuto) // dual stack
	b := listen(t, "udp4", "127.0.0.1:0", ModeAuto)
	if _, err := c.Peer(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), b.LocalAddr().Port())).Write(make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, b, Data); ev.N != 50 {
		t.Errorf("got %d bytes", ev.N)
	}
}

func TestIsICMPError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{syscall.ECONNREFUSED, true},
		{os.NewSyscallError("recvmsg", syscall.EHOSTUNREACH), true},
		{fmt.Errorf("wrapped: %w", syscall.EMSGSIZE), true},
		{syscall.EACCES, true}, // ICMPv6 administratively prohibited
		{syscall.EBADF, false},
		{syscall.EAGAIN, false},
		{net.ErrClosed, false},
		{nil, false},
	} {
		if got := IsICMPError(tc.err); got != tc.want {
			t.Errorf("IsICMPError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A datagram to a closed port while the receive buffer is full: the ICMP
// error cannot be queued, so it comes only as the socket's pending error,
// which the next receive returns. Recv reports it as an Unreachable event
// without an address, not as a failed receive, and the data still queued
// is read after it.
func TestRecvPendingICMPError(t *testing.T) {
	a, err := Listen("udp4", "127.0.0.1:0", Options{Buffer: 8192})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := listen(t, "udp4", "127.0.0.1:0", ModeUser)
	closed := listen(t, "udp4", "127.0.0.1:0", ModeUser)
	dead := closed.LocalAddr()
	closed.Close()
	for range 64 { // more than the buffer holds
		b.Peer(a.LocalAddr()).Write(make([]byte, 1000))
	}
	if _, err := a.Peer(dead).Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	a.SetReadDeadline(time.Now().Add(time.Second))
	var pending bool
	data := 0
	for {
		ev, err := a.Recv(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("recv after %d datagrams: %v", data, err)
		}
		switch ev.Kind {
		case Unreachable:
			if !errors.Is(ev.Err, syscall.ECONNREFUSED) || ev.From.IsValid() {
				t.Errorf("unreachable from %v: %v, want ECONNREFUSED without an address", ev.From, ev.Err)
			}
			pending = true
		case Data:
			data++
		}
		a.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	}
	if !pending || data == 0 {
		t.Errorf("pending error seen: %v; datagrams read: %d", pending, data)
	}
}
