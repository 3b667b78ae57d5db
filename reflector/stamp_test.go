package reflector

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/stamp"
)

// startSTAMP runs a reflector with cfg and its STAMP loop on loopback, and
// returns them and the STAMP address.
func startSTAMP(t testing.TB, cfg Config, stateful bool) (*Server, netip.AddrPort) {
	t.Helper()
	srv, _ := start(t, cfg)
	conn, err := dispersion.Listen("udp4", "127.0.0.1:0", dispersion.Options{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, conn, srv.STAMP(conn, stateful).Serve)
	return srv, conn.LocalAddr()
}

// settled returns srv's counters once ok holds, or after a second: a
// reply is counted once its send returned, which may be after the client
// read it.
func settled(srv *Server, ok func(Stats) bool) Stats {
	st := srv.Stats()
	for deadline := time.Now().Add(time.Second); !ok(st) && time.Now().Before(deadline); st = srv.Stats() {
		time.Sleep(time.Millisecond)
	}
	return st
}

// stampClient is a plain UDP socket speaking STAMP by hand.
type stampClient struct {
	t    testing.TB
	c    *net.UDPConn
	buf  []byte
	recv []byte
}

func newStampClient(t testing.TB, laddr string, to netip.AddrPort) *stampClient {
	t.Helper()
	c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(laddr)), net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &stampClient{t: t, c: c, recv: make([]byte, 65536)}
}

func (c *stampClient) send(b []byte) {
	c.t.Helper()
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next datagram, or nil after wait.
func (c *stampClient) read(wait time.Duration) []byte {
	c.c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.c.Read(c.recv)
	if err != nil {
		return nil
	}
	return append([]byte(nil), c.recv[:n]...)
}

// Through real sockets, stateless: each test packet gets one reply of its
// own size, its sequence number copied (RFC 8762 §4.3), the sender's fields
// copied, T2 and T3 between our send and our receive, T3 not before T2, the
// TTL it arrived with, the sender's timestamp format, and an Error Estimate
// that states an error (multiplier not zero).
func TestSTAMPStateless(t *testing.T) {
	srv, addr := startSTAMP(t, Config{}, false)
	c := newStampClient(t, "127.0.0.1:0", addr)
	for i, tc := range []struct {
		size int
		ptp  bool
		ssid uint16
	}{{stamp.BaseLen, false, 0}, {1472, true, 7}, {stamp.MaxLen, false, 65535}} {
		before := time.Now()
		test := stamp.Test{Seq: uint32(1000 + i), Time: stamp.NTP(before), Err: stamp.MakeErrorEstimate(false, tc.ptp, 0, 1), SSID: tc.ssid}
		b, _ := test.Append(nil, tc.size)
		c.send(b)
		got := c.read(2 * time.Second)
		after := time.Now()
		if len(got) != tc.size {
			t.Fatalf("%d-octet test packet: reply of %d octets", tc.size, len(got))
		}
		r, err := stamp.ParseReply(got)
		if err != nil {
			t.Fatal(err)
		}
		t2, err2 := r.RxTime.Time(tc.ptp)
		t3, err3 := r.Time.Time(tc.ptp)
		slack := 2 * time.Millisecond // user-space clocks of two processes
		switch {
		case err2 != nil || err3 != nil:
			t.Errorf("timestamps in the wrong format: %v, %v", err2, err3)
		case r.Seq != test.Seq || r.SenderSeq != test.Seq || r.SenderTime != test.Time || r.SenderErr != test.Err || r.SSID != tc.ssid:
			t.Errorf("reply %+v to %+v", r, test)
		case t2.Before(before.Add(-slack)) || t3.After(after.Add(slack)) || t3.Before(t2):
			t.Errorf("T2 %v, T3 %v outside [%v, %v] or out of order", t2, t3, before, after)
		case r.SenderTTL != 64:
			t.Errorf("TTL %d, want 64 (loopback)", r.SenderTTL)
		case r.Err.Multiplier() == 0 || r.Err.PTP() != tc.ptp:
			t.Errorf("error estimate %#04x", uint16(r.Err))
		}
	}
	if st := settled(srv, func(st Stats) bool { return st.STAMPReplies == 3 }); st.STAMPReplies != 3 || st.SentBytes != st.ReceivedBytes {
		t.Errorf("stamp replies %d, bytes in %d, out %d", st.STAMPReplies, st.ReceivedBytes, st.SentBytes)
	}
}

// Stateful: each sender address, port and SSID has its own counter from
// zero, so a sender sees which direction lost a packet (RFC 8762 §4.3.1).
func TestSTAMPStateful(t *testing.T) {
	srv, addr := startSTAMP(t, Config{}, true)
	c := newStampClient(t, "127.0.0.1:0", addr)
	for i, ssid := range []uint16{1, 2, 1, 1, 2} {
		test := stamp.Test{Seq: uint32(500 + i), SSID: ssid, Err: 1}
		b, _ := test.Append(nil, 100)
		c.send(b)
		r, err := stamp.ParseReply(c.read(2 * time.Second))
		want := []uint32{0, 0, 1, 2, 1}[i]
		if err != nil || r.Seq != want || r.SenderSeq != test.Seq {
			t.Errorf("packet %d (SSID %d): reflector seq %d, sender seq %d (%v); want %d", i, ssid, r.Seq, r.SenderSeq, err, want)
		}
	}
	if st := srv.Stats(); st.STAMPSessions != 2 {
		t.Errorf("%d stateful sessions, want 2", st.STAMPSessions)
	}
}

// Bad test packets, through real sockets: each is dropped and counted
// under its reason, and none is answered.
func TestSTAMPDrops(t *testing.T) {
	key := auth.Key{Name: "site-a", Secret: []byte("0123456789abcdef")}
	open, _ := (&stamp.Test{Seq: 1}).Append(nil, 200)
	signed, _ := (&stamp.Test{Seq: 1}).AppendAuth(nil, 200, stamp.NewKey(key.Secret))
	wrong, _ := (&stamp.Test{Seq: 1}).AppendAuth(nil, 200, stamp.NewKey([]byte("fedcba9876543210")))
	for _, tc := range []struct {
		name string
		cfg  Config
		send []byte
		drop Drop
	}{
		{"short", Config{}, make([]byte, stamp.BaseLen-1), DropMalformed},
		{"oversize", Config{}, make([]byte, stamp.MaxLen+1), DropOversize},
		{"denied", Config{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, open, DropDenied},
		{"unauthenticated, 44 octets, to a keyed reflector", Config{Keys: []auth.Key{key}}, open[:stamp.BaseLen], DropUnsigned},
		// Longer, it cannot be told from an authenticated packet with a
		// wrong HMAC.
		{"unauthenticated, 200 octets, to a keyed reflector", Config{Keys: []auth.Key{key}}, open, DropBadSignature},
		{"wrong key", Config{Keys: []auth.Key{key}}, wrong, DropBadSignature},
		{"tampered", Config{Keys: []auth.Key{key}}, func() []byte { b := append([]byte(nil), signed...); b[20] ^= 1; return b }(), DropBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr := startSTAMP(t, tc.cfg, false)
			c := newStampClient(t, "127.0.0.1:0", addr)
			c.send(tc.send)
			if b := c.read(200 * time.Millisecond); b != nil {
				t.Errorf("answered with %d octets", len(b))
			}
			if st := srv.Stats(); st.Dropped[tc.drop] != 1 || st.DroppedTotal() != 1 || st.STAMPReplies != 0 {
				t.Errorf("dropped %v, want one %v", st.Dropped, tc.drop)
			}
		})
	}
	// The right key is answered in authenticated mode, under that key.
	srv, addr := startSTAMP(t, Config{Keys: []auth.Key{{Name: "other", Secret: []byte("another key, 16+")}, key}}, false)
	c := newStampClient(t, "127.0.0.1:0", addr)
	c.send(signed)
	got := c.read(2 * time.Second)
	if r, err := stamp.ParseReplyAuth(got, stamp.NewKey(key.Secret)); err != nil || r.SenderSeq != 1 || len(got) != 200 {
		t.Errorf("authenticated reply: %+v, %d octets, %v", r, len(got), err)
	}
	if st := settled(srv, func(st Stats) bool { return st.STAMPReplies == 1 }); st.STAMPReplies != 1 {
		t.Errorf("%d replies", st.STAMPReplies)
	}
}

// STAMP test packets spend the same per-source budget as abing's own
// protocol: a source over it is dropped, and what is answered is never
// more than what came in.
func TestSTAMPBudget(t *testing.T) {
	lim := DefaultLimits()
	lim.Source = Budget{Rate: 10e6, Burst: 1 << 20, PPS: 10, PacketBurst: 20}
	srv, addr := startSTAMP(t, Config{Limits: lim}, false)
	c := newStampClient(t, "127.0.0.1:0", addr)
	b, _ := (&stamp.Test{Seq: 1}).Append(nil, 1000)
	for range 100 {
		c.send(b)
	}
	replies := 0
	for c.read(300*time.Millisecond) != nil {
		replies++
	}
	st := srv.Stats()
	if replies > 25 || st.Dropped[DropRateSource] < 75 || st.SentBytes > st.ReceivedBytes {
		t.Errorf("%d replies to 100 test packets over a 20-packet burst; dropped %v; bytes in %d, out %d",
			replies, st.Dropped, st.ReceivedBytes, st.SentBytes)
	}
}

// Stateful sessions are bounded: a sender that opens more (new ports or
// SSIDs) than MaxSessions·8 is dropped, and the counters of idle ones are
// forgotten.
func TestSTAMPSessionCap(t *testing.T) {
	srv, addr := startSTAMP(t, Config{MaxSessions: 1}, true)
	c := newStampClient(t, "127.0.0.1:0", addr)
	for ssid := range 12 {
		b, _ := (&stamp.Test{Seq: 1, SSID: uint16(ssid)}).Append(nil, 100)
		c.send(b)
	}
	replies := 0
	for c.read(300*time.Millisecond) != nil {
		replies++
	}
	if st := srv.Stats(); replies != rememberFactor || st.Dropped[DropSessions] != 12-rememberFactor {
		t.Errorf("%d replies, %d dropped for sessions; want %d and %d", replies, st.Dropped[DropSessions], rememberFactor, 12-rememberFactor)
	}
}

// ICMP errors for replies to sockets that closed at once come back to
// the STAMP socket; they are counted, and the loop goes on answering.
func TestSTAMPICMPErrors(t *testing.T) {
	srv, addr := startSTAMP(t, Config{}, false)
	b, _ := (&stamp.Test{Seq: 1}).Append(nil, 100)
	for i := range 300 {
		src := &net.UDPAddr{IP: net.IPv4(127, 4, byte(i/200), byte(1+i%200))}
		c, err := net.DialUDP("udp4", src, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			t.Fatal(err)
		}
		c.Write(b)
		c.Close()
	}
	c := newStampClient(t, "127.0.0.1:0", addr)
	answered := false
	for deadline := time.Now().Add(5 * time.Second); !answered && time.Now().Before(deadline); {
		c.send(b)
		answered = c.read(100*time.Millisecond) != nil
	}
	if !answered {
		t.Fatal("no reply within 5 s of 300 replies to closed ports")
	}
	if st := srv.Stats(); st.ICMPErrors[dispersion.ICMPPortUnreachable] == 0 {
		t.Errorf("no port-unreachable errors counted: %v", st.ICMPErrors)
	}
}

// FuzzSTAMPHandle feeds datagrams straight into the STAMP loop's handler
// (every check, both modes): whatever it answers is exactly the size of
// the datagram and names it.
func FuzzSTAMPHandle(f *testing.F) {
	b, _ := (&stamp.Test{Seq: 9}).Append(nil, stamp.BaseLen)
	f.Add(b, false)
	key := []byte("0123456789abcdef")
	a, _ := (&stamp.Test{Seq: 9}).AppendAuth(nil, stamp.AuthLen, stamp.NewKey(key))
	f.Add(a, true)
	f.Add([]byte{1, 2, 3}, false)
	servers := map[bool]*STAMP{}
	for _, keyed := range []bool{false, true} {
		conn, err := dispersion.Listen("udp4", "127.0.0.1:0", dispersion.Options{})
		if err != nil {
			f.Fatal(err)
		}
		defer conn.Close()
		cfg := Config{Limits: Limits{Source: Budget{1e12, 1 << 30, 1e9, 1 << 30}, Prefix: Budget{1e12, 1 << 30, 1e9, 1 << 30},
			Global: Budget{1e12, 1 << 30, 1e9, 1 << 30}, PacedShare: 1, PacedTotal: 1}}
		if keyed {
			cfg.Keys = []auth.Key{{Name: "k", Secret: key}}
		}
		s, err := New(conn, cfg)
		if err != nil {
			f.Fatal(err)
		}
		servers[keyed] = s.STAMP(conn, keyed)
	}
	src := netip.MustParseAddrPort("127.0.0.1:9")
	f.Fuzz(func(t *testing.T, b []byte, keyed bool) {
		st := servers[keyed]
		before := st.s.c.stampReplies.Load()
		now := time.Now()
		st.handle(b, dispersion.Event{Kind: dispersion.Data, N: len(b), From: src, Ns: now.UnixNano(), TTL: 64}, now)
		if st.s.c.stampReplies.Load() == before {
			return
		}
		if len(st.buf) != len(b) {
			t.Fatalf("%d-octet reply to %d octets", len(st.buf), len(b))
		}
		var r stamp.Reply
		var err error
		if keyed {
			r, err = stamp.ParseReplyAuth(st.buf, stamp.NewKey(key))
		} else {
			r, err = stamp.ParseReply(st.buf)
		}
		if err != nil && !errors.Is(err, stamp.ErrLength) {
			t.Fatal(err)
		}
		if want, _ := stamp.ParseTest(b); !keyed && r.SenderSeq != want.Seq {
			t.Fatalf("reply names %d, not %d", r.SenderSeq, want.Seq)
		}
	})
}
