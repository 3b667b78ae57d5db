package netloc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixed is a Source of n other nodes, 10.0.0.1:5001 … (the last one IPv6),
// most recent first.
type fixed struct{ nodes []Node }

func newFixed(n int) *fixed {
	f := &fixed{}
	t0 := time.Unix(1531952897, 0)
	for i := range n {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(1 + i%250)}), 5001)
		if i == n-1 {
			addr = netip.MustParseAddrPort("[fd00::9]:5001")
		}
		f.nodes = append(f.nodes, Node{Name: fmt.Sprintf("node%d", i), Addr: addr, UpdatedAt: t0.Add(-time.Duration(i) * time.Second),
			Location: Location{X1: 0.001 * float64(i), X2: -0.002, Height: 0.0001, PosErr: 0.2, Iteration: uint64(i)}})
	}
	return f
}

func (f *fixed) Local() Location {
	return Location{X1: 0.0123, X2: 0.0045, Height: 0.0002, PosErr: 0.15, Iteration: 26}
}
func (f *fixed) Nodes() []Node { return f.nodes }

// start serves src on a loopback port until the test ends, and says how
// long Serve took to return once told to stop.
func start(t *testing.T, src Source, opts Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, src, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(time.Second):
			t.Error("Serve did not return within a second of its context ending")
		}
	})
	return ln.Addr().String()
}

type client struct {
	c  net.Conn
	rd *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c: c, rd: bufio.NewReader(c)}
}

func (c *client) ask(t *testing.T, line string) string {
	t.Helper()
	fmt.Fprintln(c.c, line)
	c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	s, err := c.rd.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return strings.TrimSpace(s)
}

// Every action, with exactly netloc's field names, and errors that keep
// the connection usable.
func TestActions(t *testing.T) {
	c := dial(t, start(t, newFixed(12), Options{}))
	for _, tc := range []struct{ req, want string }{
		{`{"action":"get_location"}`, `{"loc":{"x1":0.0123,"x2":0.0045,"height":0.0002,"pos_err":0.15,"iteration":26},"type":"location"}`},
		{`{"action":"get_node_info","node_addr":"10.0.0.2:5001"}`,
			`{"info":{"ip":"10.0.0.2","port":5001,"name":"node1","location":{"x1":0.001,"x2":-0.002,"height":0.0001,"pos_err":0.2,"iteration":1},"updated_at":1531952896},"type":"node_info"}`},
		{`{"action":"get_node_info","node_addr":"[fd00::9]:5001"}`, `"name":"node11"`},
		{`{"action":"get_node_info","node_addr":"10.0.0.99:5001"}`, `{"error":"node 10.0.0.99:5001: not known","type":"error"}`},
		{`{"action":"get_node_info","node_addr":"nonsense"}`, `{"error":"node_addr \"nonsense\": want IP:port","type":"error"}`},
		{`{"action":"get_recent_nodes","max_nodes":1}`,
			`{"nodes":[{"flags":{"is_addr_ipv6":false},"ip":"10.0.0.1","port":5001,"name":"node0","location":{"x1":0,"x2":-0.002,"height":0.0001,"pos_err":0.2,"iteration":0}}],"type":"recent_nodes"}`},
		{`{"action":"get_recent_nodes","max_nodes":-1}`, `max_nodes -1: want 0 to`},
		{`{"action":"dance"}`, `unknown action \"dance\"`},
		{`{"action":`, `"type":"error"`},
		{`[1,2]`, `"type":"error"`},
		{`{}`, `{"error":"no action","type":"error"}`},
	} {
		if got := c.ask(t, tc.req); !strings.Contains(got, tc.want) {
			t.Errorf("%s\n got %s\nwant %s", tc.req, got, tc.want)
		}
	}
	var recent, full struct {
		Type  string
		Nodes []struct {
			Flags struct {
				IsAddrIPv6 bool `json:"is_addr_ipv6"`
			}
			Name string
		}
	}
	json.Unmarshal([]byte(c.ask(t, `{"action":"get_recent_nodes"}`)), &recent)
	json.Unmarshal([]byte(c.ask(t, ``+"\n"+`{"action":"get_full_map"}`)), &full) // an empty line is skipped
	if recent.Type != "recent_nodes" || len(recent.Nodes) != DefaultRecent || recent.Nodes[0].Name != "node0" {
		t.Errorf("recent nodes: %+v", recent)
	}
	if full.Type != "full_map" || len(full.Nodes) != 12 || !full.Nodes[11].Flags.IsAddrIPv6 || full.Nodes[0].Flags.IsAddrIPv6 {
		t.Errorf("full map: %+v", full)
	}
	// A line too long is answered with an error, and the connection ends.
	fmt.Fprintln(c.c, `{"action":"`+strings.Repeat("x", MaxLine)+`"}`)
	c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if s, _ := c.rd.ReadString('\n'); !strings.Contains(s, "longer than 4096 bytes") {
		t.Errorf("long line: %q", s)
	}
	if _, err := c.rd.ReadString('\n'); err == nil || isTimeout(err) {
		t.Errorf("after a long line: %v, want the connection closed", err)
	}
}

// A client that asks and never reads holds only its own connection, and
// only for WriteTimeout: others are answered meanwhile, and its connection
// is closed.
func TestClientThatNeverReads(t *testing.T) {
	addr := start(t, newFixed(5000), Options{WriteTimeout: 200 * time.Millisecond})
	greedy := dial(t, addr)
	// A receive buffer of a few KB, so that the first answer (600 KB)
	// cannot be taken without reading: with loopback's default buffers of
	// megabytes, a server slowed by the race detector on a busy machine
	// had not filled them when the test began to drain, and so had no
	// reason to close (CI: 48 MB drained in 5 s, the server still
	// answering).
	if err := greedy.c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 200 { // some 100 MB of answers asked for
			if _, err := fmt.Fprintln(greedy.c, `{"action":"get_full_map"}`); err != nil {
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	other := dial(t, addr)
	start := time.Now()
	if got := other.ask(t, `{"action":"get_location"}`); !strings.Contains(got, `"type":"location"`) || time.Since(start) > time.Second {
		t.Errorf("another client: %s after %v", got, time.Since(start))
	}
	// The greedy connection is closed: draining it ends, within a few
	// write timeouts, instead of going on.
	time.Sleep(500 * time.Millisecond)
	greedy.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.Copy(io.Discard, greedy.c) // ends at EOF, or at a reset: the server closed with requests unread
	if isTimeout(err) {
		t.Errorf("greedy client: %v after %d bytes; want the server to close it", err, n)
	}
	if n > 200*600_000 {
		t.Errorf("greedy client got all %d bytes: the server never gave up", n)
	}
}

// closedWith reads c to its end and says whether the server said msg in
// an error line before closing it.
func (c *client) closedWith(t *testing.T, msg string) bool {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c.rd)
	if isTimeout(err) {
		t.Errorf("still open: %v (read %q)", err, b)
		return false
	}
	return strings.Contains(string(b), `"type":"error"`) && strings.Contains(string(b), msg)
}

// A new connection beyond MaxConns makes room: the one waiting longest for
// its next request is told why and closed; the others are served.
func TestConnCaps(t *testing.T) {
	addr := start(t, newFixed(1), Options{MaxConns: 2})
	a, b := dial(t, addr), dial(t, addr)
	a.ask(t, `{"action":"get_location"}`)
	b.ask(t, `{"action":"get_location"}`)
	c := dial(t, addr)
	if got := c.ask(t, `{"action":"get_location"}`); !strings.Contains(got, `"type":"location"`) {
		t.Errorf("a third connection: %s", got)
	}
	if !a.closedWith(t, "closed to make room") {
		t.Error("the oldest connection was not told why it was closed")
	}
	if got := b.ask(t, `{"action":"get_location"}`); !strings.Contains(got, `"type":"location"`) {
		t.Errorf("the second connection: %s", got)
	}
}

// Connections that never send a whole line (the default cap of them, and
// more) keep nobody out: a new client is answered within a second. Before,
// 64 of them locked everyone out for 5 minutes.
func TestSilentConnections(t *testing.T) {
	addr := start(t, newFixed(1), Options{})
	for range 200 {
		c := dial(t, addr)
		io.WriteString(c.c, `{"action":`)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if got := dial(t, addr).ask(t, `{"action":"get_location"}`); !strings.Contains(got, `"type":"location"`) || time.Since(start) > time.Second {
		t.Errorf("a client after 200 silent connections: %s after %v", got, time.Since(start))
	}
}

// Blank lines do not keep a connection open past IdleTimeout, requests do
// not keep it open past Lifetime; each closing is said in an error line.
func TestIdleAndLifetime(t *testing.T) {
	addr := start(t, newFixed(1), Options{IdleTimeout: 300 * time.Millisecond, Lifetime: 900 * time.Millisecond})
	blank := dial(t, addr)
	go func() {
		for range 40 {
			if _, err := io.WriteString(blank.c, "\n"); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	t0 := time.Now()
	if !blank.closedWith(t, "no request for 300ms") {
		t.Error("blank lines: not closed with the reason")
	}
	if took := time.Since(t0); took > 800*time.Millisecond {
		t.Errorf("blank lines kept the connection open %v (idle timeout 300ms)", took)
	}
	busy := dial(t, addr)
	t0 = time.Now()
	for time.Since(t0) < 700*time.Millisecond {
		busy.ask(t, `{"action":"get_location"}`)
		time.Sleep(100 * time.Millisecond)
	}
	if !busy.closedWith(t, "connection open for 900ms") {
		t.Error("lifetime: not closed with the reason")
	}
	if took := time.Since(t0); took > 1500*time.Millisecond {
		t.Errorf("a busy connection lasted %v (lifetime 900ms)", took)
	}
}

// The same over HTTP: an answer as one object; an error with status 400.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler(newFixed(3)))
	defer srv.Close()
	var mu sync.Mutex
	get := func(q string) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		resp, err := http.Get(srv.URL + "?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("action=get_recent_nodes&max_nodes=2"); code != 200 || strings.Count(body, `"name"`) != 2 {
		t.Errorf("%d %s", code, body)
	}
	if code, body := get("action=get_node_info&node_addr=10.0.0.2:5001"); code != 200 || !strings.Contains(body, `"updated_at":1531952896`) {
		t.Errorf("%d %s", code, body)
	}
	for _, q := range []string{"action=nope", "action=get_recent_nodes&max_nodes=x", ""} {
		if code, body := get(q); code != 400 {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
}
