package sim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// A receiver that delays its interrupt stamps the packets that arrived
// meanwhile as one batch, in order and Poll apart; a packet that arrives
// after the interrupt schedules the next one.
func TestCoalescingBatches(t *testing.T) {
	h := Host{Clock: Kernel, Coalesce: 50 * time.Microsecond, Poll: time.Microsecond}
	var all []*probe
	for _, us := range []float64{0, 10, 20, 60, 200} {
		all = append(all, &probe{at: 1 + us*1e-6})
	}
	h.stampReceive(rand.New(rand.NewPCG(1, 1)), all, nil)
	// Batches: {0, 10, 20} served at 50 µs, {60} at 110, {200} at 250.
	for i, want := range []float64{50, 51, 52, 110, 250} {
		if got := (float64(all[i].rx)/1e9 - 1) * 1e6; math.Abs(got-want) > 5 { // 1 µs of kernel noise, 5σ
			t.Errorf("packet %d stamped at %.1f µs, want %.0f", i, got, want)
		}
	}
}

// Adaptive moderation moves between its bounds as the packets come: no
// stamp is later than the highest delay (and the kernel's noise), and
// bursts push the delay above the lowest.
func TestAdaptiveCoalescingBounds(t *testing.T) {
	h := Host{Clock: Kernel, Adaptive: true}
	var all []*probe
	at := 1.0
	rng := rand.New(rand.NewPCG(2, 2))
	for range 5000 {
		at += rng.ExpFloat64() * 20e-6
		all = append(all, &probe{at: at})
	}
	h.stampReceive(rng, all, nil)
	var most float64
	for i, pk := range all {
		late := float64(pk.rx)/1e9 - pk.at
		if late < -5e-6 || late > adaptiveHigh+5e-6 {
			t.Fatalf("packet %d stamped %.1f µs after it arrived", i, late*1e6)
		}
		most = max(most, late)
	}
	if most < 2*adaptiveLow {
		t.Errorf("the delay never rose above %.0f µs", most*1e6)
	}
}

// A host's pauses: a time inside one moves to its end, any other stays.
func TestPauses(t *testing.T) {
	p := pauses{{1, 2}, {5, 5.5}}
	for _, tc := range []struct{ t, want float64 }{{0.5, 0.5}, {1, 2}, {1.9, 2}, {2, 2}, {3, 3}, {5.2, 5.5}, {6, 6}} {
		if got := p.after(tc.t); got != tc.want {
			t.Errorf("after(%g) = %g, want %g", tc.t, got, tc.want)
		}
	}
	// Drawn pauses cover about rate × mean length of the time, in order.
	rng := rand.New(rand.NewPCG(3, 3))
	drawn := newPauses(rng, 20, 0, 100)
	var off float64
	for i, s := range drawn {
		if s[1] <= s[0] || s[1]-s[0] < stallMin || s[1]-s[0] > stallMax || (i > 0 && s[0] < drawn[i-1][1]) {
			t.Fatalf("pause %d: %v", i, s)
		}
		off += s[1] - s[0]
	}
	mean := (stallMax - stallMin) / math.Log(stallMax/stallMin) // of a log-uniform length
	if share, want := off/100, 20*mean; math.Abs(share-want) > 0.2*want {
		t.Errorf("paused %.2f %% of the time, want about %.2f %%", 100*share, 100*want)
	}
}
