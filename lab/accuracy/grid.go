//go:build linux

package accuracy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/abing-net/abing/estimator"
	"github.com/abing-net/abing/lab/testbed"
	"github.com/abing-net/abing/measure"
)

// Mode is a way of measuring: a name for the tables and its settings.
type Mode struct {
	Name   string
	Config func() measure.Config
}

// The modes the reports compare.
var (
	// Pairs is 16 packet pairs a phase, the fixed mode of --pairs.
	Pairs = Mode{"pairs", func() measure.Config { return fixed(16, 2) }}
	// Trains is 16 ten-packet trains a phase (--train-len 10).
	Trains = Mode{"trains", func() measure.Config { return fixed(16, 10) }}
	// Adaptive is the default: rounds of paced trains until the interval
	// is narrow enough or the byte budget is spent.
	Adaptive = Mode{"adaptive", measure.Defaults}
	// ManyPairs is 96 pairs a phase: as many windows as the adaptive
	// default's three rounds hold, so that a bias of pairs shows above
	// their sampling error (5 % of C at 50 % load, against 15 % for 16).
	ManyPairs = Mode{"pairs96", func() measure.Config { return fixed(96, 2) }}
)

func fixed(trains, n int) measure.Config {
	c := measure.Defaults()
	c.Trains, c.TrainLen = trains, n
	return c.Fixed()
}

// Cell is one scenario of the accuracy grid.
type Cell struct {
	Rate   float64      // nominal bottleneck rate, both directions, bit/s
	Kind   testbed.Kind // cross traffic kind
	Load   float64      // UDP cross traffic as a fraction of the calibrated capacity
	Dir    testbed.Direction
	Mode   Mode
	Stress bool // beyond what the emulated link can be trusted for
	// Ordinary runs the UDP generator at ordinary priority (testbed.Flow).
	Ordinary bool
	// Busy keeps one CPU busy during the measurement (testbed.StartBusy).
	Busy bool
	// Size is the probe size, and with it the links' MTU and the
	// bucket's frame (9000: jumbo frames); 0 is 1500.
	Size int
	// RTT is added to the path's round-trip time, half each way, by the
	// testbed's delay element.
	RTT time.Duration
}

// size is the cell's probe size.
func (c Cell) size() int {
	if c.Size > 0 {
		return c.Size
	}
	return 1500
}

// HasCross reports whether the cell runs cross traffic.
func (c Cell) HasCross() bool { return c.Kind == testbed.TCP || c.Load > 0 }

// Name describes the cell, e.g. "100M cbr 50% fwd pairs"; an ordinary-
// priority generator adds "(ord)".
func (c Cell) Name() string {
	x := "idle"
	switch {
	case c.Kind == testbed.TCP:
		x = "tcp"
	case c.Load > 0:
		x = fmt.Sprintf("%s %.0f%%", c.Kind, 100*c.Load)
	}
	dir := "fwd"
	if c.Dir == testbed.Reverse {
		dir = "rev"
	}
	if c.Ordinary {
		x += " (ord)"
	}
	if c.Busy {
		x += " (busy)"
	}
	if c.Size > 0 && c.Size != 1500 {
		dir += fmt.Sprintf(" %dB", c.Size)
	}
	if c.RTT > 0 {
		dir += fmt.Sprintf(" rtt+%v", c.RTT)
	}
	return fmt.Sprintf("%gM %s %s %s", c.Rate/1e6, x, dir, c.Mode.Name)
}

// DefaultGrid is the report's grid: 10/50/100/200 Mbit/s × 0/20/50/80 %
// constant-rate cross traffic, Poisson and TCP at 100 Mbit/s, cross traffic
// in the reverse direction at 100 Mbit/s, and a 500 Mbit/s stress row, each
// with pairs, 10-packet trains and the adaptive default.
func DefaultGrid() []Cell {
	var cells []Cell
	for _, n := range []Mode{Pairs, Trains, Adaptive} {
		for _, r := range []float64{10e6, 50e6, 100e6, 200e6} {
			for _, l := range []float64{0, 0.2, 0.5, 0.8} {
				cells = append(cells, Cell{Rate: r, Kind: testbed.CBR, Load: l, Mode: n})
			}
			if r == 100e6 {
				cells = append(cells,
					Cell{Rate: r, Kind: testbed.Poisson, Load: 0.5, Mode: n},
					Cell{Rate: r, Kind: testbed.TCP, Mode: n},
					Cell{Rate: r, Kind: testbed.CBR, Load: 0.5, Dir: testbed.Reverse, Mode: n})
			}
		}
		cells = append(cells, Cell{Rate: 500e6, Kind: testbed.CBR, Load: 0, Mode: n, Stress: true},
			Cell{Rate: 500e6, Kind: testbed.CBR, Load: 0.5, Mode: n, Stress: true})
	}
	return cells
}

// QuickGrid is a small grid at 100 Mbit/s, for a first look.
func QuickGrid() []Cell {
	var cells []Cell
	for _, n := range []Mode{Pairs, Trains, Adaptive} {
		for _, l := range []float64{0, 0.5} {
			cells = append(cells, Cell{Rate: 100e6, Kind: testbed.CBR, Load: l, Mode: n})
		}
	}
	return cells
}

// JumboGrid is the default with 9000-byte probes on paths of MTU 9000
// (a 9014-byte bucket), where the emulated link is faithful well past the
// 20 Mbit/s of 1500-byte frames: 100, 200, 500 and 1000 Mbit/s, idle,
// with half the calibrated capacity of constant-rate cross traffic
// (1500-byte packets), and with one TCP flow; and the 200 Mbit/s path
// again with LongRTT added to its round trip.
func JumboGrid() []Cell {
	var cells []Cell
	for _, r := range []float64{100e6, 200e6, 500e6, 1000e6} {
		cells = append(cells,
			Cell{Rate: r, Kind: testbed.CBR, Mode: Adaptive, Size: 9000},
			Cell{Rate: r, Kind: testbed.CBR, Load: 0.5, Mode: Adaptive, Size: 9000},
			Cell{Rate: r, Kind: testbed.TCP, Mode: Adaptive, Size: 9000})
	}
	return append(cells,
		Cell{Rate: 200e6, Kind: testbed.CBR, Load: 0.5, Mode: Adaptive, Size: 9000, RTT: LongRTT},
		Cell{Rate: 200e6, Kind: testbed.TCP, Mode: Adaptive, Size: 9000, RTT: LongRTT})
}

// LongRTT is the round trip a transcontinental path adds (50 ms): what a
// run must still finish in about two seconds through.
const LongRTT = 50 * time.Millisecond

// BiasGrid is the selection-bias check: at 10 and 20 Mbit/s (rates where
// the emulated link is steady here) with 50 % constant-rate cross traffic
// forward, from a generator at real-time and at ordinary priority, the
// adaptive default, trains and 96 pairs (enough windows for a bias of pairs
// to stand out of their noise); and at 20 Mbit/s the default and 96 pairs
// with one CPU kept busy besides the ordinary-priority generator, the
// condition under which 96 pairs read half the cross traffic (issue 23).
func BiasGrid() []Cell {
	var cells []Cell
	for _, r := range []float64{10e6, 20e6} {
		for _, ord := range []bool{false, true} {
			for _, m := range []Mode{Adaptive, Trains, ManyPairs} {
				cells = append(cells, Cell{Rate: r, Kind: testbed.CBR, Load: 0.5, Mode: m, Ordinary: ord})
			}
		}
	}
	for _, m := range []Mode{Adaptive, ManyPairs} {
		cells = append(cells, Cell{Rate: 20e6, Kind: testbed.CBR, Load: 0.5, Mode: m, Ordinary: true, Busy: true})
	}
	return cells
}

// Row is the outcome of one cell over its repeats.
type Row struct {
	Cell     Cell
	Truth    Truth // of the direction the cell loads (forward unless Dir says)
	DBC, ABW float64
	XTR      float64
	ABwEXTR  float64 // ABwE's published reduction, for comparison
	DBCErr   float64 // relative to the calibrated capacity
	ABWErr   float64 // relative to the calibrated capacity
	XTRErr   float64 // relative to the calibrated capacity
	ABwEErr  float64 // ABW by ABwE's reduction, relative to capacity
	WorstDBC float64 // largest |DBC error| of any repeat
	WorstABW float64 // largest |ABW error| of any repeat
	WorstXTR float64 // largest |XTR error| of any repeat
	Inside   int     // repeats whose ABW interval held the truth
	Half     float64 // median half-width of the ABW interval, bit/s
	Failed   int     // repeats without an estimate
	Busy     int     // of them, cross traffic refused for a busy host (measure.ErrBusyHost)
	Runs     int
	Packets  int           // per estimate, both directions, the most of any repeat
	Bytes    int           // likewise
	Duration time.Duration // likewise
	Source   string
	Err      string // last failure
}

// RunGrid measures every cell repeats times and writes the table to w,
// with progress on log.
func RunGrid(ctx context.Context, cells []Cell, repeats int, w, log io.Writer) ([]Row, error) {
	type path struct {
		rate float64
		size int
		rtt  time.Duration
	}
	paths := map[path][]Cell{}
	var order []path
	for _, c := range cells {
		p := path{c.Rate, c.size(), c.RTT}
		if _, ok := paths[p]; !ok {
			order = append(order, p)
		}
		paths[p] = append(paths[p], c)
	}
	var rows []Row
	done := 0
	for _, p := range order {
		added := ""
		if p.rtt > 0 {
			added = fmt.Sprintf(", %v added to the round trip,", p.rtt)
		}
		fmt.Fprintf(log, "building testbed at %g Mbit/s for %d-byte probes%s and calibrating...\n", p.rate/1e6, p.size, added)
		env, err := Setup(ctx, testbed.Config{Forward: p.rate, Reverse: p.rate, ProbeSize: p.size, Delay: p.rtt / 2})
		if err != nil {
			return rows, err
		}
		fmt.Fprintf(log, "  calibrated: forward %.2f, reverse %.2f Mbit/s (nominal %g)\n",
			env.Calibration[0].Capacity/1e6, env.Calibration[1].Capacity/1e6, p.rate/1e6)
		for _, c := range paths[p] {
			row, err := env.cell(ctx, c, repeats)
			if err != nil {
				env.Close()
				return rows, err
			}
			rows = append(rows, row)
			done++
			fmt.Fprintf(log, "  [%d/%d] %s: DBC %.1f (%+.1f%%) ABW %.1f (%+.1f%% of C)\n", done, len(cells),
				c.Name(), row.DBC/1e6, 100*row.DBCErr, row.ABW/1e6, 100*row.ABWErr)
		}
		if err := env.Close(); err != nil {
			return rows, err
		}
	}
	WriteTable(w, rows)
	return rows, nil
}

func (e *Env) cell(ctx context.Context, c Cell, repeats int) (Row, error) {
	row := Row{Cell: c, Runs: repeats}
	var dbc, abw, xtr, abwe, half []float64
	// The emulated link's real rate drifts by a few percent with the
	// machine's load: calibrate again for every scenario.
	if err := e.Recalibrate(ctx, c.Dir); err != nil {
		return row, err
	}
	cap := e.Calibration[c.Dir].Capacity
	for i := range repeats {
		cfg := c.Mode.Config()
		cfg.Size = c.size()
		var flows []testbed.Flow
		if c.HasCross() {
			flows = append(flows, testbed.Flow{Kind: c.Kind, Dir: c.Dir, Rate: c.Load * cap, Seed: uint64(i + 1), Ordinary: c.Ordinary})
		}
		out, err := e.measureBusy(ctx, cfg, flows, c.Busy)
		if err != nil {
			if ctx.Err() != nil {
				return row, ctx.Err()
			}
			row.Failed++
			row.Err = err.Error()
			continue
		}
		d := &out.Result.Forward
		if c.Dir == testbed.Reverse {
			d = &out.Result.Reverse
		}
		t := out.Truth[c.Dir]
		row.Truth.Nominal, row.Truth.Capacity = t.Nominal, t.Capacity
		row.Truth.XTR += t.XTR / float64(repeats)
		row.Packets = max(row.Packets, out.Result.Forward.Packets+out.Result.Reverse.Packets)
		row.Bytes = max(row.Bytes, out.Result.Forward.Bytes+out.Result.Reverse.Bytes)
		row.Duration = max(row.Duration, out.Result.Duration)
		row.Source = d.Source.String()
		if d.CapErr != nil || d.CrossErr != nil {
			row.Failed++
			if d.CapErr == nil && errors.Is(d.CrossErr, measure.ErrBusyHost) {
				row.Busy++
			}
			row.Err = d.Err().Error()
			continue
		}
		dbc = append(dbc, d.Capacity.DBC)
		abw = append(abw, d.Cross.ABW)
		xtr = append(xtr, d.Cross.XTR)
		abwe = append(abwe, d.ABwE.XTR)
		half = append(half, (d.Cross.ABWHigh-d.Cross.ABWLow)/2)
		row.WorstDBC = math.Max(row.WorstDBC, math.Abs(d.Capacity.DBC-cap)/cap)
		row.WorstABW = math.Max(row.WorstABW, math.Abs(d.Cross.ABW-t.ABW)/cap)
		row.WorstXTR = math.Max(row.WorstXTR, math.Abs(d.Cross.XTR-t.XTR)/cap)
		if d.Cross.ABWLow <= t.ABW && t.ABW <= d.Cross.ABWHigh {
			row.Inside++
		}
	}
	row.Truth.ABW = max(0, row.Truth.Capacity-row.Truth.XTR)
	if len(dbc) == 0 {
		return row, nil
	}
	row.DBC, row.ABW, row.XTR, row.ABwEXTR, row.Half = estimator.Median(dbc), estimator.Median(abw), estimator.Median(xtr), estimator.Median(abwe), estimator.Median(half)
	row.DBCErr = (row.DBC - cap) / cap
	row.ABWErr = (row.ABW - row.Truth.ABW) / cap
	row.XTRErr = (row.XTR - row.Truth.XTR) / cap
	row.ABwEErr = ((row.DBC - row.ABwEXTR) - row.Truth.ABW) / cap
	return row, nil
}

// measureBusy is Measure, with one CPU kept busy throughout if busy.
func (e *Env) measureBusy(ctx context.Context, cfg measure.Config, flows []testbed.Flow, busy bool) (*Outcome, error) {
	if !busy {
		return e.Measure(ctx, cfg, flows)
	}
	hog, err := e.TB.StartBusy(ctx)
	if err != nil {
		return nil, err
	}
	defer hog.Stop()
	return e.Measure(ctx, cfg, flows)
}

// Targets: DBC within 5 % of capacity everywhere up to 200 Mbit/s; ABW
// within 10 % of capacity under constant-rate and Poisson cross traffic.
const (
	TargetDBC = 0.05
	TargetABW = 0.10
)

// Verdict says whether a row meets the targets ("ok", "MISS dbc", …).
func (r Row) Verdict() string {
	switch {
	case r.Failed == r.Runs:
		return "NO ESTIMATE"
	case r.Cell.Stress:
		return "stress"
	}
	var miss []string
	if math.Abs(r.DBCErr) > TargetDBC {
		miss = append(miss, "dbc")
	}
	if r.Cell.Kind != testbed.TCP && math.Abs(r.ABWErr) > TargetABW {
		miss = append(miss, "abw")
	}
	if len(miss) == 0 {
		return "ok"
	}
	return fmt.Sprintf("MISS %v", miss)
}

// WriteTable prints rows as a fixed-width table. Rates in Mbit/s; errors in
// percent of the calibrated capacity; "worst" is the largest error of any
// single repeat; "±" is the median half-width of the ABW interval; "in" counts the repeats whose ABW interval held the truth;
// packets, bytes (both directions) and time are the most any repeat took.
func WriteTable(w io.Writer, rows []Row) {
	name := 37 // the scenario column: as wide as its longest name
	for _, r := range rows {
		name = max(name, len(r.Cell.Name()))
	}
	fmt.Fprintf(w, "%-*s %6s %6s | %6s %6s %6s | %6s %6s | %6s %6s %5s %6s %6s %5s | %5s %6s %6s | %s\n",
		name, "scenario", "nomC", "trueC", "DBC", "err%", "worst", "trXTR", "XTR", "trABW", "ABW", "±", "err%", "worst", "in",
		"pkts", "KB", "ms", "verdict (ABwE XTR, err% of ABW)")
	for _, r := range rows {
		if r.Failed == r.Runs {
			fmt.Fprintf(w, "%-*s %6.1f %6.1f | no estimate in %d runs: %s\n", name, r.Cell.Name(),
				r.Truth.Nominal/1e6, r.Truth.Capacity/1e6, r.Runs, r.Err)
			continue
		}
		fmt.Fprintf(w, "%-*s %6.1f %6.1f | %6.1f %+6.1f %6.1f | %6.1f %6.1f | %6.1f %6.1f %5.1f %+6.1f %6.1f %5s | %5d %6.1f %6.0f | %s (%.1f, %+.1f)",
			name, r.Cell.Name(), r.Truth.Nominal/1e6, r.Truth.Capacity/1e6,
			r.DBC/1e6, 100*r.DBCErr, 100*r.WorstDBC,
			r.Truth.XTR/1e6, r.XTR/1e6,
			r.Truth.ABW/1e6, r.ABW/1e6, r.Half/1e6, 100*r.ABWErr, 100*r.WorstABW, fmt.Sprintf("%d/%d", r.Inside, r.Runs-r.Failed),
			r.Packets, float64(r.Bytes)/1000, float64(r.Duration.Microseconds())/1000,
			r.Verdict(), r.ABwEXTR/1e6, 100*r.ABwEErr)
		if r.Failed > 0 {
			fmt.Fprintf(w, " [%d/%d runs failed: %s]", r.Failed, r.Runs, r.Err)
		}
		fmt.Fprintln(w)
	}
}
