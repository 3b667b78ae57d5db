// Package dispersion is abing's receive side: a UDP socket that stamps every
// datagram with the best clock available, learns when its own datagrams left,
// and turns per-packet timestamps of a train into dispersion samples.
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
package dispersion

import "fmt"

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
