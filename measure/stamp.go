package measure

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/estimator"
	"github.com/abing-net/abing/stamp"
)

// Protocols a reflector may speak (Config.Protocol).
const (
	ProtocolAbing      = "abing"
	ProtocolSTAMP      = "stamp"       // RFC 8762, with RFC 8972's SSID
	ProtocolTWAMPLight = "twamp-light" // RFC 5357 Appendix I: unauthenticated STAMP, SSID zero
)

// stamp says whether the reflector is a standard one.
func (c *Config) stamp() bool { return c.Protocol == ProtocolSTAMP || c.Protocol == ProtocolTWAMPLight }

// stampProtocol is the standard protocol a run used, for its records; ""
// for abing's own.
func (c *Config) stampProtocol() string {
	if c.stamp() {
		return c.Protocol
	}
	return ""
}

// Measuring against a STAMP or TWAMP-Light reflector.
//
// The trains leave as unmodified STAMP test packets padded to the probe
// size, one sequence number each. A standard reflector answers each packet
// as it arrives, with its receive stamp (T2) and its transmit stamp (T3):
//
//   - Forward: the T2 stamps are the forward dispersion, taken where the
//     packets arrive, on one clock. How much they can be trusted is read from
//     the stamps themselves: their resolution (a reflector that stamps in
//     milliseconds widens the noise to a millisecond, which refuses any
//     capacity whose gaps it cannot resolve) and whether consecutive packets
//     share a stamp (batches: pairs are then compressed, not measured). Their
//     noise is read from them too (estimator.GapNoise over the gaps of phase
//     1's back-to-back trains: never below our own stamps' nor above
//     user-space stamps', which is what they count as with too few gaps):
//     nothing in the packet says where they were taken.
//   - Reverse: the replies leave as the forward path delivered the test
//     packets, so the reverse path is probed only where it is narrower than
//     the spacing the forward path left: back to back by the definition
//     abing's own reflector uses (each gap under half its output gap, by T3
//     against our receive stamps). Otherwise the reverse direction gets a
//     bound (it carried the replies as fast as they came), never the forward
//     capacity read as the reverse one. Its paced trains are sent at the
//     reverse pace, since the reflector cannot be asked to pace.
//   - No budget is stated: a reflector that rate-limits its replies shows it
//     by losses at the ends of trains, and the run fits itself (stampFit).
type stampSession struct {
	key      *stamp.Key // authenticated mode
	ssid     uint16
	sent     map[uint32]stampSent // by sequence number
	clock    stamp.ErrorEstimate  // ours, in every test packet
	reflErr  stamp.ErrorEstimate  // the reflector's, from its last reply
	replies  int
	zeroRx   int    // replies whose T2 is zero
	zeroTx   int    // and T3
	stateful int    // replies whose reflector sequence number is its own
	maxRSeq  uint32 // the highest of those: a stateful reflector counts from 0
	// resolution is what the reflector's stamps resolve (ns), read from
	// them before the first estimate; 0 until then. equal and gaps count
	// the consecutive packets of phase 1 with equal receive stamps, of
	// those whose both stamps came back.
	resolution  int64
	equal, gaps int
	b2b         int // back-to-back gaps the noise of the receive stamps was read from (book.fwdNoise)
}

type stampSent struct {
	train, pos int
	t1         stamp.Timestamp
}

// stampSetup prepares a session for a STAMP reflector.
func (s *session) stampSetup() {
	st := &stampSession{sent: map[uint32]stampSent{}, clock: stamp.HostClock()}
	if s.cfg.Protocol == ProtocolSTAMP {
		st.ssid = uint16(1 + rand.N(65535)) // RFC 8972 §3: not zero
	}
	if s.cfg.Key != nil {
		st.key = stamp.NewKey(s.cfg.Key.Secret)
	}
	s.stamp = st
}

// stampPacket fills b with the test packet at position pos of train i,
// with sequence number s.seq; s.mu is held.
func (s *session) stampPacket(b []byte, i, pos int, now int64) {
	st := s.stamp
	s.seq++
	t := stamp.Test{Seq: s.seq, Time: stamp.NTP(time.Unix(0, now)), Err: st.clock, SSID: st.ssid}
	if st.key != nil {
		t.AppendAuth(b[:0], len(b), st.key) // the size was validated (Config.Validate)
	} else {
		t.Append(b[:0], len(b))
	}
	st.sent[t.Seq] = stampSent{train: i, pos: pos, t1: t.Time}
}

// stampHandle records one datagram from a STAMP reflector; s.mu is held.
// A reply counts only when it answers a test packet of ours: its sequence
// number and our transmit timestamp (to the 233 ps of NTP) copied back.
func (s *session) stampHandle(b []byte, ev dispersion.Event) {
	st := s.stamp
	if ev.From != s.addr || ev.Trunc {
		s.malform++
		return
	}
	var (
		r   stamp.Reply
		err error
	)
	if st.key != nil {
		r, err = stamp.ParseReplyAuth(b, st.key)
		if errors.Is(err, stamp.ErrHMAC) {
			s.unauth++
			return
		}
	} else {
		r, err = stamp.ParseReply(b)
	}
	sent, ok := st.sent[r.SenderSeq]
	if err != nil || !ok || r.SenderTime != sent.t1 || (r.SSID != st.ssid && r.SSID != 0) || sent.train >= len(s.trains) {
		s.malform++
		return
	}
	ptp := r.Err.PTP()
	t2, err2 := r.RxTime.Time(ptp)
	t3, err3 := r.Time.Time(ptp)
	if err2 != nil || err3 != nil {
		s.malform++
		return
	}
	var rx, tx int64
	if r.RxTime != 0 {
		rx = t2.UnixNano()
	} else {
		st.zeroRx++
	}
	if r.Time != 0 {
		tx = t3.UnixNano()
	} else {
		st.zeroTx++
	}
	if r.Seq != r.SenderSeq {
		st.stateful++
		st.maxRSeq = max(st.maxRSeq, r.Seq)
	}
	st.replies++
	st.reflErr = r.Err
	s.stampReply(s.trains[sent.train], sent.pos, rx, tx, int(r.SenderTTL), ev)
}

// stampReply records a STAMP reply to packet pos of train t: the
// reflector's receive and transmit stamps rx, tx (0 = none), the TTL the
// test packet arrived with (0 = unknown) and our receipt ev. bk.mu is held.
func (bk *book) stampReply(t *trainState, pos int, rx, tx int64, ttl int, ev dispersion.Event) {
	sl := &t.slots[pos]
	if sl.seen {
		sl.dup++
		return
	}
	sl.seen = true
	sl.fRx, sl.fSrc, sl.fTTL = rx, dispersion.SourceUser, ttl
	if ttl == 0 {
		sl.fTTL = -1
	}
	sl.rRx, sl.rSrc, sl.rTTL = ev.Ns, ev.Source, ev.TTL
	sl.rank = t.replies
	t.replies++
	t.arrived = t.replies
	if tx != 0 {
		sl.rTx, sl.fromR = tx, true
		t.reported++
	}
	bk.rtxSrc = dispersion.SourceUser
}

// Resolutions the stamps are tested for, coarsest first.
var stampResolutions = []int64{1e6, 1e5, 1e4, 1e3}

// StampResolution is the coarsest of 1 ms, 100 µs, 10 µs and 1 µs that
// every stamp of ns (Unix ns, read from NTP or PTP timestamps) is a
// multiple of, within the 2 ns that NTP's binary fraction loses on the
// way to nanoseconds; 1 (ns) when none is, or with fewer than 8 distinct
// stamps to tell from.
func StampResolution(ns []int64) int64 {
	distinct := map[int64]bool{}
	for _, v := range ns {
		distinct[v] = true
	}
	if len(distinct) < 8 {
		return 1
	}
	for _, r := range stampResolutions {
		all := true
		for v := range distinct {
			if m := v % r; m > 2 && m < r-2 {
				all = false
				break
			}
		}
		if all {
			return r
		}
	}
	return 1
}

// stampStamps reads, before the first estimate, what the reflector's
// stamps resolve, and widens the noise of every estimate to it.
func (s *session) stampStamps() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ns []int64
	var b2b []float64                // gaps of consecutive packets sent back to back, seconds
	own := dispersion.SourceHardware // our transmit clock
	st := s.stamp
	for i, t := range s.trains {
		for p, sl := range t.slots {
			if sl.seen && sl.fRx != 0 {
				ns = append(ns, sl.fRx)
				own = min(own, sl.sSrc)
				if prev := t.slots[max(p-1, 0)]; p > 0 && prev.seen && prev.fRx != 0 {
					st.gaps++
					if prev.fRx == sl.fRx {
						st.equal++
					}
					if i < s.phase1 {
						b2b = append(b2b, float64(sl.fRx-prev.fRx)*1e-9)
					}
				}
			}
			if sl.fromR {
				ns = append(ns, sl.rTx)
			}
		}
	}
	st.resolution = StampResolution(ns)
	s.floor = max(s.floor, float64(s.stamp.resolution)*1e-9)
	s.fwdNoise = estimator.GapNoise(b2b, max(own.Noise(), s.floor), dispersion.SourceUser.Noise())
	st.b2b = len(b2b)
}

// ErrEchoed says that a STAMP reflector sent its replies as the forward
// path delivered the test packets, and the reverse path carried them as
// fast: its capacity is at least that, and cannot be read from them.
var ErrEchoed = errors.New("a STAMP reflector echoes each test packet as it arrives, and the reverse path carried the replies as fast as the forward path delivered them")

// echoedSelection refuses a STAMP reverse estimate c that half or more of
// the trains (trains; late: those that left too slowly) contradict. A
// STAMP reflector sends its replies as the forward path delivered the test
// packets, so a reverse path is measurable only where it is narrower than
// half the forward one, and then nearly every reply pair reaches it
// compressed; where most left too slowly, the path is not that narrow, and
// the pairs accepted are those that cross traffic spread enough to pass
// the back-to-back rule: their capacity is what the spreading made (half
// the path's, with one cross packet of the probe size in each), not the
// path's. Capacity's own check (late trains arriving closer than the
// estimate) misses this when the cross traffic spread the late ones too: a
// CI run read 9.48 Mbit/s (9.18–18.84) for a reverse of 18.74 under
// 10 Mbit/s of constant-rate cross traffic, from 4 of 16 pairs, 10 left
// late. The bound is the late trains' (dispersion.LowerBound).
func echoedSelection(c estimator.Capacity, late []estimator.Sample, trains int, ecfg estimator.Config) (float64, error) {
	if 2*len(late) < trains {
		return 0, nil
	}
	why := fmt.Errorf("%d of %d trains left too slowly to measure the path, and the %d used were a selection", len(late), trains, c.Used)
	if min := dispersion.LowerBound(late, ecfg.Size, ecfg.Noise); min > 0 {
		return min, fmt.Errorf("%w: capacity above %.0f Mbit/s (%w)", ErrPathFaster, min/1e6, why)
	}
	return 0, fmt.Errorf("%w: %w", estimator.ErrNotBackToBack, why)
}

// ErrNoStamps says that a STAMP reflector's replies carry no timestamps.
var ErrNoStamps = errors.New("the reflector's replies carry no timestamps (zero)")

// stampCapacity says, after the capacity phase, what the reflector's
// stamps could not support.
func (s *session) stampCapacity(res *Result) {
	s.mu.Lock()
	st := *s.stamp
	replies, zeroRx, zeroTx, resolution := st.replies, st.zeroRx, st.zeroTx, st.resolution
	noise := s.fwdNoise
	s.mu.Unlock()
	f, r := &res.Forward, &res.Reverse
	if replies > 0 && 2*zeroRx > replies {
		f.CapErr = fmt.Errorf("%w: %d of %d replies had no receive timestamp (T2), so no forward dispersion", ErrNoStamps, zeroRx, replies)
	}
	if replies > 0 && 2*zeroTx > replies {
		r.CapErr = fmt.Errorf("%w: %d of %d replies had no transmit timestamp (T3), so nothing tells how the replies left", ErrNoStamps, zeroTx, replies)
	}
	if errors.Is(r.CapErr, ErrPathFaster) && r.DBCMin > 0 {
		r.CapErr = fmt.Errorf("%w: %w: capacity above %.0f Mbit/s. A reverse estimate needs a reverse path narrower than half the forward one, or abing's own reflector",
			ErrPathFaster, ErrEchoed, r.DBCMin/1e6)
	}
	if st.b2b >= estimator.MinNoiseGaps {
		res.Notes = append(res.Notes, fmt.Sprintf("forward: the reflector's receive stamps read as %.1f µs of noise, from %d back-to-back gaps",
			noise*1e6, st.b2b))
	} else {
		res.Notes = append(res.Notes, fmt.Sprintf("forward: %d back-to-back gaps are too few to read the noise of the reflector's receive stamps: %v assumed, as for user-space stamps",
			st.b2b, time.Duration(dispersion.SourceUser.Noise()*1e9)))
	}
	if resolution >= 10e3 {
		res.Notes = append(res.Notes, fmt.Sprintf("the reflector's timestamps resolve only %v: dispersions within a few of that cannot be read",
			time.Duration(resolution)))
	}
	if st.equal > 0 && 4*st.equal >= st.gaps {
		res.Notes = append(res.Notes, fmt.Sprintf("forward: %d of %d consecutive packets had equal receive timestamps: the reflector stamps in batches", st.equal, st.gaps))
	}
}

// The reflector's replies are missing mostly at the ends of trains when it
// rate-limits them with a token bucket: a train's first packets are
// answered from the bucket, the rest dropped. StampLimitShare is how much
// more often the last packet of phase 1's answered trains must go
// unanswered than the first, and StampLimitMin how often at least, to say
// so (and the share of trains wholly unanswered that makes phase 2
// sparser). Random loss takes first and last packets alike.
const (
	StampLimitShare = 3
	StampLimitMin   = 0.2
)

// stampLimit looks at phase 1's replies for a rate limit, and says so in
// res: whether the reflector left the ends of trains unanswered much more
// often than their starts (limited), and whether it left whole trains
// unanswered (sparse). The run then fits itself under the limit: no
// capacity trains (the reflector would answer their first packets only),
// pairs for phase 2, and phase 2's trains further apart when sparse.
func (s *session) stampLimit(res *Result) (limited, sparse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first, last, whole, answered int
	trains := s.phase1
	for _, t := range s.trains[:trains] {
		if t.replies == 0 {
			whole++
			continue
		}
		answered++
		if !t.slots[0].seen {
			first++
		}
		if !t.slots[len(t.slots)-1].seen {
			last++
		}
	}
	if trains == 0 {
		return false, false
	}
	share := func(n, of int) float64 { return float64(n) / float64(max(of, 1)) }
	if limited = share(last, answered) >= StampLimitMin && share(last, answered) >= StampLimitShare*share(first, answered); limited {
		res.Notes = append(res.Notes, fmt.Sprintf("of %d trains answered, %d lacked the reply to their last packet and %d to their first: the reflector rate-limits its replies (or the path drops bursts), so no capacity trains, and paced pairs",
			answered, last, first))
	}
	if sparse = share(whole, trains) >= StampLimitMin; sparse {
		res.Notes = append(res.Notes, fmt.Sprintf("the reflector answered none of %d of %d trains: paced trains twice as far apart", whole, trains))
	}
	return limited, sparse
}

// stampRound sends one round of phase 2 against a STAMP reflector: count
// trains paced at fgap for the forward direction, and count at rgap for
// the reverse one (each only when its capacity is known), from index
// first. It returns how many it sent.
func (s *session) stampRound(ctx context.Context, first, count, n int, fgap, rgap, interval time.Duration) (int, error) {
	sent := 0
	for _, d := range []struct {
		gap time.Duration
		dir directions
	}{{fgap, forwardOnly}, {rgap, reverseOnly}} {
		if d.gap == 0 {
			continue
		}
		if err := s.phase(ctx, first+sent, count, n, d.gap, 0, interval, d.dir); err != nil {
			return sent, err
		}
		sent += count
	}
	return sent, nil
}

// stampFinish adds what the run learnt of the reflector.
func (s *session) stampFinish(res *Result) {
	s.mu.Lock()
	st := *s.stamp
	unique := 0
	for _, t := range s.trains {
		unique += t.replies
	}
	s.mu.Unlock()
	if st.replies == 0 {
		return
	}
	// A stateful reflector numbers the test packets that reached it, from
	// 0: the highest number says how many did (those after the last reply
	// we got aside), and so which way the others were lost. A count that
	// does not fit what we sent and what came back is not believed.
	f, r := &res.Forward, &res.Reverse
	split := false
	if arrived := int(st.maxRSeq) + 1; st.stateful == st.replies && arrived <= f.Packets && arrived >= unique {
		f.Lost, r.Packets, r.Bytes, r.Lost = f.Packets-arrived, arrived, arrived*s.cfg.Size, arrived-unique
		split = true
	}
	mode := "stateless"
	if st.stateful > 0 {
		mode = "stateful"
	}
	sync := "not synchronised"
	if st.reflErr.Synced() {
		sync = "synchronised"
	}
	stated := "no error stated"
	if e := st.reflErr.Seconds(); e == e { // not NaN
		stated = fmt.Sprintf("error %.3g s stated", e)
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%s reflector (%s): clock %s, %s; its stamps resolve %v",
		s.cfg.Protocol, mode, sync, stated, time.Duration(st.resolution)))
	if !split && f.Lost > 0 {
		res.Notes = append(res.Notes, "the reflector did not say which way packets were lost (a stateless one cannot): losses are counted forward")
	}
}
