package dispersion

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is a UDP socket with per-packet receive and transmit timestamps and
// the received TTL / hop limit.
type Conn struct {
	uc     *net.UDPConn
	rc     syscall.RawConn
	v6     bool // AF_INET6 socket (may carry IPv4-mapped traffic)
	rx, tx Source
	caps   Capabilities
	sent   uint32 // datagrams handed to the kernel: the next OPT_ID key
	oob    []byte
	hdrs   []unix.Mmsghdr
	iovs   []unix.Iovec
}

// Listen opens a UDP socket on address ("host:port", host may be empty) for
// network "udp", "udp4" or "udp6", and configures timestamps as opts asks.
func Listen(network, address string, opts Options) (*Conn, error) {
	laddr, err := net.ResolveUDPAddr(network, address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", address, err)
	}
	uc, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", address, err)
	}
	c := &Conn{uc: uc, oob: make([]byte, 512)}
	local := uc.LocalAddr().(*net.UDPAddr)
	c.v6 = local.IP.To4() == nil || network == "udp6"
	if c.rc, err = uc.SyscallConn(); err != nil {
		uc.Close()
		return nil, fmt.Errorf("listen %s: %w", address, err)
	}
	ifname := opts.Interface
	if ifname == "" && !local.IP.IsUnspecified() {
		ifname = interfaceOf(local.IP)
	}
	var serr error
	cerr := c.rc.Control(func(fd uintptr) { serr = c.setup(int(fd), opts, ifname) })
	if err = errors.Join(cerr, serr); err != nil {
		uc.Close()
		return nil, fmt.Errorf("listen %s: %w", address, err)
	}
	return c, nil
}

// File returns a duplicate of the socket as a file, for a process that
// inherits it (FileConn).
func (c *Conn) File() (*os.File, error) { return c.uc.File() }

// FileConn makes a Conn of a socket that Listen set up in another process
// (or another image of this one: a daemon that re-executes itself to shed
// capabilities), with the mode it was set up for: what the socket
// delivers is read back from its options.
func FileConn(f *os.File, mode Mode) (*Conn, error) {
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("inherited socket: %w", err)
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("inherited socket: %T, not UDP", pc)
	}
	c := &Conn{uc: uc, oob: make([]byte, 512)}
	if c.rc, err = uc.SyscallConn(); err != nil {
		uc.Close()
		return nil, fmt.Errorf("inherited socket: %w", err)
	}
	var domain, stamping, ns int
	var derr, serr error
	cerr := c.rc.Control(func(fd uintptr) {
		domain, derr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		stamping, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPING)
		ns, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS)
	})
	if err := errors.Join(cerr, derr, serr); err != nil {
		uc.Close()
		return nil, fmt.Errorf("inherited socket: %w", err)
	}
	c.v6 = domain == unix.AF_INET6
	c.caps.Hardware = stamping&unix.SOF_TIMESTAMPING_RX_HARDWARE != 0
	c.caps.Timestamping = stamping&unix.SOF_TIMESTAMPING_RX_SOFTWARE != 0 || c.caps.Hardware
	c.caps.TimestampNS = ns != 0
	if mode == ModeUser {
		c.rx, c.tx = SourceUser, SourceUser
	} else if c.rx, c.tx, err = Choose(mode, c.caps); err != nil {
		uc.Close()
		return nil, fmt.Errorf("inherited socket: %w", err)
	}
	return c, nil
}

func (c *Conn) setup(fd int, opts Options, ifname string) error {
	buf := opts.Buffer
	if buf == 0 {
		buf = 4 << 20
	}
	// FORCE variants pass the sysctl limits when we have CAP_NET_ADMIN.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, buf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, buf)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, buf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, buf)
	}
	// TTL / hop limit and ICMP errors, for both families where the socket
	// is dual-stack. A failure here only loses the TTL or the fast error.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTTL, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
	if c.v6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
	}
	// The address each datagram was sent to (Event.Dst), so that a socket
	// on a wildcard address can answer from it (PeerFrom). IP_PKTINFO
	// also reports IPv4 traffic on a dual-stack socket.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil && !c.v6 {
		return fmt.Errorf("IP_PKTINFO: %w", err)
	}
	if c.v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			return fmt.Errorf("IPV6_RECVPKTINFO: %w", err)
		}
	}

	if opts.Mode == ModeUser {
		c.rx, c.tx = SourceUser, SourceUser
		return nil
	}
	const software = unix.SOF_TIMESTAMPING_RX_SOFTWARE | unix.SOF_TIMESTAMPING_TX_SOFTWARE |
		unix.SOF_TIMESTAMPING_SOFTWARE | unix.SOF_TIMESTAMPING_OPT_ID | unix.SOF_TIMESTAMPING_OPT_TSONLY
	const hardware = unix.SOF_TIMESTAMPING_RX_HARDWARE | unix.SOF_TIMESTAMPING_TX_HARDWARE |
		unix.SOF_TIMESTAMPING_RAW_HARDWARE
	if opts.Mode == ModeAuto || opts.Mode == ModeHardware {
		c.caps.HardwareProblem = enableHardware(fd, ifname)
		if c.caps.HardwareProblem == nil {
			c.caps.Hardware = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, software|hardware) == nil
		}
	}
	if !c.caps.Hardware {
		c.caps.Timestamping = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, software) == nil
	} else {
		c.caps.Timestamping = true
	}
	if !c.caps.Timestamping {
		c.caps.TimestampNS = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) == nil
	}
	var err error
	c.rx, c.tx, err = Choose(opts.Mode, c.caps)
	return err
}

// enableHardware turns on NIC timestamping of all received packets and of
// transmitted ones on ifname, after checking that the NIC can do it.
func enableHardware(fd int, ifname string) error {
	if ifname == "" {
		return errors.New("no interface named (use --interface)")
	}
	info, err := unix.IoctlGetEthtoolTsInfo(fd, ifname)
	if err != nil {
		return fmt.Errorf("%s: ethtool timestamp info: %w", ifname, err)
	}
	const need = unix.SOF_TIMESTAMPING_RX_HARDWARE | unix.SOF_TIMESTAMPING_RAW_HARDWARE
	if info.So_timestamping&need != need {
		return fmt.Errorf("%s: NIC has no hardware receive timestamps", ifname)
	}
	cfg := unix.HwTstampConfig{Tx_type: unix.HWTSTAMP_TX_ON, Rx_filter: unix.HWTSTAMP_FILTER_ALL}
	if err := unix.IoctlSetHwTstamp(fd, ifname, &cfg); err != nil {
		return fmt.Errorf("%s: SIOCSHWTSTAMP: %w", ifname, err)
	}
	return nil
}

// interfaceOf returns the name of the interface that owns ip, or "".
func interfaceOf(ip net.IP) string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return ifc.Name
			}
		}
	}
	return ""
}

// Sources returns the receive and transmit sources this socket was set up
// for. Each packet still reports the source that really stamped it.
func (c *Conn) Sources() (rx, tx Source) { return c.rx, c.tx }

// Capabilities returns what the system offered when the socket was set up.
func (c *Conn) Capabilities() Capabilities { return c.caps }

// LocalAddr returns the bound address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.uc.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close closes the socket; a blocked Recv returns.
func (c *Conn) Close() error { return c.uc.Close() }

// SetReadDeadline bounds the next Recv calls.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// Peer returns a writer that sends to addr. It is not safe for concurrent use
// with other writers of the same Conn.
func (c *Conn) Peer(addr netip.AddrPort) *Peer { return c.PeerFrom(addr, netip.Addr{}) }

// PeerFrom returns a writer that sends to addr from the local address from
// (IP_PKTINFO / IPV6_PKTINFO), as a server on a wildcard address must when
// it answers: the kernel would otherwise pick the source by the route back,
// which on a host with several addresses need not be the one the request
// came to, and a sender drops answers from an address it did not ask. An
// invalid from lets the kernel choose.
func (c *Conn) PeerFrom(addr netip.AddrPort, from netip.Addr) *Peer {
	p := &Peer{c: c}
	switch {
	case !from.IsValid():
	case c.v6: // a v4-mapped source serves IPv4 on a dual-stack socket
		p.oob = unix.PktInfo6(&unix.Inet6Pktinfo{Addr: from.As16()})
	case from.Unmap().Is4():
		p.oob = unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: from.Unmap().As4()})
	}
	ip := addr.Addr()
	if c.v6 {
		sa := &unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], addr.Port())
		p.name, p.namelen = (*byte)(unsafe.Pointer(sa)), unix.SizeofSockaddrInet6
		p.keep = sa
	} else {
		sa := &unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], addr.Port())
		p.name, p.namelen = (*byte)(unsafe.Pointer(sa)), unix.SizeofSockaddrInet4
		p.keep = sa
	}
	return p
}

// Peer sends datagrams to one address through a Conn.
type Peer struct {
	c       *Conn
	name    *byte
	namelen uint32
	keep    any    // the sockaddr that name points into
	oob     []byte // control message giving the source address, or nil
}

// FirstKey is the transmit-timestamp key the next datagram will get.
func (p *Peer) FirstKey() uint32 { return p.c.sent }

// Write sends one datagram and returns the user-space time before the call.
func (p *Peer) Write(pkt []byte) (int64, error) {
	return p.WriteBatch([][]byte{pkt})
}

// WriteBatch sends all datagrams with sendmmsg and returns the user-space
// time before the first call. Each datagram consumes one transmit key.
func (p *Peer) WriteBatch(pkts [][]byte) (int64, error) {
	c := p.c
	if cap(c.hdrs) < len(pkts) {
		c.hdrs = make([]unix.Mmsghdr, len(pkts))
		c.iovs = make([]unix.Iovec, len(pkts))
	}
	hdrs, iovs := c.hdrs[:len(pkts)], c.iovs[:len(pkts)]
	for i, b := range pkts {
		iovs[i] = unix.Iovec{Base: &b[0]}
		iovs[i].SetLen(len(b))
		hdrs[i] = unix.Mmsghdr{}
		hdrs[i].Hdr.Name = p.name
		hdrs[i].Hdr.Namelen = p.namelen
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.SetIovlen(1)
		if p.oob != nil {
			hdrs[i].Hdr.Control = &p.oob[0]
			hdrs[i].Hdr.SetControllen(len(p.oob))
		}
	}
	now := time.Now().UnixNano()
	done, retries := 0, 0
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		for done < len(hdrs) {
			n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd,
				uintptr(unsafe.Pointer(&hdrs[done])), uintptr(len(hdrs)-done), 0, 0, 0)
			if errno == unix.EAGAIN {
				return false
			}
			if errno == unix.EINTR {
				continue
			}
			if IsICMPError(errno) && retries < maxSendRetries {
				// A pending error from an ICMP message about an earlier
				// datagram: reporting it cleared it, and this datagram
				// was not sent. Try again.
				retries++
				continue
			}
			if errno != 0 {
				serr = os.NewSyscallError("sendmmsg", errno)
				return true
			}
			done += int(n)
			c.sent += uint32(n)
		}
		return true
	})
	runtime.KeepAlive(pkts)
	runtime.KeepAlive(p.keep)
	runtime.KeepAlive(p.oob)
	if err == nil {
		err = serr
	}
	return now, err
}

// maxSendRetries bounds how often WriteBatch tries again after a pending
// ICMP error: each try clears one, and a local error (no route) repeats.
const maxSendRetries = 4

// classifyICMP says what kind of ICMP error err reports.
func classifyICMP(err error) ICMP {
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		return ICMPPortUnreachable
	case errors.Is(err, unix.EHOSTUNREACH), errors.Is(err, unix.EHOSTDOWN), errors.Is(err, unix.ENONET):
		return ICMPHostUnreachable
	case errors.Is(err, unix.ENETUNREACH):
		return ICMPNetUnreachable
	case errors.Is(err, unix.EMSGSIZE):
		return ICMPTooBig
	}
	return ICMPOther
}

// IsICMPError reports whether err is one that an ICMP or ICMPv6 error
// message can deliver to a UDP socket (the kernel's icmp_err_convert and
// icmpv6_err_convert tables, and time exceeded and parameter problem): a
// remote peer, or anyone forging ICMP, can cause it at will, so it must
// never end a server loop.
func IsICMPError(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN, unix.ENONET,
		unix.ENOPROTOOPT, unix.EMSGSIZE, unix.EOPNOTSUPP, unix.EPROTO, unix.EACCES:
		return true
	}
	return false
}

// Recv blocks until a datagram, a transmit timestamp or an ICMP error is
// available, or the read deadline passes. Transmit timestamps and errors are
// returned before data.
func (c *Conn) Recv(buf []byte) (Event, error) {
	var ev Event
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, oobn, flags, from, err := unix.Recvmsg(int(fd), buf, c.oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err == nil {
			ev, rerr = c.parseErrQueue(c.oob[:oobn], from)
			return true
		}
		n, oobn, flags, from, err = unix.Recvmsg(int(fd), buf, c.oob, unix.MSG_DONTWAIT)
		now := time.Now().UnixNano()
		switch {
		case err == unix.EAGAIN:
			return false
		case err == unix.EINTR:
			return false
		case IsICMPError(err):
			// The pending socket error that an ICMP message set (IP_RECVERR
			// sets it besides queueing the message): it says nothing about
			// this socket, and the queued message, with its address, is
			// read next.
			ev = Event{Kind: Unreachable, Err: err, ICMP: classifyICMP(err), TTL: -1}
			return true
		case err != nil:
			rerr = os.NewSyscallError("recvmsg", err)
			return true
		}
		ev = Event{Kind: Data, N: n, From: addrPort(from), Ns: now, Source: SourceUser, TTL: -1,
			Trunc: flags&unix.MSG_TRUNC != 0}
		c.parseData(c.oob[:oobn], &ev)
		return true
	})
	if err != nil {
		return ev, err
	}
	return ev, rerr
}

func (c *Conn) parseData(oob []byte, ev *Event) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPING:
			if ns, src := scmTimestamping(m.Data); src != SourceNone {
				ev.Ns, ev.Source = ns, src
			}
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS:
			if len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
				ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				ev.Ns, ev.Source = ts.Nano(), SourceKernel
			}
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO:
			if len(m.Data) >= unix.SizeofInet4Pktinfo {
				pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&m.Data[0]))
				ev.Dst = netip.AddrFrom4(pi.Addr)
			}
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO:
			if len(m.Data) >= unix.SizeofInet6Pktinfo {
				pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&m.Data[0]))
				ev.Dst = netip.AddrFrom16(pi.Addr).Unmap()
			}
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL,
			m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT:
			if len(m.Data) >= 4 {
				ev.TTL = int(int32(binary.NativeEndian.Uint32(m.Data)))
			}
		}
	}
}

// scmTimestamping reads struct scm_timestamping: ts[0] software, ts[2] raw
// hardware. Hardware wins when present.
func scmTimestamping(b []byte) (int64, Source) {
	if len(b) < int(unsafe.Sizeof(unix.ScmTimestamping{})) {
		return 0, SourceNone
	}
	s := (*unix.ScmTimestamping)(unsafe.Pointer(&b[0]))
	if ns := s.Ts[2].Nano(); ns != 0 {
		return ns, SourceHardware
	}
	if ns := s.Ts[0].Nano(); ns != 0 {
		return ns, SourceKernel
	}
	return 0, SourceNone
}

func (c *Conn) parseErrQueue(oob []byte, from unix.Sockaddr) (Event, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return Event{}, fmt.Errorf("error queue: %w", err)
	}
	var ee *unix.SockExtendedErr
	var ns int64
	src := SourceNone
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPING:
			ns, src = scmTimestamping(m.Data)
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR,
			m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR:
			if len(m.Data) >= int(unsafe.Sizeof(unix.SockExtendedErr{})) {
				ee = (*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
			}
		}
	}
	if ee == nil {
		return Event{}, errors.New("error queue: message without extended error")
	}
	switch ee.Origin {
	case unix.SO_EE_ORIGIN_TIMESTAMPING:
		return Event{Kind: TxStamp, Key: ee.Data, Ns: ns, Source: src, TTL: -1}, nil
	case unix.SO_EE_ORIGIN_ICMP, unix.SO_EE_ORIGIN_ICMP6:
		return Event{Kind: Unreachable, From: addrPort(from), Err: syscall.Errno(ee.Errno), ICMP: classifyICMP(syscall.Errno(ee.Errno)), TTL: -1}, nil
	}
	return Event{Kind: Unreachable, From: addrPort(from), Err: fmt.Errorf("error queue origin %d: %w", ee.Origin, syscall.Errno(ee.Errno)), ICMP: classifyICMP(syscall.Errno(ee.Errno)), TTL: -1}, nil
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}
