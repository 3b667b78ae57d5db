package reflector

import (
	"context"
	"net/netip"
	"time"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
)

// job is one thing for the writer to send.
type job struct {
	// a reply train
	s *session
	t *pendingTrain
	// or a report
	report *train.ReportRequest
	reqLen int // report: length of the request datagram
	seq    uint32
	// or a prepared message (cookie, refusal)
	to     netip.AddrPort
	msg    []byte
	cookie bool
	// from is our address the request came to, which every answer is
	// sent from (invalid: the kernel chooses).
	from netip.Addr
	// key names the key that signs a reply train or report (with keys).
	key string
}

func (s *Server) recordTx(key uint32, ns int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.tx.take(key)
	if ok && ref.idx < len(ref.s.stamps) {
		ref.s.stamps[ref.idx].TxNs = ns
	}
}

// writer sends every reply, report, cookie and refusal: one goroutine owns
// the socket's transmit side, so transmit keys stay in step with the
// kernel's.
func (s *Server) writer(ctx context.Context) {
	_, txSrc := s.conn.Sources()
	var w replyBuffers
	var user []int64
	maxStamps := s.cfg.SessionMemory / 2 / stampSize
	for {
		var j job
		select {
		case <-ctx.Done():
			return
		case j = <-s.jobs:
		}
		switch {
		case j.msg != nil:
			s.send(s.conn.PeerFrom(j.to, j.from), j.msg)
			if j.cookie {
				s.c.cookies.Add(1)
			} else {
				s.c.refusals.Add(1)
			}
			continue
		case j.report != nil:
			s.sendReport(s.conn.PeerFrom(j.s.key.src, j.from), j, uint8(txSrc))
			continue
		}
		peer := s.conn.PeerFrom(j.s.key.src, j.from)
		pkts := w.build(j, time.Now().UnixNano(), s.txSigner)
		first := peer.FirstKey()
		s.mu.Lock()
		base := len(j.s.stamps)
		kept := 0
		for p := range j.t.slots {
			if j.t.slots[p].rx == 0 {
				continue
			}
			if len(j.s.stamps) < maxStamps {
				if txSrc != dispersion.SourceUser {
					s.tx.put(first+uint32(kept), j.s, len(j.s.stamps))
				}
				j.s.stamps = append(j.s.stamps, train.TxStamp{Train: j.t.index, Pos: uint16(p)})
			} else {
				s.c.dropped[DropMemory].Add(1) // replied to, but its stamp cannot be reported
			}
			kept++
		}
		s.mu.Unlock()
		var err error
		user, err = train.Send(ctx, peer, pkts, s.replyGap(j.t), time.Time{}, user)
		if err != nil {
			s.c.sendErrors.Add(1)
			s.cfg.Logger.Debug("reply", "to", j.s.key.src, "err", err)
		}
		s.c.trains.Add(1)
		s.c.replies.Add(uint64(len(user)))
		s.c.sent.Add(uint64(len(user)))
		for _, b := range pkts[:len(user)] {
			s.c.sentBytes.Add(uint64(len(b)))
		}
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

// send writes one prepared datagram.
func (s *Server) send(peer *dispersion.Peer, b []byte) {
	if _, err := peer.Write(b); err != nil {
		s.c.sendErrors.Add(1)
		return
	}
	s.c.sent.Add(1)
	s.c.sentBytes.Add(uint64(len(b)))
}

// replyBuffers reuses reply datagrams from train to train.
type replyBuffers struct {
	bufs [][]byte
	pkts [][]byte
}

// build makes the replies of j's train: one per arrived request packet,
// each the size of its request, signed with j.key if signer is set.
func (w *replyBuffers) build(j job, now int64, signer *auth.Verifier) [][]byte {
	t := j.t
	w.pkts = w.pkts[:0]
	for p, sl := range t.slots {
		if sl.rx == 0 {
			continue
		}
		i := len(w.pkts)
		if i == len(w.bufs) {
			w.bufs = append(w.bufs, make([]byte, MaxDatagram))
		}
		b := w.bufs[i][:sl.size]
		clear(b)
		flags := t.flags
		if signer != nil {
			flags |= train.FlagSigned
		}
		train.PutHeader(b, &train.Header{Type: train.TypeReply, Flags: flags, Session: j.s.key.id,
			Train: t.index, Pos: uint16(p), Len: uint16(len(t.slots)), Seq: sl.seq, ReplyGap: t.gap, SentNs: now})
		train.PutReplyBody(b, &train.ReplyBody{RxNs: sl.rx, TTL: sl.ttl, RxSource: sl.src, Arrived: uint16(t.arrived)})
		if signer != nil {
			signer.SignTrailer(j.key, b) // the request was verified with this key
		}
		w.pkts = append(w.pkts, b)
	}
	return w.pkts
}

func (s *Server) sendReport(peer *dispersion.Peer, j job, txSrc uint8) {
	r := j.report
	b := make([]byte, j.reqLen) // never larger than the request
	var flags uint16
	body := b
	if s.txSigner != nil {
		flags, body = train.FlagSigned, b[:len(b)-auth.TrailerLen]
	}
	train.PutHeader(b, &train.Header{Type: train.TypeReport, Flags: flags, Session: j.s.key.id, Train: r.FirstTrain,
		Len: 1, Seq: j.seq, SentNs: time.Now().UnixNano()})
	var sel []train.TxStamp
	s.mu.Lock()
	for _, st := range j.s.stamps {
		if st.Train >= r.FirstTrain && st.Train-r.FirstTrain < r.Trains {
			sel = append(sel, st)
		}
	}
	s.mu.Unlock()
	train.PutReport(body, txSrc, sel)
	if s.txSigner != nil && !s.txSigner.SignTrailer(j.key, b) {
		return
	}
	// The report's own transmit stamp is not wanted; it consumes a key,
	// which the ring never maps.
	s.send(peer, b)
	s.c.reports.Add(1)
}
