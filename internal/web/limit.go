package web

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// limiter is a listener that holds at most max connections, and at most
// perSource from one address. A connection over either cap makes room by
// closing the one that has waited longest without a request in progress
// (idle between keep-alive requests, or not yet sent its first): a client
// holding connections open cannot keep a new one out, nor the daemon's
// descriptors from its measurements. When every connection has a request
// in progress, the new one is closed instead.
type limiter struct {
	net.Listener
	max, perSource int
	now            func() time.Time

	mu    sync.Mutex
	conns map[net.Conn]*tracked
	// evicted counts connections closed to make room, refused those closed
	// because every other one was busy.
	evicted, refused uint64
}

type tracked struct {
	src    netip.Addr
	since  time.Time // accepted, or last went idle
	active bool      // a request in progress
}

func newLimiter(l net.Listener, max, perSource int) *limiter {
	return &limiter{Listener: l, max: max, perSource: perSource, now: time.Now, conns: map[net.Conn]*tracked{}}
}

// Accept returns the next connection that fits, making room as above.
func (l *limiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceOf(c)
		l.mu.Lock()
		var victims []net.Conn
		fits := true
		if l.count(src) >= l.perSource {
			v := l.oldestIdle(func(_ net.Conn, t *tracked) bool { return t.src == src })
			fits = v != nil
			victims = append(victims, v)
		}
		if fits && len(l.conns)-len(victims) >= l.max {
			v := l.oldestIdle(func(c net.Conn, _ *tracked) bool { return !slices.Contains(victims, c) })
			fits = v != nil
			victims = append(victims, v)
		}
		if !fits {
			l.refused++
			l.mu.Unlock()
			c.Close()
			continue
		}
		for _, v := range victims {
			delete(l.conns, v)
			l.evicted++
		}
		l.conns[c] = &tracked{src: src, since: l.now()}
		l.mu.Unlock()
		for _, v := range victims {
			v.Close()
		}
		return c, nil
	}
}

// count is how many connections src holds.
func (l *limiter) count(src netip.Addr) int {
	n := 0
	for _, t := range l.conns {
		if t.src == src {
			n++
		}
	}
	return n
}

// oldestIdle is the connection matching ok with no request in progress
// that has waited longest; nil when there is none.
func (l *limiter) oldestIdle(ok func(net.Conn, *tracked) bool) net.Conn {
	var best net.Conn
	var bt *tracked
	for c, t := range l.conns {
		if !t.active && ok(c, t) && (bt == nil || t.since.Before(bt.since)) {
			best, bt = c, t
		}
	}
	return best
}

// connState follows the server's connections (http.Server.ConnState).
func (l *limiter) connState(c net.Conn, s http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.conns[c]
	if !ok {
		return // evicted already
	}
	switch s {
	case http.StateActive:
		t.active = true
	case http.StateIdle:
		t.active, t.since = false, l.now()
	case http.StateHijacked, http.StateClosed:
		delete(l.conns, c)
	}
}

// stats returns the connections held, and those evicted and refused so far.
func (l *limiter) stats() (open int, evicted, refused uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns), l.evicted, l.refused
}

// sourceOf is the client's address, unmapped.
func sourceOf(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
