package testbed

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"time"
)

// Mesh is a star of hosts around one router, for the tests of the mesh
// analysis: host i (1 to n) sits on 198.18.(10+i).0/24 at MeshAddr(i). Links
// are unshaped veths. Delay slows chosen paths with a user-space delay
// element in the router (this kernel has no netem).
type Mesh struct {
	Router *Netns
	Hosts  []*Netns // Hosts[i-1] is host i
	delay  *delayElement
	closed atomic.Bool
}

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
	m = &Mesh{}
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

// Delay makes the path between hosts a and b slower by d each way: their
// packets pass through the delay element. The first call starts the
// element with delay d; later calls must ask for the same d.
func (m *Mesh) Delay(ctx context.Context, a, b int, d time.Duration) error {
	if err := m.startDelay(ctx, d); err != nil {
		return err
	}
	for _, r := range [][2]int{{a, b}, {b, a}} {
		if err := m.Router.ip(ctx, "rule", "add", "iif", fmt.Sprintf("to-h%d", r[0]), "to", fmt.Sprintf("198.18.%d.0/24", 10+r[1]),
			"lookup", delayTable, "pref", "100"); err != nil {
			return fmt.Errorf("testbed: delay %d-%d: %w", a, b, err)
		}
	}
	return nil
}

// SlowAddr gives host h its second address, MeshSlowAddr(h), which every
// other host reaches, and is answered from, through the delay element: one
// host, a fast and a slow path.
func (m *Mesh) SlowAddr(ctx context.Context, h int, d time.Duration) error {
	if err := m.startDelay(ctx, d); err != nil {
		return err
	}
	slow := MeshSlowAddr(h).String()
	for _, s := range []struct {
		ns   *Netns
		args []string
	}{
		{m.Hosts[h-1], []string{"addr", "add", slow + "/32", "dev", "eth0"}},
		{m.Router, []string{"route", "add", slow + "/32", "via", MeshAddr(h).String()}},
		{m.Router, []string{"rule", "add", "to", slow, "lookup", delayTable, "pref", "100"}},
		{m.Router, []string{"rule", "add", "from", slow, "lookup", delayTable, "pref", "100"}},
	} {
		if err := s.ns.ip(ctx, s.args...); err != nil {
			return fmt.Errorf("testbed: slow address: %w", err)
		}
	}
	return nil
}

// startDelay makes the delay element once, with delay d.
func (m *Mesh) startDelay(ctx context.Context, d time.Duration) error {
	if m.delay != nil {
		if m.delay.d != d {
			return fmt.Errorf("testbed: the delay element delays %v, not %v", m.delay.d, d)
		}
		return nil
	}
	e, err := newDelay(ctx, m.Router, d, 1500)
	if err != nil {
		return err
	}
	m.delay = e
	return nil
}

// Close stops the delay element and removes every namespace of the mesh.
// It is safe to call more than once.
func (m *Mesh) Close() error {
	if m == nil || m.closed.Swap(true) {
		return nil
	}
	if m.delay != nil {
		m.delay.close()
	}
	var errs []error
	for _, n := range append([]*Netns{m.Router}, m.Hosts...) {
		if n != nil {
			errs = append(errs, n.delete())
		}
	}
	return errors.Join(errs...)
}
