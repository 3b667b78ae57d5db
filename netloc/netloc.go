// Package netloc serves network coordinates in the protocol of netloc, an
// earlier Vivaldi agent, so that tools written for it work unchanged:
// newline-delimited JSON on a local TCP address (127.0.0.1:4001 by
// default), one request object a line, answered by one object a line.
//
//	{"action":"get_location"}
//	  → {"type":"location","loc":{"x1":…,"x2":…,"height":…,"pos_err":…,"iteration":26}}
//	{"action":"get_node_info","node_addr":"10.0.0.2:5001"}
//	  → {"type":"node_info","info":{"ip":"10.0.0.2","port":5001,"name":"first","location":{…},"updated_at":1531952897}}
//	{"action":"get_recent_nodes","max_nodes":1}   (default 10)
//	  → {"type":"recent_nodes","nodes":[{"flags":{"is_addr_ipv6":false},"ip":…,"port":…,"name":…,"location":{…}}]}
//	{"action":"get_full_map"}
//	  → {"type":"full_map","nodes":[…]}   (every node but the local one)
//
// Coordinates are in seconds; iteration counts a node's coordinate
// updates, pos_err is its error estimate. A request that is not JSON, an
// unknown action or a node nobody knows is answered with
// {"type":"error","error":"…"}, and the connection stays open. Handler
// serves the same answers over HTTP.
package netloc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/abing-net/abing/internal/connlimit"
)

// DefaultAddr is where agents listen by default: loopback only.
const DefaultAddr = "127.0.0.1:4001"

// Location is a node's coordinate as netloc reports it.
type Location struct {
	X1        float64 `json:"x1"`
	X2        float64 `json:"x2"`
	Height    float64 `json:"height"`
	PosErr    float64 `json:"pos_err"`
	Iteration uint64  `json:"iteration"`
}

// Node is another node of the mesh.
type Node struct {
	Name      string
	Addr      netip.AddrPort
	Location  Location
	UpdatedAt time.Time
}

// Source is what the API answers from: the local node's location and the
// other nodes. Its methods are called concurrently.
type Source interface {
	Local() Location
	// Nodes are every other node, most recently updated first.
	Nodes() []Node
}

// Limits of a request line and of max_nodes, and the default of
// max_nodes.
const (
	MaxLine        = 4096
	DefaultRecent  = 10
	MaxRecentNodes = 100_000
)

// Options bound a server; zero fields take the defaults.
type Options struct {
	MaxConns          int           // connections at once: 64
	MaxConnsPerSource int           // from one address: 16
	IdleTimeout       time.Duration // a client's silence before a request: 30s (blank lines do not count)
	Lifetime          time.Duration // a connection's whole life: 10m
	WriteTimeout      time.Duration // for an answer to be taken: 5s
}

func (o Options) withDefaults() Options {
	if o.MaxConns <= 0 {
		o.MaxConns = 64
	}
	if o.MaxConnsPerSource <= 0 {
		o.MaxConnsPerSource = 16
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 10 * time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	return o
}

type request struct {
	Action   string `json:"action"`
	NodeAddr string `json:"node_addr"`
	MaxNodes *int   `json:"max_nodes"`
}

type flags struct {
	IsAddrIPv6 bool `json:"is_addr_ipv6"`
}

type nodeJSON struct {
	Flags    flags    `json:"flags"`
	IP       string   `json:"ip"`
	Port     uint16   `json:"port"`
	Name     string   `json:"name"`
	Location Location `json:"location"`
}

type nodeInfo struct {
	IP        string   `json:"ip"`
	Port      uint16   `json:"port"`
	Name      string   `json:"name"`
	Location  Location `json:"location"`
	UpdatedAt int64    `json:"updated_at"`
}

func toJSON(n Node) nodeJSON {
	return nodeJSON{Flags: flags{IsAddrIPv6: n.Addr.Addr().Is6() && !n.Addr.Addr().Is4In6()}, IP: n.Addr.Addr().Unmap().String(),
		Port: n.Addr.Port(), Name: n.Name, Location: n.Location}
}

// Answer is the answer to one request line.
func Answer(src Source, line []byte) any {
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return errAnswer(fmt.Sprintf("bad request: %v", err))
	}
	switch req.Action {
	case "get_location":
		return map[string]any{"type": "location", "loc": src.Local()}
	case "get_node_info":
		ap, err := netip.ParseAddrPort(req.NodeAddr)
		if err != nil {
			return errAnswer(fmt.Sprintf("node_addr %q: want IP:port", req.NodeAddr))
		}
		for _, n := range src.Nodes() {
			if n.Addr.Addr().Unmap() == ap.Addr().Unmap() && n.Addr.Port() == ap.Port() {
				j := toJSON(n)
				return map[string]any{"type": "node_info", "info": nodeInfo{IP: j.IP, Port: j.Port, Name: j.Name,
					Location: j.Location, UpdatedAt: n.UpdatedAt.Unix()}}
			}
		}
		return errAnswer(fmt.Sprintf("node %s: not known", ap))
	case "get_recent_nodes":
		max := DefaultRecent
		if req.MaxNodes != nil {
			max = *req.MaxNodes
		}
		if max < 0 || max > MaxRecentNodes {
			return errAnswer(fmt.Sprintf("max_nodes %d: want 0 to %d", max, MaxRecentNodes))
		}
		return map[string]any{"type": "recent_nodes", "nodes": nodesJSON(src.Nodes(), max)}
	case "get_full_map":
		return map[string]any{"type": "full_map", "nodes": nodesJSON(src.Nodes(), -1)}
	case "":
		return errAnswer("no action")
	}
	return errAnswer(fmt.Sprintf("unknown action %q (want get_location, get_node_info, get_recent_nodes or get_full_map)", req.Action))
}

func nodesJSON(nodes []Node, max int) []nodeJSON {
	out := []nodeJSON{}
	for _, n := range nodes {
		if max >= 0 && len(out) >= max {
			break
		}
		out = append(out, toJSON(n))
	}
	return out
}

func errAnswer(msg string) map[string]any { return map[string]any{"type": "error", "error": msg} }

// Serve answers connections on ln until ctx ends, then closes ln and every
// connection and returns. Each connection is bounded: a request line of at
// most MaxLine bytes, IdleTimeout before each request (blank lines do not
// restart it), Lifetime in all, WriteTimeout for an answer to be taken. At
// most MaxConns are held, MaxConnsPerSource from one address; beyond, the
// one waiting longest for its next request is closed to make room
// (package internal/connlimit). Every connection the server closes is
// first told why, in an error line.
func Serve(ctx context.Context, ln net.Listener, src Source, opts Options) error {
	opts = opts.withDefaults()
	lim := connlimit.New(ln, opts.MaxConns, opts.MaxConnsPerSource)
	lim.Closing = func(c net.Conn, reason string) { say(c, reason, 100*time.Millisecond) }
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		c, err := lim.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isTimeout(err) {
				continue
			}
			return fmt.Errorf("netloc: %w", err)
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			c.Close()
			continue
		}
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(c, src, opts, lim)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			lim.Done(c)
			c.Close()
		}()
	}
}

// say writes an error line to c, giving it at most d to be taken.
func say(c net.Conn, msg string, d time.Duration) {
	c.SetWriteDeadline(time.Now().Add(d))
	json.NewEncoder(c).Encode(errAnswer(msg))
}

// serveConn answers one connection's lines until it ends, stays silent too
// long, outlives its lifetime, sends a line too long, or does not take its
// answers.
func serveConn(c net.Conn, src Source, opts Options, lim *connlimit.Listener) {
	end := time.Now().Add(opts.Lifetime)
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 512), MaxLine)
	enc := json.NewEncoder(c)
	for {
		// Set once per request: blank lines do not move it.
		deadline := time.Now().Add(opts.IdleTimeout)
		if deadline.After(end) {
			deadline = end
		}
		c.SetReadDeadline(deadline)
		for {
			if !sc.Scan() {
				switch err := sc.Err(); {
				case errors.Is(err, bufio.ErrTooLong):
					say(c, fmt.Sprintf("request longer than %d bytes", MaxLine), opts.WriteTimeout)
				case isTimeout(err) && !deadline.Before(end):
					say(c, fmt.Sprintf("connection open for %v: connect again", opts.Lifetime), opts.WriteTimeout)
				case isTimeout(err):
					say(c, fmt.Sprintf("no request for %v", opts.IdleTimeout), opts.WriteTimeout)
				}
				return
			}
			if len(bytes.TrimSpace(sc.Bytes())) > 0 {
				break
			}
		}
		// Busy while the answer is made; idle again before it is sent, so
		// that a client that has its answer is never still counted busy
		// (nor one that does not read it).
		lim.Busy(c, true)
		answer := Answer(src, sc.Bytes())
		lim.Busy(c, false)
		c.SetWriteDeadline(time.Now().Add(opts.WriteTimeout))
		if err := enc.Encode(answer); err != nil {
			return // the client does not take its answers
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Handler serves the same answers over HTTP: GET ?action=…&node_addr=…
// &max_nodes=…, one JSON object; an error answer has status 400.
func Handler(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := map[string]any{"action": q.Get("action")}
		if v := q.Get("node_addr"); v != "" {
			req["node_addr"] = v
		}
		if v := q.Get("max_nodes"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				http.Error(w, fmt.Sprintf("max_nodes %q: want a number", v), http.StatusBadRequest)
				return
			}
			req["max_nodes"] = n
		}
		line, _ := json.Marshal(req)
		a := Answer(src, line)
		w.Header().Set("Content-Type", "application/json")
		if m, ok := a.(map[string]any); ok && m["type"] == "error" {
			w.WriteHeader(http.StatusBadRequest)
		}
		json.NewEncoder(w).Encode(a)
	})
}
