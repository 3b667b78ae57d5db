package capture

import (
	"fmt"
	"strings"
	"time"

	"github.com/abing-net/abing/timestamp"
	"github.com/abing-net/abing/wire"
)

// Describe is one line about d, as a protocol dissector prints it: time
// since t0, addresses, size, type, session, then what the type carries.
// Every value is printed as read, checked or not: the listing is for
// looking at what was on the wire.
func Describe(d *Datagram, t0 time.Time) string {
	h := d.Header
	var b strings.Builder
	fmt.Fprintf(&b, "%12.6f  %s > %s  %4d  %-14s %016x", d.Time.Sub(t0).Seconds(), d.Src, d.Dst, d.Size, h.Type, h.Session)
	switch h.Type {
	case wire.TypeProbe, wire.TypeReply:
		fmt.Fprintf(&b, "  train %d pos %d/%d seq %d", h.Train, h.Pos, h.Len, h.Seq)
	case wire.TypeReportRequest, wire.TypeHello, wire.TypeClose:
		fmt.Fprintf(&b, "  seq %d", h.Seq)
	}
	if h.Flags&wire.FlagPaced != 0 {
		b.WriteString("  paced")
	}
	if h.ReplyGap > 0 {
		fmt.Fprintf(&b, "  reply-gap %v", time.Duration(h.ReplyGap))
	}
	body, signed := d.Message()
	if signed {
		b.WriteString("  signed")
	}
	if d.Cut() {
		fmt.Fprintf(&b, "  [cut: %d of %d bytes captured]", d.Captured, len(d.Data))
		if h.Type != wire.TypeProbe {
			return b.String()
		}
	}
	switch h.Type {
	case wire.TypeProbe, wire.TypeHello, wire.TypeReportRequest, wire.TypeClose:
		if c, err := wire.ParseClientBlock(body); err == nil && c.KeyName != [wire.KeyNameLen]byte{} {
			fmt.Fprintf(&b, "  key %q", strings.TrimRight(string(c.KeyName[:]), "\x00"))
		}
		if h.Type == wire.TypeReportRequest {
			if rr, err := wire.ParseReportRequest(body); err == nil {
				fmt.Fprintf(&b, "  trains %d–%d", rr.FirstTrain, uint64(rr.FirstTrain)+uint64(rr.Trains)-1)
			}
		}
	case wire.TypeReply:
		if r, err := wire.ParseReplyBody(body); err == nil {
			fmt.Fprintf(&b, "  reflector-rx %d.%09d (%s)  arrived %d  ttl-there %d", r.RxNs/1e9, r.RxNs%1e9,
				timestamp.Source(r.RxSource), r.Arrived, r.TTL)
		}
	case wire.TypeReport:
		if src, st, err := wire.ParseReport(body, nil); err == nil {
			fmt.Fprintf(&b, "  %d transmit stamps (%s)", len(st), timestamp.Source(src))
			if len(st) > 0 {
				fmt.Fprintf(&b, " of trains %d–%d", st[0].Train, st[len(st)-1].Train)
			}
		} else {
			fmt.Fprintf(&b, "  unreadable: %v", err)
		}
	case wire.TypeCookie:
		if u, ok := wire.ParseBudget(body); ok {
			fmt.Fprintf(&b, "  budget %.0f kbit/s, %.0f packets/s, trains up to %d", u.Rate/1e3, u.PPS, u.MaxTrainLen)
		}
	case wire.TypeRefused:
		if r, err := wire.ParseRefused(body); err == nil {
			fmt.Fprintf(&b, "  %s, retry after %d ms", r.Reason, r.RetryAfter)
		}
	}
	fmt.Fprintf(&b, "  ttl %d", d.TTL)
	return b.String()
}
