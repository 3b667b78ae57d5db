package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sync/atomic"
	"time"
)

// Addresses of the test hosts.
var (
	SenderAddr     = netip.MustParseAddr("198.18.1.2")
	ReflectorAddr  = netip.MustParseAddr("198.18.2.2")
	CrossAddr      = netip.MustParseAddr("198.18.3.2")
	SenderAddr6    = netip.MustParseAddr("fd00:ab:1::2")
	ReflectorAddr6 = netip.MustParseAddr("fd00:ab:2::2")
	CrossAddr6     = netip.MustParseAddr("fd00:ab:3::2")
)

// Direction names a bottleneck.
type Direction int

// Directions of the path.
const (
	Forward Direction = iota // sender → reflector
	Reverse                  // reflector → sender
)

func (d Direction) String() string {
	if d == Forward {
		return "forward"
	}
	return "reverse"
}

// Config describes a path.
type Config struct {
	Forward, Reverse float64 // nominal bottleneck rates, bit/s; 0 = unshaped
	ProbeSize        int     // IP size of the probes, for the bucket; 0 = 1500
	MTU              int     // link MTU; 0 = max(1500, ProbeSize)
	// Delay is added each way between the sender and the reflector, by
	// the router's delay element before each bottleneck (so the tbf, not
	// the element, spaces the probes); other hosts' packets pass
	// undelayed. 0 = none; at most 1 s.
	Delay time.Duration
}

// Testbed is a built path.
type Testbed struct {
	Sender, Router, Reflector, Cross *Netns
	Hop                              *Netns // nil until AddHop
	cfg                              Config
	delay                            *delayElement
	closed                           atomic.Bool
}

var seq atomic.Uint32

// New builds the namespaces, links, addresses, routes and bottlenecks. On
// failure it removes whatever it had built.
func New(ctx context.Context, cfg Config) (tb *Testbed, err error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("testbed: %s not found: install iproute2 (apt-get install iproute2)", tool)
		}
	}
	if cfg.ProbeSize == 0 {
		cfg.ProbeSize = 1500
	}
	if cfg.MTU == 0 {
		cfg.MTU = max(1500, cfg.ProbeSize)
	}
	if _, err := CleanStale(); err != nil {
		return nil, fmt.Errorf("testbed: removing stale namespaces: %w", err)
	}
	tb = &Testbed{cfg: cfg}
	defer func() {
		if err != nil {
			tb.Close()
			tb = nil
		}
	}()
	base := fmt.Sprintf("%s%d-%d-", namePrefix, os.Getpid(), seq.Add(1))
	for _, p := range []struct {
		nsp  **Netns
		role string
	}{{&tb.Sender, "snd"}, {&tb.Router, "rtr"}, {&tb.Reflector, "rfl"}, {&tb.Cross, "xh"}} {
		if *p.nsp, err = addNetns(ctx, base+p.role); err != nil {
			return tb, fmt.Errorf("testbed: %w", err)
		}
	}
	if err = tb.Router.sysctl("net.ipv4.ip_forward", "1"); err != nil {
		return tb, err
	}
	if err = tb.Router.sysctl("net.ipv6.conf.all.forwarding", "1"); err != nil {
		return tb, err
	}
	for i, h := range []*Netns{tb.Sender, tb.Reflector, tb.Cross} {
		if err = tb.link(ctx, h, i+1); err != nil {
			return tb, fmt.Errorf("testbed: %w", err)
		}
	}
	if err = tb.SetRate(ctx, Forward, cfg.Forward); err != nil {
		return tb, err
	}
	if err = tb.SetRate(ctx, Reverse, cfg.Reverse); err != nil {
		return tb, err
	}
	if cfg.Delay != 0 {
		if err = tb.addDelay(ctx); err != nil {
			return tb, err
		}
	}
	return tb, nil
}

// addDelay sends the packets between the sender and the reflector, both
// ways, through a delay element in the router. The rules match addresses,
// not interfaces, so that they hold when AddHop moves the reflector.
func (tb *Testbed) addDelay(ctx context.Context) error {
	e, err := newDelay(ctx, tb.Router, 0, tb.cfg.Delay, tb.cfg.MTU)
	if err != nil {
		return err
	}
	tb.delay = e
	for _, p := range [][2]netip.Addr{{SenderAddr, ReflectorAddr}, {SenderAddr6, ReflectorAddr6}} {
		v := "-4"
		if p[0].Is6() {
			v = "-6"
		}
		for _, r := range [][2]netip.Addr{{p[0], p[1]}, {p[1], p[0]}} {
			if err := tb.Router.ip(ctx, v, "rule", "add", "from", r[0].String(), "to", r[1].String(),
				"lookup", e.table, "pref", "100"); err != nil {
				return fmt.Errorf("testbed: delay: %w", err)
			}
		}
	}
	return nil
}

// Delay is the delay added each way between the sender and the reflector.
func (tb *Testbed) Delay() time.Duration { return tb.cfg.Delay }

// link joins host h to the router on subnet 198.18.n.0/24 and fd00:ab:n::/64.
func (tb *Testbed) link(ctx context.Context, h *Netns, n int) error {
	rdev := tb.routerDev(n)
	mtu := fmt.Sprint(tb.cfg.MTU)
	steps := []struct {
		ns   *Netns
		args []string
	}{
		{tb.Router, []string{"link", "add", rdev, "mtu", mtu, "type", "veth", "peer", "name", "eth0", "mtu", mtu, "netns", h.Name}},
		{tb.Router, []string{"addr", "add", fmt.Sprintf("198.18.%d.1/24", n), "dev", rdev}},
		{tb.Router, []string{"addr", "add", fmt.Sprintf("fd00:ab:%d::1/64", n), "dev", rdev, "nodad"}},
		{tb.Router, []string{"link", "set", rdev, "up"}},
		{h, []string{"addr", "add", fmt.Sprintf("198.18.%d.2/24", n), "dev", "eth0"}},
		{h, []string{"addr", "add", fmt.Sprintf("fd00:ab:%d::2/64", n), "dev", "eth0", "nodad"}},
		{h, []string{"link", "set", "eth0", "up"}},
		{h, []string{"route", "add", "default", "via", fmt.Sprintf("198.18.%d.1", n)}},
		{h, []string{"-6", "route", "add", "default", "via", fmt.Sprintf("fd00:ab:%d::1", n)}},
	}
	for _, s := range steps {
		if err := s.ns.ip(ctx, s.args...); err != nil {
			return err
		}
	}
	return nil
}

// routerDev is the router's interface toward host n (1 sender, 2 reflector,
// 3 cross, 4 the added hop).
func (tb *Testbed) routerDev(n int) string {
	return [...]string{"", "to-snd", "to-rfl", "to-xh", "to-hop"}[n]
}

// bottleneckDev is the router interface whose egress shapes direction d.
func (tb *Testbed) bottleneckDev(d Direction) string {
	switch {
	case d == Reverse:
		return tb.routerDev(1)
	case tb.Hop != nil:
		return tb.routerDev(4)
	default:
		return tb.routerDev(2)
	}
}

// HopAddr is the added hop's address toward the router.
var HopAddr = netip.MustParseAddr("198.18.4.2")

// AddHop inserts a second router between the router and the reflector, for
// IPv4: the router's route to the reflector and the reflector's default
// route go through it. The forward bottleneck moves to the router's link
// toward the hop, at the same rate, so that only the path changes. IPv6
// keeps the one-router path.
func (tb *Testbed) AddHop(ctx context.Context) error {
	if tb.Hop != nil {
		return errors.New("testbed: hop already added")
	}
	hop, err := addNetns(ctx, tb.Sender.Name[:len(tb.Sender.Name)-len("snd")]+"hop")
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	tb.Hop = hop
	if err := hop.sysctl("net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	if err := tb.link(ctx, hop, 4); err != nil { // router ─ hop, hop's default route via the router
		return fmt.Errorf("testbed: %w", err)
	}
	mtu := fmt.Sprint(tb.cfg.MTU)
	steps := []struct {
		ns   *Netns
		args []string
	}{
		{hop, []string{"link", "add", "to-rfl", "mtu", mtu, "type", "veth", "peer", "name", "eth1", "mtu", mtu, "netns", tb.Reflector.Name}},
		{hop, []string{"addr", "add", "198.18.5.1/24", "dev", "to-rfl"}},
		{hop, []string{"link", "set", "to-rfl", "up"}},
		{hop, []string{"route", "add", ReflectorAddr.String() + "/32", "dev", "to-rfl"}},
		{tb.Reflector, []string{"addr", "add", "198.18.5.2/24", "dev", "eth1"}},
		{tb.Reflector, []string{"link", "set", "eth1", "up"}},
		// src: the reflector keeps its address; a wildcard-bound socket
		// would otherwise answer from eth1's.
		{tb.Reflector, []string{"route", "replace", "default", "via", "198.18.5.1", "dev", "eth1", "src", ReflectorAddr.String()}},
		{tb.Router, []string{"route", "replace", ReflectorAddr.String() + "/32", "via", HopAddr.String()}},
	}
	for _, s := range steps {
		if err := s.ns.ip(ctx, s.args...); err != nil {
			return fmt.Errorf("testbed: adding a hop: %w", err)
		}
	}
	// The bottleneck follows the route.
	if _, err := tb.Router.tc(ctx, "qdisc", "replace", "dev", tb.routerDev(2), "root", "pfifo", "limit", "1000"); err != nil {
		return err
	}
	return tb.SetRate(ctx, Forward, tb.cfg.Forward)
}

// Frame is the size the qdisc accounts for an IP packet of size ip on veth.
func Frame(ip int) int { return ip + 14 }

// SetRate shapes direction d to a nominal rate (bit/s) with a one-frame
// bucket; 0 removes the shaping. The queue holds 50 ms at the nominal rate,
// at least 32 frames.
func (tb *Testbed) SetRate(ctx context.Context, d Direction, rate float64) error {
	dev := tb.bottleneckDev(d)
	if rate == 0 {
		_, err := tb.Router.tc(ctx, "qdisc", "replace", "dev", dev, "root", "pfifo", "limit", "1000")
		return err
	}
	frame := Frame(tb.cfg.ProbeSize)
	limit := max(32*frame, int(rate/8*0.05))
	_, err := tb.Router.tc(ctx, "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", fmt.Sprintf("%dbit", int64(rate)), "burst", fmt.Sprint(frame), "limit", fmt.Sprint(limit))
	if err != nil {
		return fmt.Errorf("testbed: shaping %s to %g bit/s: %w", d, rate, err)
	}
	if d == Forward {
		tb.cfg.Forward = rate
	} else {
		tb.cfg.Reverse = rate
	}
	return nil
}

// Nominal returns the rate direction d was shaped to.
func (tb *Testbed) Nominal(d Direction) float64 {
	if d == Forward {
		return tb.cfg.Forward
	}
	return tb.cfg.Reverse
}

// Counters are what a bottleneck qdisc reports (tc -s).
type Counters struct {
	Bytes   uint64 // link-layer bytes sent, Ethernet header included
	Packets uint64
	Drops   uint64
}

// IPBytes is the IP-layer byte count: the qdisc counts 14 bytes of Ethernet
// header per packet.
func (c Counters) IPBytes() uint64 { return c.Bytes - 14*c.Packets }

// Sub returns c − o.
func (c Counters) Sub(o Counters) Counters {
	return Counters{Bytes: c.Bytes - o.Bytes, Packets: c.Packets - o.Packets, Drops: c.Drops - o.Drops}
}

// Counters reads the root qdisc counters of direction d's bottleneck.
func (tb *Testbed) Counters(ctx context.Context, d Direction) (Counters, error) {
	out, err := tb.Router.tc(ctx, "-s", "-j", "qdisc", "show", "dev", tb.bottleneckDev(d))
	if err != nil {
		return Counters{}, err
	}
	var qs []struct {
		Root    bool   `json:"root"`
		Bytes   uint64 `json:"bytes"`
		Packets uint64 `json:"packets"`
		Drops   uint64 `json:"drops"`
	}
	if err := json.Unmarshal(out, &qs); err != nil {
		return Counters{}, fmt.Errorf("testbed: parsing tc -s -j output %q: %w", out, err)
	}
	for _, q := range qs {
		if q.Root {
			return Counters{Bytes: q.Bytes, Packets: q.Packets, Drops: q.Drops}, nil
		}
	}
	return Counters{}, fmt.Errorf("testbed: no root qdisc on %s", tb.bottleneckDev(d))
}

// Close removes every namespace of the testbed (and with them the links). It
// is safe to call more than once.
func (tb *Testbed) Close() error {
	if tb == nil || tb.closed.Swap(true) {
		return nil
	}
	if tb.delay != nil {
		tb.delay.close()
	}
	var errs []error
	for _, n := range []*Netns{tb.Sender, tb.Router, tb.Reflector, tb.Cross, tb.Hop} {
		if n != nil {
			errs = append(errs, n.delete())
		}
	}
	return errors.Join(errs...)
}
