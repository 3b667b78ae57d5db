package reflector

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/abing-net/abing/dispersion"
)

// Drop is why the reflector dropped a datagram.
type Drop int

// Drop reasons, cheapest check first.
const (
	DropDenied       Drop = iota // source outside --allow or inside --deny
	DropOversize                 // larger than any probe (MaxDatagram)
	DropMalformed                // did not parse, or not a sender's message
	DropRateSource               // source over its budget
	DropRatePrefix               // source prefix over its budget
	DropRateGlobal               // reflector over its budget
	DropUnsigned                 // keys required, datagram unsigned
	DropBadSignature             // unknown key or wrong signature
	DropStale                    // keyed: sender clock outside the replay window
	DropReplayed                 // sequence number seen before in the session
	DropCookie                   // probe or report without a valid cookie
	DropSessions                 // too many sessions
	DropMemory                   // train or stamps over the session's memory
	DropQueue                    // reply queue full
	DropPaced                    // source over its share of paced transmit time
	numDrops
)

var dropNames = [numDrops]string{
	"denied", "oversize", "malformed", "rate_source", "rate_prefix", "rate_global",
	"unsigned", "bad_signature", "stale", "replayed", "bad_cookie", "sessions_full",
	"session_memory", "queue_full", "paced_time",
}

func (d Drop) String() string {
	if d >= 0 && d < numDrops {
		return dropNames[d]
	}
	return fmt.Sprintf("drop(%d)", int(d))
}

// Stats are the reflector's counters.
type Stats struct {
	Received      uint64 // datagrams read
	ReceivedBytes uint64 // their UDP payload bytes
	Sent          uint64 // datagrams sent
	SentBytes     uint64 // their UDP payload bytes
	Cookies       uint64 // cookies sent in answer to hellos
	Refusals      uint64 // refusal notices sent
	Trains        uint64 // reply trains sent
	TrainTimeouts uint64 // trains answered incomplete after TrainTimeout
	Replies       uint64 // reply datagrams sent
	Reports       uint64 // report datagrams sent
	STAMPReplies  uint64 // STAMP replies sent
	SendErrors    uint64
	ReceiveErrors uint64                     // failed receives other than ICMP errors (the loop goes on)
	ICMPErrors    [dispersion.NumICMP]uint64 // by dispersion.ICMP
	Dropped       [numDrops]uint64           // by Drop
	Sessions      int                        // active now
	Remembered    int                        // sessions remembered now, active or not
	STAMPSessions int                        // stateful STAMP sessions counted now
	Sources       int                        // source addresses tracked now
	Prefixes      int                        // source prefixes tracked now
}

// DroppedTotal is the sum of Dropped.
func (s *Stats) DroppedTotal() uint64 {
	var n uint64
	for _, d := range s.Dropped {
		n += d
	}
	return n
}

type counters struct {
	received, receivedBytes, sent, sentBytes, cookies, refusals  atomic.Uint64
	trains, timeouts, replies, reports, sendErrors, stampReplies atomic.Uint64
	recvErrors                                                   atomic.Uint64
	icmp                                                         [dispersion.NumICMP]atomic.Uint64
	dropped                                                      [numDrops]atomic.Uint64
	sessions, remembered, sources, prefixes, stampSessions       atomic.Int64
}

// count counts what a receive returned: a datagram, or an ICMP error
// (queued ones; the pending-error copy of the same message, which has no
// address, is not). It reports whether ev is a datagram.
func (c *counters) count(ev dispersion.Event) bool {
	switch ev.Kind {
	case dispersion.Unreachable:
		if ev.From.IsValid() {
			c.icmp[ev.ICMP].Add(1)
		}
	case dispersion.Data:
		c.received.Add(1)
		c.receivedBytes.Add(uint64(ev.N))
		return true
	}
	return false
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Received: c.received.Load(), ReceivedBytes: c.receivedBytes.Load(),
		Sent: c.sent.Load(), SentBytes: c.sentBytes.Load(),
		Cookies: c.cookies.Load(), Refusals: c.refusals.Load(),
		Trains: c.trains.Load(), TrainTimeouts: c.timeouts.Load(), Replies: c.replies.Load(),
		Reports: c.reports.Load(), STAMPReplies: c.stampReplies.Load(), STAMPSessions: int(c.stampSessions.Load()), SendErrors: c.sendErrors.Load(), ReceiveErrors: c.recvErrors.Load(),
		Sessions: int(c.sessions.Load()), Remembered: int(c.remembered.Load()), Sources: int(c.sources.Load()), Prefixes: int(c.prefixes.Load()),
	}
	for i := range s.Dropped {
		s.Dropped[i] = c.dropped[i].Load()
	}
	for i := range s.ICMPErrors {
		s.ICMPErrors[i] = c.icmp[i].Load()
	}
	return s
}

// summary logs, once per interval, what was refused since the last summary
// and which source prefixes were refused most; nothing when all is quiet.
type summary struct {
	every time.Duration
	at    time.Time
	last  [numDrops]uint64
}

func (s *Server) summarize(now time.Time) {
	sm := &s.sum
	if now.Sub(sm.at) < sm.every {
		return
	}
	sm.at = now
	attrs := []any{"interval", sm.every.String()}
	var total uint64
	for i := range numDrops {
		n := s.c.dropped[i].Load()
		if d := n - sm.last[i]; d > 0 {
			attrs = append(attrs, Drop(i).String(), d)
			total += d
		}
		sm.last[i] = n
	}
	type top struct {
		p netip.Prefix
		n uint64
	}
	var tops []top
	for p, b := range s.prefixes.m {
		if b.refused > 0 {
			tops = append(tops, top{p, b.refused})
			b.refused = 0
		}
	}
	if total == 0 {
		return
	}
	slices.SortFunc(tops, func(a, b top) int { return cmp.Compare(b.n, a.n) })
	var sb strings.Builder
	for i, t := range tops[:min(3, len(tops))] {
		if i > 0 {
			sb.WriteString(" ")
		}
		fmt.Fprintf(&sb, "%s=%d", t.p, t.n)
	}
	attrs = append(attrs, "total", total, "top_prefixes", sb.String(),
		"sessions", s.active, "sources", len(s.sources.m))
	s.cfg.Logger.Info("refusals", attrs...)
}
