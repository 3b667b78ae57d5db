package record

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Kind is what an alarm is about.
type Kind string

// Kinds of alarms.
const (
	Capacity Kind = "capacity" // a lasting DBC level shift: a route or capacity change
	Load     Kind = "load"     // ABW low for long while DBC is unchanged
	Latency  Kind = "latency"  // a lasting level shift of the minimum RTT
	Path     Kind = "path"     // the hop count of received probes changed
	Down     Kind = "down"     // the target stopped answering
	// MeshRoute: a mesh agent's route to a member changed (an event: it
	// starts and ends at once, Cleared "event"); its labels say how.
	MeshRoute Kind = "route"
)

// Kinds lists every kind, in a fixed order.
var Kinds = []Kind{Capacity, Load, Latency, Path, Down, MeshRoute}

// Severities.
const (
	Info     = "info"     // a change for the better (capacity up, latency down)
	Warning  = "warning"  // worth a look
	Critical = "critical" // capacity down by 30 % or more, load below half its threshold, target down
)

// Alarm is one episode of one condition on one target and direction.
type Alarm struct {
	Kind      Kind              `json:"kind"`
	Target    string            `json:"target"`
	Address   string            `json:"address,omitempty"` // as configured (host[:port])
	Labels    map[string]string `json:"labels,omitempty"`
	Direction string            `json:"direction"` // forward, reverse, or both (latency, down)
	Severity  string            `json:"severity"`
	Start     time.Time         `json:"start"`
	End       *time.Time        `json:"end,omitempty"` // absent while active
	// Cleared says how the episode ended: "returned" (back to the level
	// before), "accepted" (lasted accept_after: the new level is normal
	// now), "up" (a down target answers again), "forgotten" (the target
	// left the configuration, or its alarm settings changed).
	Cleared  string  `json:"cleared,omitempty"`
	Before   float64 `json:"before"` // level before, in Unit
	After    float64 `json:"after"`  // level when raised, in Unit
	Unit     string  `json:"unit"`   // Mbit/s, ms, hops, up (1 up, 0 down)
	Summary  string  `json:"summary"`
	Evidence []Point `json:"evidence"` // the values that raised it
	Route    *Route  `json:"route,omitempty"`
	// Members are the targets of a group alarm (alarms.GroupTarget):
	// many down at once, raised as one.
	Members []string `json:"members,omitempty"`
}

// Active says whether the alarm has not cleared.
func (a *Alarm) Active() bool { return a.End == nil }

// Status is "firing" or "resolved", as Alertmanager says.
func (a *Alarm) Status() string {
	if a.Active() {
		return "firing"
	}
	return "resolved"
}

// Point is one value of a series.
type Point struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// Hop is one line of a traceroute: the router that answered a probe with a
// given TTL, or none (Addr invalid) if none did in time.
type Hop struct {
	TTL  int        `json:"ttl"`
	Addr netip.Addr `json:"addr,omitzero"`
	RTT  float64    `json:"rtt_ms,omitempty"`
}

// Trace is the hop list to a target at one time.
type Trace struct {
	Time    time.Time `json:"time"`
	Target  string    `json:"target"`
	Hops    []Hop     `json:"hops"`
	Reached bool      `json:"reached"` // the target itself answered
	Error   string    `json:"error,omitempty"`
}

// String is the hop list on one line: "198.18.1.1 198.18.4.2 * 198.18.2.2".
func (t *Trace) String() string {
	if t == nil {
		return "(none)"
	}
	var b strings.Builder
	for i, h := range t.Hops {
		if i > 0 {
			b.WriteByte(' ')
		}
		if h.Addr.IsValid() {
			b.WriteString(h.Addr.String())
		} else {
			b.WriteByte('*')
		}
	}
	if t.Error != "" {
		fmt.Fprintf(&b, " (%s)", t.Error)
	}
	return b.String()
}

// Route is what a path or capacity alarm carries when traceroute is on:
// the last hop list taken before it and the one taken when it fired.
type Route struct {
	Before *Trace `json:"before,omitempty"`
	After  *Trace `json:"after,omitempty"`
}
