package measure

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
)

// event is one datagram of a synthetic run as a capture on the sender
// sees it.
type event struct {
	h      train.Header
	size   int
	ns     int64
	body   train.ReplyBody // replies
	ttl    int
	src    uint8 // reports
	stamps []train.TxStamp
}

// syntheticRun makes the datagrams of a run over a 20 Mbit/s path with
// random cross traffic: phase 1 pairs, then paced 10-packet trains with the
// spacing a live run would choose from phase 1 (so that the replay must
// agree with it exactly), with losses and a late report.
func syntheticRun(t *testing.T, seed uint64) (cfg Config, events []event) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	cfg = Defaults().Fixed()
	cfg.Trains, cfg.TrainLen, cfg.PacedTrainLen, cfg.Round = 16, 2, 10, 8
	tn := int64(1500 * 8 * 1e9 / 20e6) // 600 µs
	t0 := int64(1_700_000_000) * 1e9
	trainEvents := func(i, n int, fgap, rgap int64) []event {
		var out []event
		start := t0 + int64(i)*int64(12*time.Millisecond)
		flags := uint16(0)
		if fgap > 0 || rgap > 0 {
			flags = train.FlagPaced
		}
		var rx int64
		arrived := make([]int64, n) // forward receive stamps, 0 = lost
		for p := range n {
			h := train.Header{Type: train.TypeProbe, Flags: flags, Session: 9, Train: uint32(i), Pos: uint16(p),
				Len: uint16(n), ReplyGap: uint32(rgap)}
			tx := start + int64(p)*(fgap+int64(rng.IntN(3000)))
			out = append(out, event{h: h, size: 1500, ns: tx})
			rx = max(rx+tn+crossAhead(rng, tn), tx+5_000_000) // 5 ms away, queued behind the previous probe
			if rng.IntN(150) != 0 {
				arrived[p] = rx
			}
		}
		// The reflector answers after the last probe, spaced by rgap (or
		// back to back), and the reverse bottleneck spaces the replies.
		var stamps []train.TxStamp
		rtx, back := rx+50_000, int64(0)
		for p := range n {
			if arrived[p] == 0 {
				continue
			}
			rtx += max(rgap, 2_000)
			stamps = append(stamps, train.TxStamp{Train: uint32(i), Pos: uint16(p), TxNs: rtx})
			back = max(back+tn+crossAhead(rng, tn), rtx+5_000_000)
			if rng.IntN(150) == 0 {
				continue // lost on the way back
			}
			h := train.Header{Type: train.TypeReply, Session: 9, Train: uint32(i), Pos: uint16(p), Len: uint16(n)}
			out = append(out, event{h: h, ns: back, ttl: 61,
				body: train.ReplyBody{RxNs: arrived[p], TTL: 62, RxSource: uint8(dispersion.SourceKernel), Arrived: uint16(n)}})
		}
		out = append(out, event{h: train.Header{Type: train.TypeReport}, src: uint8(dispersion.SourceKernel), stamps: stamps})
		return out
	}
	for i := range cfg.Trains {
		events = append(events, trainEvents(i, cfg.TrainLen, 0, 0)...)
	}
	// The spacing a live run would take from phase 1.
	bk, _ := replayLive(t, cfg, events, false)
	res := &Result{}
	_, fgap, rgap := bk.capacity(res, 0, bk.cfg.Trains)
	if res.Forward.CapErr != nil || res.Reverse.CapErr != nil {
		t.Fatalf("synthetic phase 1 gave no capacity: %v, %v", res.Forward.CapErr, res.Reverse.CapErr)
	}
	for i := range cfg.Round {
		events = append(events, trainEvents(cfg.Trains+i, cfg.PacedTrainLen, int64(fgap), int64(rgap))...)
	}
	return cfg, events
}

// crossAhead is the cross traffic that a probe finds ahead of it: none,
// or half a probe's time, at random.
func crossAhead(rng *rand.Rand, tn int64) int64 {
	if rng.IntN(3) == 0 {
		return tn / 2
	}
	return 0
}

// replayLive fills a live run's book from events as the session does (a
// report arrives after its train's replies), and, if estimate, estimates
// as the session does.
func replayLive(t *testing.T, cfg Config, events []event, estimate bool) (*book, *Result) {
	t.Helper()
	bk := &book{cfg: cfg}
	for _, e := range events {
		switch e.h.Type {
		case train.TypeProbe:
			if int(e.h.Train) == len(bk.trains) {
				bk.newTrain(int(e.h.Len))
			}
			sl := &bk.trains[e.h.Train].slots[e.h.Pos]
			sl.sTx, sl.sSrc = e.ns, dispersion.SourceKernel
		case train.TypeReply:
			if !bk.reply(bk.trains[e.h.Train], int(e.h.Pos), e.body, e.ns, dispersion.SourceKernel, e.ttl) {
				t.Fatalf("reply %+v refused", e.h)
			}
		case train.TypeReport:
			bk.report(e.src, e.stamps)
		}
	}
	res := &Result{Config: cfg}
	res.Forward.Name, res.Reverse.Name = "forward", "reverse"
	if !estimate {
		return bk, res
	}
	est, _, _ := bk.capacity(res, 0, bk.cfg.Trains)
	bk.round(est, cfg.Trains, len(bk.trains)-cfg.Trains)
	bk.finish(est)
	return bk, res
}

func recordEvents(t *testing.T, events []event) *Recording {
	t.Helper()
	r := NewRecording(netip.MustParseAddrPort("198.18.2.2:8176"), RecordingOptions{Clock: dispersion.SourceKernel})
	for _, e := range events {
		switch e.h.Type {
		case train.TypeProbe:
			if err := r.Probe(e.h, e.size, e.ns); err != nil {
				t.Fatal(err)
			}
		case train.TypeReply:
			r.Reply(e.h, e.body, e.ns, e.ttl)
		case train.TypeReport:
			r.Report(e.src, e.stamps)
		}
	}
	return r
}

// The estimate of a Recording is the live run's, to the last bit, from the
// same stamps: whatever order the capture holds the trains in, and with
// probes captured twice.
func TestRecordingIsTheLiveEstimate(t *testing.T) {
	for seed := range uint64(6) {
		cfg, events := syntheticRun(t, seed)
		_, live := replayLive(t, cfg, events, true)
		live.Time, live.Target, live.Addr = time.Unix(0, events[0].ns), "198.18.2.2:8176", netip.MustParseAddrPort("198.18.2.2:8176")
		if live.Forward.CrossErr != nil || live.Reverse.CrossErr != nil {
			t.Fatalf("seed %d: the synthetic run has no cross-traffic estimate: %v, %v", seed, live.Forward.CrossErr, live.Reverse.CrossErr)
		}
		// Trains in any order, the datagrams of each in theirs.
		var blocks [][]event
		for i, e := range events {
			if i == 0 || e.h.Type == train.TypeProbe && e.h.Pos == 0 {
				blocks = append(blocks, nil)
			}
			blocks[len(blocks)-1] = append(blocks[len(blocks)-1], e)
		}
		rand.New(rand.NewPCG(seed, 3)).Shuffle(len(blocks), func(i, j int) { blocks[i], blocks[j] = blocks[j], blocks[i] })
		shuffled := slices.Concat(blocks...)
		twice := slices.Clone(events)
		twice = append(twice, events[0], events[len(events)/2])
		for name, evs := range map[string][]event{"in order": events, "trains shuffled": shuffled, "probes twice": twice} {
			r := recordEvents(t, evs)
			got, err := r.Result()
			if err != nil {
				t.Fatal(err)
			}
			want := live.Records()
			have := got.Records()
			for i := range want {
				want[i].DurationMS, have[i].DurationMS = 0, 0
				want[i].Address, want[i].Target = have[i].Address, have[i].Target
			}
			if name == "in order" && (got.Config.Trains != cfg.Trains || got.Config.PacedTrainLen != cfg.PacedTrainLen || got.Config.Round != cfg.Round) {
				t.Errorf("seed %d: phases read as %d trains then %d of %d", seed, got.Config.Trains, got.Config.Round, got.Config.PacedTrainLen)
			}
			if !reflect.DeepEqual(want, have) {
				t.Errorf("seed %d, %s:\nlive     %s\nrecorded %s", seed, name, strings.Join([]string{want[0].Text(), want[1].Text()}, "\n         "),
					strings.Join([]string{have[0].Text(), have[1].Text()}, "\n         "))
			}
			if name == "probes twice" && r.Duplicates() != 2 {
				t.Errorf("%d duplicates counted, want 2", r.Duplicates())
			}
		}
	}
}

// What does not fit the run is counted, not used; a capture that starts
// late leaves the missing trains out rather than calling them lost.
func TestRecordingChecks(t *testing.T) {
	_, events := syntheticRun(t, 1)
	late := slices.DeleteFunc(slices.Clone(events), func(e event) bool { return e.h.Train < 3 })
	r := recordEvents(t, late)
	res, err := r.Result()
	if err != nil {
		t.Fatal(err)
	}
	if res.Config.Trains != 13 || res.Forward.TrainsSent != 13+8 {
		t.Errorf("late capture: %d phase-1 trains, %d sent, want 13 and 21", res.Config.Trains, res.Forward.TrainsSent)
	}

	probe := events[0].h
	reply := train.Header{Type: train.TypeReply, Session: 9, Train: 0, Pos: 0, Len: 2}
	for _, tc := range []struct {
		name string
		feed func(r *Recording)
	}{
		{"train length changes", func(r *Recording) { h := probe; h.Len = 3; r.Probe(h, 1500, 1) }},
		{"size changes", func(r *Recording) { h := probe; h.Pos = 1; r.Probe(h, 1400, 1) }},
		{"position past the train", func(r *Recording) { h := probe; h.Pos = 2; r.Probe(h, 1500, 1) }},
		{"train of one", func(r *Recording) { h := probe; h.Train, h.Len = 99, 1; r.Probe(h, 1500, 1) }},
		{"train too long", func(r *Recording) { h := probe; h.Train, h.Len = 99, MaxTrainLen+1; r.Probe(h, 1500, 1) }},
		{"probe too small", func(r *Recording) { h := probe; h.Train = 98; r.Probe(h, MinSize-1, 1) }},
		{"pacing changes", func(r *Recording) { h := probe; h.Pos, h.Flags = 1, train.FlagPaced; r.Probe(h, 1500, 1) }},
		{"reply to an unknown train", func(r *Recording) { h := reply; h.Train = 77; r.Reply(h, train.ReplyBody{}, 2, 64) }},
		{"reply past the train", func(r *Recording) { h := reply; h.Pos = 5; r.Reply(h, train.ReplyBody{}, 2, 64) }},
		{"reply of another length", func(r *Recording) { h := reply; h.Len = 3; r.Reply(h, train.ReplyBody{}, 2, 64) }},
		{"reply claims more arrived than sent", func(r *Recording) { r.Reply(reply, train.ReplyBody{Arrived: 3}, 2, 64) }},
		{"reply clock unknown", func(r *Recording) { r.Reply(reply, train.ReplyBody{RxSource: 9}, 2, 64) }},
		{"report clock unknown", func(r *Recording) { r.Report(9, nil) }},
		{"report flood", func(r *Recording) { r.Report(2, make([]train.TxStamp, 5)) }},
	} {
		r := NewRecording(netip.MustParseAddrPort("198.18.2.2:8176"), RecordingOptions{})
		if err := r.Probe(probe, 1500, 1); err != nil {
			t.Fatal(err)
		}
		tc.feed(r)
		res, err := r.Result()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if res.Unexpected != 1 {
			t.Errorf("%s: %d unexpected, want 1", tc.name, res.Unexpected)
		}
	}

	if _, err := NewRecording(netip.AddrPort{}, RecordingOptions{}).Result(); err == nil || !strings.Contains(err.Error(), "no probe") {
		t.Errorf("empty recording: %v", err)
	}
	r = NewRecording(netip.AddrPort{}, RecordingOptions{})
	h := probe
	h.Len = MaxTrainLen
	var full error
	for i := 0; full == nil && i <= MaxRecorded/MaxTrainLen; i++ {
		h.Train = uint32(i)
		full = r.Probe(h, 1500, 1)
	}
	if full != ErrRecordingFull {
		t.Errorf("past %d probes: %v", MaxRecorded, full)
	}
}
