// Package meshsim measures what a mesh of agents costs on the wire for
// its gossip: n serf members in one process, on loopback, with every byte
// each member sends counted (UDP packets and TCP streams alike). It measures membership alone, then a steady state
// in which every member publishes parts of its row (package meshagent) as
// fast as the agent's gossip budget lets it, the most an agent sends; the
// scale figures of docs/mesh.md come from it (abing-lab meshscale).
package meshsim

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"
	"github.com/hashicorp/serf/serf"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/internal/testenv"
	"github.com/abing-net/abing/meshagent"
)

// counter counts what one member sends.
type counter struct{ bytes atomic.Int64 }

// transport is a member's transport that counts what it sends.
type transport struct {
	memberlist.NodeAwareTransport
	c       *counter
	streams chan net.Conn
}

func newTransport(t memberlist.NodeAwareTransport, c *counter) *transport {
	tr := &transport{NodeAwareTransport: t, c: c, streams: make(chan net.Conn)}
	go func() {
		for conn := range t.StreamCh() {
			tr.streams <- &conn2{Conn: conn, c: c}
		}
	}()
	return tr
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.c.bytes.Add(int64(len(b)))
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.c.bytes.Add(int64(len(b)))
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *transport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	c, err := t.NodeAwareTransport.DialTimeout(addr, d)
	if err != nil {
		return nil, err
	}
	return &conn2{Conn: c, c: t.c}, nil
}

func (t *transport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	c, err := t.NodeAwareTransport.DialAddressTimeout(a, d)
	if err != nil {
		return nil, err
	}
	return &conn2{Conn: c, c: t.c}, nil
}

func (t *transport) StreamCh() <-chan net.Conn { return t.streams }

// conn2 counts what is written to a stream.
type conn2 struct {
	net.Conn
	c *counter
}

func (c *conn2) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.c.bytes.Add(int64(n))
	return n, err
}

// Result is what a mesh of Nodes members cost.
type Result struct {
	Nodes int
	// Converged: every member saw every other this long after the joins.
	Converged time.Duration
	// Membership is the bytes a member sends a minute for membership and
	// failure detection alone (probes, gossip, push-pull).
	Membership float64
	// Rows is the bytes a member sends a minute, membership included,
	// while every member publishes parts at the budget's rate (PartRate,
	// parts a second) for the window.
	Rows     float64
	PartRate float64
	PartSize int // bytes of one part (a row of Nodes-1 links, split)
	// Delivered is the share of the parts published that reached every
	// member by the end of the window and a grace of 10 s.
	Delivered float64
}

// Config of a run.
type Config struct {
	Nodes     int
	Window    time.Duration // each phase is measured over this long
	EventSize int           // config.DefaultEventSize when 0
}

// Run builds the mesh, measures it and tears it down.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.EventSize == 0 {
		cfg.EventSize = config.DefaultEventSize
	}
	res := Result{Nodes: cfg.Nodes}
	if cfg.Nodes < 2 {
		return res, fmt.Errorf("meshsim: %d nodes: want at least 2", cfg.Nodes)
	}
	counters := make([]*counter, cfg.Nodes)
	members := make([]*serf.Serf, cfg.Nodes)
	received := make([]atomic.Int64, cfg.Nodes) // row parts each member took
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() {
		close(stop)
		for _, m := range members {
			if m != nil {
				m.Shutdown()
			}
		}
		wg.Wait()
	}()
	quiet := log.New(io.Discard, "", 0)
	for i := range cfg.Nodes {
		counters[i] = &counter{}
		conf := serf.DefaultConfig()
		conf.NodeName = name(i)
		conf.Tags = map[string]string{"abing": "1", "port": "8176", "paths": fmt.Sprintf("direct=198.18.%d.%d", i/250, 1+i%250)}
		conf.Logger = quiet
		conf.DisableCoordinates = true
		conf.UserEventSizeLimit = cfg.EventSize
		events := make(chan serf.Event, 1024)
		conf.EventCh = events
		ml := memberlist.DefaultLANConfig()
		ml.Name = name(i)
		ml.BindAddr, ml.BindPort, ml.Logger = "127.0.0.1", 0, quiet
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0, Logger: quiet})
		if err != nil {
			return res, fmt.Errorf("meshsim: member %d: %w", i, err)
		}
		ml.Transport = newTransport(nt, counters[i])
		conf.MemberlistConfig = ml
		s, err := serf.Create(conf)
		if err != nil {
			return res, fmt.Errorf("meshsim: member %d: %w", i, err)
		}
		members[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case e := <-events:
					if _, ok := e.(serf.UserEvent); ok {
						received[i].Add(1)
					}
				}
			}
		}()
	}
	first := members[0].LocalMember()
	join := net.JoinHostPort(first.Addr.String(), fmt.Sprint(first.Port))
	start := time.Now()
	for i := 1; i < cfg.Nodes; i++ {
		if _, err := members[i].Join([]string{join}, true); err != nil {
			return res, fmt.Errorf("meshsim: member %d joining: %w", i, err)
		}
	}
	for !converged(members) {
		if err := testenv.Sleep(ctx, 100*time.Millisecond); err != nil {
			return res, err
		}
		if time.Since(start) > 3*time.Minute {
			lo, hi := cfg.Nodes, 0
			for _, m := range members {
				lo, hi = min(lo, m.NumNodes()), max(hi, m.NumNodes())
			}
			return res, fmt.Errorf("meshsim: %d members did not converge within 3 minutes: each knows %d to %d", cfg.Nodes, lo, hi)
		}
	}
	res.Converged = time.Since(start)
	// Membership alone, after the joins have settled.
	if err := testenv.Sleep(ctx, 2*time.Second); err != nil {
		return res, err
	}
	before := total(counters)
	if err := testenv.Sleep(ctx, cfg.Window); err != nil {
		return res, err
	}
	res.Membership = float64(total(counters)-before) / float64(cfg.Nodes) / cfg.Window.Minutes()
	// Rows at the budget's rate: each member publishes parts of a row
	// that holds a link to every other, with values of realistic length.
	parts := make([][]byte, cfg.Nodes)
	for i := range cfg.Nodes {
		b, err := meshagent.Split(Row(i, cfg.Nodes), cfg.EventSize)
		if err != nil {
			return res, err
		}
		parts[i] = b[0] // a full part
	}
	res.PartSize = len(parts[0])
	res.PartRate = meshagent.GossipRate(memberlist.DefaultLANConfig(), cfg.Nodes)
	for i := range received {
		received[i].Store(0)
	}
	before = total(counters)
	var published atomic.Int64
	var pubs sync.WaitGroup
	phase, cancel := context.WithTimeout(ctx, cfg.Window)
	for i := range cfg.Nodes {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			every := time.Duration(float64(time.Second) / res.PartRate)
			// Members start at random points of the period, as agents
			// would.
			next := time.Now().Add(time.Duration(float64(every) * float64(i) / float64(cfg.Nodes)))
			for testenv.Sleep(phase, time.Until(next)) == nil {
				if members[i].UserEvent(meshagent.EventPrefix+name(i), parts[i], false) == nil {
					published.Add(1)
				}
				next = next.Add(every)
			}
		}()
	}
	pubs.Wait()
	cancel()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.Rows = float64(total(counters)-before) / float64(cfg.Nodes) / cfg.Window.Minutes()
	want := published.Load() // every member takes every part, its own included
	for grace := time.Now().Add(10 * time.Second); time.Now().Before(grace); {
		if delivered(received, want) == 1 {
			break
		}
		if err := testenv.Sleep(ctx, 100*time.Millisecond); err != nil {
			return res, err
		}
	}
	res.Delivered = delivered(received, want)
	return res, nil
}

func name(i int) string { return fmt.Sprintf("n%04d", i) }

// Row is member i's whole row in a mesh of n: a link to every other, with
// values of realistic length.
func Row(i, n int) meshagent.Part {
	p := meshagent.Part{Node: name(i), Path: "direct", Iter: 1234,
		Coord: &coordinate.Coordinate{Vec: []float64{0.0123456789012, -0.00456789012345}, Error: 0.213456789, Adjustment: 0.000123456, Height: 0.00234567891}}
	for j := range n {
		if j != i {
			abw, dbc := 812.3, 941.2
			p.Links = append(p.Links, meshagent.Link{Peer: name(j), Cost: 123.4, RTT: 23.456, Loss: 0.001, Jitter: 0.345, ABW: &abw, DBC: &dbc})
		}
	}
	return p
}

// RowParts is how many events a whole row takes in a mesh of n.
func RowParts(n, eventSize int) (int, error) {
	b, err := meshagent.Split(Row(0, n), eventSize)
	return len(b), err
}

func converged(members []*serf.Serf) bool {
	for _, m := range members {
		if m.NumNodes() != len(members) {
			return false
		}
	}
	return true
}

// delivered is the share of want parts that every member took.
func delivered(received []atomic.Int64, want int64) float64 {
	if want == 0 {
		return 1
	}
	var got int64
	for i := range received {
		got += min(received[i].Load(), want)
	}
	return float64(got) / float64(want*int64(len(received)))
}

func total(cs []*counter) int64 {
	var n int64
	for _, c := range cs {
		n += c.bytes.Load()
	}
	return n
}
