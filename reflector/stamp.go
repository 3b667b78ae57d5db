package reflector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/stamp"
)

// STAMP answers standard STAMP test packets (RFC 8762, with RFC 8972's
// SSID) and TWAMP-Light ones, which are the same octets in unauthenticated
// mode, on a socket of its own: so that routers, twping, stamp-suite and
// abing's own sender in --protocol stamp can measure against this
// reflector.
//
// Each test packet is answered at once with one reply of its own size
// (RFC 8762 §4.3: no amplification), carrying the kernel's receive stamp
// of the test packet (T2), the TTL it arrived with, and the time just
// before the reply was handed to the kernel (T3), in the sender's
// timestamp format (its Error Estimate's Z bit). The reflector's Error
// Estimate states what the kernel says of the clock (adjtimex: synchronised
// or not, its estimated error).
//
// STAMP has no cookie: a forged source address gets the replies. Test
// packets are charged to the same per-source, per-prefix and global
// budgets as abing's own protocol, pass the same --allow and --deny, and
// are counted in the same metrics. With keys, only authenticated mode is
// answered (HMAC under one of the keys' secrets). Stateful mode keeps a
// sequence counter per sender address, port and SSID (RFC 8762 §4.3.1),
// bounded like the sessions of abing's own protocol.
type STAMP struct {
	s        *Server
	conn     *dispersion.Conn
	stateful bool
	keys     []*stamp.Key
	sessions map[stampSession]*stampCounter
	clock    stamp.ErrorEstimate
	clockAt  time.Time
	buf      []byte
}

type stampSession struct {
	src  netip.AddrPort
	ssid uint16
}

type stampCounter struct {
	next uint32
	last time.Time
}

// STAMP returns a STAMP reflector on conn that shares s's budgets,
// access lists, keys and counters. Stateful chooses RFC 8762's stateful
// mode.
func (s *Server) STAMP(conn *dispersion.Conn, stateful bool) *STAMP {
	st := &STAMP{s: s, conn: conn, stateful: stateful, sessions: map[stampSession]*stampCounter{}}
	for _, k := range s.cfg.Keys {
		st.keys = append(st.keys, stamp.NewKey(k.Secret))
	}
	return st
}

// Serve answers test packets until ctx is cancelled or the socket fails.
// An ICMP error or a failed receive never ends it.
func (st *STAMP) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { st.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	s := st.s
	buf := make([]byte, 65536)
	lastSweep := time.Now()
	for ctx.Err() == nil {
		st.conn.SetReadDeadline(time.Now().Add(time.Second))
		ev, err := st.conn.Recv(buf)
		now := time.Now()
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil:
		case errors.Is(err, net.ErrClosed):
			return fmt.Errorf("stamp reflector %s: %w", st.conn.LocalAddr(), err)
		default:
			s.c.recvErrors.Add(1)
			time.Sleep(recvErrorPause)
		}
		if err == nil && s.c.count(ev) {
			st.handle(buf[:ev.N], ev, now)
		}
		if now.Sub(lastSweep) > time.Second {
			st.sweep(now)
			lastSweep = now
		}
	}
	return nil
}

// handle answers one datagram, or counts why not.
func (st *STAMP) handle(b []byte, ev dispersion.Event, now time.Time) {
	s := st.s
	src := netip.AddrPortFrom(ev.From.Addr().Unmap(), ev.From.Port())
	switch {
	case !s.acl.permits(src.Addr()):
		s.drop(DropDenied, nil)
		return
	case ev.Trunc || len(b) > stamp.MaxLen:
		s.drop(DropOversize, nil)
		return
	case len(b) < stamp.BaseLen:
		s.drop(DropMalformed, nil)
		return
	case st.keys != nil && len(b) < stamp.AuthLen:
		s.drop(DropUnsigned, nil) // an unauthenticated test packet
		return
	}
	// The budgets first: a source pays for what it makes us check.
	s.budgetMu.Lock()
	srcB := s.sources.get(src.Addr(), now)
	pfxB := s.prefixes.get(prefixOf(src.Addr()), now)
	why := Drop(-1)
	switch {
	case !srcB.take(now, len(b)):
		why = DropRateSource
	case !pfxB.take(now, len(b)):
		why = DropRatePrefix
	case !s.global.take(now, len(b)):
		why = DropRateGlobal
	}
	if why >= 0 {
		s.drop(why, pfxB)
		s.budgetMu.Unlock()
		return
	}
	s.budgetMu.Unlock()
	var (
		t   stamp.Test
		key *stamp.Key
		err error
	)
	if st.keys != nil {
		t, key, err = stamp.ParseTestAuth(b, st.keys)
	} else {
		t, err = stamp.ParseTest(b)
	}
	if err != nil {
		s.drop(DropBadSignature, nil) // lengths were checked above
		return
	}
	seq := t.Seq
	if st.stateful {
		k := stampSession{src, t.SSID}
		c := st.sessions[k]
		if c == nil {
			if len(st.sessions) >= s.cfg.MaxSessions*rememberFactor {
				s.drop(DropSessions, nil)
				return
			}
			c = &stampCounter{}
			st.sessions[k] = c
			s.c.stampSessions.Store(int64(len(st.sessions)))
		}
		seq, c.last = c.next, now
		c.next++
	}
	if now.Sub(st.clockAt) > time.Second {
		st.clock, st.clockAt = stamp.HostClock(), now
	}
	ptp := t.Err.PTP()
	rx := time.Unix(0, ev.Ns)
	ttl := uint8(0)
	if ev.TTL > 0 && ev.TTL < 256 {
		ttl = uint8(ev.TTL)
	}
	r := stamp.Reply{Seq: seq, SSID: t.SSID, RxTime: format(rx, ptp), SenderSeq: t.Seq, SenderTime: t.Time,
		SenderErr: t.Err, SenderTTL: ttl, Err: stamp.MakeErrorEstimate(st.clock.Synced(), ptp, st.clock.Scale(), st.clock.Multiplier())}
	// T3 is the last moment before the reply is handed to the kernel.
	r.Time = format(time.Now(), ptp)
	if key != nil {
		st.buf, err = r.AppendAuth(st.buf[:0], len(b), key)
	} else {
		st.buf, err = r.Append(st.buf[:0], len(b))
	}
	if err != nil {
		s.c.sendErrors.Add(1)
		return
	}
	if _, err := st.conn.PeerFrom(src, ev.Dst).Write(st.buf); err != nil {
		s.c.sendErrors.Add(1)
		return
	}
	s.c.sent.Add(1)
	s.c.sentBytes.Add(uint64(len(st.buf)))
	s.c.stampReplies.Add(1)
}

// format is t in the timestamp format a sender chose.
func format(t time.Time, ptp bool) stamp.Timestamp {
	if ptp {
		return stamp.PTP(t)
	}
	return stamp.NTP(t)
}

// sweep forgets stateful counters idle for SessionIdle.
func (st *STAMP) sweep(now time.Time) {
	for k, c := range st.sessions {
		if now.Sub(c.last) > st.s.cfg.SessionIdle {
			delete(st.sessions, k)
		}
	}
	st.s.c.stampSessions.Store(int64(len(st.sessions)))
}
