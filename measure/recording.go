package measure

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
)

// Recording is a run rebuilt from outside it: what a packet capture on the
// sending host saw of one session's probes, of the reflector's replies and
// of its reports. Its Result is estimated by the code of a live run, with
// the capture's timestamps in place of the socket's: a capture that the NIC
// stamped gives hardware-timestamp accuracy to a host whose socket cannot
// have it.
//
// Everything given to a Recording came off the network, and is checked as
// a live run checks it: a datagram that does not fit the run so far is
// counted as unexpected, never used.
type Recording struct {
	addr     netip.AddrPort
	opts     RecordingOptions
	trains   map[uint32]*recTrain
	replies  []recReply
	reports  []recReport
	size     int // IP-layer probe size, from the first probe
	first    int64
	last     int64
	packets  int // probes recorded
	entries  int // report entries recorded
	dups     int // probes seen twice
	unexpect int
}

// RecordingOptions say how to read a capture.
type RecordingOptions struct {
	Method string // MethodProbeGap or MethodABwE; "" is MethodProbeGap
	// Clock is what stamped the packets the capture received. The
	// packets it sent are stamped by the kernel at best: Linux hands an
	// outgoing packet to the capture before the NIC sends it, so even
	// tcpdump -j adapter_unsynced stamps it in software.
	Clock dispersion.Source
	// Resolution of the capture's timestamps: 1 µs for a classic pcap
	// file, 1 ns for one written with nanosecond precision.
	Resolution time.Duration
}

// MaxRecorded bounds the probes a Recording holds: ten of the largest runs
// Config allows (MaxBytes of the smallest probes, both directions), so that
// a capture cannot make it take more than some hundred megabytes.
const MaxRecorded = 10 * 2 * MaxBytes / MinSize

// ErrRecordingFull is Probe's error past MaxRecorded probes.
var ErrRecordingFull = fmt.Errorf("more than %d probes in one session", MaxRecorded)

type recTrain struct {
	n     int
	paced bool
	gap   uint32 // reply gap asked for, ns
	tx    []int64
}

type recReply struct {
	train uint32
	pos   int
	body  train.ReplyBody
	ns    int64
	ttl   int
}

type recReport struct {
	src    uint8
	stamps []train.TxStamp
}

// NewRecording starts the record of a session with the reflector at addr.
func NewRecording(addr netip.AddrPort, opts RecordingOptions) *Recording {
	if opts.Method == "" {
		opts.Method = MethodProbeGap
	}
	return &Recording{addr: addr, opts: opts, trains: map[uint32]*recTrain{}}
}

// Probe records a probe as it left, at ns by the capture's clock; size is
// its IP-layer size. It fails only past MaxRecorded probes.
func (r *Recording) Probe(h train.Header, size int, ns int64) error {
	if h.Type != train.TypeProbe || h.Len < 2 || int(h.Len) > MaxTrainLen || h.Pos >= h.Len ||
		size < MinSize || size > MaxSize || (r.size != 0 && size != r.size) {
		r.unexpect++
		return nil
	}
	t := r.trains[h.Train]
	if t == nil {
		if r.packets+int(h.Len) > MaxRecorded {
			return ErrRecordingFull
		}
		r.packets += int(h.Len)
		t = &recTrain{n: int(h.Len), paced: h.Flags&train.FlagPaced != 0, gap: h.ReplyGap, tx: make([]int64, h.Len)}
		r.trains[h.Train] = t
	}
	if int(h.Len) != t.n || h.Flags&train.FlagPaced != 0 != t.paced || h.ReplyGap != t.gap {
		r.unexpect++
		return nil
	}
	if t.tx[h.Pos] != 0 {
		r.dups++ // the same probe seen twice (a capture on several interfaces): the first stamp counts
		return nil
	}
	t.tx[h.Pos] = ns
	r.size = size
	r.seen(ns)
	return nil
}

// Reply records a reply as it arrived, at ns by the capture's clock, with
// TTL ttl (-1 unknown).
func (r *Recording) Reply(h train.Header, body train.ReplyBody, ns int64, ttl int) {
	t := r.trains[h.Train]
	if h.Type != train.TypeReply || t == nil || int(h.Len) != t.n || int(h.Pos) >= t.n || len(r.replies) >= r.packets {
		r.unexpect++
		return
	}
	r.replies = append(r.replies, recReply{train: h.Train, pos: int(h.Pos), body: body, ns: ns, ttl: ttl})
	r.seen(ns)
}

// Report records a report of the reflector's transmit stamps, by its clock
// src.
func (r *Recording) Report(src uint8, stamps []train.TxStamp) {
	if r.entries+len(stamps) > 2*r.packets { // a reflector reports each reply once, and may be asked twice
		r.unexpect++
		return
	}
	r.entries += len(stamps)
	r.reports = append(r.reports, recReport{src: src, stamps: slices.Clone(stamps)})
}

// Slots is how many probes the recording has made room for: every probe
// of each train it saw a probe of (what MaxRecorded bounds).
func (r *Recording) Slots() int { return r.packets }

// Duplicates is how many probes the capture holds twice or more (taken
// on several interfaces, or on a bridge and its ports); the first of them
// is used.
func (r *Recording) Duplicates() int { return r.dups }

// Unexpected counts a datagram of the session that could not be used
// (it did not parse, or does not fit the run).
func (r *Recording) Unexpected() { r.unexpect++ }

// MaxRoundTrip is the longest a reply may come after its probe in a
// capture whose clocks agree.
const MaxRoundTrip = time.Minute

// coherent checks that the capture stamped sent and received packets with
// one clock: most replies come after their probe, and within
// MaxRoundTrip. A NIC's clock that nothing synchronises to the system's
// (tcpdump -j adapter_unsynced stamps received packets with it, sent ones
// with the system's) fails this, and every round trip and every check of
// the reflector's stamps against ours would be wrong.
func (r *Recording) coherent() error {
	var offsets []int64
	bad := 0
	for _, rp := range r.replies {
		if tx := r.trains[rp.train].tx[rp.pos]; tx != 0 {
			d := rp.ns - tx
			offsets = append(offsets, d)
			if d < 0 || d > int64(MaxRoundTrip) {
				bad++
			}
		}
	}
	if 2*bad <= len(offsets) {
		return nil
	}
	slices.Sort(offsets)
	return fmt.Errorf("the capture stamped received packets with another clock than sent ones: replies come %v after their probes (median); "+
		"with tcpdump -j adapter_unsynced, synchronise the NIC's clock to the system's first (phc2sys)",
		time.Duration(offsets[len(offsets)/2]))
}

func (r *Recording) seen(ns int64) {
	if r.first == 0 || ns < r.first {
		r.first = ns
	}
	r.last = max(r.last, ns)
}

// Result estimates the run. Phase 1 is the trains before the first paced
// one, in the order of their index; every train after it is phase 2.
// Trains of which the capture holds no probe are left out, as if never
// sent: a capture that starts late is not a lossy path.
func (r *Recording) Result() (*Result, error) {
	if len(r.trains) == 0 {
		return nil, errors.New("no probe of this session in the capture (taken on the reflector's host, or started after the run?)")
	}
	keys := make([]uint32, 0, len(r.trains))
	for k := range r.trains {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	cfg := Config{Target: r.addr.String(), Network: "udp", Size: r.size, Method: r.opts.Method,
		TrainLen: r.trains[keys[0]].n}
	bk := &book{cfg: cfg, floor: r.opts.Resolution.Seconds(), loopback: r.addr.Addr().Unmap().IsLoopback()}
	index := make(map[uint32]int, len(keys))
	phase1, gap := -1, uint32(0)
	for i, k := range keys {
		rt := r.trains[k]
		if rt.paced && phase1 < 0 {
			phase1, gap = i, rt.gap
			if rt.n != cfg.TrainLen {
				bk.cfg.PacedTrainLen = rt.n
			}
		}
		index[k] = i
		t := bk.newTrain(rt.n)
		for p, ns := range rt.tx {
			if ns != 0 {
				t.slots[p].sTx, t.slots[p].sSrc = ns, min(r.opts.Clock, dispersion.SourceKernel)
			}
		}
	}
	if phase1 < 0 {
		phase1 = len(keys)
	}
	if err := r.coherent(); err != nil {
		return nil, err
	}
	bk.cfg.Trains, bk.cfg.Round = phase1, len(keys)-phase1
	unexpected := r.unexpect
	for _, rp := range r.replies {
		if !bk.reply(bk.trains[index[rp.train]], rp.pos, rp.body, rp.ns, r.opts.Clock, rp.ttl) {
			unexpected++
		}
	}
	var st []train.TxStamp
	for _, rr := range r.reports {
		st = st[:0]
		for _, e := range rr.stamps {
			if i, ok := index[e.Train]; ok {
				e.Train = uint32(i)
				st = append(st, e)
			}
		}
		if !bk.report(rr.src, st) {
			unexpected++
		}
	}

	res := &Result{Time: time.Unix(0, r.first), Target: cfg.Target, Addr: r.addr, Config: bk.cfg,
		Duration: time.Duration(r.last - r.first), Unexpected: unexpected}
	res.Forward.Name, res.Reverse.Name = "forward", "reverse"
	bk.phase1 = phase1
	// Capacity trains after the pairs (CapacityTrains): the pairs first, as
	// the live run did, then the trains.
	from := 0
	if phase1 > 0 {
		if n := len(bk.trains[phase1-1].slots); len(bk.trains[0].slots) != n {
			for from = phase1 - 1; from > 0 && len(bk.trains[from-1].slots) == n; from-- {
			}
			bk.capacity(res, 0, from)
		}
	}
	est, _, _ := bk.capacity(res, from, phase1)
	if gap > 0 {
		// What the reflector was asked for, as the live run paced it.
		bk.tnRev = float64(gap) * 1e-9 / PaceFraction
	}
	bk.round(est, phase1, len(keys)-phase1)
	bk.finish(est)
	return res, nil
}
