// Package meshagent runs one host of a self-organising mesh (abing mesh
// agent): a reflector, a monitor that measures every other member on each
// of the paths both advertise, and a serf member (package
// github.com/hashicorp/serf/serf) for membership, failure detection and
// dissemination.
//
// Each node feeds its own RTTs, path by path, into a Vivaldi client
// (serf's coordinate package; one per path, since coordinates of
// different networks are not comparable) and publishes its row (its
// coordinate and its links: cost, RTT, loss, jitter, ABW to each peer) as
// serf user events named after it: a link when its cost moves past the
// monitor's thresholds, the coordinate when it moves, the whole row at a
// slow refresh. Every node so holds the full map (View), which answers the
// netloc API (package netloc), /api/v1/mesh, and the records that abing
// mesh compare, relays and coords read with --agent. A member that fails
// or leaves raises a down alarm, cleared when it comes back.
package meshagent
