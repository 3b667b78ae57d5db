// Package connlimit is a listener that holds a bounded number of
// connections, in all and from one address, and makes room for a new one
// by closing the one that has waited longest without a request in
// progress: a client that holds connections open (or opens thousands)
// cannot keep a new client out, nor take the descriptors the daemon's
// measurements, store and hooks need. The server tells it when a
// connection is busy with a request (Busy) and when it is gone (Done).
package connlimit

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Listener wraps a net.Listener. Safe for concurrent use.
type Listener struct {
	net.Listener
	max, perSource int
	// Closing, when set, is called (from Accept) on a connection about to
	// be closed to make room ("evicted") or because every other one was
	// busy ("refused"), before it is closed: a protocol that can say why
	// says it there, briefly (a write deadline).
	Closing func(c net.Conn, reason string)

	mu      sync.Mutex
	conns   map[net.Conn]*tracked
	evicted uint64
	refused uint64
}

type tracked struct {
	src   netip.Addr
	since time.Time // accepted, or its last request began
	busy  bool      // a request in progress
}

// Reasons given to Closing.
const (
	Evicted = "closed to make room for a newer connection"
	Refused = "too many connections with a request in progress"
)

// New holds at most max connections of l, and perSource from one address.
func New(l net.Listener, max, perSource int) *Listener {
	return &Listener{Listener: l, max: max, perSource: perSource, conns: map[net.Conn]*tracked{}}
}

// Accept returns the next connection that fits, making room as the
// package says; a connection that cannot fit is closed and the next one
// waited for.
func (l *Listener) Accept() (net.Conn, error) {
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
			l.close(c, Refused)
			continue
		}
		for _, v := range victims {
			delete(l.conns, v)
			l.evicted++
		}
		l.conns[c] = &tracked{src: src, since: time.Now()}
		l.mu.Unlock()
		for _, v := range victims {
			l.close(v, Evicted)
		}
		return c, nil
	}
}

func (l *Listener) close(c net.Conn, reason string) {
	if l.Closing != nil {
		l.Closing(c, reason)
	}
	c.Close()
}

// Busy says that c has a request in progress (true), which keeps it from
// being closed to make room, or has none (false): from then on it waits.
// Connections are ranked by when their last request began: a client that
// sent its request after another's was answered is the newer, however
// late the server marks the first one idle (which it does after the
// answer is on its way; CI once saw the first marked after the second).
func (l *Listener) Busy(c net.Conn, busy bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.conns[c]; ok {
		t.busy = busy
		if busy {
			t.since = time.Now()
		}
	}
}

// Done forgets c: it was closed.
func (l *Listener) Done(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
}

// Stats are the connections held, and those evicted and refused so far.
func (l *Listener) Stats() (open int, evicted, refused uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns), l.evicted, l.refused
}

// count is how many connections src holds. Under mu.
func (l *Listener) count(src netip.Addr) int {
	n := 0
	for _, t := range l.conns {
		if t.src == src {
			n++
		}
	}
	return n
}

// oldestIdle is the connection matching ok with no request in progress
// whose last request began (or which was accepted) longest ago; nil when
// there is none. Under mu.
func (l *Listener) oldestIdle(ok func(net.Conn, *tracked) bool) net.Conn {
	var best net.Conn
	var bt *tracked
	for c, t := range l.conns {
		if !t.busy && ok(c, t) && (bt == nil || t.since.Before(bt.since)) {
			best, bt = c, t
		}
	}
	return best
}

// sourceOf is the client's address, unmapped.
func sourceOf(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
