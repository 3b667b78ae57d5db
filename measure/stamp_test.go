package measure

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/reflector/reflectortest"
	"github.com/abing-net/abing/stamp"
)

// Against abing's STAMP reflector on loopback, in every mode: every test
// packet answered and matched, RTT measured, the reflector's stamps read
// as nanosecond ones, and the reverse direction never given the forward
// one's capacity.
func TestSTAMPLoopback(t *testing.T) {
	key := auth.Key{Name: "k", Secret: []byte("0123456789abcdef")}
	for _, tc := range []struct {
		name     string
		protocol string
		stateful bool
		key      *auth.Key
	}{
		{"stamp", ProtocolSTAMP, false, nil},
		{"stamp stateful", ProtocolSTAMP, true, nil},
		{"stamp authenticated", ProtocolSTAMP, false, &key},
		{"twamp-light", ProtocolTWAMPLight, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcfg := reflector.Config{}
			if tc.key != nil {
				rcfg.Keys = []auth.Key{*tc.key}
			}
			r := reflectortest.StartSTAMP(t, "udp4", "127.0.0.1:0", rcfg, tc.stateful)
			cfg := Defaults().Fixed()
			cfg.Target, cfg.Protocol, cfg.Key, cfg.TrainLen = r.String(), tc.protocol, tc.key, 3
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range res.Records() {
				t.Logf("%s", rec.Text())
			}
			t.Logf("notes %q", res.Notes)
			// The reflector counts a reply once its send returned, which
			// may be after the sender read it.
			st := r.Server.Stats()
			for deadline := time.Now().Add(time.Second); st.STAMPReplies < uint64(res.Forward.Packets) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
				st = r.Server.Stats()
			}
			if res.Forward.Lost != 0 || res.Unexpected != 0 || res.Unauthenticated != 0 || st.DroppedTotal() != 0 || !res.RTTOK {
				t.Errorf("lost %d, unexpected %d, unauthenticated %d, dropped %v, RTT %v", res.Forward.Lost, res.Unexpected, res.Unauthenticated, st.Dropped, res.RTTOK)
			}
			if st.STAMPReplies != uint64(res.Forward.Packets) || st.Trains != 0 {
				t.Errorf("%d STAMP replies to %d packets, %d abing trains", st.STAMPReplies, res.Forward.Packets, st.Trains)
			}
		})
	}
}

// Reflectors whose stamps cannot support a forward capacity, on loopback
// (no bottleneck: any forward DBC would be wrong): each run says why, and
// gives no forward DBC; the rate-limited one is detected and fitted.
func TestSTAMPLyingReflectors(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  reflectortest.STAMPLie
		want string // in the forward error or the notes
	}{
		{"coarse", reflectortest.STAMPCoarse, "resolve only 1ms"},
		{"batched", reflectortest.STAMPBatched, "stamps in batches"},
		{"zero", reflectortest.STAMPZero, "no timestamps"},
		{"rate-limited", reflectortest.STAMPRateLimited, "rate-limits its replies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := reflectortest.StartSTAMPLiar(t, tc.lie)
			cfg := Defaults()
			cfg.Target, cfg.Protocol = addr.String(), ProtocolSTAMP
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			text := fmt.Sprint(res.Forward.CapErr, res.Notes)
			for _, rec := range res.Records() {
				t.Logf("%s", rec.Text())
			}
			t.Logf("notes %q", res.Notes)
			if !strings.Contains(text, tc.want) {
				t.Errorf("no %q in %s", tc.want, text)
			}
			if res.Forward.CapErr == nil && tc.lie != reflectortest.STAMPRateLimited {
				t.Errorf("forward DBC %.1f Mbit/s from a reflector whose stamps cannot show it", res.Forward.Capacity.DBC/1e6)
			}
		})
	}
}

// A stateful reflector numbers the test packets that reached it: of eight
// sent, the fourth lost on the way out and the reply to the seventh on
// the way back, the replies carry 0, 1, 2, 3, 4 and 6, so one was lost
// each way. A stateless one cannot tell: both count forward, and a note
// says so. A hostile count (more arrivals than were sent) is not believed.
func TestSTAMPLossDirections(t *testing.T) {
	for _, tc := range []struct {
		name              string
		rseq              map[uint32]uint32 // sender seq → reflector seq of the replies that came
		fwd, rev, revSent int
	}{
		{"stateful", map[uint32]uint32{1: 0, 2: 1, 3: 2, 5: 3, 6: 4, 8: 6}, 1, 1, 7},
		{"stateless", map[uint32]uint32{1: 1, 2: 2, 3: 3, 5: 5, 6: 6, 8: 8}, 2, 0, 6},
		{"hostile count", map[uint32]uint32{1: 0, 2: 1, 3: 2, 5: 3, 6: 4, 8: 600}, 2, 0, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, t1, seq := fuzzSTAMPSession()
			now := time.Now()
			for q := uint32(1); q <= seq; q++ {
				r, ok := tc.rseq[q]
				if !ok {
					continue
				}
				b, _ := (&stamp.Reply{Seq: r, SenderSeq: q, SenderTime: t1, SSID: s.stamp.ssid, Err: 1,
					RxTime: stamp.NTP(now), Time: stamp.NTP(now)}).Append(nil, 100)
				s.mu.Lock()
				s.stampHandle(b, dispersion.Event{Kind: dispersion.Data, N: len(b), From: s.addr, Ns: now.UnixNano(), TTL: 60})
				s.mu.Unlock()
			}
			res := &Result{Config: s.cfg}
			res.Forward.Name, res.Reverse.Name = "forward", "reverse"
			est, _, _ := s.capacity(res, 0, s.cfg.Trains)
			s.finish(est)
			s.stampFinish(res)
			if res.Forward.Packets != 8 || res.Forward.Lost != tc.fwd || res.Reverse.Lost != tc.rev || res.Reverse.Packets != tc.revSent {
				t.Errorf("forward %d sent %d lost, reverse %d sent %d lost; want 8/%d, %d/%d; notes %q",
					res.Forward.Packets, res.Forward.Lost, res.Reverse.Packets, res.Reverse.Lost, tc.fwd, tc.revSent, tc.rev, res.Notes)
			}
			if said := strings.Contains(fmt.Sprint(res.Notes), "did not say which way"); said != (tc.rev == 0) {
				t.Errorf("notes %q", res.Notes)
			}
		})
	}
}

// A STAMP reflector sends its replies as the forward path delivered the
// test packets, so the reverse is measurable only where it is narrower
// than half the forward path. Sixteen pairs delivered 0.6–0.8 ms apart
// (about 18 Mbit/s) and echoed at once:
//   - a reverse of 8 Mbit/s: every pair arrives 1.5 ms apart, compressed
//     at the bottleneck; the reverse capacity is read;
//   - a reverse as fast as the forward path under cross traffic that
//     spread every reply pair to about 1.3 ms (one probe-size packet in
//     each): the six pairs delivered closest pass the back-to-back rule
//     and read half the path, the ten others left too slowly, and spread
//     alike they do not refute it by arriving closer. Half the pairs or
//     more left too slowly, so the six are a selection: a bound, and why.
func TestSTAMPEchoedSelection(t *testing.T) {
	for _, tc := range []struct {
		name         string
		gin, gout    func(i int) time.Duration // pair i's spacing at the reflector, and back here
		echoed       bool
		dbcLo, dbcHi float64 // bit/s: the capacity, or the bound when echoed
	}{
		{"narrow reverse", func(i int) time.Duration { return 640 * time.Microsecond }, func(int) time.Duration { return 1500 * time.Microsecond }, false, 7.8e6, 8.2e6},
		{"cross traffic spread the replies", func(i int) time.Duration {
			if i < 6 {
				return 600 * time.Microsecond
			}
			return 800 * time.Microsecond
		}, func(int) time.Duration { return 1300 * time.Microsecond }, true, 8e6, 10e6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fuzzSession()
			s.cfg.Trains = 16
			s.cfg.Protocol = ProtocolSTAMP
			s.stampSetup()
			t0 := time.Now().UnixNano()
			for i := range s.cfg.Trains {
				tr := s.newTrain(2)
				sent := t0 + int64(i)*10e6
				tr.slots[0].sTx, tr.slots[1].sTx = sent, sent+12e3
				tr.slots[0].sSrc, tr.slots[1].sSrc = dispersion.SourceKernel, dispersion.SourceKernel
				rx := sent + 1e6 // the reflector's clock: the same here
				for p, d := range []time.Duration{0, tc.gin(i)} {
					t2 := rx + int64(d)
					back := sent + 2e6 + int64(p)*int64(tc.gout(i))
					s.stampReply(tr, p, t2, t2+5e3, 63, dispersion.Event{Kind: dispersion.Data, Ns: back, Source: dispersion.SourceKernel, TTL: 60})
				}
			}
			s.trains = s.trains[len(s.trains)-s.cfg.Trains:] // the pairs above, not fuzzSession's
			s.phase1 = s.cfg.Trains
			res := &Result{Config: s.cfg}
			res.Forward.Name, res.Reverse.Name = "forward", "reverse"
			s.stampStamps()
			s.capacity(res, 0, s.cfg.Trains)
			s.stampCapacity(res)
			r := &res.Reverse
			got := r.Capacity.DBC
			if tc.echoed {
				got = r.DBCMin
			}
			if errors.Is(r.CapErr, ErrEchoed) != tc.echoed || got < tc.dbcLo || got > tc.dbcHi {
				t.Errorf("reverse DBC %.2f, bound %.2f Mbit/s, rejects %v: %v; want echoed %v, %.1f–%.1f",
					r.Capacity.DBC/1e6, r.DBCMin/1e6, r.Rejects.Map(), r.CapErr, tc.echoed, tc.dbcLo/1e6, tc.dbcHi/1e6)
			}
		})
	}
}
