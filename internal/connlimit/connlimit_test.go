package connlimit

import (
	"net"
	"sync"
	"testing"
	"time"
)

// harness accepts on a loopback listener limited to max and perSource,
// keeping what it accepted in order, and records what Closing was told.
type harness struct {
	l        *Listener
	accepted chan net.Conn
	mu       sync.Mutex
	closing  map[string]int // reason → count
}

func newHarness(t *testing.T, max, perSource int) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{l: New(ln, max, perSource), accepted: make(chan net.Conn, 100), closing: map[string]int{}}
	h.l.Closing = func(_ net.Conn, reason string) {
		h.mu.Lock()
		h.closing[reason]++
		h.mu.Unlock()
	}
	go func() {
		for {
			c, err := h.l.Accept()
			if err != nil {
				return
			}
			h.accepted <- c
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return h
}

// dial connects from local address from (a loopback address) and waits
// until the listener has accepted it; it returns both ends.
func (h *harness) dial(t *testing.T, from string) (client, server net.Conn) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", h.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case s := <-h.accepted:
		return c, s
	case <-time.After(2 * time.Second):
		t.Fatal("not accepted")
		return nil, nil
	}
}

// closed says whether the server closed c's other end.
func closed(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Read(make([]byte, 1))
	ne, timeout := err.(net.Error)
	return err != nil && !(timeout && ne.Timeout())
}

func TestEvictsOldestIdle(t *testing.T) {
	h := newHarness(t, 3, 3)
	_, s1 := h.dial(t, "127.0.0.1")
	c2, s2 := h.dial(t, "127.0.0.2")
	c3, _ := h.dial(t, "127.0.0.3")
	h.l.Busy(s1, true) // the oldest is busy: the next oldest goes
	h.dial(t, "127.0.0.4")
	if !closed(c2) {
		t.Error("the oldest idle connection was not closed to make room")
	}
	h.l.Busy(s1, false) // now idle, its request begun after c3 was accepted
	h.dial(t, "127.0.0.5")
	if !closed(c3) {
		t.Error("the connection idle longest was not the one closed")
	}
	if open, evicted, _ := h.l.Stats(); open != 3 || evicted != 2 {
		t.Errorf("open %d, evicted %d; want 3, 2", open, evicted)
	}
	h.l.Done(s2)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing[Evicted] != 2 {
		t.Errorf("Closing told %v", h.closing)
	}
}

func TestPerSourceAndRefused(t *testing.T) {
	h := newHarness(t, 10, 2)
	a1, _ := h.dial(t, "127.0.0.1")
	h.dial(t, "127.0.0.1")
	b1, _ := h.dial(t, "127.0.0.2")
	h.dial(t, "127.0.0.1") // a third from one source: its oldest goes
	if !closed(a1) {
		t.Error("a source's third connection did not evict its first")
	}
	if closed(b1) {
		t.Error("another source's connection was closed")
	}
	// Both of the source's connections busy: the next one is refused.
	var mine []net.Conn
	h.l.mu.Lock()
	for c, tr := range h.l.conns {
		if tr.src.String() == "127.0.0.1" {
			mine = append(mine, c)
		}
	}
	h.l.mu.Unlock()
	for _, c := range mine {
		h.l.Busy(c, true)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", h.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !closed(c) {
		t.Error("a connection over the cap was served while the others were busy")
	}
	if _, _, refused := h.l.Stats(); refused != 1 {
		t.Errorf("refused %d, want 1", refused)
	}
}
