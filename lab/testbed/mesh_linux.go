package testbed

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Mesh is a star of hosts around one router, for the tests of the mesh
// analysis: host i (1 to n) sits on 198.18.(10+i).0/24 at MeshAddr(i). Links
// are unshaped veths. DelayAll slows every path between hosts, Delay one
// path (more than DelayAll does, or less), Undelay takes that back, all
// while the hosts run: each delay is a user-space delay element in the
// router (this kernel has no netem), one per value, and routing rules
// choose which packets pass which.
type Mesh struct {
	Router *Netns
	Hosts  []*Netns // Hosts[i-1] is host i
	mu     sync.Mutex
	delays map[time.Duration]*delayElement
	pairs  map[[2]int]*delayElement // Delay's, a < b
	closed atomic.Bool
}

// Rule priorities of the router: a path's own delay (Delay, SlowAddr)
// before every path's (DelayAll). Packets out of an element go by the
// main table at 50, before both.
const (
	prefPath = "100"
	prefAll  = "200"
)

// MeshAddr is host i's address; MeshSlowAddr its second address, reached
// only through the delay element once SlowAddr has added it.
func MeshAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(10 + i), 2}) }

// MeshSlowAddr is host i's second address (see SlowAddr).
func MeshSlowAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(30 + i), 2}) }

// MaxMeshHosts bounds NewMesh.
const MaxMeshHosts = 8

// NewMesh builds n hosts around a router. On failure it removes whatever it
// had built.
func NewMesh(ctx context.Context, n int) (m *Mesh, err error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if n < 2 || n > MaxMeshHosts {
		return nil, fmt.Errorf("testbed: mesh of %d hosts: want 2 to %d", n, MaxMeshHosts)
	}
	if _, err := CleanStale(); err != nil {
		return nil, fmt.Errorf("testbed: removing stale namespaces: %w", err)
	}
	m = &Mesh{delays: map[time.Duration]*delayElement{}, pairs: map[[2]int]*delayElement{}}
	defer func() {
		if err != nil {
			m.Close()
			m = nil
		}
	}()
	base := fmt.Sprintf("%s%d-%d-", namePrefix, os.Getpid(), seq.Add(1))
	if m.Router, err = addNetns(ctx, base+"mrt"); err != nil {
		return m, fmt.Errorf("testbed: %w", err)
	}
	for _, kv := range [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.ipv4.conf.all.rp_filter", "0"}, {"net.ipv4.conf.default.rp_filter", "0"}} {
		if err = m.Router.sysctl(kv[0], kv[1]); err != nil {
			return m, err
		}
	}
	for i := 1; i <= n; i++ {
		h, err := addNetns(ctx, fmt.Sprintf("%sh%d", base, i))
		if err != nil {
			return m, fmt.Errorf("testbed: %w", err)
		}
		m.Hosts = append(m.Hosts, h)
		dev := fmt.Sprintf("to-h%d", i)
		for _, s := range []struct {
			ns   *Netns
			args []string
		}{
			{m.Router, []string{"link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", h.Name}},
			{m.Router, []string{"addr", "add", fmt.Sprintf("198.18.%d.1/24", 10+i), "dev", dev}},
			{m.Router, []string{"link", "set", dev, "up"}},
			{h, []string{"addr", "add", MeshAddr(i).String() + "/24", "dev", "eth0"}},
			{h, []string{"link", "set", "eth0", "up"}},
			{h, []string{"route", "add", "default", "via", fmt.Sprintf("198.18.%d.1", 10+i)}},
		} {
			if err := s.ns.ip(ctx, s.args...); err != nil {
				return m, fmt.Errorf("testbed: mesh: %w", err)
			}
		}
	}
	return m, nil
}

// DelayAll makes every path between hosts slower by d each way (their
// packets pass the element of d once each way), unless Delay gives a path
// its own delay. Call it once.
func (m *Mesh) DelayAll(ctx context.Context, d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.element(ctx, d)
	if err != nil {
		return err
	}
	for i := range m.Hosts {
		if err := m.Router.ip(ctx, "rule", "add", "iif", fmt.Sprintf("to-h%d", i+1), "lookup", e.table, "pref", prefAll); err != nil {
			return fmt.Errorf("testbed: delay every path: %w", err)
		}
	}
	return nil
}

// Delay makes the path between hosts a and b slower by d each way instead
// of what DelayAll gave it (or nothing): their packets pass the element
// of d. A path has one delay of its own at a time: Undelay it first.
func (m *Mesh) Delay(ctx context.Context, a, b int, d time.Duration) error {
	k, err := m.pair(a, b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.pairs[k]; e != nil {
		return fmt.Errorf("testbed: the path %d-%d is delayed %v already: Undelay it first", a, b, e.d)
	}
	e, err := m.element(ctx, d)
	if err != nil {
		return err
	}
	if err := m.pathRules(ctx, "add", k, e); err != nil {
		m.pathRules(ctx, "del", k, e)
		return err
	}
	m.pairs[k] = e
	return nil
}

// Undelay takes back Delay's delay of the path between a and b: its
// packets are delayed as DelayAll says again (or not at all). The rules
// of every other path stay as they are, so the change is at once.
func (m *Mesh) Undelay(ctx context.Context, a, b int) error {
	k, err := m.pair(a, b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.pairs[k]
	if e == nil {
		return fmt.Errorf("testbed: the path %d-%d has no delay of its own", a, b)
	}
	delete(m.pairs, k)
	return m.pathRules(ctx, "del", k, e)
}

// pair checks hosts a and b and orders them.
func (m *Mesh) pair(a, b int) ([2]int, error) {
	if a < 1 || b < 1 || a > len(m.Hosts) || b > len(m.Hosts) || a == b {
		return [2]int{}, fmt.Errorf("testbed: path %d-%d: want two hosts of 1 to %d", a, b, len(m.Hosts))
	}
	return [2]int{min(a, b), max(a, b)}, nil
}

// pathRules adds or deletes (op) the rules that lead path k's packets,
// both ways, into element e.
func (m *Mesh) pathRules(ctx context.Context, op string, k [2]int, e *delayElement) error {
	for _, r := range [][2]int{{k[0], k[1]}, {k[1], k[0]}} {
		if err := m.Router.ip(ctx, "rule", op, "iif", fmt.Sprintf("to-h%d", r[0]), "to", fmt.Sprintf("198.18.%d.0/24", 10+r[1]),
			"lookup", e.table, "pref", prefPath); err != nil {
			return fmt.Errorf("testbed: delay %d-%d: %w", k[0], k[1], err)
		}
	}
	return nil
}

// SlowAddr gives host h its second address, MeshSlowAddr(h), which every
// other host reaches, and is answered from, through the element of d: one
// host, a fast and a slow path.
func (m *Mesh) SlowAddr(ctx context.Context, h int, d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.element(ctx, d)
	if err != nil {
		return err
	}
	slow := MeshSlowAddr(h).String()
	for _, s := range []struct {
		ns   *Netns
		args []string
	}{
		{m.Hosts[h-1], []string{"addr", "add", slow + "/32", "dev", "eth0"}},
		{m.Router, []string{"route", "add", slow + "/32", "via", MeshAddr(h).String()}},
		{m.Router, []string{"rule", "add", "to", slow, "lookup", e.table, "pref", prefPath}},
		{m.Router, []string{"rule", "add", "from", slow, "lookup", e.table, "pref", prefPath}},
	} {
		if err := s.ns.ip(ctx, s.args...); err != nil {
			return fmt.Errorf("testbed: slow address: %w", err)
		}
	}
	return nil
}

// element is the delay element of d, made on first use. Under mu.
func (m *Mesh) element(ctx context.Context, d time.Duration) (*delayElement, error) {
	if e := m.delays[d]; e != nil {
		return e, nil
	}
	e, err := newDelay(ctx, m.Router, len(m.delays), d, 1500)
	if err != nil {
		return nil, err
	}
	m.delays[d] = e
	return e, nil
}

// Close stops the delay elements and removes every namespace of the mesh.
// It is safe to call more than once.
func (m *Mesh) Close() error {
	if m == nil || m.closed.Swap(true) {
		return nil
	}
	m.mu.Lock()
	for _, e := range m.delays {
		e.close()
	}
	m.mu.Unlock()
	var errs []error
	for _, n := range append([]*Netns{m.Router}, m.Hosts...) {
		if n != nil {
			errs = append(errs, n.delete())
		}
	}
	return errors.Join(errs...)
}
