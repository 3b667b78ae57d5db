package reflector

import (
	"context"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
)

// start runs a reflector on 127.0.0.1 for the length of the test.
func start(t testing.TB, cfg Config) (*Server, netip.AddrPort) {
	t.Helper()
	conn, err := dispersion.Listen("udp4", "127.0.0.1:0", dispersion.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, conn, srv.Serve)
	return srv, conn.LocalAddr()
}

// serve runs loop until the end of the test, then closes conn; an error
// from loop fails the test.
func serve(t testing.TB, conn *dispersion.Conn, loop func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		conn.Close()
	})
}

// client is a hand-driven sender: it says hello, keeps its cookie and
// builds datagrams that carry it.
type client struct {
	t       testing.TB
	conn    *dispersion.Conn
	peer    *dispersion.Peer
	session uint64
	seq     uint32
	cookie  train.Cookie
	signer  *auth.Signer
}

func newClient(t testing.TB, laddr string, to netip.AddrPort) *client {
	t.Helper()
	conn, err := dispersion.Listen("udp4", laddr, dispersion.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, peer: conn.Peer(to), session: 42}
}

// msg builds a sender datagram of n bytes with the client's cookie, signed
// if the client has a key (cut short after signing if n is too small to
// hold the client block).
func (c *client) msg(h train.Header, n int) []byte {
	b := make([]byte, max(n, train.SenderBody))
	c.seq++
	h.Session, h.Seq = c.session, c.seq
	if h.SentNs == 0 {
		h.SentNs = time.Now().UnixNano()
	}
	train.PutHeader(b, &h)
	train.PutClientBlock(b, &train.ClientBlock{Cookie: c.cookie})
	if c.signer != nil {
		c.signer.Sign(b)
	}
	return b[:n]
}

func (c *client) probe(index, pos, n, size int) []byte {
	return c.msg(train.Header{Type: train.TypeProbe, Train: uint32(index), Pos: uint16(pos), Len: uint16(n)}, size)
}

func (c *client) send(pkts ...[]byte) {
	if _, err := c.peer.WriteBatch(pkts); err != nil {
		c.t.Fatal(err)
	}
}

// hello gets a cookie; the test fails if none comes.
func (c *client) hello() {
	c.t.Helper()
	c.send(c.msg(train.Header{Type: train.TypeHello, Len: 1}, train.HelloMin))
	for _, b := range c.read() {
		if h, err := train.ParseHeader(b); err == nil && h.Type == train.TypeCookie {
			c.cookie, _ = train.ParseCookie(b)
			return
		}
	}
	c.t.Fatal("no cookie")
}

// read returns the datagrams that arrive until the socket is quiet for
// 200 ms.
func (c *client) read() [][]byte {
	var out [][]byte
	buf := make([]byte, 9000)
	for {
		c.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		ev, err := c.conn.Recv(buf)
		if err != nil {
			return out
		}
		if ev.Kind == dispersion.Data {
			out = append(out, append([]byte(nil), buf[:ev.N]...))
		}
	}
}

func types(pkts [][]byte) map[train.Type]int {
	m := map[train.Type]int{}
	for _, b := range pkts {
		h, _ := train.ParseHeader(b)
		m[h.Type]++
	}
	return m
}

func TestReplyNeverLarger(t *testing.T) {
	srv, addr := start(t, Config{TrainTimeout: 30 * time.Millisecond})
	c := newClient(t, "127.0.0.1:0", addr)
	c.hello()
	// A train of 3 with sizes 100, 300, 200; then a train of 4 of which
	// one packet never comes.
	c.send(c.probe(0, 0, 3, 100), c.probe(0, 1, 3, 300), c.probe(0, 2, 3, 200))
	c.send(c.probe(1, 0, 4, 500), c.probe(1, 1, 4, 500), c.probe(1, 3, 4, 500))
	got := c.read()
	if len(got) != 6 {
		t.Fatalf("%d replies, want 6 (3 + the 3 of 4 that arrived)", len(got))
	}
	want := []int{100, 300, 200, 500, 500, 500}
	for i, b := range got {
		h, err := train.ParseHeader(b)
		if err != nil || h.Type != train.TypeReply || len(b) != want[i] {
			t.Errorf("reply %d: %d bytes (want %d), %+v %v", i, len(b), want[i], h, err)
		}
		r, _ := train.ParseReplyBody(b)
		if r.RxNs == 0 || r.TTL != 64 || dispersion.Source(r.RxSource) == dispersion.SourceNone {
			t.Errorf("reply %d body %+v", i, r)
		}
		if h.Train == 1 && r.Arrived != 3 {
			t.Errorf("incomplete train reports %d arrived, want 3", r.Arrived)
		}
	}
	st := srv.Stats()
	if st.Trains != 2 || st.TrainTimeouts != 1 || st.Replies != 6 || st.Cookies != 1 {
		t.Errorf("stats %+v", st)
	}

	// The report is no larger than its request and lists every reply.
	req := c.msg(train.Header{Type: train.TypeReportRequest, Len: 1}, train.HeaderLen+8+6*16)
	train.PutReportRequest(req, train.ReportRequest{FirstTrain: 0, Trains: 2})
	c.send(req)
	got = c.read()
	if len(got) != 1 || len(got[0]) > len(req) {
		t.Fatalf("report: %d datagrams for a %d-byte request", len(got), len(req))
	}
	_, stamps, err := train.ParseReport(got[0], nil)
	if err != nil || len(stamps) != 6 {
		t.Fatalf("report: %d stamps, %v", len(stamps), err)
	}
	for _, s := range stamps {
		if s.TxNs == 0 {
			t.Errorf("stamp %+v has no transmit time", s)
		}
	}
}

// Strangers get a cookie for a hello and at most one small refusal a
// second for anything else; nothing they send is answered in full.
func TestHandshake(t *testing.T) {
	srv, addr := start(t, Config{})
	c := newClient(t, "127.0.0.1:0", addr)

	// No cookie yet: five probes get one refusal, smaller than a probe.
	for i := range 5 {
		c.send(c.probe(i, 0, 2, 1000), c.probe(i, 1, 2, 1000))
	}
	got := c.read()
	if m := types(got); len(got) != 1 || m[train.TypeRefused] != 1 || len(got[0]) != train.RefusedLen {
		t.Fatalf("cookieless probes got %v", m)
	}
	if r, _ := train.ParseRefused(got[0]); r.Reason != train.RefusedCookie {
		t.Errorf("refusal %+v", r)
	}
	// A hello too small to outweigh its cookie is not answered.
	c.send(c.msg(train.Header{Type: train.TypeHello, Len: 1}, train.HelloMin-1))
	if got := c.read(); len(got) != 0 {
		t.Errorf("small hello answered with %v", types(got))
	}
	c.hello()
	c.send(c.probe(0, 0, 2, 1000), c.probe(0, 1, 2, 1000))
	if m := types(c.read()); m[train.TypeReply] != 2 {
		t.Errorf("with a cookie: %v", m)
	}

	// Another source (or port) replaying that cookie and session: dropped.
	spoof := newClient(t, "127.0.0.2:0", addr)
	spoof.cookie = c.cookie
	spoof.send(spoof.probe(1, 0, 2, 1000), spoof.probe(1, 1, 2, 1000))
	if m := types(spoof.read()); m[train.TypeReply] != 0 {
		t.Errorf("spoofed session answered: %v", m)
	}
	// The cookie of another session: dropped.
	c.session = 43
	c.send(c.probe(0, 0, 2, 1000), c.probe(0, 1, 2, 1000))
	if m := types(c.read()); m[train.TypeReply] != 0 {
		t.Errorf("cookie of another session accepted: %v", m)
	}
	st := srv.Stats()
	if st.Dropped[DropCookie] != 10+2+2 || st.Dropped[DropMalformed] != 1 {
		t.Errorf("drops %v", st.Dropped)
	}
	if st.SentBytes > st.ReceivedBytes {
		t.Errorf("sent %d bytes for %d received", st.SentBytes, st.ReceivedBytes)
	}
}

// Every metric the reflector exports is in the metrics table of
// docs/reflector.md.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/reflector.md")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 100)
	NewCollector(&Server{}).Describe(ch)
	close(ch)
	n := 0
	for d := range ch {
		name := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String())
		if name == nil {
			t.Fatalf("no name in %s", d)
		}
		n++
		if !strings.Contains(string(doc), "| `"+name[1]+"` |") {
			t.Errorf("docs/reflector.md lacks a row for %s", name[1])
		}
	}
	if n < 11 {
		t.Errorf("only %d metrics described", n)
	}
}
