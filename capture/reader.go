package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/train"
)

// MaxSnap is the largest captured packet read: libpcap's own largest snap
// length. A file that claims more is read with this one, and a packet
// longer than it is an error, so that a hostile header cannot make the
// reader allocate gigabytes.
const MaxSnap = 262144

// linkTypeSLL2 is Linux cooked capture v2 (LINKTYPE 276), what tcpdump -i
// any writes since libpcap 1.10. gopacket 1.1.19 predates it and keeps
// link types in 8 bits, so it reads as 276 mod 256, a value no other link
// type uses.
const linkTypeSLL2 = layers.LinkType(276 % 256)

// Datagram is one abing datagram found in a capture.
type Datagram struct {
	Time     time.Time // the capture's timestamp
	Src, Dst netip.AddrPort
	TTL      int // TTL or hop limit, as captured
	Size     int // IP-layer size, from the IP header
	Header   train.Header
	// Data is the UDP payload. When the capture cut the packet (a snap
	// length shorter than it), Data is zero-filled to the length the UDP
	// header states, and only its first Captured bytes are real.
	Data     []byte
	Captured int
}

// Cut says whether the capture holds fewer bytes of d than were sent.
func (d *Datagram) Cut() bool { return d.Captured < len(d.Data) }

// Message is d without the signature that a reflector's signed message
// ends with (auth.TrailerLen bytes; it is not checked, which needs the
// key), and whether there was one; nil for a signed message too short to
// hold one.
func (d *Datagram) Message() (b []byte, signed bool) {
	if d.Header.Type.FromSender() || d.Header.Flags&train.FlagSigned == 0 {
		return d.Data, false
	}
	if len(d.Data) < train.HeaderLen+auth.TrailerLen {
		return nil, true
	}
	return d.Data[:len(d.Data)-auth.TrailerLen], true
}

// Stats count what a Reader went through.
type Stats struct {
	Packets   int // records in the file
	Datagrams int // abing datagrams returned
	Fragments int // IP fragments, which are not reassembled
	Other     int // anything else: other protocols, other UDP, other link types
}

// Reader reads the abing datagrams of a pcap or pcapng capture.
type Reader struct {
	src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	ng       *pcapgo.NgReader
	link     layers.LinkType
	res      time.Duration // of a classic pcap file; pcapng says it per interface
	stats    Stats
	parsers  map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded  []gopacket.LayerType
	eth      layers.Ethernet
	dot1q    layers.Dot1Q
	sll      layers.LinuxSLL
	ip4      layers.IPv4
	ip6      layers.IPv6
	udp      layers.UDP
	probe    Probe
	payload  gopacket.Payload
	datagram []byte
	progress func(Stats)
}

// NewReader reads a capture in pcap (microsecond or nanosecond, either
// byte order, gzipped or not) or pcapng format.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("not a capture: %d bytes", len(magic))
	}
	if magic[0] == 0x1f && magic[1] == 0x8b { // gzip, as tcpdump -z gzip leaves it
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReaderSize(gz, 1<<16)
		if magic, err = br.Peek(4); err != nil {
			return nil, fmt.Errorf("gzip: not a capture inside: %w", err)
		}
	}
	c := &Reader{parsers: map[gopacket.LayerType]*gopacket.DecodingLayerParser{}}
	if binary.LittleEndian.Uint32(magic) == ngSHB {
		ng, err := pcapgo.NewNgReader(&ngGuard{r: br}, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, fmt.Errorf("pcapng: %w", err)
		}
		c.src, c.ng = ng, ng
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("not a pcap or pcapng file: %w", err)
		}
		if pr.Snaplen() > MaxSnap {
			pr.SetSnaplen(MaxSnap)
		}
		// pcapgo's Reader.Resolution has micro and nano swapped (1.1.19):
		// the magic says which.
		c.res = time.Microsecond
		if m := binary.LittleEndian.Uint32(magic); m == 0xa1b23c4d || m == 0x4d3cb2a1 {
			c.res = time.Nanosecond
		}
		c.src, c.link = pr, pr.LinkType()
	}
	return c, nil
}

func resolution(r gopacket.TimestampResolution) time.Duration {
	if r.Base == 0 {
		return time.Nanosecond
	}
	d := time.Second
	for e := r.Exponent; e < 0 && d > time.Nanosecond; e++ {
		d /= time.Duration(r.Base)
	}
	return max(d, time.Nanosecond)
}

// Resolution is the coarsest timestamp resolution of the interfaces read so
// far (of the file, for a classic pcap).
func (c *Reader) Resolution() time.Duration {
	if c.ng == nil {
		return c.res
	}
	var worst time.Duration
	for i := range c.ng.NInterfaces() {
		if ifc, err := c.ng.Interface(i); err == nil {
			worst = max(worst, resolution(ifc.Resolution()))
		}
	}
	return max(worst, time.Nanosecond)
}

// Progress has fn called with the stats every 65,536 packets read.
func (c *Reader) Progress(fn func(Stats)) { c.progress = fn }

// Stats says what was read so far.
func (c *Reader) Stats() Stats { return c.stats }

// Next returns the next abing datagram, io.EOF at the end of the capture,
// or an error that names the record that could not be read.
func (c *Reader) Next() (*Datagram, error) {
	for {
		data, ci, err := c.src.ReadPacketData()
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = errors.New("the file ends inside it (cut short?)")
			}
			return nil, fmt.Errorf("record %d: %w", c.stats.Packets+1, err)
		}
		c.stats.Packets++
		if c.progress != nil && c.stats.Packets%(1<<16) == 0 {
			c.progress(c.stats)
		}
		link := c.link
		if c.ng != nil && len(ci.AncillaryData) > 0 {
			link, _ = ci.AncillaryData[0].(layers.LinkType)
		}
		d := c.decode(data, link)
		if d == nil {
			continue
		}
		d.Time = ci.Timestamp
		c.stats.Datagrams++
		return d, nil
	}
}

// decode finds an abing datagram in one captured frame of the given link
// type; nil if there is none.
func (c *Reader) decode(data []byte, link layers.LinkType) *Datagram {
	var first gopacket.LayerType
	switch link {
	case layers.LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case linkTypeSLL2:
		if len(data) < 20 {
			c.stats.Other++
			return nil
		}
		switch binary.BigEndian.Uint16(data[:2]) {
		case uint16(layers.EthernetTypeIPv4):
			first = layers.LayerTypeIPv4
		case uint16(layers.EthernetTypeIPv6):
			first = layers.LayerTypeIPv6
		}
		data = data[20:]
	case layers.LinkTypeRaw, 12, 14, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		if len(data) > 0 && data[0]>>4 == 4 {
			first = layers.LayerTypeIPv4
		} else if len(data) > 0 && data[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
	}
	if first == 0 {
		c.stats.Other++
		return nil
	}
	p := c.parser(first)
	c.decoded = c.decoded[:0]
	_ = p.DecodeLayers(data, &c.decoded) // what did decode is in c.decoded
	d := &Datagram{TTL: -1}
	var src, dst netip.Addr
	haveUDP, frag := false, false
	var probe *Probe
	var payload []byte
	for _, lt := range c.decoded {
		switch lt {
		case layers.LayerTypeIPv4:
			src, _ = netip.AddrFromSlice(c.ip4.SrcIP.To4())
			dst, _ = netip.AddrFromSlice(c.ip4.DstIP.To4())
			d.TTL, d.Size = int(c.ip4.TTL), int(c.ip4.Length)
			frag = c.ip4.Flags&layers.IPv4MoreFragments != 0 || c.ip4.FragOffset != 0
		case layers.LayerTypeIPv6:
			src, _ = netip.AddrFromSlice(c.ip6.SrcIP)
			dst, _ = netip.AddrFromSlice(c.ip6.DstIP)
			d.TTL, d.Size = int(c.ip6.HopLimit), int(c.ip6.Length)+40
		case layers.LayerTypeUDP:
			haveUDP = true
			d.Src = netip.AddrPortFrom(src, uint16(c.udp.SrcPort))
			d.Dst = netip.AddrPortFrom(dst, uint16(c.udp.DstPort))
			payload = c.udp.Payload
		case LayerTypeProbe:
			probe = &c.probe
		}
	}
	if frag {
		c.stats.Fragments++
		return nil
	}
	if !haveUDP || !src.IsValid() || !dst.IsValid() || len(payload) < 5 || string(payload[:4]) != train.Magic {
		c.stats.Other++
		return nil
	}
	// The datagram's length by its UDP header; a capture may hold less.
	full := int(c.udp.Length) - 8
	if full < len(payload) || full > MaxSnap {
		full = len(payload)
	}
	d.Captured = len(payload)
	if full > len(payload) {
		c.datagram = append(c.datagram[:0], payload...)
		c.datagram = append(c.datagram, make([]byte, full-len(payload))...)
		payload = c.datagram
	}
	if probe == nil || d.Captured < len(payload) {
		// Another port, or a cut datagram (zero-filled, see Datagram.Data).
		if len(payload) < train.HeaderLen || d.Captured < train.HeaderLen || c.probe.DecodeFromBytes(payload, gopacket.NilDecodeFeedback) != nil {
			c.stats.Other++
			return nil
		}
		probe = &c.probe
	}
	d.Header = probe.Header
	d.Data = append([]byte(nil), payload...)
	return d
}

func (c *Reader) parser(first gopacket.LayerType) *gopacket.DecodingLayerParser {
	p := c.parsers[first]
	if p == nil {
		p = gopacket.NewDecodingLayerParser(first, &c.eth, &c.dot1q, &c.sll, &c.ip4, &c.ip6, &c.udp, &c.probe, &c.payload)
		p.IgnoreUnsupported = true
		c.parsers[first] = p
	}
	return p
}
