package alarms

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

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
