package sim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// A FIFO hop against closed-form cases: an idle hop spaces back-to-back
// probes by their service time and leaves wider ones alone; a cross packet
// that arrives between two probes' arrivals while the first is served
// widens their gap by exactly its own service time.
func TestServeClosedForm(t *testing.T) {
	const rate, size = 100e6, 1500
	tn := float64(size) * 8 / rate // 120 µs
	for _, tc := range []struct {
		name  string
		in    float64 // input gap, s
		cross []arrival
		want  float64 // output gap, s
	}{
		{"idle, back to back", 0, nil, tn},
		{"idle, half Tn apart", tn / 2, nil, tn},
		{"idle, twice Tn apart", 2 * tn, nil, 2 * tn},
		{"one 1500-byte packet in the window", tn / 2, []arrival{{0.1 * tn, 1500}}, 2 * tn},
		{"one 40-byte packet in the window", 0.8 * tn, []arrival{{0.5 * tn, 40}}, tn + 40*8/rate},
		{"a packet before the pair delays both alike", tn / 2, []arrival{{-tn / 4, 1500}}, tn},
		{"a packet after the pair's second arrival", tn / 2, []arrival{{0.6 * tn, 1500}}, tn},
	} {
		pk := []*probe{{at: 0}, {at: tc.in}}
		serve(rate, size, pk, tc.cross, nil)
		if got := pk[1].at - pk[0].at; math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: gap %.3f µs, want %.3f µs", tc.name, got*1e6, tc.want*1e6)
		}
	}
}

// Under Poisson cross traffic of fixed-size packets the hop is an M/D/1
// queue: rare, tiny probes arriving as a Poisson process see the time
// average (PASTA), and their mean wait is Pollaczek-Khinchine's
// ρ·s / (2(1−ρ)), s the service time of a cross packet.
func TestServeMD1(t *testing.T) {
	const rate = 10e6
	s := 1500 * 8 / rate
	for _, rho := range []float64{0.2, 0.5, 0.8} {
		rng := rand.New(rand.NewPCG(1, uint64(rho*100)))
		cross := Traffic{Model: Poisson, Load: rho}.generate(rng, rate, 0, 400, nil)
		var probes []*probe
		for at := 1.0; at < 399; at += rng.ExpFloat64() * 0.02 {
			probes = append(probes, &probe{at: at})
		}
		arrive := make([]float64, len(probes))
		for i, p := range probes {
			arrive[i] = p.at
		}
		serve(rate, 0, probes, cross, nil) // zero-size probes add no load
		var wait float64
		for i, p := range probes {
			wait += p.at - arrive[i]
		}
		wait /= float64(len(probes))
		want := rho * s / (2 * (1 - rho))
		if math.Abs(wait-want) > 0.05*want {
			t.Errorf("ρ %.1f: mean wait %.1f µs over %d probes, M/D/1 says %.1f µs", rho, wait*1e6, len(probes), want*1e6)
		}
	}
}

// The cross-traffic generators carry the load they are asked for.
func TestTrafficRates(t *testing.T) {
	const rate = 100e6
	for _, tr := range []Traffic{{Model: CBR}, {Model: Poisson}, {Model: Pareto}, {Model: TCP}, {Model: Mix}, {Model: TCPPaced}, {Model: TCP, Flows: 4}} {
		m := tr.Model
		tr.Load = 0.5
		rng := rand.New(rand.NewPCG(7, uint64(m)))
		arr := tr.generate(rng, rate, 0, 60, nil)
		var bits float64
		for i, a := range arr {
			bits += float64(a.size) * 8
			if i > 0 && a.t < arr[i-1].t {
				t.Fatalf("%s: arrivals out of order", m)
			}
		}
		// Pareto's heavy tail converges slowly: 10 % over a minute.
		if got := bits / 60 / rate; math.Abs(got-0.5) > 0.1*0.5 || (m != Pareto && math.Abs(got-0.5) > 0.02*0.5) {
			t.Errorf("%s: load %.3f, want 0.5", m, got)
		}
	}
}

// scenario is a single 10 Mbit/s bottleneck behind a 1 Gbit/s access link
// with hardware stamps and a prompt sender.
func scenario(model Model, load float64, trains, trainLen int, seed uint64) Scenario {
	return Scenario{
		Hops:  []Hop{{Rate: 1e9}, {Rate: 10e6, Cross: Traffic{Model: model, Load: load}}},
		Probe: Probe{Size: 1500, TrainLen: trainLen, Trains: trains},
		Host:  Host{Clock: Hardware, SendCost: time.Microsecond},
		Seed:  seed,
	}
}

// With an ideal host the method is unbiased: paced pairs read, on average,
// the cross traffic the hop carried, and capacity exactly. Five runs of
// 4000 pairs: the standard error of their mean is about 0.6 % of C at 50 %
// load of 1500-byte packets (a window catches 0.4 packets on average), so
// 1.5 % is 2.7 standard errors; the seeds are fixed, so the test gives the
// same answer every time for the same code.
func TestUnbiasedIdealHost(t *testing.T) {
	for _, m := range []Model{CBR, Poisson, Mix} {
		var sum float64
		for seed := uint64(1); seed <= 5; seed++ {
			r := Run(scenario(m, 0.5, 4000, 2, seed))
			if r.CapErr != nil || r.CrossErr != nil {
				t.Fatalf("%s: %v %v", m, r.CapErr, r.CrossErr)
			}
			if e := math.Abs(r.Capacity.DBC-r.Truth.C) / r.Truth.C; e > 1e-6 {
				t.Errorf("%s: DBC %.3f Mbit/s, C %.3f", m, r.Capacity.DBC/1e6, r.Truth.C/1e6)
			}
			sum += (r.Cross.XTR - r.Truth.XTR) / r.Truth.C
		}
		if mean := sum / 5; math.Abs(mean) > 0.015 {
			t.Errorf("%s: mean XTR error %+.2f %% of C", m, 100*mean)
		}
	}
}

// Sends delayed by the cross traffic itself (a generator on the sender's
// CPU) bias pairs low: a pair whose window caught a cross packet had its
// second send delayed, left off pace and was rejected, so the pairs kept
// are the quiet ones. The same delays, independent of the cross traffic,
// leave the estimate unbiased, and the adaptive default, which paces
// 10-packet trains, is unbiased under the correlated ones too. This is the
// mechanism the accuracy issue suspected on the emulated path; the
// simulator isolates it.
func TestCorrelatedSendDelayBiasesPairs(t *testing.T) {
	run := func(j Jitter) Result {
		sc := scenario(CBR, 0.5, 2000, 2, 3)
		// One caught cross packet takes a 0.96 ms pair gap past the
		// off-pace limit (1.1 Tn = 1.32 ms).
		sc.Host.Jitter, sc.Host.Delay = j, 400*time.Microsecond
		return Run(sc)
	}
	ind, cor := run(Independent), run(Correlated)
	if ind.CrossErr != nil || cor.CrossErr != nil {
		t.Fatalf("%v %v", ind.CrossErr, cor.CrossErr)
	}
	errInd := (ind.Cross.XTR - ind.Truth.XTR) / ind.Truth.C
	errCor := (cor.Cross.XTR - cor.Truth.XTR) / cor.Truth.C
	t.Logf("independent delays: XTR error %+.1f %% of C (%s); correlated: %+.1f %% (%s)",
		100*errInd, ind.Rejects.String(), 100*errCor, cor.Rejects.String())
	if math.Abs(errInd) > 0.05 {
		t.Errorf("independent delays biased XTR by %+.1f %% of C", 100*errInd)
	}
	if errCor > -0.1 {
		t.Errorf("correlated delays: XTR error %+.1f %% of C; the selection bias is gone or the model lost it", 100*errCor)
	}
	// The adaptive default paces 10-packet trains, whose pace is checked
	// on their mean: under the same correlated delays it stays unbiased.
	// Twenty runs (its budget gives each a standard error of about 4 % of
	// C at this load, 0.9 % for the mean); the bound is the pairs'
	// independent-delay bound, and the pairs' bias is ten times it.
	var sum float64
	for seed := uint64(1); seed <= 20; seed++ {
		sc := scenario(CBR, 0.5, 0, 0, seed)
		sc.Probe = defaultMode().probe()
		sc.Host.Jitter, sc.Host.Delay = Correlated, 400*time.Microsecond
		r := Run(sc)
		if r.CrossErr != nil {
			t.Fatalf("default, seed %d: %v", seed, r.CrossErr)
		}
		sum += (r.Cross.XTR - r.Truth.XTR) / r.Truth.C
	}
	t.Logf("the default under correlated delays: mean XTR error %+.1f %% of C over 20 runs", 100*sum/20)
	if mean := sum / 20; math.Abs(mean) > 0.05 {
		t.Errorf("the default under correlated delays: mean XTR error %+.1f %% of C", 100*mean)
	}
}
