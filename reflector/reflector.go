// Package reflector answers abing probe trains, safely on the open Internet.
//
// For every request train the reflector stamps each packet as it arrives
// (kernel or hardware clock where available), waits until the whole train
// has arrived or TrainTimeout has passed since its latest packet, and then
// sends a reply train back to the source: one reply per request packet that
// arrived, each no larger than the request packet it answers, spaced as the
// request asks (back to back in one sendmmsg, or paced by spinning on the
// clock). Each reply carries the receive timestamp and TTL of its request
// packet, so the sender learns the forward dispersion, and the reply train's
// own arrival gives it the reverse timestamp. The reflector's own transmit
// timestamps come back from the kernel after the replies have left; the
// sender fetches them with report requests, each answered by a report no
// larger than the request.
//
// # No amplification
//
// A reflector answers strangers, so nothing it sends may be larger than
// what caused it, and it must not send to an address that did not ask:
//
//   - A hello (at least 88 bytes) gets a 56-byte cookie: a MAC, under a
//     secret of this process, of the time, the source address and port and
//     the session id. Nothing is stored.
//   - Probes and report requests are answered only when they carry a valid
//     cookie for their source, port and session, or belong to a session
//     that did. Otherwise they get at most one 48-byte refusal per source
//     per second. A forged source address never sees its cookie.
//   - Replies: one per request packet that arrived, of the same size; a
//     report is no larger than its request.
//
// Bytes out per source are therefore never more than bytes in.
//
// # Budgets, keys, bounds
//
// Every datagram is charged to token buckets on bytes and packets for its
// source address, its /24 or /48 prefix, and the whole reflector; a source
// over budget is told so once (a refusal, at most one a second) and dropped.
// Paced reply trains also spend a per-source share of the writer's time.
// With keys, every sender message must be signed (HMAC-SHA-256, package
// auth), stamped within ReplayWindow of the reflector's clock, and carry a
// sequence number new to its session; anything else is dropped silently.
//
// Memory is bounded: at most MaxSessions active sessions of at most
// SessionMemory bytes each (trains being assembled and transmit stamps
// awaiting reports), at most PrefixSessions of them from one /24 or /48; a
// session stops being active when its sender closes it or after ActiveIdle
// without a packet; with keys, it then keeps only its replay window (about
// 150 bytes) until SessionIdle, up to 8·MaxSessions of them. At most MaxSources tracked
// source addresses and MaxSources/4 prefixes, a fixed ring of transmit keys
// and a fixed reply queue. Idle buckets are forgotten once they have
// refilled. Every drop is counted by reason (Stats, and Collector for
// Prometheus), and a summary is logged once per SummaryEvery.
package reflector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
)

// MaxDatagram is the largest UDP payload of any abing message: a 9000-byte
// jumbo IPv4 packet.
const MaxDatagram = 9000 - train.OverheadIPv4

// Config tunes a Server. Zero values take the defaults shown (Defaults).
type Config struct {
	TrainTimeout time.Duration // 50 ms: wait for the rest of a train after its latest packet
	ActiveIdle   time.Duration // 5 s: free a session's memory this long after its last packet
	SessionIdle  time.Duration // 30 s: forget a session (its replay window) this long after its last packet
	MaxSessions  int           // 1024 active sessions (8 times as many remembered)
	// PrefixSessions caps the active sessions of one source prefix (/24 or /48),
	// so that a few networks cannot take every session.
	PrefixSessions int           // 8
	SessionMemory  int           // 128 KiB per session: half for trains being assembled, half for stamps
	MaxTrainLen    int           // 1024 packets
	MaxReplyGap    time.Duration // 20 ms: largest spacing a request may ask for
	MaxReplySpan   time.Duration // 100 ms: longest a paced reply train may take
	MaxSources     int           // 65536 source addresses tracked (and a quarter as many prefixes)
	Limits         Limits        // DefaultLimits()
	Keys           []auth.Key    // nil: any sender with a cookie; else signed datagrams only
	ReplayWindow   time.Duration // 10 s: keyed datagrams must be stamped this close to our clock
	Allow, Deny    []netip.Prefix
	SummaryEvery   time.Duration // 1 min
	Logger         *slog.Logger
}

// Defaults is the configuration of a reflector that sets nothing: the
// value a zero field of a Config takes.
func Defaults() Config {
	return Config{
		TrainTimeout: 50 * time.Millisecond, ActiveIdle: 5 * time.Second, SessionIdle: 30 * time.Second,
		MaxSessions: 1024, PrefixSessions: 8, SessionMemory: 128 << 10, MaxTrainLen: 1024,
		MaxReplyGap: 20 * time.Millisecond, MaxReplySpan: 100 * time.Millisecond, MaxSources: 65536,
		Limits: DefaultLimits(), ReplayWindow: 10 * time.Second, SummaryEvery: time.Minute,
	}
}

func (c *Config) defaults() {
	d := Defaults()
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.TrainTimeout, d.TrainTimeout)
	def(&c.SessionIdle, d.SessionIdle)
	def(&c.ActiveIdle, d.ActiveIdle)
	def(&c.MaxReplyGap, d.MaxReplyGap)
	def(&c.MaxReplySpan, d.MaxReplySpan)
	def(&c.ReplayWindow, d.ReplayWindow)
	def(&c.SummaryEvery, d.SummaryEvery)
	defInt(&c.MaxSessions, d.MaxSessions)
	defInt(&c.PrefixSessions, d.PrefixSessions)
	defInt(&c.SessionMemory, d.SessionMemory)
	defInt(&c.MaxTrainLen, d.MaxTrainLen)
	defInt(&c.MaxSources, d.MaxSources)
	if c.Limits == (Limits{}) {
		c.Limits = d.Limits
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate says what is wrong with a configuration, after defaults.
func (c Config) Validate() error {
	c.defaults()
	for name, b := range map[string]Budget{"source": c.Limits.Source, "prefix": c.Limits.Prefix, "global": c.Limits.Global} {
		if !b.valid() {
			return fmt.Errorf("%s budget %+v: rates must be positive, bursts at least %d bytes and 1 packet", name, b, MaxDatagram)
		}
	}
	if !(c.Limits.PacedShare > 0 && c.Limits.PacedShare <= 1) || !(c.Limits.PacedTotal > 0 && c.Limits.PacedTotal <= 1) {
		return fmt.Errorf("paced share %g, total %g: want more than 0, at most 1", c.Limits.PacedShare, c.Limits.PacedTotal)
	}
	if c.MaxSessions < 0 || c.MaxSources < 4 || c.MaxTrainLen < 2 || c.SessionMemory < 2*c.MaxTrainLen*slotSize {
		return fmt.Errorf("max sessions %d, sources %d, train length %d, session memory %d: out of range (memory must hold two of the longest trains)",
			c.MaxSessions, c.MaxSources, c.MaxTrainLen, c.SessionMemory)
	}
	// A keyed session must outlive the replay window on both sides of our
	// clock, or a replay could revive a forgotten session.
	if len(c.Keys) > 0 && c.SessionIdle < 2*c.ReplayWindow {
		return fmt.Errorf("session idle %v must be at least twice the replay window %v", c.SessionIdle, c.ReplayWindow)
	}
	return nil
}

// Server is a running reflector.
type Server struct {
	conn *dispersion.Conn
	cfg  Config
	c    counters
	acl  acl

	// budgetMu guards the budgets (sources, prefixes, global), which the
	// STAMP loop shares; the receive loop holds it while it handles a
	// datagram.
	budgetMu sync.Mutex

	// receive loop only
	sessions map[sessionKey]*session
	active   int // sessions counted against the caps
	pending  pendingList
	sources  *table[netip.Addr]
	prefixes *table[netip.Prefix]
	global   *bucket
	paced    *rate.Limiter // writer time all sources may spend pacing, µs
	budget   train.Budget  // what a source may send, stated in cookies
	jar      *auth.Jar
	verifier *auth.Verifier // nil: keys not required
	sum      summary
	// dst is the local address the datagram being handled was sent to,
	// key the name of the key it was verified with ("" until then).
	dst netip.Addr
	key string
	// txSigner signs what the writer sends (its own hash states).
	txSigner *auth.Verifier
	// lastRecvErr is when a failed receive was last logged.
	lastRecvErr time.Time

	jobs chan job

	mu sync.Mutex // guards session stamps and the transmit key ring
	tx txRing
}

// New returns a reflector answering on conn.
func New(conn *dispersion.Conn, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("reflector: %w", err)
	}
	cfg.defaults()
	now := time.Now()
	s := &Server{
		conn:     conn,
		cfg:      cfg,
		acl:      acl{allow: cfg.Allow, deny: cfg.Deny},
		sessions: map[sessionKey]*session{},
		sources:  newTable[netip.Addr](cfg.Limits.Source, cfg.MaxSources),
		prefixes: newTable[netip.Prefix](cfg.Limits.Prefix, cfg.MaxSources/4),
		global:   newBucket(cfg.Limits.Global, now),
		jar:      auth.NewJar(),
		sum:      summary{every: cfg.SummaryEvery, at: now},
		jobs:     make(chan job, 1024),
	}
	s.pending.init()
	src := cfg.Limits.Source
	s.budget = train.Budget{Rate: src.Rate, Burst: src.Burst, PPS: src.PPS, PacketBurst: src.PacketBurst,
		MaxTrainLen: cfg.MaxTrainLen, PacedShare: cfg.Limits.PacedShare, MaxReplySpan: int64(cfg.MaxReplySpan)}
	pacedBurst := func(share float64) int {
		return int(train.Budget{PacedShare: share, MaxReplySpan: int64(cfg.MaxReplySpan)}.PacedBucket() / time.Microsecond)
	}
	s.sources.paced = &pacedBudget{share: cfg.Limits.PacedShare, burst: pacedBurst(cfg.Limits.PacedShare)}
	s.paced = (&pacedBudget{share: cfg.Limits.PacedTotal, burst: pacedBurst(cfg.Limits.PacedTotal)}).limiter()
	if len(cfg.Keys) > 0 {
		s.verifier = auth.NewVerifier(cfg.Keys)
		s.txSigner = auth.NewVerifier(cfg.Keys)
	}
	return s, nil
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats { return s.c.snapshot() }

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

// recvErrorPause is how long the receive loop waits after a failed receive
// that was not an ICMP error, so that a broken socket cannot make it spin.
const recvErrorPause = 10 * time.Millisecond

func (s *Server) readLoop(ctx context.Context) error {
	buf := make([]byte, 65536)
	lastSweep := time.Now()
	for {
		if ctx.Err() != nil {
			return nil
		}
		wake := time.Now().Add(time.Second)
		if next := s.sum.at.Add(s.sum.every); next.Before(wake) {
			wake = next
		}
		s.conn.SetReadDeadline(s.pending.next(wake))
		ev, err := s.conn.Recv(buf)
		now := time.Now()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("reflector %s: %w", s.conn.LocalAddr(), err)
			}
			// Whatever else a receive fails with, the next one may work:
			// count it, say it once a summary interval, and go on without
			// spinning.
			if s.c.recvErrors.Add(1) == 1 || now.Sub(s.lastRecvErr) >= s.sum.every {
				s.cfg.Logger.Warn("receive", "err", err, "errors", s.c.recvErrors.Load())
				s.lastRecvErr = now
			}
			time.Sleep(recvErrorPause)
		}
		s.budgetMu.Lock()
		switch { // count counts every event, and is true for datagrams
		case err != nil:
		case s.c.count(ev) && (ev.Trunc || ev.N > MaxDatagram):
			s.drop(DropOversize, nil)
		case ev.Kind == dispersion.Data:
			s.handle(buf[:ev.N], ev, now)
		case ev.Kind == dispersion.TxStamp:
			s.recordTx(ev.Key, ev.Ns)
		}
		s.flushExpired(now)
		if now.Sub(lastSweep) > time.Second {
			s.sweep(now)
			lastSweep = now
		}
		s.summarize(now)
		s.budgetMu.Unlock()
	}
}

// drop counts a dropped datagram, against its source prefix too if known.
func (s *Server) drop(d Drop, prefix *bucket) {
	s.c.dropped[d].Add(1)
	if prefix != nil {
		prefix.refused++
	}
}

// handle runs one datagram through the checks, cheapest first, and acts on
// it.
func (s *Server) handle(b []byte, ev dispersion.Event, now time.Time) {
	src := netip.AddrPortFrom(ev.From.Addr().Unmap(), ev.From.Port())
	s.dst = ev.Dst // what every answer to this datagram is sent from
	s.key = ""     // and, once verified, the key it is signed with
	if !s.acl.permits(src.Addr()) {
		s.drop(DropDenied, nil)
		return
	}
	h, err := train.ParseHeader(b)
	if err != nil || !h.Type.FromSender() {
		s.drop(DropMalformed, nil)
		return
	}
	srcB := s.sources.get(src.Addr(), now)
	pfxB := s.prefixes.get(prefixOf(src.Addr()), now)
	if !srcB.take(now, len(b)) {
		s.drop(DropRateSource, pfxB)
		s.refuse(src, &h, srcB, train.RefusedRate, now, b)
		return
	}
	// With keys, what is cheap to check comes before the budgets that
	// sources share, so that unsigned or stale traffic cannot spend what
	// keyed senders need: only the source's own budget pays for it.
	if s.verifier != nil {
		if err := s.verifier.Signed(b); err != nil {
			s.dropUnverified(err, pfxB)
			return
		}
		if !auth.Fresh(h.SentNs, now, s.cfg.ReplayWindow) {
			s.drop(DropStale, pfxB)
			return
		}
	}
	switch {
	case !pfxB.take(now, len(b)):
		s.drop(DropRatePrefix, pfxB)
		s.refuse(src, &h, srcB, train.RefusedRate, now, b)
		return
	case !s.global.take(now, len(b)):
		s.drop(DropRateGlobal, pfxB)
		s.refuse(src, &h, srcB, train.RefusedRate, now, b)
		return
	}
	if s.verifier != nil {
		name, err := s.verifier.Verify(b)
		if err != nil {
			s.dropUnverified(err, pfxB)
			return
		}
		s.key = name
	}
	if h.Type == train.TypeHello {
		s.hello(src, &h, len(b), now, srcB)
		return
	}
	key := sessionKey{src, h.Session}
	ss := s.sessions[key]
	if ss == nil {
		cb, _ := train.ParseClientBlock(b) // cannot fail: the header parsed
		if !s.jar.Valid(now, src, h.Session, cb.Cookie) {
			s.drop(DropCookie, pfxB)
			s.refuse(src, &h, srcB, train.RefusedCookie, now, nil)
			return
		}
		if len(s.sessions) >= s.cfg.MaxSessions*rememberFactor || !s.roomFor(pfxB) {
			s.drop(DropSessions, pfxB)
			s.refuse(src, &h, srcB, train.RefusedSessions, now, nil)
			return
		}
		ss = &session{key: key, source: srcB, prefix: pfxB}
		s.sessions[key] = ss
	}
	if !ss.window.Accept(h.Seq) {
		s.drop(DropReplayed, pfxB)
		return
	}
	ss.last, ss.local, ss.keyName = now, ev.Dst, s.key
	if h.Type == train.TypeClose {
		s.deactivate(ss)
		return
	}
	if !ss.active {
		if !s.roomFor(ss.prefix) {
			s.drop(DropSessions, pfxB)
			s.refuse(src, &h, srcB, train.RefusedSessions, now, nil)
			return
		}
		s.activate(ss)
	}
	switch h.Type {
	case train.TypeProbe:
		s.probe(ss, &h, len(b), ev, now, pfxB)
	case train.TypeReportRequest:
		r, _ := train.ParseReportRequest(b) // cannot fail: the header parsed
		s.enqueue(job{s: ss, report: &r, reqLen: len(b), seq: h.Seq, from: ss.local, key: ss.keyName}, pfxB)
	}
}

// dropUnverified counts a datagram that failed a signature check.
func (s *Server) dropUnverified(err error, pfx *bucket) {
	if errors.Is(err, auth.ErrUnsigned) {
		s.drop(DropUnsigned, pfx)
	} else {
		s.drop(DropBadSignature, pfx)
	}
}

// rememberFactor: with keys, the reflector remembers up to this many times
// MaxSessions sessions, most of them closed or idle, so that their signed
// datagrams cannot be replayed while they are fresh. Without keys anyone can
// open a session anyway, so there is nothing to remember.
const rememberFactor = 8

// roomFor says whether one more session of the prefix whose bucket is pfx
// may be active.
func (s *Server) roomFor(pfx *bucket) bool {
	return s.active < s.cfg.MaxSessions && pfx.sessions < s.cfg.PrefixSessions
}

// activate counts a session against the caps; it may hold memory now.
func (s *Server) activate(ss *session) {
	ss.active = true
	s.active++
	ss.prefix.sessions++
	s.c.sessions.Store(int64(s.active))
}

// deactivate frees what a session holds but its replay window: the sender
// said it is done, or went quiet for ActiveIdle.
func (s *Server) deactivate(ss *session) {
	if !ss.active {
		return
	}
	ss.active = false
	s.active--
	ss.prefix.sessions--
	for _, t := range ss.pending {
		s.pending.remove(t)
		ss.removePending(t)
	}
	s.mu.Lock()
	ss.stamps = nil
	s.mu.Unlock()
	if s.verifier == nil {
		delete(s.sessions, ss.key)
	}
	s.c.sessions.Store(int64(s.active))
	s.c.remembered.Store(int64(len(s.sessions)))
}

// hello answers with a cookie, no larger than the hello, and with the
// budget a source has here when the hello leaves room for it.
func (s *Server) hello(src netip.AddrPort, h *train.Header, n int, now time.Time, srcB *bucket) {
	size := train.HeaderLen + train.CookieLen + train.BudgetLen
	if s.verifier != nil {
		size += auth.TrailerLen
	}
	withBudget := size <= n
	size = train.HeaderLen + train.CookieLen
	if withBudget {
		size += train.BudgetLen
	}
	b := s.message(size, &train.Header{Type: train.TypeCookie, Session: h.Session, Len: 1, Seq: h.Seq, SentNs: now.UnixNano()})
	train.PutCookie(b, s.jar.Issue(now, src, h.Session))
	if withBudget {
		u := s.budget
		// What this source may still pace now: a run right after another
		// finds its bucket part empty, and fits its paced trains to that.
		tokens := s.paced.TokensAt(now)
		if srcB.paced != nil {
			tokens = min(tokens, srcB.paced.TokensAt(now))
		}
		u.PacedNow = max(time.Microsecond, time.Duration(tokens)*time.Microsecond)
		train.PutBudget(b, u)
	}
	if len(b) <= n && s.sign(b, s.key) {
		s.enqueue(job{to: src, from: s.dst, msg: b, cookie: true}, nil)
	}
}

// message makes a datagram of n bytes (and room for a signature, with
// keys) with header h in place.
func (s *Server) message(n int, h *train.Header) []byte {
	if s.verifier != nil {
		n += auth.TrailerLen
		h.Flags |= train.FlagSigned
	}
	b := make([]byte, n)
	train.PutHeader(b, h)
	return b
}

// sign signs message b, made by message, with the key named key when the
// reflector requires keys; it reports whether b may be sent (with keys, a
// message that cannot be signed is not).
func (s *Server) sign(b []byte, key string) bool {
	return s.verifier == nil || s.verifier.SignTrailer(key, b)
}

// refuse tells a source once a second at most why it is being dropped.
// With keys, a datagram refused before its signature was checked (unsigned
// is passed as unverified) is checked now: unsigned senders are never answered.
func (s *Server) refuse(src netip.AddrPort, h *train.Header, b *bucket, why train.Refusal, now time.Time, unverified []byte) {
	if now.Sub(b.notice) < time.Second {
		return
	}
	key := s.key
	if s.verifier != nil && unverified != nil {
		name, err := s.verifier.Verify(unverified)
		if err != nil {
			return
		}
		key = name
	}
	m := s.message(train.RefusedLen, &train.Header{Type: train.TypeRefused, Session: h.Session, Train: h.Train, Len: 1, Seq: h.Seq, SentNs: now.UnixNano()})
	train.PutRefused(m, train.RefusedBody{Reason: why, RetryAfter: 1000})
	if !s.sign(m, key) {
		return
	}
	b.notice = now
	s.enqueue(job{to: src, from: s.dst, msg: m}, nil)
}

func (s *Server) probe(ss *session, h *train.Header, size int, ev dispersion.Event, now time.Time, pfx *bucket) {
	t := ss.pending[h.Train]
	if t == nil {
		n := int(h.Len)
		if n > s.cfg.MaxTrainLen || ss.pendingSlots+n > s.cfg.SessionMemory/2/slotSize {
			s.drop(DropMemory, pfx)
			s.refuse(ss.key.src, h, ss.source, train.RefusedTrain, now, nil)
			return
		}
		t = &pendingTrain{s: ss, index: h.Train, gap: h.ReplyGap, flags: h.Flags, slots: make([]slot, n)}
		ss.addPending(t)
	}
	if int(h.Len) != len(t.slots) || t.slots[h.Pos].rx != 0 {
		s.drop(DropMalformed, pfx) // a packet that disagrees with its train, or a duplicate position
		return
	}
	t.slots[h.Pos] = slot{rx: ev.Ns, seq: h.Seq, size: uint16(size), ttl: uint8(max(ev.TTL, 0)), src: uint8(ev.Source)}
	t.arrived++
	s.pending.touch(t, now.Add(s.cfg.TrainTimeout))
	if t.arrived == len(t.slots) {
		s.finish(t, pfx, now)
	}
}

// finish takes a train out of assembly and queues its replies.
func (s *Server) finish(t *pendingTrain, pfx *bucket, now time.Time) {
	s.pending.remove(t)
	t.s.removePending(t)
	if gap := s.replyGap(t); gap > 0 {
		// Pacing holds the writer: charge the source its time, and all
		// sources together.
		us := int(gap * time.Duration(t.arrived-1) / time.Microsecond)
		if s.paced.TokensAt(now) < float64(us) || !t.s.source.paced.AllowN(now, us) {
			s.drop(DropPaced, pfx)
			return
		}
		s.paced.AllowN(now, us)
	}
	s.enqueue(job{s: t.s, t: t, from: t.s.local, key: t.s.keyName}, pfx)
}

// replyGap is the spacing of t's reply train: as asked, within limits.
func (s *Server) replyGap(t *pendingTrain) time.Duration {
	gap := min(time.Duration(t.gap), s.cfg.MaxReplyGap)
	if n := len(t.slots); n > 1 {
		gap = min(gap, s.cfg.MaxReplySpan/time.Duration(n-1))
	}
	return gap
}

func (s *Server) flushExpired(now time.Time) {
	for {
		t := s.pending.expired(now)
		if t == nil {
			return
		}
		s.c.timeouts.Add(1)
		s.finish(t, nil, now)
	}
}

func (s *Server) sweep(now time.Time) {
	for k, ss := range s.sessions {
		idle := now.Sub(ss.last)
		if idle > s.cfg.ActiveIdle {
			s.deactivate(ss)
		}
		if idle > s.cfg.SessionIdle {
			delete(s.sessions, k)
		}
	}
	s.sources.sweep(now)
	s.prefixes.sweep(now)
	s.c.remembered.Store(int64(len(s.sessions)))
	s.c.sources.Store(int64(len(s.sources.m)))
	s.c.prefixes.Store(int64(len(s.prefixes.m)))
}

func (s *Server) enqueue(j job, pfx *bucket) {
	select {
	case s.jobs <- j:
	default:
		s.drop(DropQueue, pfx)
	}
}
