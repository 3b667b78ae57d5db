package sim

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/abing-net/abing/measure"
)

// Mode is a way of probing: abing measure's --train-len and --size, and
// adaptive phase 2 with a precision and a byte budget per direction.
type Mode struct {
	Name        string
	TrainLen    int
	Size        int
	Precision   float64
	MaxBytes    int
	Round       int
	CapTrainLen int
}

// Modes of the grid: fixed runs of pairs, of 10-packet trains and of
// jumbo trains, and abing measure's adaptive default (capacity from 16
// pairs, then rounds of 5 ten-packet trains until the ABW interval is
// within ±10 % of DBC or 300 KB a direction are spent).
var Modes = []Mode{
	{Name: "pairs", TrainLen: 2, Size: 1500},
	{Name: "trains", TrainLen: 10, Size: 1500},
	{Name: "jumbo", TrainLen: 10, Size: 9000},
	defaultMode(),
}

// defaultMode is measure.Defaults() as a Mode.
func defaultMode() Mode {
	d := measure.Defaults()
	return Mode{Name: "adaptive", TrainLen: d.PacedTrainLen, Size: d.Size, Precision: d.Precision, MaxBytes: d.Budget(),
		Round: d.Round, CapTrainLen: d.TrainLen}
}

// probe is the Probe of a mode.
func (m Mode) probe() Probe {
	return Probe{Size: m.Size, TrainLen: m.TrainLen, Trains: 16, Precision: m.Precision, MaxBytes: m.MaxBytes,
		Round: m.Round, CapTrainLen: m.CapTrainLen}
}

// Cell is one scenario of the grid, run with many seeds.
type Cell struct {
	// World marks the cells of the users' world (one hop, the default,
	// the hosts of hostsAt): the ones the headline counts.
	World bool
	Name  string // e.g. "100M poisson 50% trains"
	// Column and Row place a cell of the users' world in its probe
	// size's heat map: capacity and host ("1G kernel"), and traffic
	// ("tcp 50%").
	Column, Row string
	Hops        []Hop
	Probe       Probe
	Host        Host
}

// Stats are a cell's figures over its runs.
type Stats struct {
	Cell      Cell
	Runs      int
	Failed    int     // runs with no ABW
	Bounded   int     // of them, runs with a bound on capacity (DBCMin)
	Held      float64 // share of runs whose ABW interval, or else capacity bound, held the truth
	DBCMedian float64 // median |DBC − C| / C
	ABWMedian float64 // median |ABW − truth| / C
	ABWP90    float64 // 90th percentile of the same
	Bias      float64 // median (ABW − truth) / C, signed
	Coverage  float64 // share of runs with an ABW whose 95 % interval holds the truth
	HalfWidth float64 // median half-width of that interval / C
	DBCCover  float64 // share of runs with a DBC whose interval holds C
	Bytes     float64 // median probe bytes, forward
	Time      time.Duration
}

// The rules of the accuracy issue for a cell: honest when at least
// HonestShare of its runs gave an interval or a bound that held the
// truth; an estimate when besides at least HonestShare of its runs gave
// an ABW, with a median error of at most EstimateMedian of C and a 90th
// percentile of at most EstimateP90.
const (
	HonestShare    = 0.9
	EstimateMedian = 0.08
	EstimateP90    = 0.15
)

// Honest says whether the cell meets the honesty rule.
func (s Stats) Honest() bool { return s.Held >= HonestShare }

// Estimate says whether the cell meets the estimate rule as well.
func (s Stats) Estimate() bool {
	return s.Honest() && float64(s.Runs-s.Failed) >= HonestShare*float64(s.Runs) &&
		s.ABWMedian <= EstimateMedian && s.ABWP90 <= EstimateP90
}

// Hosts of the grid. Each parameter's source is in host.go; the names are
// what the grid prints.
var (
	// hostKernel: kernel stamps, one receive interrupt per packet, 1 µs
	// per packet of a send batch (sendmmsg of UDP on a current x86 core
	// moves about a million packets a second: assumed).
	hostKernel = Host{Clock: Kernel, SendCost: time.Microsecond}
	// hostHardware: NIC stamps at both ends, as 10–100 Gbit/s NICs with
	// PTP hardware clocks give.
	hostHardware = Host{Clock: Hardware, SendCost: time.Microsecond}
	// hostCoalesce is hostKernel behind a NIC that delays its receive
	// interrupt 50 µs (igb's default "dynamic conservative" moderation
	// caps interrupts at 20,000 a second, commit abe1c3638ccf: 50 µs),
	// whose batch the kernel stamps 0.5 µs a packet apart (NAPI polls a
	// batch of up to 64 packets; 0.5 µs a packet is assumed).
	hostCoalesce = coalescing(50 * time.Microsecond)
)

// coalescing is hostKernel with receive interrupts delayed by d.
func coalescing(d time.Duration) Host {
	h := hostKernel
	h.Coalesce, h.Poll = d, 500*time.Nanosecond
	return h
}

// namedHost is a host and what the grid calls it.
type namedHost struct {
	name string
	host Host
}

// hostsAt are the hosts of the users' world at a capacity: kernel stamps
// (with and without 50 µs coalescing) to 10 Gbit/s, hardware stamps from
// 10 Gbit/s.
func hostsAt(c float64) []namedHost {
	var hs []namedHost
	if c <= 10e9 {
		hs = append(hs, namedHost{"kernel", hostKernel})
		if c >= 100e6 {
			hs = append(hs, namedHost{"coalesce50", hostCoalesce})
		}
	}
	if c >= 10e9 {
		hs = append(hs, namedHost{"hardware", hostHardware})
	}
	return hs
}

// access is the sender's own link for a capacity: ten times faster, from
// 1 to 100 Gbit/s.
func access(c float64) float64 { return min(max(10*c, 1e9), 100e9) }

// rateName is 10M, 1G and the like.
func rateName(bps float64) string {
	if bps >= 1e9 {
		return fmt.Sprintf("%gG", bps/1e9)
	}
	return fmt.Sprintf("%gM", bps/1e6)
}

// traffics are the cross traffic of the users' world: idle, and every
// model at 20, 50 and 80 % load, four TCP flows of different round trips
// among them.
func traffics() []struct {
	name string
	t    Traffic
} {
	out := []struct {
		name string
		t    Traffic
	}{{"idle", Traffic{}}}
	for _, m := range []Traffic{{Model: CBR}, {Model: Poisson}, {Model: Mix}, {Model: Pareto}, {Model: TCP}, {Model: TCPPaced}, {Model: TCP, Flows: 4}} {
		for _, load := range []float64{0.2, 0.5, 0.8} {
			t := m
			t.Load = load
			name := m.Model.String()
			if m.Flows > 1 {
				name = fmt.Sprintf("%s x%d", name, m.Flows)
			}
			out = append(out, struct {
				name string
				t    Traffic
			}{fmt.Sprintf("%s %.0f%%", name, 100*load), t})
		}
	}
	return out
}

// Rates is every capacity of the grid.
var Rates = []float64{1e6, 10e6, 100e6, 1e9, 10e9, 40e9, 100e9}

// DefaultGrid is, for abing measure's default (with the probe size set):
// every capacity from 1 Mbit/s to 100 Gbit/s × probe sizes 1500 and 9000
// (from 100 Mbit/s) × the hosts of hostsAt × idle and seven kinds of
// cross traffic at three loads, one hop. Then hosts at 100 Mbit/s and
// 1 Gbit/s, paths of three hops (the tight link the narrow one or not),
// and the fixed modes beside the default.
func DefaultGrid() []Cell {
	var cells []Cell
	for _, c := range Rates {
		for _, size := range []int{1500, 9000} {
			if size == 9000 && c < 100e6 {
				continue
			}
			mode := defaultMode()
			mode.Size = size
			for _, h := range hostsAt(c) {
				for _, t := range traffics() {
					cells = append(cells, Cell{
						World:  true,
						Name:   fmt.Sprintf("%s %d %s %s", rateName(c), size, h.name, t.name),
						Column: rateName(c) + " " + h.name,
						Row:    t.name,
						Hops:   []Hop{{Rate: access(c)}, {Rate: c, Cross: t.t}},
						Probe:  mode.probe(),
						Host:   h.host,
					})
				}
			}
		}
	}
	// Hosts as real ones behave, at 100 Mbit/s and 1 Gbit/s.
	hosts := []namedHost{
		{"coalesce10", coalescing(10 * time.Microsecond)},
		{"coalesce100", coalescing(100 * time.Microsecond)},
		{"adaptive", func() Host { h := coalescing(0); h.Adaptive = true; return h }()},
		// 20 pauses a second of 0.1–5 ms: 2.5 % of the time, a steal time
		// that shared cloud instances show (assumed), at both ends.
		{"vm", func() Host { h := hostKernel; h.Stalls = 20; return h }()},
		// A paced send wakes 5 µs late on average (assumed: the wake-up
		// latency of a timer on an idle, non-real-time kernel).
		{"wake5us", func() Host { h := hostKernel; h.Wake = 5 * time.Microsecond; return h }()},
		{"user", Host{Clock: User, SendCost: time.Microsecond}},
		{"delays independent", Host{Clock: Kernel, SendCost: time.Microsecond, Jitter: Independent, Delay: 50 * time.Microsecond}},
		{"delays correlated", Host{Clock: Kernel, SendCost: time.Microsecond, Jitter: Correlated, Delay: 50 * time.Microsecond}},
	}
	for _, c := range []float64{100e6, 1e9} {
		for _, h := range hosts {
			for _, t := range []Traffic{{Model: Poisson, Load: 0.5}, {Model: TCP, Load: 0.5}} {
				cells = append(cells, Cell{
					Name:  fmt.Sprintf("%s 1500 %s %s %.0f%%", rateName(c), h.name, t.Model, 100*t.Load),
					Hops:  []Hop{{Rate: access(c)}, {Rate: c, Cross: t}},
					Probe: defaultMode().probe(),
					Host:  h.host,
				})
			}
		}
	}
	// Three hops: loaded faster links before and after the narrow one;
	// and the tight link (least available bandwidth) a faster one than
	// the narrow link.
	for _, c := range []float64{10e6, 1e9} {
		for _, load := range []float64{0.2, 0.5, 0.8} {
			cells = append(cells, Cell{
				Name: fmt.Sprintf("%s 1500 kernel 3-hop poisson %.0f%%", rateName(c), 100*load),
				Hops: []Hop{{Rate: access(c)}, {Rate: 4 * c, Cross: Traffic{Model: Poisson, Load: 0.5}},
					{Rate: c, Cross: Traffic{Model: Poisson, Load: load}}, {Rate: 2 * c, Cross: Traffic{Model: Poisson, Load: 0.3}}},
				Probe: defaultMode().probe(),
				Host:  hostKernel,
			})
		}
		for _, m := range []Model{Poisson, TCP} {
			cells = append(cells, Cell{
				Name:  fmt.Sprintf("%s 1500 kernel tight-not-narrow %s", rateName(c), m),
				Hops:  []Hop{{Rate: access(c)}, {Rate: c, Cross: Traffic{Model: Poisson, Load: 0.1}}, {Rate: 2 * c, Cross: Traffic{Model: m, Load: 0.8}}},
				Probe: defaultMode().probe(),
				Host:  hostKernel,
			})
		}
	}
	// The fixed modes beside the default.
	for _, c := range []float64{10e6, 1e9} {
		for _, t := range []Traffic{{Model: Poisson, Load: 0.5}, {Model: TCP, Load: 0.5}} {
			for _, mode := range Modes {
				cells = append(cells, Cell{
					Name:  fmt.Sprintf("%s %s %.0f%% %s", rateName(c), t.Model, 100*t.Load, mode.Name),
					Hops:  []Hop{{Rate: access(c)}, {Rate: c, Cross: t}},
					Probe: mode.probe(),
					Host:  hostKernel,
				})
			}
		}
	}
	return cells
}

// RunGrid runs each cell with seeds 1..runs on every CPU and returns the
// figures in the cells' order.
func RunGrid(cells []Cell, runs int) []Stats {
	out := make([]Stats, len(cells))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = runCell(cells[i], runs)
			}
		}()
	}
	for i := range cells {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func runCell(c Cell, runs int) Stats {
	st := Stats{Cell: c, Runs: runs}
	var dbc, abw, signed, bytes, half []float64
	var dur []time.Duration
	covered, dbcCovered, held := 0, 0, 0
	for seed := range runs {
		r := Run(Scenario{Hops: c.Hops, Probe: c.Probe, Host: c.Host, Seed: uint64(seed + 1)})
		bytes = append(bytes, float64(r.Packets*c.Probe.Size))
		dur = append(dur, r.Duration)
		if r.CapErr == nil {
			dbc = append(dbc, math.Abs(r.Capacity.DBC-r.Truth.C)/r.Truth.C)
			if r.Capacity.DBCLow <= r.Truth.C && r.Truth.C <= r.Capacity.DBCHigh {
				dbcCovered++
			}
		}
		if r.CapErr != nil || r.CrossErr != nil {
			st.Failed++
			if r.DBCMin > 0 {
				st.Bounded++
				if r.DBCMin <= r.Truth.C {
					held++
				}
			}
			continue
		}
		e := (r.Cross.ABW - r.Truth.ABW) / r.Truth.C
		abw, signed = append(abw, math.Abs(e)), append(signed, e)
		half = append(half, (r.Cross.ABWHigh-r.Cross.ABWLow)/2/r.Truth.C)
		if r.Cross.ABWLow <= r.Truth.ABW && r.Truth.ABW <= r.Cross.ABWHigh {
			covered++
			held++
		}
	}
	st.Held = float64(held) / float64(runs)
	if n := len(abw); n > 0 {
		st.Coverage = float64(covered) / float64(n)
	}
	if n := len(dbc); n > 0 {
		st.DBCCover = float64(dbcCovered) / float64(n)
	}
	st.HalfWidth = quantile(half, 0.5)
	st.DBCMedian, st.ABWMedian, st.ABWP90 = quantile(dbc, 0.5), quantile(abw, 0.5), quantile(abw, 0.9)
	st.Bias, st.Bytes = quantile(signed, 0.5), quantile(bytes, 0.5)
	slices.Sort(dur)
	st.Time = dur[len(dur)/2]
	return st
}

// quantile of values (NaN when there are none).
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// WriteGrid prints the figures as a table.
func WriteGrid(w io.Writer, stats []Stats) {
	fmt.Fprintf(w, "%-46s %5s %3s %5s | %7s %5s | %7s %7s %7s | %6s %5s | %7s %8s | %s\n", "cell", "fail", "bnd", "held",
		"DBC err", "cover", "ABW med", "p90", "bias", "±half", "cover", "KB fwd", "time", "rule")
	pct := func(v float64) string {
		if math.IsNaN(v) {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*v)
	}
	for _, s := range stats {
		rule := "-"
		switch {
		case s.Estimate():
			rule = "estimate"
		case s.Honest():
			rule = "honest"
		}
		fmt.Fprintf(w, "%-46s %2d/%-2d %3d %5.0f | %7s %5.0f | %7s %7s %7s | %6s %5.0f | %7.0f %8s | %s\n", s.Cell.Name, s.Failed, s.Runs,
			s.Bounded, 100*s.Held, pct(s.DBCMedian), 100*s.DBCCover, pct(s.ABWMedian), pct(s.ABWP90), pct(s.Bias), pct(s.HalfWidth),
			100*s.Coverage, s.Bytes/1000, s.Time.Round(time.Millisecond), rule)
	}
}

// WriteHeadline prints, per capacity, how many cells of the users' world
// (one hop, the default) meet each rule, and which do not meet the honest
// one.
func WriteHeadline(w io.Writer, stats []Stats) {
	type count struct{ cells, honest, estimate int }
	by := map[float64]*count{}
	var dishonest []string
	for _, s := range stats {
		if !s.Cell.World {
			continue
		}
		c := s.Cell.Hops[1].Rate
		if by[c] == nil {
			by[c] = &count{}
		}
		by[c].cells++
		if s.Honest() {
			by[c].honest++
		} else {
			dishonest = append(dishonest, s.Cell.Name)
		}
		if s.Estimate() {
			by[c].estimate++
		}
	}
	fmt.Fprintf(w, "%-6s %6s %8s %9s\n", "rate", "cells", "honest", "estimate")
	for _, c := range Rates {
		if n := by[c]; n != nil {
			fmt.Fprintf(w, "%-6s %6d %8d %9d\n", rateName(c), n.cells, n.honest, n.estimate)
		}
	}
	if len(dishonest) > 0 {
		fmt.Fprintf(w, "not honest: %s\n", strings.Join(dishonest, "; "))
	}
}
