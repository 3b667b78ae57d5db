package capture

import (
	"fmt"
	"strings"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
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
	case train.TypeProbe, train.TypeReply:
		fmt.Fprintf(&b, "  train %d pos %d/%d seq %d", h.Train, h.Pos, h.Len, h.Seq)
	case train.TypeReportRequest, train.TypeHello, train.TypeClose:
		fmt.Fprintf(&b, "  seq %d", h.Seq)
	}
	if h.Flags&train.FlagPaced != 0 {
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
		if h.Type != train.TypeProbe {
			return b.String()
		}
	}
	switch h.Type {
	case train.TypeProbe, train.TypeHello, train.TypeReportRequest, train.TypeClose:
		if c, err := train.ParseClientBlock(body); err == nil && c.KeyName != [train.KeyNameLen]byte{} {
			fmt.Fprintf(&b, "  key %q", strings.TrimRight(string(c.KeyName[:]), "\x00"))
		}
		if h.Type == train.TypeReportRequest {
			if rr, err := train.ParseReportRequest(body); err == nil {
				fmt.Fprintf(&b, "  trains %d–%d", rr.FirstTrain, uint64(rr.FirstTrain)+uint64(rr.Trains)-1)
			}
		}
	case train.TypeReply:
		if r, err := train.ParseReplyBody(body); err == nil {
			fmt.Fprintf(&b, "  reflector-rx %d.%09d (%s)  arrived %d  ttl-there %d", r.RxNs/1e9, r.RxNs%1e9,
				dispersion.Source(r.RxSource), r.Arrived, r.TTL)
		}
	case train.TypeReport:
		if src, st, err := train.ParseReport(body, nil); err == nil {
			fmt.Fprintf(&b, "  %d transmit stamps (%s)", len(st), dispersion.Source(src))
			if len(st) > 0 {
				fmt.Fprintf(&b, " of trains %d–%d", st[0].Train, st[len(st)-1].Train)
			}
		} else {
			fmt.Fprintf(&b, "  unreadable: %v", err)
		}
	case train.TypeCookie:
		if u, ok := train.ParseBudget(body); ok {
			fmt.Fprintf(&b, "  budget %.0f kbit/s, %.0f packets/s, trains up to %d", u.Rate/1e3, u.PPS, u.MaxTrainLen)
		}
	case train.TypeRefused:
		if r, err := train.ParseRefused(body); err == nil {
			fmt.Fprintf(&b, "  %s, retry after %d ms", r.Reason, r.RetryAfter)
		}
	}
	fmt.Fprintf(&b, "  ttl %d", d.TTL)
	return b.String()
}
