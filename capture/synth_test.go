package capture_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
)

// frame is one datagram of a synthetic capture.
type frame struct {
	at       time.Time
	src, dst netip.AddrPort
	payload  []byte
	ttl      uint8
	ip       []byte // the IP packet as it is, instead of one made of the above
}

// pathRate is the synthetic path's bottleneck, both ways.
const pathRate = 20e6

// synthRun is what a capture on the sending host sees of one default-shaped
// run over a 20 Mbit/s path where every third paced probe finds half a
// probe of cross traffic ahead of it: hello and cookie, 16 back-to-back pairs, 8
// paced 10-packet trains, the replies, report requests and reports, and the
// close. The analysis must read DBC 20 Mbit/s both ways.
func synthRun(sender, refl netip.AddrPort, id uint64, seed uint64) []frame {
	rng := rand.New(rand.NewPCG(seed, 7))
	size := 1500
	over := train.OverheadIPv4
	if refl.Addr().Is6() {
		over = train.OverheadIPv6
	}
	tn := int64(float64(size*8) / pathRate * 1e9)
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixNano()
	now := t0
	var out []frame
	send := func(ns int64, from, to netip.AddrPort, b []byte, ttl uint8) {
		out = append(out, frame{at: time.Unix(0, ns).UTC(), src: from, dst: to, payload: b, ttl: ttl})
	}
	msg := func(h train.Header, n int) []byte {
		b := make([]byte, n)
		h.Session = id
		train.PutHeader(b, &h)
		return b
	}
	send(now, sender, refl, msg(train.Header{Type: train.TypeHello, Len: 1}, train.HelloMin), 64)
	cookie := msg(train.Header{Type: train.TypeCookie, Len: 1}, train.HeaderLen+train.CookieLen)
	send(now+10e6, refl, sender, cookie, 61)
	now += 20e6
	// Cross traffic falls between paced probes only: back-to-back ones
	// leave it no window (docs/method.md).
	cross := func(paced bool) int64 {
		if paced && rng.IntN(3) == 0 {
			return tn / 2
		}
		return 0
	}
	var reports []train.TxStamp
	sendTrain := func(i, n int, fgap, rgap int64) {
		flags := uint16(0)
		if fgap > 0 || rgap > 0 {
			flags = train.FlagPaced
		}
		var rx int64
		arrived := make([]int64, n)
		for p := range n {
			tx := now + int64(p)*(fgap+int64(rng.IntN(2000)))
			send(tx, sender, refl, msg(train.Header{Type: train.TypeProbe, Flags: flags, Train: uint32(i), Pos: uint16(p),
				Len: uint16(n), ReplyGap: uint32(rgap)}, size-over), 64)
			rx = max(rx+tn+cross(flags != 0), tx+5e6)
			arrived[p] = rx
		}
		rtx, back := rx+50e3, int64(0)
		for p := range n {
			rtx += max(rgap, 2e3)
			// The reflector's clock is 3 s ahead of ours: only its gaps count.
			reports = append(reports, train.TxStamp{Train: uint32(i), Pos: uint16(p), TxNs: rtx + 3e9})
			back = max(back+tn+cross(flags != 0), rtx+5e6)
			b := msg(train.Header{Type: train.TypeReply, Train: uint32(i), Pos: uint16(p), Len: uint16(n)}, size-over)
			train.PutReplyBody(b, &train.ReplyBody{RxNs: arrived[p] + 3e9, TTL: 62, RxSource: uint8(dispersion.SourceKernel), Arrived: uint16(n)})
			send(back, refl, sender, b, 61)
		}
		now += 15e6
	}
	report := func(first, count int) {
		req := msg(train.Header{Type: train.TypeReportRequest, Train: uint32(first), Len: 1}, size-over)
		train.PutReportRequest(req, train.ReportRequest{FirstTrain: uint32(first), Trains: uint32(count)})
		send(now, sender, refl, req, 64)
		for len(reports) > 0 {
			b := msg(train.Header{Type: train.TypeReport, Train: uint32(first), Len: 1}, size-over)
			n := train.PutReport(b, uint8(dispersion.SourceKernel), reports)
			send(now+10e6, refl, sender, b, 61)
			reports = reports[n:]
		}
		now += 20e6
	}
	for i := range 16 {
		sendTrain(i, 2, 0, 0)
	}
	report(0, 16)
	fgap, rgap := int64(0.8*float64(tn)), int64(0.8*float64(tn))
	for i := range 8 {
		sendTrain(16+i, 10, fgap, rgap)
	}
	report(16, 8)
	send(now, sender, refl, msg(train.Header{Type: train.TypeClose, Len: 1}, train.SenderBody), 64)
	return out
}

// link is how a capture frames its packets.
type link struct {
	name string
	typ  layers.LinkType
	// wrap adds the link header to an IP packet.
	wrap func(ip []byte, v6 bool) []byte
}

var links = []link{
	{"ethernet", layers.LinkTypeEthernet, func(ip []byte, v6 bool) []byte {
		et := layers.EthernetTypeIPv4
		if v6 {
			et = layers.EthernetTypeIPv6
		}
		h := make([]byte, 14, 14+len(ip))
		copy(h[0:6], []byte{2, 0, 0, 0, 0, 2})
		copy(h[6:12], []byte{2, 0, 0, 0, 0, 1})
		binary.BigEndian.PutUint16(h[12:], uint16(et))
		return append(h, ip...)
	}},
	{"linux-sll", layers.LinkTypeLinuxSLL, func(ip []byte, v6 bool) []byte {
		h := make([]byte, 16, 16+len(ip))
		binary.BigEndian.PutUint16(h[2:], 1) // ARPHRD_ETHER
		binary.BigEndian.PutUint16(h[4:], 6)
		et := uint16(layers.EthernetTypeIPv4)
		if v6 {
			et = uint16(layers.EthernetTypeIPv6)
		}
		binary.BigEndian.PutUint16(h[14:], et)
		return append(h, ip...)
	}},
	{"linux-sll2", layers.LinkType(276 % 256), func(ip []byte, v6 bool) []byte {
		h := make([]byte, 20, 20+len(ip))
		et := uint16(layers.EthernetTypeIPv4)
		if v6 {
			et = uint16(layers.EthernetTypeIPv6)
		}
		binary.BigEndian.PutUint16(h[0:], et)
		binary.BigEndian.PutUint32(h[4:], 2) // interface index
		binary.BigEndian.PutUint16(h[8:], 1)
		h[11] = 6
		return append(h, ip...)
	}},
	{"raw", layers.LinkTypeRaw, func(ip []byte, v6 bool) []byte { return ip }},
}

// ipPacket serializes f as IPv4 or IPv6 and UDP.
func ipPacket(t testing.TB, f frame) []byte {
	t.Helper()
	udp := &layers.UDP{SrcPort: layers.UDPPort(f.src.Port()), DstPort: layers.UDPPort(f.dst.Port())}
	var ip gopacket.SerializableLayer
	if f.src.Addr().Is4() {
		ip4 := &layers.IPv4{Version: 4, TTL: f.ttl, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IP(f.src.Addr().AsSlice()), DstIP: net.IP(f.dst.Addr().AsSlice())}
		udp.SetNetworkLayerForChecksum(ip4)
		ip = ip4
	} else {
		ip6 := &layers.IPv6{Version: 6, HopLimit: f.ttl, NextHeader: layers.IPProtocolUDP,
			SrcIP: net.IP(f.src.Addr().AsSlice()), DstIP: net.IP(f.dst.Addr().AsSlice())}
		udp.SetNetworkLayerForChecksum(ip6)
		ip = ip6
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, udp, gopacket.Payload(f.payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// format is a capture file format.
type format int

const (
	pcapMicro format = iota
	pcapNano
	pcapGzip
	pcapng
)

func (f format) String() string { return [...]string{"pcap", "pcap-ns", "pcap.gz", "pcapng"}[f] }

// writeCapture writes frames as a capture of the given format and link
// type, each packet cut to snap bytes (0: whole).
func writeCapture(t testing.TB, frames []frame, fm format, l link, snap int) []byte {
	t.Helper()
	var out bytes.Buffer
	var write func(ci gopacket.CaptureInfo, b []byte) error
	var flush func() error
	switch fm {
	case pcapMicro, pcapNano, pcapGzip:
		var w *pcapgo.Writer
		var gz *gzip.Writer
		if fm == pcapGzip {
			gz = gzip.NewWriter(&out)
			w = pcapgo.NewWriter(gz)
		} else if fm == pcapNano {
			w = pcapgo.NewWriterNanos(&out)
		} else {
			w = pcapgo.NewWriter(&out)
		}
		if err := w.WriteFileHeader(MaxSnapForTests, l.typ); err != nil {
			t.Fatal(err)
		}
		write, flush = w.WritePacket, func() error {
			if gz != nil {
				return gz.Close()
			}
			return nil
		}
	case pcapng:
		w, err := pcapgo.NewNgWriterInterface(&out, pcapgo.NgInterface{Name: "eth0", LinkType: l.typ, SnapLength: MaxSnapForTests,
			TimestampResolution: 9}, pcapgo.NgWriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		write, flush = w.WritePacket, w.Flush
	}
	for _, f := range frames {
		ip := f.ip
		if ip == nil {
			ip = ipPacket(t, f)
		}
		b := l.wrap(ip, f.src.Addr().Is6())
		ci := gopacket.CaptureInfo{Timestamp: f.at, Length: len(b), CaptureLength: len(b)}
		if snap > 0 && len(b) > snap {
			b, ci.CaptureLength = b[:snap], snap
		}
		if err := write(ci, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// MaxSnapForTests is the snap length the test captures state.
const MaxSnapForTests = 65535
