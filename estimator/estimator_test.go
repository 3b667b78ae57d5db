package estimator

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

const size = 1500

var cfg = Config{Size: size, Noise: 2e-6}

// tn is the per-probe service time of a link of c bit/s.
func tn(c float64) float64 { return size * 8 / c }

// b2b makes n back-to-back pair samples at capacity c with gaussian noise of
// sd seconds.
func b2b(r *rand.Rand, n int, c, sd float64) []Sample {
	s := make([]Sample, n)
	for i := range s {
		s[i] = Sample{In: 1e-6, Out: tn(c) + r.NormFloat64()*sd, Gaps: 1}
	}
	return s
}

// paced makes trains of n packets paced at Tn through a bottleneck of c with
// constant-rate cross traffic x of full-size packets arriving at a random
// phase: each window of Tn catches a cross packet with probability x/c.
func paced(r *rand.Rand, trains, n int, c, x float64) []Sample {
	s := make([]Sample, trains)
	t := tn(c)
	for i := range s {
		out := 0.0
		for range n - 1 {
			out += t
			if r.Float64() < x/c {
				out += t
			}
		}
		s[i] = Sample{In: float64(n-1) * t, Out: out, Gaps: n - 1}
	}
	return s
}

func rel(got, want float64) float64 { return math.Abs(got-want) / want }

func TestCapacity(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	outliers := b2b(r, 20, 100e6, 1e-6)
	for i := range 6 { // loaded states and compressed samples
		outliers[i].Out *= 1 + float64(i)
	}
	outliers[6].Out = tn(100e6) / 3
	for _, tc := range []struct {
		name    string
		samples []Sample
		want    float64
		tol     float64
		err     error
	}{
		{"idle 100M", b2b(r, 20, 100e6, 0), 100e6, 1e-9, nil},
		{"idle 10M noisy", b2b(r, 20, 10e6, 20e-6), 10e6, 0.03, nil},
		{"1G noisy", b2b(r, 20, 1e9, 0.3e-6), 1e9, 0.05, nil},
		{"outliers", outliers, 100e6, 0.02, nil},
		{"too few", b2b(r, 4, 100e6, 0), 0, 0, ErrTooFew},
		{"below noise", b2b(r, 20, 10e9, 0), 0, 0, ErrBelowNoise},
		{"no cluster", []Sample{{Out: 1e-4, Gaps: 1}, {Out: 2e-4, Gaps: 1}, {Out: 3e-4, Gaps: 1}, {Out: 4e-4, Gaps: 1}, {Out: 5e-4, Gaps: 1}}, 0, 0, ErrNoCluster},
		{"garbage only", []Sample{{Out: 0, Gaps: 1}, {Out: -1, Gaps: 1}, {Out: 1, Gaps: 0}, {}, {}}, 0, 0, ErrTooFew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := EstimateCapacity(tc.samples, cfg, nil)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e := rel(c.DBC, tc.want); e > tc.tol {
				t.Errorf("DBC %.4g, want %.4g (error %.2f%%)", c.DBC, tc.want, 100*e)
			}
			if c.Confidence <= 0 || c.Confidence > 1 {
				t.Errorf("confidence %g outside (0,1]", c.Confidence)
			}
		})
	}
}

// When cross packets come more often than the input gap of back-to-back
// pairs, the state "one packet in between" can hold most pairs; the state
// below it, clear of it and holding a third, is the link's.
func TestCapacityPicksLowStateOverDenserLoaded(t *testing.T) {
	var s []Sample
	for i := range 30 {
		out := 72e-6 // 9000-byte probes at 1 Gbit/s
		if i%3 != 0 {
			out += 12e-6 // and a 1500-byte cross packet
		}
		s = append(s, Sample{In: 1e-6, Out: out, Gaps: 1})
	}
	c, _, err := EstimateCapacity(s, Config{Size: 9000, Noise: 2e-6}, nil)
	if err != nil || c.Tn != 72e-6 || c.InCluster != 10 {
		t.Fatalf("Tn %g in cluster %d (%v), want 72e-6 and 10", c.Tn, c.InCluster, err)
	}
	// A fifth is not enough: stray low samples are not a state.
	s = s[:0]
	for i := range 30 {
		out := 84e-6
		if i%5 == 0 {
			out = 72e-6
		}
		s = append(s, Sample{In: 1e-6, Out: out, Gaps: 1})
	}
	if c, _, _ := EstimateCapacity(s, Config{Size: 9000, Noise: 2e-6}, nil); c.Tn != 84e-6 {
		t.Fatalf("Tn %g, want the densest state 84e-6", c.Tn)
	}
}

func TestCapacityPicksDensestNotMinimum(t *testing.T) {
	s := []Sample{{Out: 50e-6, Gaps: 1}, {Out: 60e-6, Gaps: 1}}
	for range 10 {
		s = append(s, Sample{In: 0, Out: 120e-6, Gaps: 1})
	}
	c, _, err := EstimateCapacity(s, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tn != 120e-6 || c.InCluster != 10 {
		t.Fatalf("Tn %g in cluster %d, want 120e-6 and 10", c.Tn, c.InCluster)
	}
	if want := 10.0 / 12; math.Abs(c.Confidence-want) > 1e-9 {
		t.Errorf("confidence %g, want %g", c.Confidence, want)
	}
}

// A train whose clean gaps measure the link gives the link's capacity even
// when a cross packet slipped into it.
func TestCapacityUsesCleanGaps(t *testing.T) {
	var s []Sample
	for range 10 {
		// 9 gaps: 8 at Tn, one doubled by a cross packet.
		s = append(s, Sample{In: 1e-4, Out: 10 * tn(100e6), Gaps: 9, Clean: 8 * tn(100e6), CleanGaps: 8})
	}
	c, _, err := EstimateCapacity(s, cfg, nil)
	if err != nil || rel(c.DBC, 100e6) > 1e-9 {
		t.Fatalf("DBC %g err %v, want 100e6", c.DBC, err)
	}
}

func TestCross(t *testing.T) {
	const c = 100e6
	for _, tc := range []struct {
		name   string
		x      float64
		trains int
		n      int
		tol    float64 // of capacity
	}{
		{"idle", 0, 20, 10, 1e-9},
		{"20%", 20e6, 40, 10, 0.05},
		{"50%", 50e6, 40, 10, 0.05},
		{"80%", 80e6, 40, 10, 0.05},
		{"50% pairs", 50e6, 400, 2, 0.06},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			capa, _, err := EstimateCapacity(b2b(r, 20, c, 0), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			x, err := EstimateCross(paced(r, tc.trains, tc.n, c, tc.x), capa, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if e := math.Abs(x.XTR-tc.x) / c; e > tc.tol {
				t.Errorf("XTR %.4g, want %.4g (error %.1f%% of C)", x.XTR, tc.x, 100*e)
			}
			if math.Abs(x.ABW+x.XTR-capa.DBC) > 1 {
				t.Errorf("ABW %.4g + XTR %.4g != DBC %.4g", x.ABW, x.XTR, capa.DBC)
			}
			if tc.x > 0 && x.StdErr <= 0 {
				t.Errorf("no standard error under cross traffic")
			}
		})
	}
}

func TestCrossRefusals(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	if _, err := EstimateCross(paced(r, 20, 2, 100e6, 0), Capacity{}, cfg); !errors.Is(err, ErrNoCapacity) {
		t.Errorf("no capacity: err = %v", err)
	}
	capa, _, _ := EstimateCapacity(b2b(r, 20, 100e6, 0), cfg, nil)
	if _, err := EstimateCross(paced(r, 3, 2, 100e6, 0), capa, cfg); !errors.Is(err, ErrTooFew) {
		t.Errorf("3 trains: err = %v", err)
	}
	// Cross traffic beyond capacity is clamped, not reported above C.
	s := paced(r, 20, 2, 100e6, 0)
	for i := range s {
		s[i].Out *= 5
	}
	x, err := EstimateCross(s, capa, cfg)
	if err != nil || x.XTR != capa.DBC || x.ABW != 0 {
		t.Errorf("saturated: XTR %g ABW %g err %v", x.XTR, x.ABW, err)
	}
}

// ABwE's published reduction on back-to-back pairs: a pair that caught one
// cross packet doubles its dispersion (q contribution 1).
func TestABwE(t *testing.T) {
	capa := Capacity{DBC: 100e6, Tn: tn(100e6), Upper: tn(100e6) * 1.02}
	s := make([]Sample, 10)
	for i := range s {
		s[i] = Sample{In: 0, Out: tn(100e6), Gaps: 1}
	}
	x, err := EstimateABwE(s, capa)
	if err != nil || x.XTR != 0 || x.ABW != 100e6 {
		t.Fatalf("idle: %+v %v", x, err)
	}
	for i := range 5 {
		s[i].Out = 2 * tn(100e6)
	}
	// q = 0.5, u = 1/3
	x, err = EstimateABwE(s, capa)
	if err != nil || rel(x.XTR, 100e6/3) > 1e-9 {
		t.Fatalf("half loaded: XTR %g err %v, want %g", x.XTR, err, 100e6/3)
	}
}

func BenchmarkEstimate(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	bb := b2b(r, 20, 100e6, 1e-6)
	pp := paced(r, 20, 2, 100e6, 50e6)
	scratch := make([]float64, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		c, s, err := EstimateCapacity(bb, cfg, scratch)
		scratch = s
		if err != nil {
			b.Fatal(err)
		}
		if _, err := EstimateCross(pp, c, cfg); err != nil {
			b.Fatal(err)
		}
		if _, err := EstimateABwE(bb, c); err != nil {
			b.Fatal(err)
		}
	}
}

// Every estimate comes with a 95 % interval around it; more trains narrow
// it, and a run whose windows all caught nothing still gets one of some
// width (excess comes in whole packets: 16 empty windows do not prove an
// idle path).
func TestIntervals(t *testing.T) {
	const c, x = 100e6, 40e6
	cfg := Config{Size: size, Noise: 2e-6}
	width := map[int]float64{}
	for _, trains := range []int{16, 64, 256} {
		r := rand.New(rand.NewPCG(3, uint64(trains)))
		capa, _, err := EstimateCapacity(b2b(r, trains, c, 1e-6), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !(capa.DBCLow <= capa.DBC && capa.DBC <= capa.DBCHigh) || capa.DBCLow >= capa.DBCHigh {
			t.Errorf("%d trains: DBC %.2f outside (%.2f–%.2f)", trains, capa.DBC/1e6, capa.DBCLow/1e6, capa.DBCHigh/1e6)
		}
		cr, err := EstimateCross(paced(r, trains, 2, c, x), capa, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !(cr.ABWLow <= cr.ABW && cr.ABW <= cr.ABWHigh && cr.XTRLow <= cr.XTR && cr.XTR <= cr.XTRHigh) {
			t.Errorf("%d trains: ABW %.2f (%.2f–%.2f), XTR %.2f (%.2f–%.2f)", trains, cr.ABW/1e6, cr.ABWLow/1e6, cr.ABWHigh/1e6,
				cr.XTR/1e6, cr.XTRLow/1e6, cr.XTRHigh/1e6)
		}
		width[trains] = cr.ABWHigh - cr.ABWLow
	}
	if !(width[256] < width[64] && width[64] < width[16]) {
		t.Errorf("interval widths by trains: %v", width)
	}
	// Sixteen windows that caught nothing.
	capa := Capacity{DBC: c, Tn: tn(c), DBCHigh: c * 1.01}
	var empty []Sample
	for range 16 {
		empty = append(empty, Sample{In: 0.8 * tn(c), Out: tn(c), Gaps: 1})
	}
	cr, err := EstimateCross(empty, capa, cfg)
	if err != nil || cr.XTR != 0 || cr.XTRHigh < 0.05*c {
		t.Errorf("empty windows: XTR %.2f (%.2f–%.2f) %v", cr.XTR/1e6, cr.XTRLow/1e6, cr.XTRHigh/1e6, err)
	}
}

// Paced trains that left off pace widen the intervals by what their
// windows could have held: XTR's lower end down by s·XTR, its upper end up
// by s·(DBC − XTR), s being their share of the paced trains; the estimate
// itself does not move, and the pooled sums carry the count.
func TestOffPaceWidens(t *testing.T) {
	const c, x = 100e6, 40e6
	r := rand.New(rand.NewPCG(4, 4))
	capa := Capacity{DBC: c, Tn: tn(c), DBCHigh: 2 * c}
	samples := paced(r, 90, 2, c, x)
	base, err := EstimateCross(samples, capa, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, late := range []int{0, 1, 10, 90} {
		cf := cfg
		cf.OffPace = late
		got, err := EstimateCross(samples, capa, cf)
		if err != nil {
			t.Fatal(err)
		}
		s := float64(late) / float64(late+90)
		want := []float64{
			math.Max(0, base.XTRLow-s*base.XTR), math.Min(c, base.XTRHigh+s*(c-base.XTR)),
			math.Max(0, base.ABWLow-s*(c-base.XTR)), math.Min(c, base.ABWHigh+s*base.XTR),
		}
		have := []float64{got.XTRLow, got.XTRHigh, got.ABWLow, got.ABWHigh}
		for i := range want {
			if math.Abs(have[i]-want[i]) > 1 {
				t.Errorf("%d off pace: interval ends %v, want %v", late, have, want)
				break
			}
		}
		if got.XTR != base.XTR || got.Stats.OffPace != late {
			t.Errorf("%d off pace: XTR %.0f (was %.0f), pooled count %d", late, got.XTR, base.XTR, got.Stats.OffPace)
		}
		if pooled, err := Pool([]CrossStats{got.Stats}, cfg); err != nil || pooled.XTRHigh != got.XTRHigh {
			t.Errorf("%d off pace: pooled upper end %.0f, the run's %.0f: %v", late, pooled.XTRHigh, got.XTRHigh, err)
		}
	}
}

// The second reading of load: the share of trains whose first packet
// found a queue. Where it agrees with the windows, nothing changes; where
// some trains found a queue and the share's upper end is more load than
// the windows' interval allows, that interval is widened down; where even
// its lower end is, only an upper bound on ABW is left (Bursty). A drift
// of the clocks' offset within skewRate is not a queue.
func TestBusyReading(t *testing.T) {
	const c = 100e6
	capa := Capacity{DBC: c, Tn: tn(c), DBCHigh: c, DBCLow: c, TnErr: 1e-9}
	// 20 paced trains whose windows caught 10 % of C, and 16 back-to-back
	// ones, 10 ms apart; delayed marks those whose first packet waited
	// 1 ms; drift is the offset's drift, seconds per second.
	run := func(delayed func(i int) bool, drift float64) Cross {
		var b2b, paced []Sample
		for i := range 36 {
			at := float64(i) * 0.01
			s := Sample{In: 9 * 0.8 * tn(c), Out: 9.72 * tn(c), Gaps: 9, Start: at, Delay: 0.005 + drift*at, Timed: true}
			if delayed(i) {
				s.Delay += 1e-3
			}
			if i < 16 {
				s.In, s.Out, s.Gaps = 1e-6, tn(c), 1
				b2b = append(b2b, s)
			} else {
				paced = append(paced, s)
			}
		}
		cf := cfg
		cf.Unpaced = b2b
		x, err := EstimateCross(paced, capa, cf)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	quiet := run(func(int) bool { return false }, 0)
	if quiet.Stats.Busy != 0 || quiet.Stats.Timed != 36 || quiet.Bursty || math.Abs(quiet.ABW-0.9*c) > 1 || quiet.ABWLow < 0.8*c {
		t.Errorf("no queue: busy %d of %d, ABW %.1f (%.1f–%.1f)", quiet.Stats.Busy, quiet.Stats.Timed, quiet.ABW/1e6, quiet.ABWLow/1e6, quiet.ABWHigh/1e6)
	}
	if drifted := run(func(int) bool { return false }, 40e-6); drifted.Stats.Busy != 0 {
		t.Errorf("a drift of 40 ppm counted %d trains busy", drifted.Stats.Busy)
	}
	// Pauses of the hosts may make pauseShare of the trains (and one)
	// look busy: the share counts the trains beyond them.
	beyond := func(k int) int { return k - max(1, int(math.Ceil(pauseShare*36))) }
	if one := run(func(i int) bool { return i == 20 }, 0); one.ABWLow != quiet.ABWLow || one.Bursty {
		t.Errorf("1 of 36 busy (a pause): ABW %.1f (%.1f–%.1f), want (%.1f–%.1f) as with none", one.ABW/1e6, one.ABWLow/1e6,
			one.ABWHigh/1e6, quiet.ABWLow/1e6, quiet.ABWHigh/1e6)
	}
	few := run(func(i int) bool { return i%6 == 4 }, 0) // 6 of 36
	_, up := wilson(beyond(6), 36, z95(1<<20))
	if few.Stats.Busy != 6 || few.Bursty || math.Abs(few.ABWLow-(1-up)*c) > 1 || few.ABW != quiet.ABW {
		t.Errorf("6 of 36 busy: busy %d, bursty %v, ABW %.1f (%.1f–%.1f), want the low end at %.1f", few.Stats.Busy, few.Bursty,
			few.ABW/1e6, few.ABWLow/1e6, few.ABWHigh/1e6, (1-up)*c/1e6)
	}
	half := run(func(i int) bool { return i%2 == 0 }, 0) // 18 of 36
	lo, _ := wilson(beyond(18), 36, z99)
	if b := float64(beyond(18)) / 36; !half.Bursty || half.ABWLow != 0 || math.Abs(half.ABWHigh-(1-lo)*c) > 1 || math.Abs(half.ABW-(1-b)*c) > 1 {
		t.Errorf("18 of 36 busy: bursty %v, ABW %.1f (%.1f–%.1f), want %.1f (0–%.1f)", half.Bursty, half.ABW/1e6, half.ABWLow/1e6,
			half.ABWHigh/1e6, (1-b)*c/1e6, (1-lo)*c/1e6)
	}
}

// The interval of a run whose first trains caught few cross packets is
// at least a Poisson count's: five empty trains of nine windows do not
// make a ±10 % interval at 100 Mbit/s.
func TestPoissonFloor(t *testing.T) {
	const c = 100e6
	capa := Capacity{DBC: c, Tn: tn(c), DBCHigh: c, TnErr: 1e-9}
	var s []Sample
	for range 5 {
		s = append(s, Sample{In: 9 * 0.8 * tn(c), Out: 9 * tn(c), Gaps: 9})
	}
	x, err := EstimateCross(s, capa, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// One packet's time over the five trains' input spans, times t(4).
	floor := z95(4) * c * tn(c) / (5 * 9 * 0.8 * tn(c))
	if x.XTRHigh < floor*0.999 {
		t.Errorf("XTR (%.1f–%.1f), want the high end at least %.1f", x.XTRLow/1e6, x.XTRHigh/1e6, floor/1e6)
	}
}

// Trains stamped in batches carry their grain: the capacity interval
// holds it as a bias, and so does the cross traffic's.
func TestGrainWidens(t *testing.T) {
	const c = 1e9
	var b2b []Sample
	for range 8 {
		b2b = append(b2b, Sample{In: 99e-6, Out: 99 * tn(c), Gaps: 99, Clean: 99 * tn(c), CleanGaps: 99})
	}
	plain, _, err := EstimateCapacity(b2b, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A grain, and user-space stamps' bias (Config.Bias), widen the
	// interval around the same DBC.
	user := cfg
	user.Bias = 50e-6
	grained := slices.Clone(b2b)
	for i := range grained {
		grained[i].Grain = 50e-6
	}
	for _, w := range []struct {
		what    string
		samples []Sample
		cfg     Config
	}{{"a bias", b2b, user}, {"grain", grained, cfg}} {
		got, _, err := EstimateCapacity(w.samples, w.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.DBC != plain.DBC || !(got.DBCLow < plain.DBCLow && got.DBCHigh > plain.DBCHigh) {
			t.Errorf("DBC %.0f (%.0f–%.0f) with %s, %.0f (%.0f–%.0f) without", got.DBC/1e6, got.DBCLow/1e6, got.DBCHigh/1e6, w.what,
				plain.DBC/1e6, plain.DBCLow/1e6, plain.DBCHigh/1e6)
		}
	}
	var p []Sample
	for range 10 {
		p = append(p, Sample{In: 9 * 0.8 * tn(c), Out: 9 * tn(c), Gaps: 9})
	}
	a, _ := EstimateCross(p, plain, cfg)
	if u, _ := EstimateCross(p, plain, user); u.XTR != a.XTR || u.XTRHigh-a.XTRHigh < 0.5*c*50e-6/(9*0.8*tn(c)) {
		t.Errorf("XTR %.0f (%.0f–%.0f) with a bias, %.0f (%.0f–%.0f) without", u.XTR/1e6, u.XTRLow/1e6, u.XTRHigh/1e6, a.XTR/1e6, a.XTRLow/1e6, a.XTRHigh/1e6)
	}
	for i := range p {
		p[i].Grain = 50e-6
	}
	b, _ := EstimateCross(p, plain, cfg)
	if b.XTR != a.XTR || b.XTRHigh-a.XTRHigh < 0.5*c*50e-6/(9*0.8*tn(c)) {
		t.Errorf("XTR %.0f (%.0f–%.0f) with grain, %.0f (%.0f–%.0f) without", b.XTR/1e6, b.XTRLow/1e6, b.XTRHigh/1e6, a.XTR/1e6, a.XTRLow/1e6, a.XTRHigh/1e6)
	}
}

// The capacity's interval and the windows' sampling error add in
// quadrature: at the capacity's upper end the same trains read less ABW
// (by d), and the interval's lower end is ABW − √(h² + d²), h being the
// sampling half-width alone. Before, it was the lower of ABW − h and the
// reading at the capacity's end, which missed when both erred the same
// way (the emulated jumbo path in CI: DBC 162 (161–198) against 184,
// ABW 92.0–143.4 against 86.4).
func TestCapacityEndsAndSampling(t *testing.T) {
	const c = 162e6
	r := rand.New(rand.NewPCG(7, 7))
	samples := paced(r, 29, 4, c, 0.3*c)
	point := Capacity{DBC: c, Tn: tn(c), DBCLow: c, DBCHigh: c}
	alone, err := EstimateCross(samples, point, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := alone.ABW - alone.ABWLow
	wide := point
	wide.DBCLow, wide.DBCHigh = 0.99*c, 1.22*c
	got, err := EstimateCross(samples, wide, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := got.Stats
	reading := func(cap float64) float64 {
		return cap*(1-st.Out/st.In) + float64(cfg.Size)*8*float64(st.Windows)/st.In
	}
	d := reading(c) - reading(wide.DBCHigh)
	want := got.ABW - math.Hypot(h, d)
	if d <= 0 || math.Abs(got.ABWLow-want) > 1 || got.ABWLow >= math.Min(got.ABW-h, reading(wide.DBCHigh)) {
		t.Errorf("ABW %.2f: lower end %.2f, want %.2f = ABW − √(%.2f² + %.2f²) (Mbit/s)", got.ABW/1e6, got.ABWLow/1e6, want/1e6, h/1e6, d/1e6)
	}
}

func TestGapNoise(t *testing.T) {
	const tn, lo, hi = 600e-6, 2e-6, 20e-6 // 1500 bytes at 20 Mbit/s; kernel and user noise
	normal := func(seed uint64, n int, sd float64) []float64 {
		r := rand.New(rand.NewPCG(seed, 3))
		g := make([]float64, n)
		for i := range g {
			g[i] = tn + sd*r.NormFloat64()
		}
		return g
	}
	// Gaps of which every fourth carried a cross packet: a second state
	// a packet time above, outside the window.
	loaded := normal(4, 64, 5e-6)
	for i := 0; i < len(loaded); i += 4 {
		loaded[i] += tn
	}
	// Small cross packets (64 bytes: 26 µs at 20 Mbit/s) inside the window
	// widen the reading: more noise, never less.
	small := normal(5, 64, 3e-6)
	for i := 0; i < len(small); i += 3 {
		small[i] += 26e-6
	}
	for _, c := range []struct {
		name     string
		gaps     []float64
		lo       float64
		min, max float64
	}{
		{"kernel-like stamps", normal(1, 64, 3e-6), lo, 2.4e-6, 3.6e-6},
		{"precise stamps: never below the other end's", normal(2, 64, 0.2e-6), lo, lo, lo},
		{"user-like stamps: never above user noise", normal(3, 64, 40e-6), lo, hi, hi},
		{"cross packets a packet time apart: another state", loaded, lo, 3e-6, 7e-6},
		{"small cross packets in the window: wider", small, lo, 6e-6, hi},
		{"too few gaps: user noise", normal(6, MinNoiseGaps-1, 1e-6), lo, hi, hi},
		{"the floor above user noise (1 ms stamps)", normal(7, 64, 1e-6), 1e-3, 1e-3, 1e-3},
	} {
		got := GapNoise(c.gaps, c.lo, hi)
		if got < c.min || got > c.max {
			t.Errorf("%s: noise %.2f µs, want %.2f–%.2f", c.name, got*1e6, c.min*1e6, c.max*1e6)
		}
	}
}
