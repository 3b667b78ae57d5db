package sim

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
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
	Name  string // e.g. "100M poisson 50% trains"
	Hops  []Hop
	Probe Probe
	Host  Host
}

// Stats are a cell's figures over its runs.
type Stats struct {
	Cell      Cell
	Runs      int
	Failed    int     // runs with no ABW
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

// hostAt is the host a user would have at a capacity: a sender link ten
// times faster (1 to 100 Gbit/s), 1 µs per packet of a send batch, kernel
// stamps below 1 Gbit/s and hardware stamps from 1 Gbit/s.
func hostAt(c float64) (Host, float64) {
	h := Host{Clock: Kernel, SendCost: time.Microsecond}
	if c >= 1e9 {
		h.Clock = Hardware
	}
	return h, min(max(10*c, 1e9), 100e9)
}

// rateName is 10M, 1G and the like.
func rateName(bps float64) string {
	if bps >= 1e9 {
		return fmt.Sprintf("%gG", bps/1e9)
	}
	return fmt.Sprintf("%gM", bps/1e6)
}

// DefaultGrid is every capacity from 1 Mbit/s to 10 Gbit/s × loads 0 to
// 90 % × every cross-traffic model × every mode, one hop with the host of
// hostAt; then three-hop paths, and host variants at 100 Mbit/s.
func DefaultGrid() []Cell {
	var cells []Cell
	for _, c := range []float64{1e6, 10e6, 100e6, 1e9, 10e9} {
		host, access := hostAt(c)
		for _, m := range []Model{CBR, Poisson, Mix, Pareto, TCP} {
			for _, load := range []float64{0, 0.2, 0.5, 0.8, 0.9} {
				if load == 0 && m != CBR {
					continue // an idle path is an idle path
				}
				for _, mode := range Modes {
					cells = append(cells, Cell{
						Name:  fmt.Sprintf("%s %s %.0f%% %s", rateName(c), m, 100*load, mode.Name),
						Hops:  []Hop{{Rate: access}, {Rate: c, Cross: Traffic{Model: m, Load: load}}},
						Probe: mode.probe(),
						Host:  host,
					})
				}
			}
		}
	}
	// Three hops: a loaded faster link before and after the narrow one.
	for _, c := range []float64{10e6, 1e9} {
		host, access := hostAt(c)
		for _, load := range []float64{0.2, 0.5, 0.8} {
			for _, mode := range Modes {
				cells = append(cells, Cell{
					Name: fmt.Sprintf("%s 3-hop poisson %.0f%% %s", rateName(c), 100*load, mode.Name),
					Hops: []Hop{{Rate: access}, {Rate: 4 * c, Cross: Traffic{Model: Poisson, Load: 0.5}},
						{Rate: c, Cross: Traffic{Model: Poisson, Load: load}}, {Rate: 2 * c, Cross: Traffic{Model: Poisson, Load: 0.3}}},
					Probe: mode.probe(),
					Host:  host,
				})
			}
		}
	}
	// Hosts at 100 Mbit/s under 50 % Poisson load.
	for _, v := range []struct {
		name string
		host Host
	}{
		{"hardware", Host{Clock: Hardware, SendCost: time.Microsecond}},
		{"kernel+coalesce 50us", Host{Clock: Kernel, SendCost: time.Microsecond, Coalesce: 50 * time.Microsecond}},
		{"user", Host{Clock: User, SendCost: time.Microsecond}},
		{"delays independent", Host{Clock: Kernel, SendCost: time.Microsecond, Jitter: Independent, Delay: 50 * time.Microsecond}},
		{"delays correlated", Host{Clock: Kernel, SendCost: time.Microsecond, Jitter: Correlated, Delay: 50 * time.Microsecond}},
	} {
		for _, mode := range []Mode{Modes[0], Modes[1], defaultMode()} {
			cells = append(cells, Cell{
				Name:  fmt.Sprintf("100M poisson 50%% %s %s", mode.Name, v.name),
				Hops:  []Hop{{Rate: 1e9}, {Rate: 100e6, Cross: Traffic{Model: Poisson, Load: 0.5}}},
				Probe: mode.probe(),
				Host:  v.host,
			})
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
	covered, dbcCovered := 0, 0
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
			continue
		}
		e := (r.Cross.ABW - r.Truth.ABW) / r.Truth.C
		abw, signed = append(abw, math.Abs(e)), append(signed, e)
		half = append(half, (r.Cross.ABWHigh-r.Cross.ABWLow)/2/r.Truth.C)
		if r.Cross.ABWLow <= r.Truth.ABW && r.Truth.ABW <= r.Cross.ABWHigh {
			covered++
		}
	}
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
	fmt.Fprintf(w, "%-44s %5s | %7s %5s | %7s %7s %7s | %6s %5s | %7s %8s\n", "cell", "fail", "DBC err", "cover",
		"ABW med", "p90", "bias", "±half", "cover", "KB fwd", "time")
	pct := func(v float64) string {
		if math.IsNaN(v) {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*v)
	}
	for _, s := range stats {
		fmt.Fprintf(w, "%-44s %2d/%-2d | %7s %5.0f | %7s %7s %7s | %6s %5.0f | %7.0f %8s\n", s.Cell.Name, s.Failed, s.Runs,
			pct(s.DBCMedian), 100*s.DBCCover, pct(s.ABWMedian), pct(s.ABWP90), pct(s.Bias), pct(s.HalfWidth), 100*s.Coverage,
			s.Bytes/1000, s.Time.Round(time.Millisecond))
	}
}
