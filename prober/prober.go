// Package prober holds the probes abing runs besides its own measurement,
// one file each: today the traceroute that alarms carry (the route before
// and after a path or capacity change).
package prober

import "net"

// Host is the host part of a "host:port" address (or the address itself).
func Host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
