// Package testbed builds emulated network paths out of Linux network
// namespaces, for abing's integration tests, demo and accuracy report.
//
// Topology (addresses from the benchmarking range 198.18.0.0/15 and from
// fd00::/8, nothing else):
//
//	sender 198.18.1.2 ─┐                         ┌─ reflector 198.18.2.2
//	                   router (198.18.{1,2,3}.1)
//	cross  198.18.3.2 ─┘
//
// AddHop puts a second router on the way to the reflector mid-run (a route
// change: one hop more each way, same bottleneck rates):
//
//	router ─ 198.18.4.0/24 ─ hop ─ 198.18.5.0/24 ─ reflector (eth1)
//
// The router forwards between three veth links. The forward bottleneck is a
// tbf on the router's egress toward the reflector, the reverse one a tbf on
// its egress toward the sender; each is shaped independently. The cross host
// sends traffic through either bottleneck.
//
// A tbf is a token bucket, not a link: with a bucket larger than one frame a
// pair entering an idle bottleneck passes partly at once and reads as a
// faster link. The testbed therefore sets the bucket to exactly one probe
// frame (IP size + 14 bytes of Ethernet header, which the qdisc counts). The
// qdisc's timers on these machines fire late, so the link forwards less than
// its nominal rate; Calibrate measures what it really forwards, and that,
// not the nominal rate, is the truth a scenario is judged against.
//
// Everything is torn down by Close, and by CleanStale for namespaces whose
// process was killed.
package testbed
