// Package meshsim measures what a mesh of agents costs on the wire for
// its gossip: n serf members in one process, over memberlist's in-memory
// transport, with every byte each member sends counted (UDP packets and
// TCP streams alike). It measures membership alone, then one round in
// which every member publishes its whole row as abing mesh agent does
// (package meshagent), and reports both per member; the scale figures of
// docs/mesh.md come from it (abing-lab meshscale).
package meshsim

import (
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"
	"github.com/hashicorp/serf/serf"

	"github.com/abing-net/abing/meshagent"
)

// counter counts what one member sends.
type counter struct{ bytes atomic.Int64 }

// transport is a member's transport that counts what it sends.
type transport struct {
	*memberlist.MockTransport
	c       *counter
	streams chan net.Conn
}

func newTransport(t *memberlist.MockTransport, c *counter) *transport {
	tr := &transport{MockTransport: t, c: c, streams: make(chan net.Conn)}
	go func() {
		for conn := range t.StreamCh() {
			tr.streams <- &conn2{Conn: conn, c: c}
		}
	}()
	return tr
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.c.bytes.Add(int64(len(b)))
	return t.MockTransport.WriteTo(b, addr)
}

func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.c.bytes.Add(int64(len(b)))
	return t.MockTransport.WriteToAddress(b, a)
}

func (t *transport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	c, err := t.MockTransport.DialTimeout(addr, d)
	if err != nil {
		return nil, err
	}
	return &conn2{Conn: c, c: t.c}, nil
}

func (t *transport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	c, err := t.MockTransport.DialAddressTimeout(a, d)
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
	// Membership is the bytes a member sends per minute for membership
	// and failure detection alone (probes, gossip, push-pull).
	Membership float64
	// RowParts is how many events one member's whole row takes, and
	// RowBytes their size in all.
	RowParts, RowBytes int
	// RowRound is the bytes a member sends for one round in which every
	// member publishes its whole row once; Delivered the share of all
	// those parts that reached all members within the round's window.
	RowRound  float64
	Delivered float64
	RoundTime time.Duration // until every part reached every member (or the window ended)
}

// Config of a run.
type Config struct {
	Nodes  int
	Window time.Duration // membership is measured over this long
	// RoundWindow bounds the wait for a round of rows.
	RoundWindow time.Duration
	EventSize   int // meshagent.DefaultEventSize when 0
}

// Run builds the mesh, measures it and tears it down.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.EventSize == 0 {
		cfg.EventSize = meshagent.DefaultEventSize
	}
	res := Result{Nodes: cfg.Nodes}
	if cfg.Nodes < 2 {
		return res, fmt.Errorf("meshsim: %d nodes: want at least 2", cfg.Nodes)
	}
	network := &memberlist.MockNetwork{}
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
	name := func(i int) string { return fmt.Sprintf("n%04d", i) }
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
		ml.Transport = newTransport(network.NewTransport(name(i)), counters[i])
		ml.Logger = quiet
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
	for {
		all := true
		for _, m := range members {
			if m.NumNodes() != cfg.Nodes {
				all = false
				break
			}
		}
		if all {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return res, err
		}
		if time.Since(start) > time.Minute {
			return res, fmt.Errorf("meshsim: %d members did not converge within a minute", cfg.Nodes)
		}
	}
	res.Converged = time.Since(start)
	// Membership alone, after the joins have settled.
	if err := sleep(ctx, 2*time.Second); err != nil {
		return res, err
	}
	before := total(counters)
	if err := sleep(ctx, cfg.Window); err != nil {
		return res, err
	}
	res.Membership = float64(total(counters)-before) / float64(cfg.Nodes) / cfg.Window.Minutes()
	// One round of whole rows: each member's row holds a link to every
	// other, with values of realistic length.
	var parts [][][]byte
	for i := range cfg.Nodes {
		p := meshagent.Part{Node: name(i), Path: "direct", Iter: 1234,
			Coord: &coordinate.Coordinate{Vec: []float64{0.0123456789012, -0.00456789012345}, Error: 0.213456789, Adjustment: 0.000123456, Height: 0.00234567891}}
		for j := range cfg.Nodes {
			if j != i {
				abw, dbc := 812.3, 941.2
				p.Links = append(p.Links, meshagent.Link{Peer: name(j), Cost: 123.4, RTT: 23.456, Loss: 0.001, Jitter: 0.345, ABW: &abw, DBC: &dbc})
			}
		}
		b, err := meshagent.Split(p, cfg.EventSize)
		if err != nil {
			return res, err
		}
		parts = append(parts, b)
	}
	res.RowParts = len(parts[0])
	for _, b := range parts[0] {
		res.RowBytes += len(b)
	}
	for i := range received {
		received[i].Store(0)
	}
	before = total(counters)
	roundStart := time.Now()
	for i, ps := range parts {
		for _, b := range ps {
			if err := members[i].UserEvent(meshagent.EventPrefix+name(i), b, false); err != nil {
				return res, fmt.Errorf("meshsim: member %d publishing: %w", i, err)
			}
		}
	}
	want := int64(cfg.Nodes * res.RowParts) // every member takes every part, its own included
	for time.Since(roundStart) < cfg.RoundWindow {
		done := true
		for i := range received {
			if received[i].Load() < want {
				done = false
				break
			}
		}
		if done {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return res, err
		}
	}
	res.RoundTime = time.Since(roundStart)
	var got int64
	for i := range received {
		got += min(received[i].Load(), want)
	}
	res.Delivered = float64(got) / float64(want*int64(cfg.Nodes))
	// What the round cost beyond membership over the same time.
	res.RowRound = math.Max(0, float64(total(counters)-before)/float64(cfg.Nodes)-res.Membership*res.RoundTime.Minutes())
	return res, nil
}

func total(cs []*counter) int64 {
	var n int64
	for _, c := range cs {
		n += c.bytes.Load()
	}
	return n
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
