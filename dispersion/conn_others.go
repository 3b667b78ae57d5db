//go:build !linux

package dispersion

import (
	"fmt"
	"net/netip"
	"os"
	"time"
)

// Conn is the timestamping socket; on this system it cannot be opened.
type Conn struct{}

// Listen returns ErrNeedsLinux.
func Listen(network, address string, opts Options) (*Conn, error) {
	return nil, fmt.Errorf("listen %s: %w", address, ErrNeedsLinux)
}

// File returns ErrNeedsLinux.
func (c *Conn) File() (*os.File, error) { return nil, ErrNeedsLinux }

// FileConn returns ErrNeedsLinux.
func FileConn(f *os.File, mode Mode) (*Conn, error) {
	return nil, fmt.Errorf("inherited socket: %w", ErrNeedsLinux)
}

// Sources is never reached: no Conn exists on this system.
func (c *Conn) Sources() (rx, tx Source) { return SourceNone, SourceNone }

// Capabilities is never reached: no Conn exists on this system.
func (c *Conn) Capabilities() Capabilities { return Capabilities{} }

// LocalAddr is never reached: no Conn exists on this system.
func (c *Conn) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// Close is never reached: no Conn exists on this system.
func (c *Conn) Close() error { return ErrNeedsLinux }

// SetReadDeadline is never reached: no Conn exists on this system.
func (c *Conn) SetReadDeadline(time.Time) error { return ErrNeedsLinux }

// Peer is never reached: no Conn exists on this system.
func (c *Conn) Peer(netip.AddrPort) *Peer { return &Peer{} }

// PeerFrom is never reached: no Conn exists on this system.
func (c *Conn) PeerFrom(netip.AddrPort, netip.Addr) *Peer { return &Peer{} }

// Recv is never reached: no Conn exists on this system.
func (c *Conn) Recv([]byte) (Event, error) { return Event{}, ErrNeedsLinux }

// Peer sends datagrams to one address; on this system it cannot.
type Peer struct{}

// FirstKey is never reached: no Peer exists on this system.
func (p *Peer) FirstKey() uint32 { return 0 }

// Write returns ErrNeedsLinux.
func (p *Peer) Write([]byte) (int64, error) { return 0, ErrNeedsLinux }

// WriteBatch returns ErrNeedsLinux.
func (p *Peer) WriteBatch([][]byte) (int64, error) { return 0, ErrNeedsLinux }

// IsICMPError is false on this system: no socket here can receive one.
func IsICMPError(error) bool { return false }
