package traceroute

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/abing-net/abing/record"
)

// Tracer finds the hops to a host the classic way: UDP probes to high
// ports with TTL (hop limit) 1, 2, … MaxHops, sent all at once, and the
// ICMP time-exceeded and port-unreachable messages they provoke, read on a
// raw ICMP socket (root or CAP_NET_RAW) and parsed with gopacket's layers.
// Each reply is matched to its probe by the UDP header it quotes. One probe
// per hop, MaxHops datagrams of 32 bytes in all: a router that rate-limits
// ICMP shows as "*".
type Tracer struct {
	MaxHops int           // 30
	Timeout time.Duration // time to wait for replies (2s)
	Port    int           // destination port of the TTL 1 probe (33434); TTL n goes to Port+n−1
	// Do, if set, runs the opening of the sockets (the testbed passes its
	// namespace's Do, so that the probes leave from there).
	Do func(func() error) error
}

// Trace runs a traceroute to host; a failure is reported in the Trace.
func (tr *Tracer) Trace(ctx context.Context, host string) *record.Trace {
	t := &record.Trace{Time: time.Now().UTC(), Target: host}
	if err := tr.trace(ctx, host, t); err != nil {
		t.Error = err.Error()
	}
	return t
}

func (tr *Tracer) trace(ctx context.Context, host string, t *record.Trace) error {
	maxHops, timeout, port := tr.MaxHops, tr.Timeout, tr.Port
	if maxHops <= 0 {
		maxHops = 30
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if port <= 0 {
		port = 33434
	}
	dst, err := netip.ParseAddr(host)
	if err != nil {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return fmt.Errorf("traceroute %s: %v", host, err)
		}
		dst = ips[0]
	}
	dst = dst.Unmap()
	v4 := dst.Is4()
	var icmp net.PacketConn
	var udp *net.UDPConn
	open := func() error {
		var err error
		if v4 {
			icmp, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		} else {
			icmp, err = net.ListenPacket("ip6:ipv6-icmp", "::")
		}
		if err != nil {
			if errors.Is(err, syscall.EPERM) {
				return fmt.Errorf("traceroute %s: a raw ICMP socket needs root or CAP_NET_RAW: %w", host, err)
			}
			return fmt.Errorf("traceroute %s: %w", host, err)
		}
		network := "udp6"
		if v4 {
			network = "udp4"
		}
		if udp, err = net.ListenUDP(network, nil); err != nil {
			icmp.Close()
			return fmt.Errorf("traceroute %s: %w", host, err)
		}
		return nil
	}
	if tr.Do != nil {
		err = tr.Do(open)
	} else {
		err = open()
	}
	if err != nil {
		return err
	}
	defer icmp.Close()
	defer udp.Close()
	local := uint16(udp.LocalAddr().(*net.UDPAddr).Port)
	raw, err := udp.SyscallConn()
	if err != nil {
		return fmt.Errorf("traceroute %s: %w", host, err)
	}
	sent := make([]time.Time, maxHops+1)
	payload := make([]byte, 32)
	for ttl := 1; ttl <= maxHops; ttl++ {
		var serr error
		if err := raw.Control(func(fd uintptr) {
			if v4 {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, ttl)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ttl)
			}
		}); err != nil || serr != nil {
			return fmt.Errorf("traceroute %s: setting TTL %d: %v", host, ttl, errors.Join(err, serr))
		}
		sent[ttl] = time.Now()
		if _, err := udp.WriteToUDPAddrPort(payload, netip.AddrPortFrom(dst, uint16(port+ttl-1))); err != nil {
			return fmt.Errorf("traceroute %s: %w", host, err)
		}
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	icmp.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { icmp.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	hops := make([]record.Hop, maxHops+1)
	reached := maxHops + 1 // smallest TTL that reached the host
	buf := make([]byte, 1500)
	for {
		n, from, err := icmp.ReadFrom(buf)
		if err != nil {
			break // deadline
		}
		at := time.Now()
		ttl, atHost, ok := parseReply(buf[:n], v4, dst, local, port, maxHops)
		if !ok || hops[ttl].Addr.IsValid() {
			continue
		}
		addr, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		hops[ttl] = record.Hop{TTL: ttl, Addr: addr.Unmap(), RTT: float64(at.Sub(sent[ttl]).Microseconds()) / 1000}
		if atHost && ttl < reached {
			reached = ttl
		}
		if done(hops, reached) {
			break
		}
	}
	last := 0
	for ttl := 1; ttl <= maxHops && ttl <= reached; ttl++ {
		if hops[ttl].Addr.IsValid() {
			last = ttl
		}
	}
	for ttl := 1; ttl <= last; ttl++ {
		hops[ttl].TTL = ttl
		t.Hops = append(t.Hops, hops[ttl])
	}
	t.Reached = reached <= maxHops
	return nil
}

// done says whether every hop up to the host has answered.
func done(hops []record.Hop, reached int) bool {
	if reached >= len(hops) {
		return false
	}
	for ttl := 1; ttl <= reached; ttl++ {
		if !hops[ttl].Addr.IsValid() {
			return false
		}
	}
	return true
}

// parseReply reads an ICMP message (without the IP header, as raw sockets
// deliver it) and returns the TTL of the probe it answers and whether it
// came from the host itself (destination unreachable) rather than from a
// router on the way (time exceeded).
func parseReply(b []byte, v4 bool, dst netip.Addr, local uint16, port, maxHops int) (ttl int, atHost, ok bool) {
	var quoted gopacket.Packet
	if v4 {
		p := gopacket.NewPacket(b, layers.LayerTypeICMPv4, gopacket.NoCopy)
		m, _ := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if m == nil {
			return 0, false, false
		}
		switch m.TypeCode.Type() {
		case layers.ICMPv4TypeTimeExceeded:
		case layers.ICMPv4TypeDestinationUnreachable:
			atHost = true
		default:
			return 0, false, false
		}
		quoted = gopacket.NewPacket(m.Payload, layers.LayerTypeIPv4, gopacket.NoCopy)
		ip, _ := quoted.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip == nil || !ip.DstIP.Equal(dst.AsSlice()) {
			return 0, false, false
		}
	} else {
		p := gopacket.NewPacket(b, layers.LayerTypeICMPv6, gopacket.NoCopy)
		m, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		if m == nil || len(m.Payload) < 4 {
			return 0, false, false
		}
		switch m.TypeCode.Type() {
		case layers.ICMPv6TypeTimeExceeded:
		case layers.ICMPv6TypeDestinationUnreachable:
			atHost = true
		default:
			return 0, false, false
		}
		// Four unused bytes, then the packet that provoked the message.
		quoted = gopacket.NewPacket(m.Payload[4:], layers.LayerTypeIPv6, gopacket.NoCopy)
		ip, _ := quoted.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if ip == nil || !ip.DstIP.Equal(dst.AsSlice()) {
			return 0, false, false
		}
	}
	u, _ := quoted.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if u == nil || uint16(u.SrcPort) != local {
		return 0, false, false
	}
	ttl = int(u.DstPort) - port + 1
	if ttl < 1 || ttl > maxHops {
		return 0, false, false
	}
	return ttl, atHost, true
}
