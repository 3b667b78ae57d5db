// Package traceroute traces the route to a host: the route before and after
// a path or capacity change that the monitor's alarms carry.
package traceroute
