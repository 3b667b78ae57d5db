//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/lab/accuracy"
	"github.com/abing-net/abing/lab/testbed"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/record"
)

func demoCommand() *cobra.Command {
	var rate, cross float64
	var rtt time.Duration
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Measure an emulated path (needs root): 20 Mbit/s bottleneck, 10 Mbit/s cross traffic",
		Long: "demo builds a test path out of Linux network namespaces (sender, router, reflector,\n" +
			"cross-traffic host; addresses in 198.18.0.0/15), shapes the router's links with tc,\n" +
			"calibrates them, sends constant-rate UDP cross traffic through the forward bottleneck,\n" +
			"and prints abing's estimates next to what the router really forwarded.\n\n" +
			"The default rate is one the emulated link forwards steadily on a small virtual machine\n" +
			"(`abing-lab accuracy --stability` shows how steady it is at 10-100 Mbit/s here); above\n" +
			"about 20 Mbit/s the emulation, not abing, drifts by several per cent.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !(rate > 0 && cross >= 0 && cross < rate) || math.IsInf(rate, 0) { // NaN fails too
				return fmt.Errorf("want 0 < --cross (%g) < --rate (%g)", cross, rate)
			}
			if rtt < 0 || rtt > 2*time.Second {
				return fmt.Errorf("--rtt %v: want 0 to 2s", rtt)
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			return demo(ctx, cmd.OutOrStdout(), rate*1e6, cross*1e6, rtt)
		},
	}
	cmd.Flags().Float64Var(&rate, "rate", 20, "bottleneck rate in Mbit/s (both directions, nominal)")
	cmd.Flags().Float64Var(&cross, "cross", 10, "constant-rate cross traffic in Mbit/s (forward direction)")
	cmd.Flags().DurationVar(&rtt, "rtt", 0, "round-trip time to add to the path, half each way (e.g. 50ms)")
	return cmd
}

func demo(ctx context.Context, w io.Writer, rate, cross float64, rtt time.Duration) error {
	fmt.Fprintf(w, "building the test path (%g Mbit/s bottleneck each way", rate/1e6)
	if rtt > 0 {
		fmt.Fprintf(w, ", %v added to the round trip", rtt)
	}
	fmt.Fprintln(w, ") and calibrating it...")
	env, err := accuracy.Setup(ctx, testbed.Config{Forward: rate, Reverse: rate, Delay: rtt / 2})
	if err != nil {
		return err
	}
	defer env.Close()
	for _, c := range env.Calibration {
		fmt.Fprintf(w, "  %-7s bottleneck: nominal %.0f Mbit/s, really forwards %.1f Mbit/s of 1500-byte packets\n",
			c.Dir, c.Nominal/1e6, c.Capacity/1e6)
	}
	fmt.Fprintf(w, "starting %.0f Mbit/s of constant-rate UDP cross traffic through the forward bottleneck\n\n", cross/1e6)
	for _, m := range []struct {
		mode accuracy.Mode
		what string
	}{
		{accuracy.Adaptive, "the default: 16 pairs, then paced 10-packet trains until ABW is within ±10 % of DBC or 300 KB are spent"},
		{accuracy.Pairs, "--pairs 16: 16 pairs per phase"},
		{accuracy.Trains, "--train-len 10: 16 ten-packet trains per phase"},
	} {
		cfg, what := m.mode.Config(), m.what
		out, err := env.Measure(ctx, cfg, []testbed.Flow{{Kind: testbed.CBR, Dir: testbed.Forward, Rate: cross}})
		if err != nil {
			return err
		}
		r := out.Result
		fmt.Fprintf(w, "abing measure %s   (%s; %d packets, %.0f KB, %v)\n", env.Target(), what,
			r.Forward.Packets+r.Reverse.Packets, float64(r.Forward.Bytes+r.Reverse.Bytes)/1000, r.Duration.Round(time.Millisecond))
		fmt.Fprint(w, indent(r.Text()))
		recs := r.Records()
		for d, t := range out.Truth {
			fmt.Fprintf(w, "  truth %-7s DBC %.1f Mbit/s  XTR %.1f  ABW %.1f%s\n",
				testbed.Direction(d), t.Capacity/1e6, t.XTR/1e6, t.ABW/1e6, inside(&recs[d], t.ABW/1e6))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "(truth: capacity from saturating the idle bottleneck; XTR from the router's tc counters)")
	return nil
}

// inside says whether the truth lies in the record's ABW interval.
func inside(r *record.Record, abw float64) string {
	if r.ABWLow == nil || r.ABWHigh == nil {
		return ""
	}
	if *r.ABWLow <= abw && abw <= *r.ABWHigh {
		return "  (inside the ABW interval)"
	}
	return "  (OUTSIDE the ABW interval)"
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

func accuracyCommand() *cobra.Command {
	var repeats, size int
	var quick, stability, bias, jumbo bool
	var write string
	cmd := &cobra.Command{
		Use:   "accuracy",
		Short: "Print the accuracy report on emulated paths (needs root; about 10 minutes)",
		Long: "accuracy measures a grid of emulated paths (10/50/100/200 Mbit/s x 0/20/50/80 % constant-rate\n" +
			"cross traffic, Poisson, TCP and reverse-direction cross traffic at 100 Mbit/s, a 500 Mbit/s\n" +
			"stress row; with pairs and with 10-packet trains) and prints scenario, truth, estimate and error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if repeats < 1 {
				return fmt.Errorf("--repeats %d: want at least 1", repeats)
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			block := "report"
			switch {
			case btoi(stability)+btoi(bias)+btoi(jumbo) > 1:
				return errors.New("--stability, --bias and --jumbo exclude each other")
			case stability:
				block = "stability"
			case bias:
				block = "bias"
			case jumbo:
				block = "jumbo"
			}
			return printReport(cmd.OutOrStdout(), write, block, func(w io.Writer) error {
				return runAccuracy(ctx, cmd, w, stability, bias, jumbo, quick, repeats, size)
			})
		},
	}
	cmd.Flags().IntVar(&repeats, "repeats", 3, "measurements per scenario")
	cmd.Flags().BoolVar(&quick, "quick", false, "a small grid (100 Mbit/s only), about a minute")
	cmd.Flags().BoolVar(&stability, "stability", false,
		"instead of the grid: how steady the emulated link is at 10/20/50/100 Mbit/s (calibrations and idle-path DBC, --repeats rounds each)")
	cmd.Flags().BoolVar(&bias, "bias", false,
		"instead of the grid: the selection-bias check (10 and 20 Mbit/s, 50 % cross traffic from a generator at real-time and at ordinary priority; adaptive, trains, 96 pairs)")
	cmd.Flags().BoolVar(&jumbo, "jumbo", false,
		"instead of the grid: the default with 9000-byte probes on MTU-9000 paths at 100, 200, 500 and 1000 Mbit/s (idle, 50 % constant-rate, one TCP flow)")
	cmd.Flags().IntVar(&size, "size", 1500, "with --stability: probe and calibration packet size (9000: jumbo frames on the veths)")
	cmd.Flags().StringVar(&write, "write", "", "also write the report into this Markdown file, between its <!-- begin report --> and <!-- end report --> lines (with --stability: stability, with --bias: bias, with --jumbo: jumbo)")
	return cmd
}

// btoi is 1 for true.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runAccuracy prints the grid report (the bias or the jumbo grid's with
// those set), or with stability the stability table.
func runAccuracy(ctx context.Context, cmd *cobra.Command, w io.Writer, stability, bias, jumbo, quick bool, repeats, size int) error {
	if stability {
		if size < 100 || size > measure.MaxSize {
			return fmt.Errorf("--size %d: want 100 to %d bytes", size, measure.MaxSize)
		}
		fmt.Fprintf(w, "abing testbed stability, %s\n", time.Now().UTC().Format(time.DateOnly))
		fmt.Fprintf(w, "machine: %s, %d CPUs, kernel %s; links: veth through a one-frame tbf\n", cpuModel(), runtime.NumCPU(), kernel())
		fmt.Fprintf(w, "%d rounds per rate of: calibrate, 10-packet trains, default pairs (idle path, forward)\n\n", repeats)
		rows, err := accuracy.Stability(ctx, []float64{10e6, 20e6, 50e6, 100e6}, size, repeats, cmd.ErrOrStderr())
		accuracy.WriteStability(w, rows)
		return err
	}
	cells := accuracy.DefaultGrid()
	switch {
	case bias:
		cells = accuracy.BiasGrid()
	case jumbo:
		cells = accuracy.JumboGrid()
	case quick:
		cells = accuracy.QuickGrid()
	}
	fmt.Fprintf(w, "abing accuracy report, %s\n", time.Now().UTC().Format(time.DateOnly))
	fmt.Fprintf(w, "machine: %s, %d CPUs, kernel %s; links: veth through a one-frame tbf\n", cpuModel(), runtime.NumCPU(), kernel())
	fmt.Fprintf(w, "each row: median of %d measurements in the mode named last (adaptive: the default; pairs: --pairs 16;\n"+
		"trains: --train-len 10; pairs96: --pairs 96); (ord): the cross-traffic generator at ordinary priority;\n"+
		"(busy): one CPU kept busy besides\n\n", repeats)
	_, err := accuracy.RunGrid(ctx, cells, repeats, w, cmd.ErrOrStderr())
	return err
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "unknown"
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

func runChild() { testbed.RunChild() }

func commands() []*cobra.Command {
	return []*cobra.Command{demoCommand(), accuracyCommand(), simCommand(), meshscaleCommand()}
}
