// Package traceroute traces the route to a host: the route before and after
// a path or capacity change that the monitor's alarms carry.
package traceroute

import "net"

// Host is the host part of a "host:port" address (or the address itself).
func Host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
