package mesh

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func rtt(a, b string, ms float64) Sample {
	return Sample{Src: a, Dst: b, RTT: ms, Loss: math.NaN(), Jitter: math.NaN(), ABW: math.NaN(), DBC: math.NaN()}
}

// A small sparse case worked by hand. Pairs measured: a-b, c-d, a-c at
// 100 ms; r1 and r3 at 20 ms from a and from b; r0 at 45 ms from both; r2
// at 20 ms from a, c, d. Shortcuts: a-b through r1 or r3 (a tie: r1, the
// first by name; r0 saves only 10 ms), c-d and a-c through r2; gains 60
// ms. Twelve pairs have a direct RTT. Greedy top relays: r2 (2 pairs,
// 2/12), then r1 (1 more, 3/12: r0, r1 and r3 each add a-b, r0 first by
// name but saving less, r3 saving as much but after r1), then nothing adds
// a pair.
func TestRelaysByHand(t *testing.T) {
	m := NewMatrix([]Sample{
		rtt("a", "b", 100), rtt("c", "d", 100), rtt("a", "c", 100),
		rtt("r1", "a", 20), rtt("r1", "b", 20), rtt("r3", "a", 20), rtt("b", "r3", 20),
		rtt("r2", "a", 20), rtt("r2", "c", 20), rtt("r2", "d", 20), rtt("r0", "a", 45), rtt("r0", "b", 45),
		rtt("a", "b", 100), rtt("a", "b", 100), // more samples of a pair: its median counts
	})
	got, pairs := Relays(m, 0)
	if pairs != 12 || len(got) != 3 {
		t.Fatalf("%d pairs, shortcuts %+v", pairs, got)
	}
	want := map[string]string{"a-b": "r1", "a-c": "r2", "c-d": "r2"}
	for _, s := range got {
		if want[s.A+"-"+s.B] != s.Relay || s.Gain != 60 || s.Relayed != 40 || s.GainPct != 60 {
			t.Errorf("shortcut %+v", s)
		}
	}
	if got[0].A != "a" || got[0].B != "b" || got[0].Relays != 3 {
		t.Errorf("a-b is improved by three relays: %+v", got[0])
	}
	top := TopRelays(m, 0, 5)
	if len(top) != 2 || top[0].Relay != "r2" || top[0].Adds != 2 || top[1].Relay != "r1" || top[1].Cumulative != 3 ||
		math.Abs(top[1].Share-0.25) > 1e-12 {
		t.Errorf("top relays %+v", top)
	}
	if top := TopRelays(m, 0, 1); len(top) != 1 || top[0].Relay != "r2" {
		t.Errorf("top 1: %+v", top)
	}
	// A gain must exceed the threshold.
	if got, _ := Relays(m, 60); len(got) != 0 {
		t.Errorf("min gain 60: %+v", got)
	}
	if got, _ := Relays(m, 59.9); len(got) != 3 {
		t.Errorf("min gain 59.9: %d shortcuts", len(got))
	}
}

// plane is n hosts at random points of a 100 × 100 ms plane with heights of
// 1–10 ms: RTT = distance + both heights, a metric in which no relay beats
// a direct path. noise (ms) is added to every sample, uniform ±noise.
func plane(n int, noise float64, seed uint64) ([]Sample, func(a, b int) float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	x, y, h := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		x[i], y[i], h[i] = 100*r.Float64(), 100*r.Float64(), 1+9*r.Float64()
	}
	truth := func(a, b int) float64 { return math.Hypot(x[a]-x[b], y[a]-y[b]) + h[a] + h[b] }
	var s []Sample
	for a := range n {
		for b := a + 1; b < n; b++ {
			for range 3 {
				s = append(s, rtt(name(a), name(b), truth(a, b)+noise*(2*r.Float64()-1)))
			}
		}
	}
	return s, truth
}

func name(i int) string { return "n" + string(rune('A'+i/26)) + string(rune('a'+i%26)) }

// Planted violations are all found and none invented: in a metric space
// there are none; inflating some direct paths makes exactly those pairs
// shortcuts (with noise, gains below the noise's reach are ignored by the
// minimum gain).
func TestRelaysPlanted(t *testing.T) {
	samples, _ := plane(30, 0, 7)
	if got, pairs := Relays(NewMatrix(samples), 0); len(got) != 0 || pairs != 435 {
		t.Fatalf("metric space: %d shortcuts of %d pairs", len(got), pairs)
	}
	noisy, _ := plane(30, 2, 7)
	planted := map[string]bool{}
	for i := range noisy {
		s := &noisy[i]
		if (s.Src == name(3) && s.Dst == name(17)) || (s.Src == name(5) && s.Dst == name(6)) || (s.Src == name(20) && s.Dst == name(29)) {
			s.RTT = 3*s.RTT + 60 // a detour: three times as long, plus 60 ms
			planted[s.Src+"-"+s.Dst] = true
		}
	}
	got, _ := Relays(NewMatrix(noisy), 8) // noise ±2 ms on three legs: at most 6 ms of false gain
	found := map[string]bool{}
	for _, s := range got {
		found[s.A+"-"+s.B] = true
		if !planted[s.A+"-"+s.B] {
			t.Errorf("invented: %+v", s)
		}
	}
	for p := range planted {
		if !found[p] {
			t.Errorf("planted %s not found", p)
		}
	}
}

func TestBandwidthRelays(t *testing.T) {
	abw := func(a, b string, v float64) Sample {
		s := rtt(a, b, 10)
		s.ABW = v
		return s
	}
	m := NewMatrix([]Sample{abw("a", "b", 10), abw("a", "r", 50), abw("r", "b", 30), abw("a", "s", 100), abw("s", "b", 5)})
	got := BandwidthRelays(m, 0)
	// Through r: min(50, 30) = 30 > 10; through s: min(100, 5) = 5.
	if len(got) != 1 || got[0].Relay != "r" || got[0].Relayed != 30 || got[0].Gain != 20 || got[0].A != "a" || got[0].B != "b" {
		t.Errorf("%+v", got)
	}
	if got := BandwidthRelays(m, 20); len(got) != 0 {
		t.Errorf("min gain 20: %+v", got)
	}
}

func TestReadMatrix(t *testing.T) {
	s, err := ReadMatrix(strings.NewReader("src,dst,rtt_ms,abw_mbps\na,b,10.5,\nb,c,20,35\n"))
	if err != nil || len(s) != 2 || s[0].RTT != 10.5 || !math.IsNaN(s[0].ABW) || s[1].ABW != 35 || !math.IsNaN(s[1].Loss) {
		t.Fatalf("%+v %v", s, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty matrix"},
		{"src,dst\n", "no rtt_ms column"},
		{"src,dst,rtt_ms,colour\n", `unknown column "colour"`},
		{"src,dst,rtt_ms,rtt_ms\n", "twice"},
		{"src,dst,rtt_ms\na,b,-1\n", "line 2: rtt_ms \"-1\""},
		{"src,dst,rtt_ms\na,b,NaN\n", "line 2: rtt_ms"},
		{"src,dst,rtt_ms,loss\na,b,1,1.5\n", "loss \"1.5\""},
		{"src,dst,rtt_ms\na,,1\n", "line 2: empty src or dst"},
		{"src,dst,rtt_ms\na,b\n", "line 2: 2 fields"},
	} {
		if _, err := ReadMatrix(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}
