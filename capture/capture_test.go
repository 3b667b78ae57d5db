package capture_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/capture"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/train"
)

var (
	sender4 = netip.MustParseAddrPort("198.18.1.2:40000")
	refl4   = netip.MustParseAddrPort("198.18.2.2:8176")
	sender6 = netip.MustParseAddrPort("[fd00:ab:1::2]:40000")
	refl6   = netip.MustParseAddrPort("[fd00:ab:2::2]:8176")
)

// collect is every session of an analysis, in the order delivered.
func collect(r *capture.Reader, opts capture.Options) ([]*capture.Session, error) {
	var ss []*capture.Session
	err := capture.Analyze(r, opts, func(s *capture.Session) error {
		ss = append(ss, s)
		return nil
	})
	return ss, err
}

func analyze(t *testing.T, b []byte, opts capture.Options) ([]*capture.Session, *capture.Reader) {
	t.Helper()
	r, err := capture.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := collect(r, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ss, r
}

// checkSynth checks the estimate of a synthRun: the path's capacity both
// ways, some cross traffic, nothing lost or unexpected.
func checkSynth(t *testing.T, s *capture.Session) *measure.Result {
	t.Helper()
	res, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	checkSynthResult(t, res, 0)
	return res
}

// checkSynthResult checks the estimate of a synthRun, with unexpected
// datagrams in it.
func checkSynthResult(t *testing.T, res *measure.Result, unexpected int) {
	t.Helper()
	for _, d := range []*measure.Direction{&res.Forward, &res.Reverse} {
		if err := d.Err(); err != nil {
			t.Errorf("%s: %v", d.Name, err)
			continue
		}
		if e := math.Abs(d.Capacity.DBC-pathRate) / pathRate; e > 0.01 {
			t.Errorf("%s: DBC %.2f Mbit/s, want 20 within 1 %%", d.Name, d.Capacity.DBC/1e6)
		}
		if d.Cross.XTR <= 0 || d.Cross.XTR >= pathRate {
			t.Errorf("%s: XTR %.2f Mbit/s", d.Name, d.Cross.XTR/1e6)
		}
		if d.TrainsSent != 24 || d.Lost != 0 || d.Source != dispersion.SourceKernel {
			t.Errorf("%s: %d trains, %d lost, clock %s", d.Name, d.TrainsSent, d.Lost, d.Source)
		}
	}
	if res.Unexpected != unexpected || !res.RTTOK || res.RTT.Min < 10 || res.RTT.Min > 11 {
		t.Errorf("unexpected %d, want %d; RTT %+v", res.Unexpected, unexpected, res.RTT)
	}
	if res.Config.Trains != 16 || res.Config.TrainLen != 2 || res.Config.PacedTrainLen != 10 || res.Config.Size != 1500 {
		t.Errorf("run read as %+v", res.Config)
	}
}

// Every format and link type that tcpdump and dumpcap write on Linux,
// IPv4 and IPv6: the run is found whole and estimated right.
func TestAnalyzeFormats(t *testing.T) {
	for _, fm := range []format{pcapMicro, pcapNano, pcapGzip, pcapng} {
		for _, l := range links {
			for _, v6 := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/v6=%v", fm, l.name, v6)
				t.Run(name, func(t *testing.T) {
					snd, rfl := sender4, refl4
					if v6 {
						snd, rfl = sender6, refl6
					}
					frames := synthRun(snd, rfl, 0xabcdef, 1)
					ss, r := analyze(t, writeCapture(t, frames, fm, l, 0), capture.Options{Clock: dispersion.SourceKernel})
					if len(ss) != 1 {
						t.Fatalf("%d sessions", len(ss))
					}
					s := ss[0]
					if s.ID != 0xabcdef || s.Sender != snd || s.Reflector != rfl || s.Datagrams != len(frames) || s.Probes != 16*2+8*10 {
						t.Errorf("session %+v", s)
					}
					want := time.Microsecond
					if fm == pcapNano || fm == pcapng {
						want = time.Nanosecond
					}
					if r.Resolution() != want {
						t.Errorf("resolution %v, want %v", r.Resolution(), want)
					}
					if st := r.Stats(); st.Datagrams != len(frames) || st.Packets != len(frames) {
						t.Errorf("stats %+v", st)
					}
					res := checkSynth(t, s)
					if !res.Time.Equal(frames[2].at) { // the first probe
						t.Errorf("run at %v, want %v", res.Time, frames[2].at)
					}
				})
			}
		}
	}
}

// The layer: gopacket decodes abing datagrams on the default port by
// itself; on another port the Reader finds them by their magic.
func TestLayer(t *testing.T) {
	frames := synthRun(sender4, refl4, 7, 1)
	b := links[0].wrap(ipPacket(t, frames[2]), false)
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	l := p.Layer(capture.LayerTypeProbe)
	if l == nil {
		t.Fatalf("no abing layer in %v", p)
	}
	pr := l.(*capture.Probe)
	if pr.Type != train.TypeProbe || pr.Session != 7 || pr.Len != 2 || len(pr.LayerContents()) != train.HeaderLen ||
		len(pr.LayerPayload()) != 1472-train.HeaderLen {
		t.Errorf("decoded %+v", pr.Header)
	}
	if p.ErrorLayer() != nil {
		t.Errorf("decode error: %v", p.ErrorLayer().Error())
	}
	// Not abing, on abing's port: an error layer, not a panic or a probe.
	junk := frames[2]
	junk.payload = []byte("ABWX this is not it, but long enough to look like a header..")
	p = gopacket.NewPacket(links[0].wrap(ipPacket(t, junk), false), layers.LayerTypeEthernet, gopacket.Default)
	if p.Layer(capture.LayerTypeProbe) != nil || p.ErrorLayer() == nil {
		t.Errorf("junk decoded as %v", p)
	}

	// Another port: the same run, found and estimated.
	moved := synthRun(sender4, netip.MustParseAddrPort("198.18.2.2:9000"), 8, 1)
	ss, _ := analyze(t, writeCapture(t, moved, pcapng, links[0], 0), capture.Options{Clock: dispersion.SourceKernel})
	if len(ss) != 1 || ss[0].Reflector.Port() != 9000 {
		t.Fatalf("sessions %+v", ss)
	}
	checkSynth(t, ss[0])
}

// A capture holds other traffic, several runs, and probes twice; one run
// can be picked out by its session.
func TestSessionsAndNoise(t *testing.T) {
	a := synthRun(sender4, refl4, 1, 1)
	b := synthRun(sender6, refl6, 2, 2)
	var frames []frame
	for i := range max(len(a), len(b)) { // interleaved
		if i < len(a) {
			frames = append(frames, a[i])
		}
		if i < len(b) {
			b[i].at = b[i].at.Add(time.Millisecond)
			frames = append(frames, b[i])
		}
	}
	frames = slices.Insert(frames, 20, a[2]) // a probe seen twice, before its session closes
	other := frame{at: a[0].at, src: sender4, dst: netip.MustParseAddrPort("198.18.2.2:53"), payload: []byte("not abing at all"), ttl: 64}
	// An IPv4 fragment of an abing probe (More Fragments set): not
	// reassembled, so not used.
	frag := a[3]
	frag.ip = ipPacket(t, frag)
	frag.ip[6] |= 0x20
	frames = append([]frame{other, frag}, frames...)
	data := writeCapture(t, frames, pcapng, links[0], 0)
	ss, r := analyze(t, data, capture.Options{Clock: dispersion.SourceKernel})
	if len(ss) != 2 || ss[0].ID != 1 || ss[1].ID != 2 {
		t.Fatalf("%d sessions", len(ss))
	}
	if st := r.Stats(); st.Other != 1 || st.Fragments != 1 || st.Datagrams != len(frames)-2 {
		t.Errorf("stats %+v", st)
	}
	if ss[0].Duplicates() != 1 || ss[1].Duplicates() != 0 {
		t.Errorf("duplicates %d, %d", ss[0].Duplicates(), ss[1].Duplicates())
	}
	checkSynth(t, ss[0])
	checkSynth(t, ss[1])

	ss, _ = analyze(t, data, capture.Options{Clock: dispersion.SourceKernel, Session: 2})
	if len(ss) != 1 || ss[0].ID != 2 {
		t.Fatalf("--session 2: %d sessions", len(ss))
	}
	r, _ = capture.NewReader(bytes.NewReader(data))
	if _, err := collect(r, capture.Options{Session: 3}); err == nil || !strings.Contains(err.Error(), "no datagram of session 0000000000000003") {
		t.Errorf("absent session: %v", err)
	}
}

// A snap length shorter than the datagrams: probes are still read (their
// header is all that counts), replies and reports are not, and the result
// says so rather than inventing stamps.
func TestSnapLength(t *testing.T) {
	frames := synthRun(sender4, refl4, 3, 1)
	data := writeCapture(t, frames, pcapMicro, links[0], 14+20+8+train.HeaderLen+8)
	ss, _ := analyze(t, data, capture.Options{Clock: dispersion.SourceKernel})
	s := ss[0]
	if s.Probes != 112 || s.Cut != 112+2 {
		t.Errorf("probes %d, cut %d: want 112 and 114 (replies and reports)", s.Probes, s.Cut)
	}
	res, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	if res.Forward.CapErr == nil {
		t.Errorf("a capacity from a capture without the reflector's stamps: %+v", res.Forward.Capacity)
	}
	r, _ := capture.NewReader(bytes.NewReader(data))
	d, err := r.Next()
	for err == nil && d.Header.Type != train.TypeReply {
		d, err = r.Next()
	}
	if err != nil || !d.Cut() || !strings.Contains(capture.Describe(d, d.Time), "[cut: 48 of 1472 bytes captured]") {
		t.Errorf("cut reply: %v, %q", err, capture.Describe(d, d.Time))
	}
}

// The listing has a line per datagram, and says what each carries.
func TestDescribe(t *testing.T) {
	frames := synthRun(sender4, refl4, 0x1234, 1)
	r, err := capture.NewReader(bytes.NewReader(writeCapture(t, frames, pcapng, links[0], 0)))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for {
		d, err := r.Next()
		if err != nil {
			break
		}
		lines = append(lines, capture.Describe(d, frames[0].at))
	}
	if len(lines) != len(frames) {
		t.Fatalf("%d lines for %d datagrams", len(lines), len(frames))
	}
	for i, want := range map[int][]string{
		0: {"0.000000", "198.18.1.2:40000 > 198.18.2.2:8176", "hello", "0000000000001234"},
		1: {"cookie"},
		2: {"probe", "train 0 pos 0/2", "ttl 64"},
		4: {"reply", "train 0 pos 0/2", "(kernel)", "arrived 2", "ttl-there 62", "ttl 61"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d: %q lacks %q", i, lines[i], w)
			}
		}
	}
	all := strings.Join(lines, "\n")
	for _, w := range []string{"report-request", "trains 0–15", "32 transmit stamps (kernel) of trains 0–15", "paced", "reply-gap 480µs", "close"} {
		if !strings.Contains(all, w) {
			t.Errorf("listing lacks %q", w)
		}
	}
}

// Garbage and cut files get an error that says what is wrong, and where.
func TestBadCaptures(t *testing.T) {
	good := writeCapture(t, synthRun(sender4, refl4, 5, 1), pcapMicro, links[0], 0)
	goodNg := writeCapture(t, synthRun(sender4, refl4, 5, 1), pcapng, links[0], 0)
	ng := func(mod func(b []byte)) []byte {
		b := bytes.Clone(goodNg)
		mod(b)
		return b
	}
	// Offsets in goodNg: the section header, then the interface block, then packets.
	shbLen := int(binary.LittleEndian.Uint32(goodNg[4:]))
	idb := shbLen
	idbLen := int(binary.LittleEndian.Uint32(goodNg[idb+4:]))
	epb := idb + idbLen
	for _, tc := range []struct {
		name string
		data []byte
		want string // in NewReader's or Analyze's error
	}{
		{"empty", nil, "not a capture"},
		{"text", []byte("this is a text file, not a capture at all"), "not a pcap or pcapng file"},
		{"pcap header only", good[:24], "no abing datagram in 0 packets"},
		{"cut inside a record", good[:len(good)/2], "ends inside it"},
		{"record longer than the snap length", func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[24+8:], 0x7fffffff)
			return b
		}(), "record 1: capture length exceeds snap length"},
		{"pcapng cut inside a block", goodNg[:epb+40], "cut after"},
		{"pcapng packet longer than its block", ng(func(b []byte) { binary.LittleEndian.PutUint32(b[epb+20:], 0xfffffff0) }), "claims 4294967280 captured bytes"},
		{"pcapng block of 4 GB", ng(func(b []byte) { binary.LittleEndian.PutUint32(b[epb+4:], 0xfffffffc) }), "block of type 6 is 4294967292 bytes long"},
		{"pcapng trailing length wrong", ng(func(b []byte) { b[epb+int(binary.LittleEndian.Uint32(b[epb+4:]))-4]++ }), "trailing length"},
		{"pcapng resolution overflows", ng(func(b []byte) {
			// The writer put if_tsresol (code 9) among the interface's options.
			i := bytes.Index(b[idb:epb], []byte{9, 0, 1, 0})
			if i < 0 {
				t.Fatal("no if_tsresol in the test capture")
			}
			b[idb+i+4] = 80
		}), "timestamp resolution exponent 80 out of range"},
		{"pcapng option past its block", ng(func(b []byte) {
			i := bytes.Index(b[idb:epb], []byte{9, 0, 1, 0})
			binary.LittleEndian.PutUint16(b[idb+i+2:], 400)
		}), "runs past its block"},
		{"pcapng bad byte order", ng(func(b []byte) { b[8] = 0 }), "no byte-order magic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := capture.NewReader(bytes.NewReader(tc.data))
			if err == nil {
				_, err = collect(r, capture.Options{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	// A pcap header claiming a 4 GB snap length is read with MaxSnap.
	b := bytes.Clone(good)
	binary.LittleEndian.PutUint32(b[16:], 0xffffffff)
	ss, _ := analyze(t, b, capture.Options{Clock: dispersion.SourceKernel})
	checkSynth(t, ss[0])
}

// Hostile content inside a well-formed capture: a reflector's lies are
// refused as a live run refuses them, and another host's datagrams with
// the session's id are not taken for the run's.
func TestHostileContent(t *testing.T) {
	frames := synthRun(sender4, refl4, 6, 1)
	var lies []frame
	for _, f := range frames {
		lies = append(lies, f)
		h, _ := train.ParseHeader(f.payload)
		if h.Type == train.TypeReply && h.Train == 3 {
			// Claims more packets arrived than were sent, and an unknown clock.
			b := bytes.Clone(f.payload)
			b[train.HeaderLen+9] = 9
			lies[len(lies)-1].payload = b
		}
		if h.Type == train.TypeProbe && h.Train == 4 && h.Pos == 0 {
			intruder := f
			intruder.src = netip.MustParseAddrPort("198.18.3.2:40000")
			lies = append(lies, intruder)
		}
	}
	ss, _ := analyze(t, writeCapture(t, lies, pcapng, links[0], 0), capture.Options{Clock: dispersion.SourceKernel})
	res, err := ss[0].Result()
	if err != nil {
		t.Fatal(err)
	}
	if res.Unexpected != 3 {
		t.Errorf("%d unexpected, want 3 (two lying replies, one intruder)", res.Unexpected)
	}
	for _, rec := range res.Records() {
		if rec.DBC == nil || math.IsNaN(*rec.DBC) {
			t.Errorf("%s: %s", rec.Direction, rec.Text())
		}
	}
}

// Recorded data: a default run through the emulated 20 Mbit/s path with
// 10 Mbit/s of CBR cross traffic forward, captured on the sender's
// interface by TestCaptureMatchesLive (lab/accuracy), beside the
// records of the live run. The capture's estimate lies within the live
// intervals.
func TestRecordedRun(t *testing.T) {
	f, err := os.Open("testdata/emulated-20M.pcapng.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := capture.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := collect(r, capture.Options{Clock: dispersion.SourceKernel})
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 {
		t.Fatalf("%d sessions", len(ss))
	}
	res, err := ss[0].Result()
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile("testdata/emulated-20M.live.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	for i, got := range res.Records() {
		var live record.Record
		if err := dec.Decode(&live); err != nil {
			t.Fatal(err)
		}
		t.Logf("live    %s\ncapture %s", live.Text(), got.Text())
		if got.Direction != live.Direction || got.PairsSent != live.PairsSent || got.PacketsSent != live.PacketsSent || got.Loss != live.Loss {
			t.Errorf("%d: %s %d trains %d packets loss %v; live %s %d %d %v", i, got.Direction, got.PairsSent, got.PacketsSent, got.Loss,
				live.Direction, live.PairsSent, live.PacketsSent, live.Loss)
		}
		for _, c := range []struct {
			name      string
			v         *float64
			low, high *float64
		}{{"DBC", got.DBC, live.DBCLow, live.DBCHigh}, {"XTR", got.XTR, live.XTRLow, live.XTRHigh}, {"ABW", got.ABW, live.ABWLow, live.ABWHigh}} {
			if c.v == nil || c.low == nil || *c.v < *c.low || *c.v > *c.high {
				t.Errorf("%s %s: %v outside the live interval", got.Direction, c.name, c.v)
			}
		}
	}
}

// With --clock hardware the replies' stamps are the NIC's, the probes'
// still the kernel's (Linux stamps an outgoing packet for the capture
// before the NIC sends it): the reverse direction, stamped by NICs at both
// ends, reads hardware, the forward one kernel. A NIC clock that nothing
// synchronised to the system's is refused with the reason.
func TestClocks(t *testing.T) {
	frames := synthRun(sender4, refl4, 11, 1)
	for i, f := range frames { // a reflector that stamps in hardware too
		h, _ := train.ParseHeader(f.payload)
		b := bytes.Clone(f.payload)
		switch h.Type {
		case train.TypeReply:
			b[train.HeaderLen+9] = uint8(dispersion.SourceHardware)
		case train.TypeReport:
			b[train.HeaderLen] = uint8(dispersion.SourceHardware)
		}
		frames[i].payload = b
	}
	ss, _ := analyze(t, writeCapture(t, frames, pcapNano, links[0], 0), capture.Options{Clock: dispersion.SourceHardware})
	res, err := ss[0].Result()
	if err != nil {
		t.Fatal(err)
	}
	if res.Forward.Source != dispersion.SourceKernel || res.Reverse.Source != dispersion.SourceHardware {
		t.Errorf("forward stamped by %s, reverse by %s; want kernel and hardware", res.Forward.Source, res.Reverse.Source)
	}

	// The NIC's clock, unsynchronised, counts from its reset, 20 minutes ago.
	for i, f := range frames {
		if f.src == refl4 {
			frames[i].at = time.Unix(1200, 0).Add(f.at.Sub(frames[0].at))
		}
	}
	ss, _ = analyze(t, writeCapture(t, frames, pcapNano, links[0], 0), capture.Options{Clock: dispersion.SourceHardware})
	if _, err := ss[0].Result(); err == nil || !strings.Contains(err.Error(), "another clock than sent ones") || !strings.Contains(err.Error(), "phc2sys") {
		t.Errorf("unsynchronised clocks: %v", err)
	}
}

// Sessions are delivered as they end, not at the end of the capture, so
// that a day's capture of a monitor holds only the runs open at one time:
// at its close, or after capture.Idle without a datagram (a run whose
// close the capture missed); a straggler of a delivered session is not a
// new one.
func TestStreaming(t *testing.T) {
	a := synthRun(sender4, refl4, 1, 1)
	a = a[:len(a)-1] // no close: delivered when idle
	b := synthRun(sender4, refl4, 2, 2)
	c := synthRun(sender4, refl4, 3, 3)
	shift := func(fs []frame, d time.Duration) []frame {
		for i := range fs {
			fs[i].at = fs[i].at.Add(d)
		}
		return fs
	}
	b = shift(b, capture.Idle+time.Minute)
	c = shift(c, capture.Idle+2*time.Minute)
	straggler := b[5] // a reply of b, after b closed
	straggler.at = c[0].at
	// Pad with other traffic so that the analysis sweeps idle sessions
	// (every 4,096 datagrams) while b is open.
	var pad []frame
	for i := range 5000 {
		f := b[2] // probes of another session id
		f.payload = bytes.Clone(f.payload)
		binary.BigEndian.PutUint64(f.payload[8:], uint64(1000+i))
		f.at = b[2].at
		pad = append(pad, f)
	}
	frames := slices.Concat(a, pad, b, []frame{straggler}, c)
	r, err := capture.NewReader(bytes.NewReader(writeCapture(t, frames, pcapng, links[0], 0)))
	if err != nil {
		t.Fatal(err)
	}
	at := map[uint64]int{}
	err = capture.Analyze(r, capture.Options{Clock: dispersion.SourceKernel}, func(s *capture.Session) error {
		if s.ID <= 3 {
			at[s.ID] = r.Stats().Packets
			checkSynth(t, s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	startB, endB := len(a)+len(pad), len(a)+len(pad)+len(b)
	if at[1] == 0 || at[1] > startB+4096 {
		t.Errorf("a (no close) delivered after packet %d; b starts at %d", at[1], startB)
	}
	if at[2] != endB || at[3] != len(frames) {
		t.Errorf("b delivered after packet %d, c after %d; want %d and %d (their closes)", at[2], at[3], endB, len(frames))
	}
}

// BenchmarkAnalyze reads and estimates a capture of 50 default-shaped runs
// (11,550 datagrams, 18 MB): what a long capture costs, per run.
func BenchmarkAnalyze(b *testing.B) {
	var frames []frame
	for i := range 50 {
		run := synthRun(sender4, refl4, uint64(i+1), uint64(i))
		for j := range run {
			run[j].at = run[j].at.Add(time.Duration(i) * time.Second)
		}
		frames = append(frames, run...)
	}
	data := writeCapture(b, frames, pcapng, links[0], 0)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := capture.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		err = capture.Analyze(r, capture.Options{Clock: dispersion.SourceKernel}, func(s *capture.Session) error {
			if _, err := s.Result(); err != nil {
				return err
			}
			n++
			return nil
		})
		if err != nil || n != 50 {
			b.Fatalf("%d sessions: %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*50)/1000, "ms/run")
}

// A signed session (a reflector with keys): the reflector's messages end
// with a signature, which the analysis leaves out (it cannot check it
// without the key) and the listing names; a signed message too short to
// hold one is not used.
func TestSigned(t *testing.T) {
	frames := synthRun(sender4, refl4, 12, 1)
	short := -1
	for i, f := range frames {
		h, _ := train.ParseHeader(f.payload)
		if h.Type.FromSender() {
			continue
		}
		b := append(bytes.Clone(f.payload), make([]byte, auth.TrailerLen)...)
		binary.BigEndian.PutUint16(b[6:], h.Flags|train.FlagSigned)
		if h.Type == train.TypeCookie {
			b = b[:train.HeaderLen+train.CookieLen] // signed, but no room for the signature
			short = i
		}
		frames[i].payload = b
	}
	data := writeCapture(t, frames, pcapng, links[0], 0)
	ss, _ := analyze(t, data, capture.Options{Clock: dispersion.SourceKernel})
	res, err := ss[0].Result()
	if err != nil {
		t.Fatal(err)
	}
	if res.Unexpected != 1 {
		t.Errorf("%d unexpected, want 1 (the cookie too short to be signed)", res.Unexpected)
	}
	checkSynthResult(t, res, 1)
	r, _ := capture.NewReader(bytes.NewReader(data))
	var lines []string
	for d, err := r.Next(); err == nil; d, err = r.Next() {
		lines = append(lines, capture.Describe(d, d.Time))
	}
	if !strings.Contains(lines[4], "reply") || !strings.Contains(lines[4], "signed") || !strings.Contains(lines[4], "arrived 2") ||
		strings.Contains(lines[short], "budget") {
		t.Errorf("listing:\n%s\n%s", lines[short], lines[4])
	}
}

// A capture that closes more sessions within Idle than the analysis
// remembers (a generator, not a committed file: MaxEnded+1000 sessions
// of one probe and a close, at one timestamp) is analysed with the set of
// ended sessions bounded: the first session's straggler, after them all,
// opens it again, as a session forgotten. Before, 1 M such sessions kept
// 178 MB in a set that never shrank.
func TestEndedSessionsBounded(t *testing.T) {
	at := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	msg := func(h train.Header, n int) []byte {
		b := make([]byte, n)
		train.PutHeader(b, &h)
		return b
	}
	probe := func(id uint64) frame {
		return frame{at: at, src: sender4, dst: refl4, ttl: 64,
			payload: msg(train.Header{Type: train.TypeProbe, Session: id, Len: 2, Pos: 0}, 1500-train.OverheadIPv4)}
	}
	n := capture.MaxEnded + 1000
	pr, pw := io.Pipe()
	go func() {
		var frames []frame
		for id := uint64(1); id <= uint64(n); id++ {
			frames = append(frames, probe(id), frame{at: at, src: sender4, dst: refl4, ttl: 64,
				payload: msg(train.Header{Type: train.TypeClose, Session: id, Len: 1}, train.SenderBody)})
		}
		frames = append(frames, probe(1)) // a straggler of the first
		pw.Write(writeCapture(t, frames, pcapNano, links[0], 0))
		pw.Close()
	}()
	r, err := capture.NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	if err := capture.Analyze(r, capture.Options{}, func(s *capture.Session) error { seen[s.ID]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n || seen[1] != 2 || seen[uint64(n)] != 1 {
		t.Errorf("%d sessions delivered (want %d), the first %d times (want 2: forgotten, then opened again by its straggler)", len(seen), n, seen[1])
	}
}

// The probes that sessions open at once make room for are counted
// together, every probe of each train they began: sessions that each claim
// two 100-probe trains with a probe each stop the analysis at
// measure.MaxRecorded, not at 100 times it (before, only the probes seen
// were counted).
func TestTrainSlotsBounded(t *testing.T) {
	at := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	var frames []frame
	per := measure.MaxTrainLen
	for id := uint64(1); id <= uint64(measure.MaxRecorded/per/2+1); id++ {
		for tr := range uint32(2) { // two trains a session: under MaxOpen sessions
			b := make([]byte, measure.MinSize-train.OverheadIPv4)
			train.PutHeader(b, &train.Header{Type: train.TypeProbe, Session: id, Train: tr, Len: uint16(per), Pos: uint16(per - 1)})
			frames = append(frames, frame{at: at.Add(time.Duration(id) * time.Millisecond), src: sender4, dst: refl4, ttl: 64, payload: b})
		}
	}
	r, err := capture.NewReader(bytes.NewReader(writeCapture(t, frames, pcapNano, links[0], 0)))
	if err != nil {
		t.Fatal(err)
	}
	err = capture.Analyze(r, capture.Options{}, func(*capture.Session) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "probes in the trains of sessions open at once") {
		t.Errorf("%d sessions of two 100-probe trains each: %v", len(frames)/2, err)
	}
}
