package capture

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/train"
)

// Options say how to analyse a capture.
type Options struct {
	// Clock is what stamped the packets the capture received:
	// SourceKernel for libpcap's default, SourceHardware for tcpdump -j
	// adapter_unsynced on a NIC that stamps (measure.RecordingOptions).
	Clock   dispersion.Source
	Method  string // measure.MethodProbeGap (default) or MethodABwE
	Session uint64 // only this session; 0: every one
}

// Session is one abing run found in a capture, seen from the sending host.
type Session struct {
	ID        uint64
	Sender    netip.AddrPort
	Reflector netip.AddrPort
	First     time.Time
	Last      time.Time
	Datagrams int
	Probes    int
	// Cut counts datagrams the capture holds too little of to use
	// (replies and reports cut by its snap length).
	Cut int
	// Refused is the reflector's refusal, if it refused the session.
	Refused *train.RefusedBody
	rec     *measure.Recording
}

// Result estimates the run from the capture's timestamps, with the code
// of a live run (measure.Recording).
func (s *Session) Result() (*measure.Result, error) {
	if s.Probes == 0 {
		if s.Refused != nil {
			return nil, fmt.Errorf("session %016x: the reflector refused it: %s", s.ID, s.Refused.Reason)
		}
		return nil, fmt.Errorf("session %016x: no probe in the capture (taken on the reflector's host, or filtered?)", s.ID)
	}
	res, err := s.rec.Result()
	if err != nil {
		return nil, fmt.Errorf("session %016x: %w", s.ID, err)
	}
	return res, nil
}

// Duplicates is how many probes the capture holds more than once.
func (s *Session) Duplicates() int { return s.rec.Duplicates() }

// Bounds of an analysis. A session is delivered, and forgotten, when its
// sender closes it, after Idle of capture time without a datagram of it (a
// run cut off, or whose close the capture missed), or at the end of the
// capture; so a capture of a monitor's day holds in memory only the runs
// open at one time. MaxOpen bounds those (a monitor runs one measurement
// at a time on each interface), and measure.MaxRecorded the probes they
// make room for together (a train's every probe from its first). An ended
// session is remembered for Idle, so that its stragglers do not start a
// new one: MaxEnded of them at most, the earliest ended forgotten first.
const (
	Idle     = 5 * time.Minute
	MaxOpen  = 10_000
	MaxEnded = 100_000
)

// Analyze reads every abing datagram of a capture taken on the sending
// host, sorts them into sessions, and hands each session to done once it
// ended (in the order they end; at the end of the capture, in the order
// they started). Datagrams are checked as a live run checks them; what does
// not fit its session is counted in that session's result as unexpected.
// Signatures are not checked: that needs the session's key, and the
// capture is the user's own. An error from done ends the analysis.
func Analyze(r *Reader, opts Options, done func(*Session) error) error {
	open := map[uint64]*Session{}
	ended := map[uint64]time.Time{} // delivered sessions, by their last datagram: stragglers are not new ones
	type end struct {
		id   uint64
		last time.Time
	}
	var endOrder []end // ended's entries, in the order they ended
	forget := func() {
		if e := endOrder[0]; ended[e.id].Equal(e.last) {
			delete(ended, e.id) // not if the id ended again since
		}
		endOrder = endOrder[1:]
	}
	slots, delivered, n := 0, 0, 0
	res := r.Resolution()
	var stamps []train.TxStamp
	deliver := func(s *Session) error {
		delete(open, s.ID)
		ended[s.ID] = s.Last
		if endOrder = append(endOrder, end{s.ID, s.Last}); len(endOrder) > MaxEnded {
			forget()
		}
		slots -= s.rec.Slots()
		delivered++
		return done(s)
	}
	// sweep delivers the sessions idle since before now, oldest first,
	// and forgets the ended ones that no straggler can follow any more.
	sweep := func(now time.Time, all bool) error {
		var idle []*Session
		for _, s := range open {
			if all || now.Sub(s.Last) > Idle {
				idle = append(idle, s)
			}
		}
		slices.SortFunc(idle, func(a, b *Session) int { return a.First.Compare(b.First) })
		for _, s := range idle {
			if err := deliver(s); err != nil {
				return err
			}
		}
		for len(endOrder) > 0 && now.Sub(endOrder[0].last) > Idle {
			forget()
		}
		endOrder = slices.Clip(endOrder) // let append move it, and the front go
		return nil
	}
	for {
		d, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if n++; n%4096 == 0 {
			if err := sweep(d.Time, false); err != nil {
				return err
			}
		}
		h := d.Header
		if opts.Session != 0 && h.Session != opts.Session {
			continue
		}
		if _, ok := ended[h.Session]; ok {
			continue
		}
		sender, refl := d.Src, d.Dst
		if !h.Type.FromSender() {
			sender, refl = d.Dst, d.Src
		}
		s := open[h.Session]
		if s == nil {
			if len(open) >= MaxOpen {
				return fmt.Errorf("more than %d sessions open at once in the capture: pick one with --session", MaxOpen)
			}
			res = max(res, r.Resolution())
			s = &Session{ID: h.Session, Sender: sender, Reflector: refl, First: d.Time,
				rec: measure.NewRecording(refl, measure.RecordingOptions{Method: opts.Method, Clock: opts.Clock, Resolution: res})}
			open[h.Session] = s
		}
		s.Datagrams++
		s.Last = d.Time
		if sender != s.Sender || refl != s.Reflector {
			s.rec.Unexpected() // another host using the session's id
			continue
		}
		ns := d.Time.UnixNano()
		b, _ := d.Message()
		if b == nil {
			s.rec.Unexpected()
			continue
		}
		switch h.Type {
		case train.TypeProbe:
			before := s.rec.Slots()
			if err := s.rec.Probe(h, d.Size, ns); err != nil {
				return fmt.Errorf("session %016x: %w", s.ID, err)
			}
			s.Probes++
			if slots += s.rec.Slots() - before; slots > measure.MaxRecorded {
				return fmt.Errorf("more than %d probes in the trains of sessions open at once: pick one session with --session", measure.MaxRecorded)
			}
		case train.TypeClose:
			if err := deliver(s); err != nil {
				return err
			}
		case train.TypeReply:
			if d.Captured < train.HeaderLen+train.ReplyBodyLen {
				s.Cut++
				continue
			}
			body, err := train.ParseReplyBody(b)
			if err != nil {
				s.rec.Unexpected()
				continue
			}
			s.rec.Reply(h, body, ns, d.TTL)
		case train.TypeReport:
			if d.Cut() {
				s.Cut++
				continue
			}
			src, st, err := train.ParseReport(b, stamps[:0])
			if err != nil {
				s.rec.Unexpected()
				continue
			}
			stamps = st
			s.rec.Report(src, st)
		case train.TypeRefused:
			if rb, err := train.ParseRefused(b); err == nil && s.Refused == nil && d.Captured >= train.RefusedLen {
				s.Refused = &rb
			}
		}
	}
	if err := sweep(time.Time{}, true); err != nil {
		return err
	}
	if delivered == 0 {
		st := r.Stats()
		what := "abing datagram"
		if opts.Session != 0 {
			what = fmt.Sprintf("datagram of session %016x", opts.Session)
		}
		return fmt.Errorf("no %s in %d packets (%d IP fragments, not reassembled)", what, st.Packets, st.Fragments)
	}
	return nil
}
