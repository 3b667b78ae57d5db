package reflectortest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/train"
)

// Lie rewrites one datagram a reflector sends: h is its parsed header, b
// the datagram (a copy the function may change). It returns what the sender
// gets instead: nothing, b, or several datagrams.
type Lie func(h train.Header, b []byte) [][]byte

// Hostile is a reflector that lies: a real reflector behind a UDP proxy
// that passes what senders send unchanged and hands every datagram the
// reflector sends back to a Lie first. Tests of the sender use it to play a
// broken or malicious reflector that speaks the protocol well enough to get
// past the handshake.
type Hostile struct {
	Addr netip.AddrPort
	conn *net.UDPConn
	real *Reflector
	lie  Lie

	mu        sync.Mutex
	upstreams map[netip.AddrPort]*net.UDPConn
	wg        sync.WaitGroup
	stop      func()
}

// StartHostile runs a lying reflector (the real one configured with cfg)
// on 127.0.0.1 until the end of the test.
func StartHostile(t testing.TB, cfg reflector.Config, lie Lie) *Hostile {
	t.Helper()
	real := Start(t, "udp4", "127.0.0.1:0", cfg)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	h := &Hostile{Addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), conn: conn, real: real, lie: lie,
		upstreams: map[netip.AddrPort]*net.UDPConn{}}
	ctx, cancel := context.WithCancel(context.Background())
	h.wg.Add(1)
	go h.forward(ctx)
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			conn.Close()
			h.mu.Lock()
			for _, u := range h.upstreams {
				u.Close()
			}
			h.mu.Unlock()
			h.wg.Wait()
		})
	}
	t.Cleanup(h.stop)
	return h
}

// String is the lying reflector's address, as a measurement target.
func (h *Hostile) String() string { return h.Addr.String() }

// Server is the real reflector behind the proxy.
func (h *Hostile) Server() *reflector.Server { return h.real.Server }

// forward passes senders' datagrams to the real reflector, each sender
// through a socket of its own.
func (h *Hostile) forward(ctx context.Context) {
	defer h.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := h.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue // an ICMP error for a sender that went away
		}
		u := h.upstream(ctx, from)
		if u != nil {
			u.Write(buf[:n])
		}
	}
}

func (h *Hostile) upstream(ctx context.Context, from netip.AddrPort) *net.UDPConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u, ok := h.upstreams[from]; ok {
		return u
	}
	if ctx.Err() != nil {
		return nil
	}
	u, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(h.real.Addr))
	if err != nil {
		return nil
	}
	h.upstreams[from] = u
	h.wg.Add(1)
	go h.back(ctx, u, from)
	return u
}

// back passes the reflector's datagrams for one sender through the lie.
func (h *Hostile) back(ctx context.Context, u *net.UDPConn, to netip.AddrPort) {
	defer h.wg.Done()
	buf := make([]byte, 65536)
	for {
		u.SetReadDeadline(time.Now().Add(time.Second))
		n, err := u.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b := append([]byte(nil), buf[:n]...)
		hdr, err := train.ParseHeader(b)
		if err != nil {
			continue
		}
		for _, out := range h.lie(hdr, b) {
			h.conn.WriteToUDPAddrPort(out, to)
		}
	}
}
