package measure

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/estimator"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/train"
)

// book is what is known of a run's trains: each probe's four timestamps,
// its replies and the reflector's reports, and the estimate made from
// them. A live run (session) fills it from its socket, a Recording from a
// packet capture; both estimate with the same code.
type book struct {
	cfg    Config
	phase1 int // trains [0, phase1) are back to back: cfg.Trains, and capacity trains (CapacityTrains)
	mu     sync.Mutex
	trains []*trainState
	rtxSrc dispersion.Source // the reflector's transmit clock, from its reports
	tnFwd  float64           // phase-1 Tn of the forward direction, seconds
	tnRev  float64           // and of the reverse one
	// floor is the least timestamp noise of our own stamps, whatever their
	// source says: a capture's resolution (1 µs in a classic pcap).
	floor float64
	// fwdNoise, when not 0, is the noise of the forward direction's
	// user-space stamps, read from them: a standard reflector's receive
	// stamps (stampStamps), which nothing else describes.
	fwdNoise float64
	// loopback: the reflector is on this host, and there is no path to
	// resolve.
	loopback bool
}

// newTrain starts the record of a train of n packets; bk.mu is held.
func (bk *book) newTrain(n int) *trainState {
	t := &trainState{slots: make([]slot, n)}
	for p := range t.slots {
		t.slots[p].rank = -1
		t.slots[p].fTTL, t.slots[p].rTTL = -1, -1
	}
	bk.trains = append(bk.trains, t)
	return t
}

// reply records the reply to packet pos of train t, received at ns by our
// clock src with TTL ttl (-1 unknown); r is checked against t. It reports
// whether the reply was well formed (a duplicate is, and is counted).
// bk.mu is held.
func (bk *book) reply(t *trainState, pos int, r train.ReplyBody, ns int64, src dispersion.Source, ttl int) bool {
	if pos >= len(t.slots) || int(r.Arrived) > len(t.slots) || dispersion.Source(r.RxSource) > dispersion.SourceHardware {
		return false
	}
	sl := &t.slots[pos]
	if sl.seen {
		sl.dup++
		return true
	}
	sl.seen = true
	sl.fRx, sl.fSrc, sl.fTTL = r.RxNs, dispersion.Source(r.RxSource), int(r.TTL)
	if r.TTL == 0 {
		sl.fTTL = -1
	}
	sl.rRx, sl.rSrc, sl.rTTL = ns, src, ttl
	sl.rank = t.replies
	t.replies++
	t.arrived = max(t.arrived, int(r.Arrived))
	return true
}

// report records the reflector's transmit stamps of its replies, by its
// clock src; entries for trains or positions we do not know are ignored.
// It reports whether the source is a known one. bk.mu is held.
func (bk *book) report(src uint8, stamps []train.TxStamp) bool {
	if dispersion.Source(src) > dispersion.SourceHardware {
		return false
	}
	bk.rtxSrc = dispersion.Source(src)
	for _, e := range stamps {
		if int(e.Train) < len(bk.trains) && int(e.Pos) < len(bk.trains[e.Train].slots) {
			t := bk.trains[e.Train]
			if sl := &t.slots[e.Pos]; !sl.fromR {
				sl.rTx, sl.fromR = e.TxNs, true
				t.reported++
			}
		}
	}
	return true
}

// estimate is a run's estimate as it grows: phase 1's back-to-back
// samples, then the paced samples of each round.
type estimate struct {
	res                *Result
	fwdB2B, revB2B     []estimator.Sample
	fwdSrc, revSrc     dispersion.Source // worst clocks of phase 1
	fwdPaced, revPaced []estimator.Sample
	fwdSrc2, revSrc2   dispersion.Source // and of phase 2
}

// estimatorConfig is what the estimator needs of a direction whose worst
// clock is src.
func (bk *book) estimatorConfig(src dispersion.Source, forward bool) estimator.Config {
	noise := src.Noise()
	if forward && src == dispersion.SourceUser && bk.fwdNoise > 0 {
		noise = bk.fwdNoise
	}
	cfg := estimator.Config{Size: bk.cfg.Size, Noise: max(noise, bk.floor)}
	if src == dispersion.SourceUser {
		cfg.Bias = cfg.Noise // taken late by the receiving loop, not at random
	}
	return cfg
}

// capacity estimates both directions' capacity from the back-to-back
// trains [from, to), into res (keeping a stronger bound of earlier trains,
// Direction.Stronger), and returns phase 2's spacing of each
// direction (0 where there is no capacity to pace at).
func (bk *book) capacity(res *Result, from, to int) (e *estimate, fgap, rgap time.Duration) {
	cfg := bk.cfg
	e = &estimate{res: res, fwdSrc2: dispersion.SourceHardware, revSrc2: dispersion.SourceHardware}
	var fwdLate, revLate []estimator.Sample
	e.fwdB2B, e.fwdSrc, fwdLate = bk.samplesAndLate(&res.Forward, from, to, true)
	e.revB2B, e.revSrc, revLate = bk.samplesAndLate(&res.Reverse, from, to, false)
	fcfg, rcfg := bk.estimatorConfig(e.fwdSrc, true), bk.estimatorConfig(e.revSrc, false)
	if from > 0 { // capacity trains
		fcfg.MinSamples, rcfg.MinSamples = CapacityTrainsUsable, CapacityTrainsUsable
	}
	res.Forward.Stronger(Capacity(e.fwdB2B, fwdLate, len(fwdLate), to-from, fcfg))
	rc, rmin, rerr := Capacity(e.revB2B, revLate, len(revLate), to-from, rcfg)
	if cfg.stamp() && rerr == nil {
		rmin, rerr = echoedSelection(rc, revLate, to-from, rcfg)
	}
	res.Reverse.Stronger(rc, rmin, rerr)
	n := cfg.pacedLen()
	if res.Forward.CapErr == nil {
		fgap = PaceGap(PaceTn(res.Forward.Capacity, cfg.Size), n)
		bk.tnFwd = fgap.Seconds() / PaceFraction
	}
	if res.Reverse.CapErr == nil {
		rgap = PaceGap(PaceTn(res.Reverse.Capacity, cfg.Size), n)
		bk.tnRev = rgap.Seconds() / PaceFraction
	}
	return e, fgap, rgap
}

// round adds the paced trains [first, first+count) to e and estimates the
// cross traffic of both directions from all paced trains so far.
func (bk *book) round(e *estimate, first, count int) {
	res := e.res
	fs, fsrc := bk.samples(&res.Forward, first, first+count, true)
	rs, rsrc := bk.samples(&res.Reverse, first, first+count, false)
	e.fwdPaced, e.revPaced = append(e.fwdPaced, fs...), append(e.revPaced, rs...)
	if len(fs) > 0 {
		e.fwdSrc2 = min(e.fwdSrc2, fsrc)
	}
	if len(rs) > 0 {
		e.revSrc2 = min(e.revSrc2, rsrc)
	}
	bk.cross(&res.Forward, e.fwdB2B, e.fwdPaced, bk.estimatorConfig(min(e.fwdSrc, e.fwdSrc2), true))
	bk.cross(&res.Reverse, e.revB2B, e.revPaced, bk.estimatorConfig(min(e.revSrc, e.revSrc2), false))
}

// clocks is the worst clock that stamped a packet of one direction that
// came back, on either end (a direction whose samples were all refused
// still says which clocks it had): none only when nothing came back.
func (bk *book) clocks(forward bool) dispersion.Source {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	worst, any := dispersion.SourceHardware, false
	for _, t := range bk.trains {
		if !t.dir.reads(forward) {
			continue
		}
		for _, sl := range t.slots {
			switch {
			case !sl.seen:
			case forward && sl.sTx != 0:
				worst, any = min(worst, sl.sSrc, sl.fSrc), true
			case !forward && sl.fromR:
				worst, any = min(worst, sl.rSrc, bk.rtxSrc), true
			}
		}
	}
	if !any {
		return dispersion.SourceNone
	}
	return worst
}

// finish completes res: the clock of each direction, what each direction
// carried and lost, the round-trip times.
func (bk *book) finish(e *estimate) {
	res := e.res
	// The worst clock of the samples used; when none was, of the packets
	// that came back.
	source := func(b2b []estimator.Sample, bsrc dispersion.Source, paced []estimator.Sample, psrc dispersion.Source, forward bool) dispersion.Source {
		s, used := dispersion.SourceHardware, false
		if len(b2b) > 0 {
			s, used = min(s, bsrc), true
		}
		if len(paced) > 0 {
			s, used = min(s, psrc), true
		}
		if !used {
			return bk.clocks(forward)
		}
		return s
	}
	res.Forward.Source = source(e.fwdB2B, e.fwdSrc, e.fwdPaced, e.fwdSrc2, true)
	res.Reverse.Source = source(e.revB2B, e.revSrc, e.revPaced, e.revSrc2, false)
	for _, d := range []*Direction{&res.Forward, &res.Reverse} {
		advise(d, bk.cfg.Size, bk.loopback)
		if x := d.Cross; d.CrossErr == nil && x.Bursty {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: %d of %d trains found a queue, more load than the windows between probes caught (cross traffic in bursts): ABW is only bounded above",
				d.Name, x.Stats.Busy, x.Stats.Timed))
		}
	}
	if bk.loopback {
		res.Notes = append(res.Notes, "the reflector is on this host (loopback): there is no path and no bottleneck to find, and any capacity or bound says only how fast this host sends and stamps")
	}
	bk.traffic(res)
	res.RTT, res.RTTOK = bk.rtt()
}

// packet state for one position of one train.
type slot struct {
	sTx   int64 // our transmit stamp
	sSrc  dispersion.Source
	fRx   int64 // reflector receive stamp
	fSrc  dispersion.Source
	fTTL  int
	rTx   int64 // reflector transmit stamp (from the report)
	rRx   int64 // our receive stamp of the reply
	rSrc  dispersion.Source
	rTTL  int
	rank  int // arrival rank of the reply within its train, -1 none
	dup   int
	seen  bool
	fromR bool // reflector transmit stamp known
}

// directions says which directions a train is read in: both, or one for
// a STAMP reflector's phase 2 (each direction has trains of its own).
type directions uint8

const (
	both directions = iota
	forwardOnly
	reverseOnly
)

// reads says whether a train for dir is read in the forward direction
// (forward) or the reverse one.
func (dir directions) reads(forward bool) bool {
	return dir == both || forward == (dir == forwardOnly)
}

type trainState struct {
	dir      directions
	slots    []slot
	arrived  int // request packets that reached the reflector (from replies)
	replies  int
	reported int // report entries, = reply packets the reflector sent
}

// plausible checks the reflector's stamps of a train against what our own
// clock saw: everything the reflector stamped happened between our first
// transmission and our last reception, so the span of its receive stamps
// (forward) or transmit stamps (reverse), and the time each packet spent
// inside it, cannot exceed that round trip (plus 1 ms and 100 ppm of
// clock-rate difference). A broken or hostile reflector that claims other
// gaps has its trains rejected as Implausible, not turned into a capacity.
func (t *trainState) plausible(forward bool) dispersion.Reject {
	var first, last int64
	for _, sl := range t.slots {
		if sl.sTx != 0 && (first == 0 || sl.sTx < first) {
			first = sl.sTx
		}
		if sl.seen {
			last = max(last, sl.rRx)
		}
	}
	if first == 0 || last <= first {
		return dispersion.NoTxStamp
	}
	bound := last - first + int64(time.Millisecond) + (last-first)/10000
	var lo, hi int64
	n := 0
	for _, sl := range t.slots {
		v := sl.fRx
		if !forward {
			if !sl.fromR {
				continue
			}
			v = sl.rTx
			if sl.seen && (sl.rTx < sl.fRx || sl.rTx-sl.fRx > bound) {
				return dispersion.Implausible
			}
		} else if !sl.seen {
			continue
		}
		if n == 0 || v < lo {
			lo = v
		}
		if n == 0 || v > hi {
			hi = v
		}
		n++
	}
	if hi-lo > bound {
		return dispersion.Implausible
	}
	return dispersion.Accepted
}

// firstTrainTn is the per-packet time at the bottleneck that train 0's
// arrival shows, the larger of the two directions; 0 when it did not come
// back.
func (bk *book) firstTrainTn() float64 {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	t := bk.trains[0]
	var fwd, rev float64
	n := len(t.slots)
	if a, b := t.slots[0], t.slots[n-1]; a.seen && b.seen && t.plausible(true) == dispersion.Accepted {
		fwd = float64(b.fRx-a.fRx) * 1e-9 / float64(n-1)
		rev = float64(b.rRx-a.rRx) * 1e-9 / float64(n-1)
	}
	return max(fwd, rev, 0)
}

func (bk *book) cross(d *Direction, b2b, paced []estimator.Sample, ecfg estimator.Config) {
	if d.CapErr != nil {
		d.CrossErr = d.CapErr
		return
	}
	ecfg.OffPace, ecfg.Unpaced = d.Rejects[dispersion.OffPace], b2b
	d.ProbeGap, d.ProbeGapErr = estimator.EstimateCross(paced, d.Capacity, ecfg)
	if err := bk.busyHost(d, len(paced), d.ProbeGapErr); err != nil {
		d.ProbeGapErr = err // the reason, also when too few pairs were left to estimate from
	}
	d.ABwE, d.ABwEErr = estimator.EstimateABwE(b2b, d.Capacity)
	if bk.cfg.Method == MethodABwE {
		d.Cross, d.CrossErr = d.ABwE, d.ABwEErr
	} else {
		d.Cross, d.CrossErr = d.ProbeGap, d.ProbeGapErr
	}
}

// Paced pairs on a busy host. A pair's window ends with its second send,
// and on a host short of CPU that send waits for a CPU while the host's
// other processes run or wait around it: traffic they send through the
// path is held out of the window or let into it, and the windows stop being
// independent samples of the cross traffic. The host shows it by sending
// late. Late pairs are left out, and the interval is widened for them
// (estimator.Config.OffPace); when more than MaxLateShare of a direction's
// paced pairs (and at least two) left off pace, the pairs' cross traffic
// is refused with ErrBusyHost instead, and capacity stands. On the emulated
// path 0–4 % of paced pairs left off pace on an idle host, 1–10 % with one
// of two CPUs kept busy (where the pairs' estimates held), and nearly all
// with both busy. Trains spread the same effect over all their gaps and
// are checked on their mean pace; they are refused only when too few kept
// their pace to estimate from, and then with this reason too.
const MaxLateShare = 0.10

// ErrBusyHost says that the sending host of a direction was too busy to
// pace its probes.
var ErrBusyHost = errors.New("the sending host was short of CPU while pacing")

// busyHost is ErrBusyHost, wrapped with the counts, when d's paced trains
// (used of them accepted) left off pace so often that they cannot be
// trusted: pairs beyond MaxLateShare, or trains of any length when most
// left late and too few were left to estimate from (err, the estimator's
// answer, is ErrTooFew); nil otherwise.
func (bk *book) busyHost(d *Direction, used int, err error) error {
	late := d.Rejects[dispersion.OffPace]
	host := "this host"
	if d.Name == "reverse" {
		host = "the reflector's host"
	}
	switch {
	case bk.cfg.pacedLen() == 2 && late >= 2 && float64(late) > MaxLateShare*float64(late+used):
		return fmt.Errorf("%w: %d of %d paced pairs left %s off pace, so its other processes' traffic and the pairs' windows are not independent; no cross traffic from pairs (trains, the default, spread this over all their gaps)",
			ErrBusyHost, late, late+used, host)
	case errors.Is(err, estimator.ErrTooFew) && late > used:
		return fmt.Errorf("%w: %d of %d paced trains left %s off pace, too few kept their pace to estimate the cross traffic from",
			ErrBusyHost, late, late+used, host)
	}
	return nil
}

// samples builds the dispersion samples of one direction for trains
// [from, to), counting rejections into d, and returns the worst clock among
// the accepted trains.
func (bk *book) samples(d *Direction, from, to int, forward bool) ([]estimator.Sample, dispersion.Source) {
	out, worst, _ := bk.samplesAndLate(d, from, to, forward)
	return out, worst
}

// samplesAndLate is samples, and also the samples of the back-to-back
// trains rejected as left-late (for dispersion.LowerBound).
func (bk *book) samplesAndLate(d *Direction, from, to int, forward bool) ([]estimator.Sample, dispersion.Source, []estimator.Sample) {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	worst := dispersion.SourceHardware
	var out, late []estimator.Sample
	for i := from; i < to; i++ {
		t := bk.trains[i]
		if !t.dir.reads(forward) {
			continue
		}
		n := len(t.slots)
		tx, rx := make([]int64, n), make([]int64, n)
		order := make([]int, n)
		lo, hi := dispersion.SourceHardware, dispersion.SourceNone // receive clocks
		txSrc := dispersion.SourceHardware
		reordered := false
		for p, sl := range t.slots {
			order[p] = -1
			var rsrc dispersion.Source
			if forward {
				tx[p], rx[p], rsrc = sl.sTx, sl.fRx, sl.fSrc
				txSrc = min(txSrc, sl.sSrc)
				if sl.seen {
					order[p] = p // the reflector's stamps, checked below
					reordered = reordered || (p > 0 && t.slots[p-1].seen && sl.fRx < t.slots[p-1].fRx)
				}
			} else {
				tx[p], rx[p], rsrc = sl.rTx, sl.rRx, sl.rSrc
				txSrc = min(txSrc, bk.rtxSrc)
				order[p] = sl.rank
			}
			if sl.seen {
				lo, hi = min(lo, rsrc), max(hi, rsrc)
			}
		}
		sample, why := dispersion.TrainSample(tx, rx, order, bk.pace(i, forward), lo.Noise())
		switch why {
		case dispersion.Lost, dispersion.Reordered, dispersion.NoTxStamp:
		default: // stamps to check: a lie is named as such, whatever else it broke
			if p := t.plausible(forward); p != dispersion.Accepted {
				why = p
			}
		}
		switch {
		case why == dispersion.Accepted && reordered:
			why = dispersion.Reordered
		case why == dispersion.Accepted && lo != hi:
			why = dispersion.MixedClock
		}
		if t.replies == len(t.slots) {
			d.Complete++
		}
		d.Rejects.Add(why)
		switch why {
		case dispersion.Accepted:
			out = append(out, sample)
			worst = min(worst, lo, txSrc)
		case dispersion.LeftLate:
			late = append(late, sample)
		}
	}
	d.Used += len(out)
	if len(out) == 0 {
		worst = dispersion.SourceNone
	}
	return out, worst, late
}

// PaceFraction is where phase 2 aims its probe spacing, as a fraction of
// Tn. The probe-gap formula X = C·(Δout − Tn)/Δin is exact for any Δin ≤ Tn
// (the second probe still queues behind the first) and biased above it,
// while a sender's scheduling only ever delays packets; aiming at 0.8·Tn
// leaves that jitter room. Trains whose mean measured gap falls outside
// [PaceMin·Tn, PaceMax·Tn], or with a single gap over PaceHole·Tn (long
// enough for the bottleneck queue to drain), are rejected as off-pace.
const (
	PaceFraction = 0.8
	PaceMin      = 0.4
	PaceMax      = 1.1
	PaceHole     = 2
)

// pace is what train i's input gaps had to be in one direction: back to
// back in phase 1, PaceOf the direction's gap in phase 2.
func (bk *book) pace(i int, forward bool) dispersion.Pace {
	tn := bk.tnRev
	if forward {
		tn = bk.tnFwd
	}
	if i < bk.phase1 || tn == 0 {
		return dispersion.Pace{}
	}
	return PaceOf(tn)
}

// PaceOf is what the input gaps of a train paced for a per-packet time tn
// (seconds; the gap asked for is PaceFraction·tn) must keep to be used.
func PaceOf(tn float64) dispersion.Pace {
	return dispersion.Pace{Min: PaceMin * tn, Max: PaceMax * tn, Hole: PaceHole * tn}
}

// traffic fills in what each direction carried and lost.
func (bk *book) traffic(res *Result) {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	f, r := &res.Forward, &res.Reverse
	for _, t := range bk.trains {
		n := len(t.slots)
		f.TrainsSent++
		f.Packets += n
		f.Bytes += n * bk.cfg.Size
		// Each reply stands for a request that arrived; a reflector that
		// claims fewer (or, checked on receipt, more than were sent) is
		// not believed.
		arrived := max(t.arrived, t.replies)
		if t.replies == 0 {
			arrived = t.reported // whole reply train lost: the report still says what came in
		}
		f.Lost += n - arrived
		sent := max(t.reported, t.replies)
		if sent > 0 {
			r.TrainsSent++
		}
		r.Packets += sent
		r.Bytes += sent * bk.cfg.Size
		r.Lost += sent - t.replies
		for _, sl := range t.slots {
			r.Duplicates += sl.dup
		}
	}
	f.TTL, r.TTL = bk.commonTTL(true), bk.commonTTL(false)
}

// commonTTL is the TTL most packets of one direction arrived with.
func (bk *book) commonTTL(forward bool) int {
	count := map[int]int{}
	for _, t := range bk.trains {
		for _, sl := range t.slots {
			v := sl.rTTL
			if forward {
				v = sl.fTTL
			}
			if sl.seen && v >= 0 {
				count[v]++
			}
		}
	}
	best, n := -1, 0
	for v, c := range count {
		if c > n || (c == n && v < best) {
			best, n = v, c
		}
	}
	return best
}

// rtt computes round-trip times from every packet whose four stamps are
// known, less the time it spent inside the reflector (same clock there).
func (bk *book) rtt() (record.RTT, bool) {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	var v []float64
	for _, t := range bk.trains {
		for _, sl := range t.slots {
			// The time inside the reflector, by its clock, must lie
			// within the round trip by ours.
			if sl.seen && sl.fromR && sl.sTx != 0 && sl.rTx >= sl.fRx && sl.rTx-sl.fRx <= sl.rRx-sl.sTx {
				ms := float64((sl.rRx-sl.sTx)-(sl.rTx-sl.fRx)) / 1e6
				if ms >= 0 {
					v = append(v, ms)
				}
			}
		}
	}
	if len(v) == 0 {
		return record.RTT{}, false
	}
	return rttStats(v), true
}

// rttStats sums up the round-trip times v (ms, in the order the packets
// were sent; at least one).
func rttStats(v []float64) record.RTT {
	r := record.RTT{Min: math.Inf(1)}
	var sum, jit float64
	for i, x := range v {
		r.Min, r.Max = math.Min(r.Min, x), math.Max(r.Max, x)
		sum += x
		if i > 0 {
			jit += math.Abs(x - v[i-1])
		}
	}
	r.Avg = sum / float64(len(v))
	if len(v) > 1 {
		r.Jitter = jit / float64(len(v)-1)
	}
	// RFC 3550's interarrival jitter, on the round trips: a running mean
	// of |D| with gain 1/16, D the difference of consecutive transit times.
	for i := 1; i < len(v); i++ {
		r.JitterRFC3550 += (math.Abs(v[i]-v[i-1]) - r.JitterRFC3550) / 16
	}
	sorted := slices.Clone(v)
	slices.Sort(sorted)
	r.Median = sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		r.Median = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	return r
}
