// Package dispersion is how a probe train's spreading is observed: the
// timestamping socket (Conn) that stamps every packet as it leaves and
// arrives, and TrainSample (sample.go), which turns one train's stamps into a
// dispersion sample for package estimator, or into the reason it is not one.
//
// # The socket
//
// Conn is abing's UDP socket: it stamps every datagram it
// receives with the best clock available, learns when its own datagrams left,
// reports ICMP errors about them, the TTL they arrived with and the local
// address they were sent to, and sends from a chosen local address.
//
// Timestamp sources, best first:
//
//   - hardware: the NIC stamps packets (SO_TIMESTAMPING with
//     SOF_TIMESTAMPING_RAW_HARDWARE, enabled on the interface with
//     SIOCSHWTSTAMP);
//   - kernel: the kernel stamps packets in software as they pass the driver
//     (SO_TIMESTAMPING software flags, or SO_TIMESTAMPNS for receive only);
//   - user: the time a system call returned in user space (noisy: it
//     includes scheduling delay).
//
// The source is decided per packet from the control messages that came with
// it, so a result can always say which clock produced it. Transmit times come
// back through the socket error queue (SOF_TIMESTAMPING_OPT_ID keys each sent
// datagram); where the kernel cannot stamp transmissions the user-space time
// of the send call stands in, and is reported as such.
//
// This file is the portable API. The socket itself needs Linux
// (conn_linux.go); elsewhere Listen returns ErrNeedsLinux, so that the parts
// of abing that only read stored results build and run on any system.
package dispersion

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrNeedsLinux is what Listen returns on other systems.
var ErrNeedsLinux = errors.New("timestamping UDP socket needs Linux (SO_TIMESTAMPING, IP_PKTINFO, MSG_ERRQUEUE)")

// Source says which clock produced a timestamp. Higher is better.
type Source uint8

// Timestamp sources.
const (
	SourceNone     Source = 0
	SourceUser     Source = 1
	SourceKernel   Source = 2
	SourceHardware Source = 3
)

func (s Source) String() string {
	switch s {
	case SourceUser:
		return "user"
	case SourceKernel:
		return "kernel"
	case SourceHardware:
		return "hardware"
	}
	return "none"
}

// Noise is the timestamp noise assumed for a source: dispersions within a
// few multiples of it cannot be told from zero. Kernel software stamps on a
// loaded virtual machine jitter by a few microseconds; user-space stamps by
// tens.
func (s Source) Noise() float64 {
	switch s {
	case SourceHardware:
		return 0.1e-6
	case SourceKernel:
		return 2e-6
	}
	return 20e-6
}

// Mode is what the user asked for with --timestamps.
type Mode int

// Timestamp modes.
const (
	ModeAuto Mode = iota
	ModeHardware
	ModeSoftware
	ModeUser
)

func (m Mode) String() string {
	return [...]string{"auto", "hardware", "software", "user"}[m]
}

// ParseMode parses the value of --timestamps.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto", "":
		return ModeAuto, nil
	case "hardware":
		return ModeHardware, nil
	case "software", "kernel":
		return ModeSoftware, nil
	case "user":
		return ModeUser, nil
	}
	return ModeAuto, fmt.Errorf("timestamps %q: want auto, hardware, software or user", s)
}

// Capabilities is what the operating system offered when a socket was set up.
type Capabilities struct {
	Hardware        bool // the interface stamps packets and SIOCSHWTSTAMP succeeded
	Timestamping    bool // SO_TIMESTAMPING (software RX and TX) accepted
	TimestampNS     bool // SO_TIMESTAMPNS accepted
	HardwareProblem error
}

// Choose picks receive and transmit sources for a mode given what the system
// offers. It fails only when the user asked for something specific that is
// not there; auto always falls back, best first.
func Choose(m Mode, c Capabilities) (rx, tx Source, err error) {
	switch m {
	case ModeUser:
		return SourceUser, SourceUser, nil
	case ModeHardware:
		if !c.Hardware {
			why := c.HardwareProblem
			if why == nil {
				why = fmt.Errorf("no interface with hardware timestamps")
			}
			return SourceNone, SourceNone, fmt.Errorf("hardware timestamps unavailable: %w", why)
		}
		return SourceHardware, SourceHardware, nil
	case ModeSoftware:
		switch {
		case c.Timestamping:
			return SourceKernel, SourceKernel, nil
		case c.TimestampNS:
			return SourceKernel, SourceUser, nil
		}
		return SourceNone, SourceNone, fmt.Errorf("kernel timestamps unavailable (neither SO_TIMESTAMPING nor SO_TIMESTAMPNS)")
	}
	switch {
	case c.Hardware:
		return SourceHardware, SourceHardware, nil
	case c.Timestamping:
		return SourceKernel, SourceKernel, nil
	case c.TimestampNS:
		return SourceKernel, SourceUser, nil
	}
	return SourceUser, SourceUser, nil
}

// Options configures Listen.
type Options struct {
	Mode Mode
	// Interface names the interface whose NIC should stamp packets in
	// hardware. Empty: the interface that owns the listen address, or, for a
	// wildcard address, none (hardware stamping changes NIC-wide settings, so
	// abing only does it where it is told which NIC).
	Interface string
	// Buffer is SO_RCVBUF and SO_SNDBUF in bytes; 0 means 4 MiB.
	Buffer int
}

// Kind says what Recv returned.
type Kind int

// Kinds of Event.
const (
	// Data: a datagram arrived; Event.N bytes of it are in the buffer.
	Data Kind = iota
	// TxStamp: the kernel reports when one of our datagrams left.
	TxStamp
	// Unreachable: an ICMP error came back for a datagram we sent to From.
	// From is invalid when the error came as the socket's pending error
	// (IsICMPError); the same error also comes from the error queue, with
	// its address.
	Unreachable
)

// ICMP is the kind of ICMP error an Unreachable event reports, by the error
// the kernel turned it into.
type ICMP int

// Kinds of ICMP errors.
const (
	ICMPPortUnreachable ICMP = iota // ECONNREFUSED
	ICMPHostUnreachable             // EHOSTUNREACH, EHOSTDOWN, ENONET (also time exceeded)
	ICMPNetUnreachable              // ENETUNREACH
	ICMPTooBig                      // EMSGSIZE: fragmentation needed, packet too big
	ICMPOther                       // protocol unreachable, parameter problem, prohibited, …
	NumICMP                         // the number of kinds
)

var icmpNames = [NumICMP]string{"port_unreachable", "host_unreachable", "net_unreachable", "too_big", "other"}

func (e ICMP) String() string {
	if e >= 0 && e < NumICMP {
		return icmpNames[e]
	}
	return fmt.Sprintf("icmp(%d)", int(e))
}

// Event is one thing read from the socket.
type Event struct {
	Kind   Kind
	N      int
	From   netip.AddrPort
	Ns     int64 // receive or transmit time, ns
	Source Source
	TTL    int    // received TTL / hop limit, -1 when unknown
	Key    uint32 // TxStamp: the OPT_ID key of the datagram
	Err    error  // Unreachable: the error the ICMP message carries
	ICMP   ICMP   // Unreachable: its kind
	Trunc  bool   // Data: the datagram was larger than the buffer
	// Dst is the address a Data datagram was sent to (one of ours;
	// invalid when unknown): the source to answer from (PeerFrom).
	Dst netip.Addr
}
