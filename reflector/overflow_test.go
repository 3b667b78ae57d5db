package reflector

import (
	"fmt"
	"testing"
	"time"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
)

// Budgets hold when the tables are full: with room for 4 sources and 1
// prefix, 4 sources fill them, and 40 new sources in 40 other /24s share
// one overflow budget (here 10 packets), not one each; their sessions share
// one prefix's session cap.
func TestBudgetsWhenTablesFull(t *testing.T) {
	lim := DefaultLimits()
	lim.Source = Budget{Rate: 1e6, Burst: 1 << 20, PPS: 0.001, PacketBurst: 10} // 10 packets, no refill to speak of
	srv, addr := start(t, Config{Limits: lim, MaxSources: 4, PrefixSessions: 3})
	for i := range 4 {
		newClient(t, fmt.Sprintf("127.0.0.%d:0", i+1), addr).hello()
	}
	// Each new source says hello and opens a session with one probe (a
	// train of 2 that never completes, so the session stays active).
	answered := 0
	for i := range 40 {
		c := newClient(t, fmt.Sprintf("127.0.%d.1:0", i+1), addr)
		c.send(c.msg(train.Header{Type: train.TypeHello, Len: 1}, train.HelloMin))
		for _, b := range c.readFor(30 * time.Millisecond) {
			if h, _ := train.ParseHeader(b); h.Type == train.TypeCookie {
				c.cookie, _ = train.ParseCookie(b)
				answered++
				c.send(c.probe(0, 0, 2, 500))
			}
		}
	}
	st := srv.Stats()
	t.Logf("40 sources past full tables: %d cookies; drops %s; %d active sessions", answered, dropString(st), st.Sessions)
	// 10 packets of overflow budget: 5 hellos and their 5 probes; the
	// other 35 hellos are over it.
	if answered != 5 || st.Dropped[DropRateSource] != 35 {
		t.Errorf("%d of 40 overflow sources answered, %d rate_source drops: want 5 and 35 (one shared budget of 10 packets)",
			answered, st.Dropped[DropRateSource])
	}
	if st.Sessions != 3 || st.Dropped[DropSessions] != 2 {
		t.Errorf("%d sessions from overflow prefixes, %d refused: want the one prefix cap of 3, and 2 refused", st.Sessions, st.Dropped[DropSessions])
	}
}

// All sources together keep the writer pacing at most PacedTotal of the
// time: with a total of 1 % (a bucket of 100 ms, the longest paced train)
// and no per-source limit to speak of, two sources asking for six paced
// trains of 90 ms get one.
func TestPacedTotal(t *testing.T) {
	lim := DefaultLimits()
	lim.PacedShare, lim.PacedTotal = 1, 0.01
	srv, addr := start(t, Config{Limits: lim})
	replies := 0
	for i := range 2 {
		c := newClient(t, fmt.Sprintf("127.0.0.%d:0", i+1), addr)
		c.hello()
		for tr := range 3 {
			for p := range 10 {
				c.send(c.msg(train.Header{Type: train.TypeProbe, Flags: train.FlagPaced, ReplyGap: uint32(10 * time.Millisecond),
					Train: uint32(tr), Pos: uint16(p), Len: 10}, 500))
			}
		}
		replies += types(c.read())[train.TypeReply]
	}
	if st := srv.Stats(); replies != 10 || st.Dropped[DropPaced] != 5 {
		t.Errorf("%d replies, %d paced_time drops: want one train of 10 and 5 drops", replies, st.Dropped[DropPaced])
	}
}

// A hello's budget says how much pacing time the source has left now: the
// whole bucket (100 ms at the default 10 %) at first, and after a paced
// reply train of 9 gaps of 5 ms, 45 ms less (plus what refilled since, 10 %
// of the time: the client waits 200 ms for quiet after each answer).
func TestPacedNow(t *testing.T) {
	_, addr := start(t, Config{})
	c := newClient(t, "127.0.0.1:0", addr)
	left := func() time.Duration {
		t.Helper()
		c.send(c.msg(train.Header{Type: train.TypeHello, Len: 1}, train.HelloMin))
		for _, b := range c.read() {
			if h, err := train.ParseHeader(b); err == nil && h.Type == train.TypeCookie {
				c.cookie, _ = train.ParseCookie(b)
				u, _ := train.ParseBudget(b)
				return u.PacedNow
			}
		}
		t.Fatal("no cookie")
		return 0
	}
	if full := left(); full != 100*time.Millisecond {
		t.Errorf("at first: %v left, want the whole bucket, 100ms", full)
	}
	for p := range 10 {
		c.send(c.msg(train.Header{Type: train.TypeProbe, Flags: train.FlagPaced, ReplyGap: uint32(5 * time.Millisecond),
			Train: 0, Pos: uint16(p), Len: 10}, 500))
	}
	if n := types(c.read())[train.TypeReply]; n != 10 {
		t.Fatalf("%d replies, want 10", n)
	}
	if now := left(); now < 55*time.Millisecond || now > 85*time.Millisecond {
		t.Errorf("after 45 ms of pacing: %v left, want 55 ms and what refilled since (at most 30 ms)", now)
	}
}

// With keys, unsigned traffic is dropped before it is charged to the
// budgets that sources share: a flood of 200 unsigned datagrams from
// another source leaves a global budget of 20 packets to a keyed sender.
func TestUnsignedSparesSharedBudgets(t *testing.T) {
	key := auth.Key{Name: "site-a", Secret: []byte("0123456789abcdef")}
	lim := DefaultLimits()
	lim.Global = Budget{Rate: 1e9, Burst: 1 << 20, PPS: 0.001, PacketBurst: 20}
	srv, addr := start(t, Config{Limits: lim, Keys: []auth.Key{key}})
	flood := newClient(t, "127.0.0.9:0", addr)
	for i := range 200 {
		flood.send(flood.probe(i, 0, 2, 200))
	}
	c := newClient(t, "127.0.0.1:0", addr)
	c.signer = auth.NewSigner(key)
	c.hello()
	c.send(c.probe(0, 0, 2, 500), c.probe(0, 1, 2, 500))
	if m := types(c.read()); m[train.TypeReply] != 2 {
		t.Errorf("keyed sender after an unsigned flood got %v, want 2 replies", m)
	}
	st := srv.Stats()
	if st.Dropped[DropRateGlobal] != 0 || st.Dropped[DropUnsigned]+st.Dropped[DropRateSource] != 200 {
		t.Errorf("drops %s: want the flood dropped as unsigned or over its own budget, none over the global one", dropString(st))
	}
}

// readFor returns the datagrams that arrive within d.
func (c *client) readFor(d time.Duration) [][]byte {
	var out [][]byte
	buf := make([]byte, 9000)
	c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		ev, err := c.conn.Recv(buf)
		if err != nil {
			return out
		}
		if ev.Kind == dispersion.Data {
			out = append(out, append([]byte(nil), buf[:ev.N]...))
		}
	}
}
