package reflector

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/internal/testenv"
	"github.com/abing-net/abing/train"
)

// Through a real socket: every kind of bad datagram is dropped, counted
// under its reason, and never answered with more than a refusal.
func TestBadDatagrams(t *testing.T) {
	key := auth.Key{Name: "site-a", Secret: []byte("0123456789abcdef")}
	for _, tc := range []struct {
		name  string
		keyed bool
		send  func(c *client) [][]byte
		drop  Drop
		n     uint64
	}{
		{"oversize", false, func(c *client) [][]byte { return [][]byte{c.probe(0, 0, 2, MaxDatagram+1)} }, DropOversize, 1},
		{"truncated header", false, func(c *client) [][]byte { return [][]byte{c.probe(0, 0, 2, 1000)[:30]} }, DropMalformed, 1},
		{"truncated client block", false, func(c *client) [][]byte { return [][]byte{c.probe(0, 0, 2, 1000)[:60]} }, DropMalformed, 1},
		{"garbage", false, func(c *client) [][]byte { return [][]byte{bytes.Repeat([]byte{0xa5}, 500), []byte("ABWE")} }, DropMalformed, 2},
		{"wrong version", false, func(c *client) [][]byte { b := c.probe(0, 0, 2, 100); b[4] = 1; return [][]byte{b} }, DropMalformed, 1},
		{"reply sent to reflector", false, func(c *client) [][]byte {
			b := make([]byte, 100)
			train.PutHeader(b, &train.Header{Type: train.TypeReply, Len: 1})
			return [][]byte{b}
		}, DropMalformed, 1},
		{"position outside train", false, func(c *client) [][]byte { b := c.probe(0, 0, 2, 100); b[21] = 9; return [][]byte{b} }, DropMalformed, 1},
		{"replayed", false, func(c *client) [][]byte { p := c.probe(0, 0, 3, 500); return [][]byte{p, p, p} }, DropReplayed, 2},
		{"train too long", false, func(c *client) [][]byte { return [][]byte{c.probe(0, 0, 65535, 500)} }, DropMemory, 1},
		{"unsigned", true, func(c *client) [][]byte { c.signer = nil; return [][]byte{c.probe(0, 0, 2, 500)} }, DropUnsigned, 1},
		{"wrongly signed", true, func(c *client) [][]byte {
			c.signer = auth.NewSigner(auth.Key{Name: "site-a", Secret: []byte("fedcba9876543210")})
			return [][]byte{c.probe(0, 0, 2, 500)}
		}, DropBadSignature, 1},
		{"tampered after signing", true, func(c *client) [][]byte { b := c.probe(0, 0, 2, 500); b[400] = 1; return [][]byte{b} }, DropBadSignature, 1},
		{"stale", true, func(c *client) [][]byte {
			return [][]byte{c.msg(train.Header{Type: train.TypeProbe, Len: 2, SentNs: time.Now().Add(-time.Minute).UnixNano()}, 500)}
		}, DropStale, 1},
		{"signed replay", true, func(c *client) [][]byte { p := c.probe(0, 0, 3, 500); return [][]byte{p, p} }, DropReplayed, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{}
			if tc.keyed {
				cfg.Keys = []auth.Key{key}
			}
			srv, addr := start(t, cfg)
			c := newClient(t, "127.0.0.1:0", addr)
			if tc.keyed {
				c.signer = auth.NewSigner(key)
			}
			c.hello()
			before := srv.Stats()
			for _, b := range tc.send(c) {
				c.send(b)
			}
			got := c.read()
			st := srv.Stats()
			if d := st.Dropped[tc.drop] - before.Dropped[tc.drop]; d != tc.n {
				t.Errorf("%s drops: %d, want %d (all drops %v)", tc.drop, d, tc.n, st.Dropped)
			}
			if d := st.DroppedTotal() - before.DroppedTotal(); d != tc.n {
				t.Errorf("%d drops in all, want %d: %v", d, tc.n, st.Dropped)
			}
			for _, b := range got {
				if h, _ := train.ParseHeader(b); h.Type != train.TypeRefused && h.Type != train.TypeReply {
					t.Errorf("answered with a %v", h.Type)
				}
			}
			if st.SentBytes-before.SentBytes > st.ReceivedBytes-before.ReceivedBytes {
				t.Errorf("sent %d bytes for %d", st.SentBytes-before.SentBytes, st.ReceivedBytes-before.ReceivedBytes)
			}
		})
	}
}

// A source over budget is told once and then dropped; its neighbour in the
// same /24 is not affected until the prefix budget runs out.
func TestBudgets(t *testing.T) {
	lim := DefaultLimits()
	lim.Source = Budget{Rate: 8, Burst: MaxDatagram, PPS: 0.001, PacketBurst: 7} // 7 packets, no refill to speak of
	srv, addr := start(t, Config{Limits: lim})
	c := newClient(t, "127.0.0.1:0", addr)
	c.hello() // 1 packet
	for i := range 4 {
		c.send(c.probe(i, 0, 2, 1000), c.probe(i, 1, 2, 1000))
	}
	got := c.read()
	m := types(got)
	// 1 hello + 8 probes = 9 packets against a burst of 7 packets: the
	// hello and three trains fit, the fourth is refused once.
	if m[train.TypeReply] != 6 || m[train.TypeRefused] != 1 {
		t.Errorf("got %v, want 6 replies and 1 refusal", m)
	}
	for _, b := range got {
		if h, _ := train.ParseHeader(b); h.Type == train.TypeRefused {
			if r, _ := train.ParseRefused(b); r.Reason != train.RefusedRate {
				t.Errorf("refusal %+v", r)
			}
		}
	}
	if st := srv.Stats(); st.Dropped[DropRateSource] != 2 || st.Refusals != 1 {
		t.Errorf("rate drops %d, refusals %d", st.Dropped[DropRateSource], st.Refusals)
	}
	n := newClient(t, "127.0.0.2:0", addr)
	n.hello()
	n.send(n.probe(0, 0, 2, 1000), n.probe(0, 1, 2, 1000))
	if m := types(n.read()); m[train.TypeReply] != 2 {
		t.Errorf("neighbour got %v", m)
	}
}

func TestAllowDeny(t *testing.T) {
	p := netip.MustParsePrefix
	srv, addr := start(t, Config{Allow: []netip.Prefix{p("127.0.0.0/24")}, Deny: []netip.Prefix{p("127.0.0.2/32")}})
	for _, tc := range []struct {
		src    string
		answer bool
	}{{"127.0.0.1:0", true}, {"127.0.0.2:0", false}, {"127.0.1.1:0", false}} {
		c := newClient(t, tc.src, addr)
		c.send(c.msg(train.Header{Type: train.TypeHello, Len: 1}, train.HelloMin))
		if got := len(c.read()) > 0; got != tc.answer {
			t.Errorf("%s answered: %v", tc.src, got)
		}
	}
	if d := srv.Stats().Dropped[DropDenied]; d != 2 {
		t.Errorf("denied %d", d)
	}
}

// /metrics, read over HTTP as Prometheus would.
func TestMetrics(t *testing.T) {
	srv, addr := start(t, Config{})
	c := newClient(t, "127.0.0.1:0", addr)
	c.hello()
	c.send(c.probe(0, 0, 2, 1000), c.probe(0, 1, 2, 1000), []byte("junk"))
	c.read()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(srv))
	web := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer web.Close()
	resp, err := http.Get(web.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`abing_reflector_packets_total{direction="received"} 4`,
		`abing_reflector_packets_total{direction="sent"} 3`,
		`abing_reflector_dropped_packets_total{reason="malformed"} 1`,
		`abing_reflector_dropped_packets_total{reason="rate_source"} 0`,
		`abing_reflector_sent_messages_total{type="cookie"} 1`,
		`abing_reflector_sent_messages_total{type="reply"} 2`,
		`abing_reflector_sessions{state="active"} 1`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// Refusals are logged as one summary per interval, with the prefixes that
// caused most of them, and not at all when nothing was refused.
func TestSummaryLog(t *testing.T) {
	var log testenv.SyncBuffer
	_, addr := start(t, Config{SummaryEvery: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	c := newClient(t, "127.0.0.5:0", addr)
	for i := range 50 {
		c.send(c.probe(i, 0, 2, 200)) // no cookie
	}
	time.Sleep(700 * time.Millisecond)
	out := log.String()
	if strings.Count(out, "msg=refusals") != 1 || !strings.Contains(out, "bad_cookie=50") ||
		!strings.Contains(out, `top_prefixes="127.0.0.0/24=50"`) {
		t.Errorf("log:\n%s", out)
	}
}

// With keys, a source over budget is told so only if its datagram is
// signed: unsigned senders never get an answer.
func TestBudgetsKeyed(t *testing.T) {
	key := auth.Key{Name: "site-a", Secret: []byte("0123456789abcdef")}
	lim := DefaultLimits()
	lim.Source = Budget{Rate: 8, Burst: MaxDatagram, PPS: 0.001, PacketBurst: 1}
	srv, addr := start(t, Config{Limits: lim, Keys: []auth.Key{key}})
	for _, tc := range []struct {
		src     string
		signed  bool
		refused int
	}{{"127.0.0.1:0", false, 0}, {"127.0.0.2:0", true, 1}} {
		c := newClient(t, tc.src, addr)
		if tc.signed {
			c.signer = auth.NewSigner(key)
		}
		for i := range 3 {
			c.send(c.probe(i, 0, 2, 500))
		}
		if m := types(c.read()); len(m) != tc.refused || m[train.TypeRefused] != tc.refused {
			t.Errorf("%s (signed %v): got %v, want %d refusal", tc.src, tc.signed, m, tc.refused)
		}
	}
	if d := srv.Stats().Dropped[DropRateSource]; d != 4 {
		t.Errorf("rate drops %d, want 4", d)
	}
}

// With keys, everything the reflector sends is signed with the sender's
// key, and still never larger than what caused it: a cookie for the
// smallest hello, replies to the smallest probes, a refusal, a report.
func TestKeyedAnswersSignedNeverLarger(t *testing.T) {
	key := auth.Key{Name: "site-a", Secret: []byte("0123456789abcdef")}
	lim := DefaultLimits()
	lim.Source = Budget{Rate: 8, Burst: MaxDatagram, PPS: 0.001, PacketBurst: 5} // the 6th datagram is refused
	srv, addr := start(t, Config{Keys: []auth.Key{key}, Limits: lim})
	c := newClient(t, "127.0.0.1:0", addr)
	c.signer = auth.NewSigner(key)
	v := auth.NewVerifier([]auth.Key{key})
	c.hello() // 1 datagram of train.HelloMin bytes
	req := c.msg(train.Header{Type: train.TypeReportRequest, Len: 1}, train.SenderBody+train.ReportRequestLen)
	train.PutReportRequest(req, train.ReportRequest{FirstTrain: 0, Trains: 1})
	c.signer.Sign(req) // again, over the body
	sent := [][]byte{c.probe(0, 0, 2, train.SenderBody), c.probe(0, 1, 2, train.SenderBody)}
	c.send(sent...)
	time.Sleep(50 * time.Millisecond)
	c.send(req)
	over := c.probe(1, 0, 2, train.SenderBody)
	c.send(c.probe(1, 1, 2, train.SenderBody), over) // 5th and 6th: the 6th is refused
	got := c.read()
	m := types(got)
	// Replies: train 0 whole, and of train 1 the packet that got in
	// (answered when the train times out).
	if m[train.TypeReply] != 3 || m[train.TypeReport] != 1 || m[train.TypeRefused] != 1 {
		t.Fatalf("got %v; drops %s", m, dropString(srv.Stats()))
	}
	for _, b := range got {
		h, _ := train.ParseHeader(b)
		if name, err := v.VerifyTrailer(b); err != nil || name != "site-a" || h.Flags&train.FlagSigned == 0 {
			t.Errorf("%v (%d bytes) not signed: %v", h.Type, len(b), err)
		}
		limit := train.SenderBody
		if h.Type == train.TypeReport {
			limit = len(req)
		}
		if len(b) > limit {
			t.Errorf("%v: %d bytes for a request of %d", h.Type, len(b), limit)
		}
	}
}

// A cookie states the budget a source has here when the hello leaves room
// for it, and never makes the answer larger than the hello.
func TestCookieStatesBudget(t *testing.T) {
	cfg := Config{Limits: DefaultLimits()}
	cfg.Limits.Source.Rate = 3e6
	_, addr := start(t, cfg)
	for _, tc := range []struct {
		hello  int
		budget bool
	}{{train.HelloMin, true}, {train.HelloMin + 100, true}, {train.HelloMin - 1, false}} {
		c := newClient(t, "127.0.0.1:0", addr)
		c.send(c.msg(train.Header{Type: train.TypeHello, Len: 1}, tc.hello))
		got := c.read()
		if tc.hello < train.HelloMin {
			if len(got) != 0 {
				t.Errorf("hello of %d bytes answered", tc.hello)
			}
			continue
		}
		if len(got) != 1 || len(got[0]) > tc.hello {
			t.Fatalf("hello of %d bytes: %d answers, %d bytes", tc.hello, len(got), len(got[0]))
		}
		u, ok := train.ParseBudget(got[0])
		if ok != tc.budget || u.Rate != 3e6 || u.Burst != 1<<20 || u.MaxTrainLen != 1024 || u.PacedShare != 0.1 ||
			u.MaxReplySpan != int64(100*time.Millisecond) {
			t.Errorf("hello of %d bytes: budget %+v (%v)", tc.hello, u, ok)
		}
	}
}
