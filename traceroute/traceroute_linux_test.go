package traceroute

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/abing-net/abing/internal/testenv"
)

// A traceroute to loopback: the host answers the first probe with port
// unreachable, so the path is one hop, reached. Needs a raw socket.
func TestTracerouteLoopback(t *testing.T) {
	testenv.NeedRoot(t, "a traceroute needs a raw ICMP socket")
	for _, host := range []string{"127.0.0.1", "::1"} {
		tr := (&Tracer{MaxHops: 5}).Trace(context.Background(), host)
		if tr.Error != "" || !tr.Reached || len(tr.Hops) != 1 || tr.Hops[0].Addr.String() != host || tr.Hops[0].TTL != 1 {
			t.Errorf("%s: %+v", host, tr)
		}
		t.Logf("%s: %s (%.3f ms)", host, tr, tr.Hops[0].RTT)
	}
}

// ICMP replies built with gopacket are matched to their probes by the UDP
// header they quote; others are ignored.
func TestParseReply(t *testing.T) {
	dst := netip.MustParseAddr("198.18.2.2")
	build := func(typ uint8, qdst string, sport, dport uint16) []byte {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 1, Protocol: layers.IPProtocolUDP,
			SrcIP: net.ParseIP("198.18.1.2"), DstIP: net.ParseIP(qdst)}
		udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport), Length: 40}
		quoted := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(quoted, gopacket.SerializeOptions{FixLengths: false}, ip, udp); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0)}
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, icmp, gopacket.Payload(quoted.Bytes())); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name         string
		msg          []byte
		ttl          int
		atHost, isOK bool
	}{
		{"time exceeded, TTL 3", build(layers.ICMPv4TypeTimeExceeded, "198.18.2.2", 40000, 33436), 3, false, true},
		{"port unreachable, TTL 2", build(layers.ICMPv4TypeDestinationUnreachable, "198.18.2.2", 40000, 33435), 2, true, true},
		{"another socket's probe", build(layers.ICMPv4TypeTimeExceeded, "198.18.2.2", 40001, 33436), 0, false, false},
		{"another destination", build(layers.ICMPv4TypeTimeExceeded, "198.18.9.9", 40000, 33436), 0, false, false},
		{"beyond max hops", build(layers.ICMPv4TypeTimeExceeded, "198.18.2.2", 40000, 33434+40), 0, false, false},
		{"echo reply", build(layers.ICMPv4TypeEchoReply, "198.18.2.2", 40000, 33436), 0, false, false},
		{"garbage", []byte{11, 0, 1}, 0, false, false},
	} {
		ttl, atHost, ok := parseReply(tc.msg, true, dst, 40000, 33434, 30)
		if ttl != tc.ttl || atHost != tc.atHost || ok != tc.isOK {
			t.Errorf("%s: ttl %d atHost %v ok %v", tc.name, ttl, atHost, ok)
		}
	}
}
