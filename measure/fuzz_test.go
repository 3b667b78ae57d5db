package measure

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/stamp"
	"github.com/abing-net/abing/train"
)

// fuzzSession is a session as it stands after both phases were sent: four
// pairs, two back to back and two paced, with our transmit stamps known.
func fuzzSession() *session {
	cfg := Defaults().Fixed()
	cfg.Trains, cfg.TrainLen = 2, 2
	addr := netip.MustParseAddrPort("198.18.2.2:8176")
	s := &session{book: book{cfg: cfg, tnFwd: 100e-6, tnRev: 100e-6}, addr: addr, id: 7, payload: cfg.Size - train.OverheadIPv4,
		txKeys: map[uint32][2]int{}, reports: map[uint32]bool{},
		progress: make(chan struct{}, 1), rng: rand.New(rand.NewPCG(7, 1))}
	t0 := time.Now().UnixNano()
	for i := range 2 * cfg.Trains {
		ts := s.newTrain(cfg.TrainLen)
		for p := range ts.slots {
			ts.slots[p].sTx, ts.slots[p].sSrc = t0+int64(i)*10e6+int64(p)*80e3, dispersion.SourceKernel
		}
	}
	return s
}

// FuzzReceive feeds what a reflector might send (replies, reports,
// cookies, refusals, garbage) into the sender's receive path, then builds
// the estimates and records as a run would. Nothing may panic, and no
// record may need Sanitize: the checks on the way in must already keep
// NaN, negative rates and loss outside [0, 1] out.
func FuzzReceive(f *testing.F) {
	// Seeds: one datagram of each type the reflector sends.
	reply := make([]byte, 200)
	train.PutHeader(reply, &train.Header{Type: train.TypeReply, Session: 7, Train: 1, Pos: 1, Len: 2, Seq: 1})
	train.PutReplyBody(reply, &train.ReplyBody{RxNs: 1e18, TTL: 63, RxSource: 2, Arrived: 2})
	report := make([]byte, 200)
	train.PutHeader(report, &train.Header{Type: train.TypeReport, Session: 7, Len: 1})
	train.PutReport(report, 2, []train.TxStamp{{Train: 0, Pos: 1, TxNs: 5}, {Train: 3, Pos: 0, TxNs: -1}})
	cookie := make([]byte, train.HeaderLen+train.CookieLen)
	train.PutHeader(cookie, &train.Header{Type: train.TypeCookie, Session: 7, Len: 1})
	refused := make([]byte, train.RefusedLen)
	train.PutHeader(refused, &train.Header{Type: train.TypeRefused, Session: 7, Len: 1})
	train.PutRefused(refused, train.RefusedBody{Reason: 3, RetryAfter: 1000})
	for _, b := range [][]byte{reply, report, cookie, refused, []byte("ABWE\x02")} {
		f.Add(b, uint16(len(b)))
	}
	f.Add(append(append([]byte(nil), reply...), reply...), uint16(len(reply))) // a duplicate

	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		s := fuzzSession()
		// The input is one or more datagrams: cut splits it in two, and
		// each half arrives; a reply's stamps are laid on every train so
		// that the estimators have something to chew.
		parts := [][]byte{data}
		if c := int(cut); c > 0 && c < len(data) {
			parts = [][]byte{data[:c], data[c:]}
		}
		var stamps []train.TxStamp
		now := time.Now().UnixNano()
		for i, b := range parts {
			for tr := range s.trains {
				if len(b) >= train.HeaderLen+train.ReplyBodyLen && train.Type(b[5]) == train.TypeReply {
					binary.BigEndian.PutUint32(b[16:], uint32(tr)) // into each train in turn
				}
				stamps = s.handle(b, dispersion.Event{Kind: dispersion.Data, N: len(b), From: s.addr,
					Ns: now + int64(i*1000+tr), Source: dispersion.SourceKernel, TTL: 60}, stamps)
			}
		}
		res := &Result{Config: s.cfg}
		res.Forward.Name, res.Reverse.Name = "forward", "reverse"
		est, _, _ := s.capacity(res, 0, s.cfg.Trains)
		s.round(est, s.cfg.Trains, s.cfg.Trains)
		s.finish(est)
		for _, rec := range res.Records() {
			if strings.Contains(rec.Error, "implausible values") {
				t.Fatalf("%s record needed Sanitize: %s", rec.Direction, rec.Error)
			}
		}
	})
}

// fuzzSTAMPSession is fuzzSession against a STAMP reflector: every test
// packet sent with our timestamp t1, numbered 1 to seq.
func fuzzSTAMPSession() (s *session, t1 stamp.Timestamp, seq uint32) {
	s = fuzzSession()
	s.cfg.Protocol = ProtocolSTAMP
	s.stampSetup()
	t1 = stamp.NTP(time.Now())
	for i, tr := range s.trains {
		for p := range tr.slots {
			seq++
			s.stamp.sent[seq] = stampSent{train: i, pos: p, t1: t1}
		}
	}
	return s, t1, seq
}

// FuzzSTAMPReceive feeds what a STAMP reflector might send into the
// sender's receive path, each datagram made to answer each test packet in
// turn (its sequence number and our timestamp copied in) so that the
// checks behind those are reached, then estimates as a run would: nothing
// may panic, and no record may need Sanitize.
func FuzzSTAMPReceive(f *testing.F) {
	good := stamp.Reply{Seq: 1, Time: stamp.NTP(time.Now()), RxTime: stamp.NTP(time.Now()), SenderSeq: 1, SenderTTL: 63, Err: 1}
	b, _ := good.Append(nil, 200)
	f.Add(b, uint16(len(b)))
	ptp := good
	ptp.Err, ptp.RxTime, ptp.Time = stamp.MakeErrorEstimate(true, true, 0, 1), stamp.PTP(time.Now()), 0xffffffff_ffffffff
	b2, _ := ptp.Append(nil, 100)
	f.Add(b2, uint16(0))
	f.Add(append(append([]byte(nil), b...), b...), uint16(len(b)))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		s, t1, seq := fuzzSTAMPSession()
		parts := [][]byte{data}
		if c := int(cut); c > 0 && c < len(data) {
			parts = [][]byte{data[:c], data[c:]}
		}
		now := time.Now().UnixNano()
		for i, b := range parts {
			for q := uint32(1); q <= seq; q++ {
				if len(b) >= stamp.BaseLen {
					binary.BigEndian.PutUint32(b[24:], q)
					binary.BigEndian.PutUint64(b[28:], uint64(t1))
				}
				s.mu.Lock()
				s.stampHandle(b, dispersion.Event{Kind: dispersion.Data, N: len(b), From: s.addr,
					Ns: now + int64(i*1000) + int64(q), Source: dispersion.SourceKernel, TTL: 60})
				s.mu.Unlock()
			}
		}
		res := &Result{Config: s.cfg}
		res.Forward.Name, res.Reverse.Name = "forward", "reverse"
		s.stampStamps()
		est, _, _ := s.capacity(res, 0, s.cfg.Trains)
		s.stampCapacity(res)
		s.stampLimit(res)
		s.round(est, s.cfg.Trains, s.cfg.Trains)
		s.finish(est)
		s.stampFinish(res)
		for _, rec := range res.Records() {
			if strings.Contains(rec.Error, "implausible values") {
				t.Fatalf("%s record needed Sanitize: %s", rec.Direction, rec.Error)
			}
		}
	})
}
