// Package reflectortest runs reflectors on loopback for other packages'
// tests, as net/http/httptest does for HTTP servers.
package reflectortest

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/reflector"
)

// Reflector is a reflector serving on a local address.
type Reflector struct {
	Addr   netip.AddrPort
	Server *reflector.Server
	stop   func()
}

// Start runs a reflector with cfg on network ("udp4" or "udp6") and addr
// (e.g. "127.0.0.1:0") until Stop or the end of the test; a Serve error
// fails the test.
func Start(t testing.TB, network, addr string, cfg reflector.Config) *Reflector {
	t.Helper()
	conn, err := dispersion.Listen(network, addr, dispersion.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := reflector.New(conn, cfg)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	r := &Reflector{Addr: conn.LocalAddr(), Server: srv}
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("reflector %s: %v", r.Addr, err)
			}
			conn.Close()
		})
	}
	t.Cleanup(r.stop)
	return r
}

// StartSTAMP runs a reflector with cfg and its STAMP loop (stateful or not)
// on network and addr, as Start does; Addr is the STAMP socket's.
func StartSTAMP(t testing.TB, network, addr string, cfg reflector.Config, stateful bool) *Reflector {
	t.Helper()
	r := Start(t, network, addr, cfg)
	conn, err := dispersion.Listen(network, addr, dispersion.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Server.STAMP(conn, stateful).Serve(ctx) }()
	stop := r.stop
	var once sync.Once
	r.Addr = conn.LocalAddr()
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("STAMP reflector %s: %v", r.Addr, err)
			}
			conn.Close()
			stop()
		})
	}
	t.Cleanup(r.stop)
	return r
}

// Stop ends the reflector; later calls do nothing.
func (r *Reflector) Stop() { r.stop() }

// String is the reflector's address, as a measurement target.
func (r *Reflector) String() string { return r.Addr.String() }
