// Package reflector answers abing probe trains.
//
// For every request train the reflector stamps each packet as it arrives
// (kernel or hardware clock where available), waits until the whole train
// has arrived or TrainTimeout has passed since its latest packet, and then
// sends a reply train back to the source: one reply per request packet that
// arrived, each no larger than the request packet it answers, spaced as the
// request asks (back to back in one sendmmsg, or paced by spinning on the
// clock). Each reply carries the receive timestamp and TTL of its request
// packet, so the sender learns the forward dispersion, and the reply train's
// own arrival gives it the reverse dispersion. Echoing packets one by one as
// they arrive would stamp the forward dispersion onto the reverse train.
//
// The reflector's own transmit timestamps come back from the kernel after
// the replies have left, so they cannot ride in the replies; the sender
// fetches them with a report request at the end of its run. A report is never
// larger than the request that asked for it.
//
// Each source address has a token bucket on reply bytes; a train that does
// not fit is not answered and counted. Sessions expire after SessionIdle.
package reflector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
)

// Config tunes a Server. Zero values take the defaults shown.
type Config struct {
	TrainTimeout time.Duration // 50 ms: wait for the rest of a train after its latest packet
	SessionIdle  time.Duration // 30 s: forget a session this long after its last packet
	MaxSessions  int           // 4096
	SourceRate   float64       // 10e6 bit/s: reply budget per source address
	SourceBurst  int           // 1 MiB: bucket depth per source, bytes
	MaxReplyGap  time.Duration // 20 ms: largest spacing a request may ask for
	MaxStamps    int           // 8192: transmit stamps kept per session for reports
	Logger       *slog.Logger
}

func (c *Config) defaults() {
	if c.TrainTimeout == 0 {
		c.TrainTimeout = 50 * time.Millisecond
	}
	if c.SessionIdle == 0 {
		c.SessionIdle = 30 * time.Second
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = 4096
	}
	if c.SourceRate == 0 {
		c.SourceRate = 10e6
	}
	if c.SourceBurst == 0 {
		c.SourceBurst = 1 << 20
	}
	if c.MaxReplyGap == 0 {
		c.MaxReplyGap = 20 * time.Millisecond
	}
	if c.MaxStamps == 0 {
		c.MaxStamps = 8192
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats are the reflector's counters.
type Stats struct {
	Received      uint64 // datagrams read
	Malformed     uint64 // dropped: did not parse
	Probes        uint64 // probe packets accepted
	Trains        uint64 // reply trains sent
	TrainTimeouts uint64 // trains answered incomplete after TrainTimeout
	Replies       uint64 // reply datagrams sent
	Reports       uint64 // report datagrams sent
	RateLimited   uint64 // trains not answered: source over budget
	Overloaded    uint64 // trains not answered: reply queue full or too many sessions
	SendErrors    uint64
}

type counters struct {
	received, malformed, probes, trains, timeouts, replies, reports, limited, overloaded, sendErrors atomic.Uint64
}

type sessionKey struct {
	src netip.AddrPort
	id  uint64
}

type pendingTrain struct {
	index    uint32
	n        uint16
	gap      uint32
	flags    uint16
	rx       []int64
	ttl      []uint8
	src      []uint8
	size     []int
	seq      []uint32
	arrived  uint16
	deadline time.Time
}

type session struct {
	key     sessionKey
	last    time.Time
	pending map[uint32]*pendingTrain
	stamps  []train.TxStamp // guarded by Server.mu
}

type job struct {
	s      *session
	t      *pendingTrain
	report *train.ReportRequest
	reqLen int // report: length of the request datagram
	seq    uint32
}

type txRef struct {
	s   *session
	idx int // index into s.stamps
}

// Server is a running reflector.
type Server struct {
	conn *dispersion.Conn
	cfg  Config
	c    counters

	sessions map[sessionKey]*session // receive loop only
	buckets  map[netip.Addr]*bucket  // receive loop only
	jobs     chan job

	mu    sync.Mutex
	txKey map[uint32]txRef // transmit key → where its stamp goes
}

// New returns a reflector answering on conn.
func New(conn *dispersion.Conn, cfg Config) *Server {
	cfg.defaults()
	return &Server{
		conn:     conn,
		cfg:      cfg,
		sessions: map[sessionKey]*session{},
		buckets:  map[netip.Addr]*bucket{},
		jobs:     make(chan job, 256),
		txKey:    map[uint32]txRef{},
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Received: s.c.received.Load(), Malformed: s.c.malformed.Load(), Probes: s.c.probes.Load(),
		Trains: s.c.trains.Load(), TrainTimeouts: s.c.timeouts.Load(), Replies: s.c.replies.Load(),
		Reports: s.c.reports.Load(), RateLimited: s.c.limited.Load(), Overloaded: s.c.overloaded.Load(),
		SendErrors: s.c.sendErrors.Load(),
	}
}

// Serve answers probes until ctx is cancelled or the socket fails.
func (s *Server) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.writer(ctx) }()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		s.conn.SetReadDeadline(time.Unix(1, 0))
	}()
	err := s.readLoop(ctx)
	cancel()
	wg.Wait()
	return err
}

func (s *Server) readLoop(ctx context.Context) error {
	buf := make([]byte, 65536)
	lastSweep := time.Now()
	for {
		if ctx.Err() != nil {
			return nil
		}
		s.conn.SetReadDeadline(s.nextDeadline())
		ev, err := s.conn.Recv(buf)
		now := time.Now()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reflector %s: %w", s.conn.LocalAddr(), err)
		}
		if err == nil {
			switch ev.Kind {
			case dispersion.Data:
				s.c.received.Add(1)
				if ev.Trunc {
					s.c.malformed.Add(1)
				} else {
					s.handle(buf[:ev.N], ev, now)
				}
			case dispersion.TxStamp:
				s.recordTx(ev.Key, ev.Ns)
			}
		}
		s.flushExpired(now)
		if now.Sub(lastSweep) > time.Second {
			s.sweep(now)
			lastSweep = now
		}
	}
}

func (s *Server) nextDeadline() time.Time {
	d := time.Now().Add(time.Second)
	for _, ss := range s.sessions {
		for _, t := range ss.pending {
			if t.deadline.Before(d) {
				d = t.deadline
			}
		}
	}
	return d
}

func (s *Server) handle(b []byte, ev dispersion.Event, now time.Time) {
	h, err := train.ParseHeader(b)
	if err != nil {
		s.c.malformed.Add(1)
		return
	}
	key := sessionKey{ev.From, h.Session}
	switch h.Type {
	case train.TypeProbe:
		if len(b) < train.HeaderLen+train.ReplyBodyLen {
			s.c.malformed.Add(1) // too small to be answered with a reply of its size
			return
		}
		s.probe(key, &h, len(b), ev, now)
	case train.TypeReportRequest:
		ss := s.sessions[key]
		r, err := train.ParseReportRequest(b)
		if err != nil || ss == nil {
			s.c.malformed.Add(1)
			return
		}
		ss.last = now
		s.enqueue(job{s: ss, report: &r, reqLen: len(b), seq: h.Seq})
	default:
		s.c.malformed.Add(1) // replies and reports are not for a reflector
	}
}

func (s *Server) probe(key sessionKey, h *train.Header, size int, ev dispersion.Event, now time.Time) {
	ss := s.sessions[key]
	if ss == nil {
		if len(s.sessions) >= s.cfg.MaxSessions {
			s.c.overloaded.Add(1)
			return
		}
		ss = &session{key: key, pending: map[uint32]*pendingTrain{}}
		s.sessions[key] = ss
	}
	ss.last = now
	s.c.probes.Add(1)
	t := ss.pending[h.Train]
	if t == nil {
		if len(ss.pending) >= 64 {
			s.c.overloaded.Add(1)
			return
		}
		n := int(h.Len)
		t = &pendingTrain{index: h.Train, n: h.Len, gap: h.ReplyGap, flags: h.Flags,
			rx: make([]int64, n), ttl: make([]uint8, n), src: make([]uint8, n), size: make([]int, n), seq: make([]uint32, n)}
		ss.pending[h.Train] = t
	}
	if h.Len != t.n || t.rx[h.Pos] != 0 {
		return // duplicate, or a packet that disagrees with its train
	}
	t.rx[h.Pos] = ev.Ns
	t.ttl[h.Pos] = uint8(max(ev.TTL, 0))
	t.src[h.Pos] = uint8(ev.Source)
	t.size[h.Pos] = size
	t.seq[h.Pos] = h.Seq
	t.arrived++
	t.deadline = now.Add(s.cfg.TrainTimeout)
	if t.arrived == t.n {
		delete(ss.pending, h.Train)
		s.answer(ss, t)
	}
}

func (s *Server) flushExpired(now time.Time) {
	for _, ss := range s.sessions {
		for i, t := range ss.pending {
			if now.After(t.deadline) {
				delete(ss.pending, i)
				s.c.timeouts.Add(1)
				s.answer(ss, t)
			}
		}
	}
}

func (s *Server) sweep(now time.Time) {
	for k, ss := range s.sessions {
		if now.Sub(ss.last) > s.cfg.SessionIdle && len(ss.pending) == 0 {
			delete(s.sessions, k)
			s.mu.Lock()
			ss.stamps = nil
			s.mu.Unlock()
		}
	}
	for a, b := range s.buckets {
		if b.full(now, s.cfg) {
			delete(s.buckets, a)
		}
	}
}

func (s *Server) answer(ss *session, t *pendingTrain) {
	bytes := 0
	for _, n := range t.size {
		bytes += n
	}
	b := s.buckets[ss.key.src.Addr()]
	if b == nil {
		b = &bucket{tokens: float64(s.cfg.SourceBurst), at: time.Now()}
		s.buckets[ss.key.src.Addr()] = b
	}
	if !b.take(time.Now(), float64(bytes), s.cfg) {
		s.c.limited.Add(1)
		return
	}
	s.enqueue(job{s: ss, t: t})
}

func (s *Server) enqueue(j job) {
	select {
	case s.jobs <- j:
	default:
		s.c.overloaded.Add(1)
	}
}

func (s *Server) recordTx(key uint32, ns int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.txKey[key]
	if !ok {
		return
	}
	delete(s.txKey, key)
	if ref.idx < len(ref.s.stamps) {
		ref.s.stamps[ref.idx].TxNs = ns
	}
}

// writer sends every reply and report: one goroutine owns the socket's
// transmit side, so transmit keys stay in step with the kernel's.
func (s *Server) writer(ctx context.Context) {
	_, txSrc := s.conn.Sources()
	var pkts [][]byte
	var user []int64
	for {
		var j job
		select {
		case <-ctx.Done():
			return
		case j = <-s.jobs:
		}
		peer := s.conn.Peer(j.s.key.src)
		if j.report != nil {
			s.sendReport(peer, j, uint8(txSrc))
			continue
		}
		pkts = s.buildReplies(pkts[:0], j)
		first := peer.FirstKey()
		s.mu.Lock()
		base := len(j.s.stamps)
		for p := range j.t.n {
			if j.t.rx[p] != 0 && len(j.s.stamps) < s.cfg.MaxStamps {
				s.txKey[first+uint32(len(j.s.stamps)-base)] = txRef{j.s, len(j.s.stamps)}
				j.s.stamps = append(j.s.stamps, train.TxStamp{Train: j.t.index, Pos: p})
			}
		}
		s.mu.Unlock()
		gap := min(time.Duration(j.t.gap), s.cfg.MaxReplyGap)
		var err error
		user, err = train.Send(peer, pkts, gap, user)
		if err != nil {
			s.c.sendErrors.Add(1)
			s.cfg.Logger.Debug("reply", "to", j.s.key.src, "err", err)
		}
		s.c.trains.Add(1)
		s.c.replies.Add(uint64(len(user)))
		if txSrc == dispersion.SourceUser {
			s.mu.Lock()
			for i := range user {
				if base+i < len(j.s.stamps) {
					j.s.stamps[base+i].TxNs = user[i]
				}
			}
			s.mu.Unlock()
		}
	}
}

func (s *Server) buildReplies(pkts [][]byte, j job) [][]byte {
	t := j.t
	now := time.Now().UnixNano()
	for p := range t.n {
		if t.rx[p] == 0 {
			continue
		}
		b := make([]byte, t.size[p]) // the same UDP payload length as the request
		train.PutHeader(b, &train.Header{Type: train.TypeReply, Flags: t.flags, Session: j.s.key.id,
			Train: t.index, Pos: p, Len: t.n, Seq: t.seq[p], ReplyGap: t.gap, SentNs: now})
		train.PutReplyBody(b, &train.ReplyBody{RxNs: t.rx[p], TTL: t.ttl[p], RxSource: t.src[p], Arrived: t.arrived})
		pkts = append(pkts, b)
	}
	return pkts
}

func (s *Server) sendReport(peer *dispersion.Peer, j job, txSrc uint8) {
	r := j.report
	s.mu.Lock()
	var sel []train.TxStamp
	for _, st := range j.s.stamps {
		if st.Train >= r.FirstTrain && st.Train-r.FirstTrain < r.Trains {
			sel = append(sel, st)
		}
	}
	s.mu.Unlock()
	b := make([]byte, j.reqLen) // never larger than the request
	train.PutHeader(b, &train.Header{Type: train.TypeReport, Session: j.s.key.id, Train: r.FirstTrain,
		Len: 1, Seq: j.seq, SentNs: time.Now().UnixNano()})
	train.PutReport(b, txSrc, sel)
	// The report's own transmit stamp is not wanted, but it consumes a key.
	if _, err := peer.Write(b); err != nil {
		s.c.sendErrors.Add(1)
		return
	}
	s.c.reports.Add(1)
}

// bucket is a token bucket on reply bytes.
type bucket struct {
	tokens float64
	at     time.Time
}

func (b *bucket) refill(now time.Time, cfg Config) {
	b.tokens = min(float64(cfg.SourceBurst), b.tokens+now.Sub(b.at).Seconds()*cfg.SourceRate/8)
	b.at = now
}

func (b *bucket) take(now time.Time, n float64, cfg Config) bool {
	b.refill(now, cfg)
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

func (b *bucket) full(now time.Time, cfg Config) bool {
	b.refill(now, cfg)
	return b.tokens >= float64(cfg.SourceBurst)
}
