package measure

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/reflector/reflectortest"
	"github.com/abing-net/abing/train"
)

// reply rewrites the body of every reply datagram.
func reply(f func(h train.Header, r *train.ReplyBody)) reflectortest.Lie {
	return func(h train.Header, b []byte) [][]byte {
		if h.Type == train.TypeReply {
			r, err := train.ParseReplyBody(b)
			if err == nil {
				f(h, &r)
				train.PutReplyBody(b, &r)
			}
		}
		return [][]byte{b}
	}
}

// A reflector that lies in what it sends back: every run ends well within
// its timeout, and every record keeps what records promise (no NaN, no
// negative rate, loss in [0, 1]), whatever the lie.
func TestHostileReflector(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  reflectortest.Lie
		// check looks at the result beyond the promises every record keeps.
		check func(t *testing.T, res *Result)
	}{
		// Lies in every other train, so that the run has replies to use.
		{"claims 65535 arrivals", reply(func(h train.Header, r *train.ReplyBody) {
			if h.Train%2 == 1 {
				r.Arrived = 65535
			}
		}),
			func(t *testing.T, res *Result) {
				if res.Forward.Lost != 0 || res.Unexpected == 0 {
					t.Errorf("forward lost %d, unexpected %d: want the replies refused as malformed", res.Forward.Lost, res.Unexpected)
				}
			}},
		{"claims 1000-second gaps", reply(func(h train.Header, r *train.ReplyBody) { r.RxNs += int64(h.Pos) * 1000e9 }),
			func(t *testing.T, res *Result) {
				if res.Forward.CapErr == nil || res.Forward.Rejects[dispersion.Implausible] == 0 {
					t.Errorf("forward: DBC %.0f, rejects %v: want implausible trains and no estimate",
						res.Forward.Capacity.DBC, res.Forward.Rejects.Map())
				}
			}},
		{"claims negative gaps", reply(func(h train.Header, r *train.ReplyBody) { r.RxNs -= int64(h.Pos) * 1e6 }),
			func(t *testing.T, res *Result) {
				if res.Forward.CapErr == nil {
					t.Errorf("forward DBC %.0f from gaps that run backwards", res.Forward.Capacity.DBC)
				}
			}},
		{"claims a clock that does not exist", reply(func(h train.Header, r *train.ReplyBody) {
			if h.Train%2 == 1 {
				r.RxSource = 200
			}
		}),
			func(t *testing.T, res *Result) {
				if res.Unexpected == 0 {
					t.Errorf("replies with clock 200 accepted")
				}
			}},
		{"reports transmit stamps from the future", func(h train.Header, b []byte) [][]byte {
			if h.Type == train.TypeReport {
				src, st, err := train.ParseReport(b, nil)
				if err == nil {
					for i := range st {
						st[i].TxNs += int64(st[i].Pos) * 3600e9
					}
					train.PutReport(b, src, st)
				}
			}
			return [][]byte{b}
		}, func(t *testing.T, res *Result) {
			if res.Reverse.Rejects[dispersion.Implausible] == 0 {
				t.Errorf("reverse rejects %v: want implausible trains", res.Reverse.Rejects.Map())
			}
			if res.RTTOK && res.RTT.Max > 1000 {
				t.Errorf("RTT %+v from an hour inside the reflector", res.RTT)
			}
		}},
		{"duplicates everything", func(_ train.Header, b []byte) [][]byte { return [][]byte{b, b, b} },
			func(t *testing.T, res *Result) {
				if res.Reverse.Duplicates == 0 || res.Reverse.Lost != 0 {
					t.Errorf("reverse: %d duplicates, %d lost", res.Reverse.Duplicates, res.Reverse.Lost)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := reflectortest.StartHostile(t, reflector.Config{}, tc.lie)
			cfg := Defaults().Fixed()
			cfg.Target = h.String()
			cfg.Timeout = time.Second
			start := time.Now()
			res, err := Run(context.Background(), cfg)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			// Two waits of the timeout at most, and report exchanges
			// (the limit is loose for a loaded machine, and far below
			// what a lie could once stretch a run to).
			if took > 4*cfg.Timeout {
				t.Errorf("run took %v", took)
			}
			for _, rec := range res.Records() {
				checkRecord(t, rec)
				t.Logf("%s: dbc %v loss %.3f rejected %v error %q", rec.Direction, ptr(rec.DBC), rec.Loss, rec.Rejected, rec.Error)
			}
			tc.check(t, res)
		})
	}
}

func ptr(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

// checkRecord fails on a record that breaks what records promise.
func checkRecord(t *testing.T, r record.Record) {
	t.Helper()
	for name, v := range map[string]*float64{"dbc": r.DBC, "xtr": r.XTR, "abw": r.ABW, "confidence": r.Confidence} {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0) {
			t.Errorf("%s %s = %v", r.Direction, name, *v)
		}
	}
	if !(r.Loss >= 0 && r.Loss <= 1) {
		t.Errorf("%s loss %v", r.Direction, r.Loss)
	}
	if r.RTT != nil && (r.RTT.Min < 0 || r.RTT.Max < r.RTT.Min || math.IsNaN(r.RTT.Avg)) {
		t.Errorf("%s RTT %+v", r.Direction, *r.RTT)
	}
}

// With a key, the sender believes only what the reflector signed with it:
// whoever sees the session id could otherwise forge replies (and so
// capacities and alarms), cookies and refusals.
func TestSignedReplies(t *testing.T) {
	key := auth.Key{Name: "site-a", Secret: []byte("0123456789abcdef")}
	keyed := reflector.Config{Keys: []auth.Key{key}}
	refusal := func(h train.Header) []byte {
		b := make([]byte, train.RefusedLen)
		train.PutHeader(b, &train.Header{Type: train.TypeRefused, Session: h.Session, Len: 1})
		train.PutRefused(b, train.RefusedBody{Reason: train.RefusedRate})
		return b
	}
	for _, tc := range []struct {
		name  string
		cfg   reflector.Config
		lie   reflectortest.Lie
		want  string // error substring, "" for a result
		check func(t *testing.T, res *Result)
	}{
		{"forged replies in every other train", keyed, reply(func(h train.Header, r *train.ReplyBody) {
			if h.Train%2 == 1 {
				r.RxNs += int64(h.Pos) * 300e3 // a 300 µs gap: 40 Mbit/s for 1500 bytes
			}
		}), "", func(t *testing.T, res *Result) {
			if res.Unauthenticated == 0 || res.Forward.Complete > res.Config.Trains {
				t.Errorf("%d unauthenticated, %d of %d trains whole: want the forged half ignored",
					res.Unauthenticated, res.Forward.Complete, 2*res.Config.Trains)
			}
		}},
		{"a forged refusal before the cookie", keyed, func(h train.Header, b []byte) [][]byte {
			if h.Type == train.TypeCookie {
				return [][]byte{refusal(h), b}
			}
			return [][]byte{b}
		}, "", func(t *testing.T, res *Result) {
			if res.Unauthenticated != 1 || res.Forward.Complete != 2*res.Config.Trains {
				t.Errorf("%d unauthenticated, %d trains whole", res.Unauthenticated, res.Forward.Complete)
			}
		}},
		{"a reflector without keys", reflector.Config{}, func(_ train.Header, b []byte) [][]byte { return [][]byte{b} },
			`not signed with key "site-a"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := reflectortest.StartHostile(t, tc.cfg, tc.lie)
			cfg := Defaults().Fixed()
			cfg.Target, cfg.Key, cfg.Timeout = h.String(), &key, 500*time.Millisecond
			res, err := Run(context.Background(), cfg)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range res.Records() {
				checkRecord(t, rec)
			}
			tc.check(t, res)
		})
	}
}
