//go:build linux

package accuracy

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/abing-net/abing/lab/testbed"
	"github.com/abing-net/abing/measure"
)

// StabilityRow is how steady one emulated link was: repeated calibrations
// interleaved with back-to-back measurements of the idle path, forward
// direction.
type StabilityRow struct {
	Nominal   float64   // bit/s asked of tc
	ProbeSize int       // IP bytes of probes and calibration packets
	Cal       []float64 // calibrated capacity of each repeat, bit/s
	Trains    []float64 // DBC read by 10-packet trains right after each calibration
	Pairs     []float64 // DBC read by default pairs right after that
	Failed    int       // measurements without a DBC
}

// Stability measures, for each nominal rate, repeats rounds of: calibrate
// the forward bottleneck, read its DBC with 10-packet trains, read it with
// default pairs. It tells which rates the emulated link is a stable link at
// on this machine, and how far trains and pairs stray from the calibration
// taken just before them: the numbers the bounds of the CI-gating testbed
// tests are chosen from.
func Stability(ctx context.Context, rates []float64, probeSize, repeats int, log io.Writer) ([]StabilityRow, error) {
	var rows []StabilityRow
	for _, rate := range rates {
		env, err := Setup(ctx, testbed.Config{Forward: rate, Reverse: rate, ProbeSize: probeSize})
		if err != nil {
			return rows, err
		}
		row := StabilityRow{Nominal: rate, ProbeSize: probeSize}
		for i := range repeats {
			if err := env.Recalibrate(ctx, testbed.Forward); err != nil {
				env.Close()
				return rows, err
			}
			row.Cal = append(row.Cal, env.Calibration[testbed.Forward].Capacity)
			for _, n := range []int{10, 2} {
				// Trains: a fixed run of 10-packet trains (the adaptive
				// default has no budget for 16 of them and a round);
				// pairs: the default.
				cfg := measure.Defaults()
				if n != 2 {
					cfg = cfg.Fixed()
					cfg.TrainLen = n
				}
				cfg.Size = probeSize
				out, err := env.Measure(ctx, cfg, nil)
				if err == nil {
					err = out.Result.Forward.CapErr
				}
				dbc := 0.0
				switch {
				case ctx.Err() != nil:
					env.Close()
					return rows, ctx.Err()
				case err != nil:
					row.Failed++
					fmt.Fprintf(log, "  %gM %dB round %d, %d-packet trains: no DBC: %v\n", rate/1e6, probeSize, i+1, n, err)
				default:
					dbc = out.Result.Forward.Capacity.DBC
				}
				if n == 10 {
					row.Trains = append(row.Trains, dbc)
				} else {
					row.Pairs = append(row.Pairs, dbc)
				}
			}
			fmt.Fprintf(log, "  %gM %dB round %d: calibrated %.2f, trains %.2f, pairs %.2f Mbit/s\n", rate/1e6, probeSize, i+1,
				row.Cal[i]/1e6, row.Trains[i]/1e6, row.Pairs[i]/1e6)
		}
		if err := env.Close(); err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// WriteStability prints the rows: the spread of the calibrations (max/min
// − 1), and the ratio of each DBC to the calibration just before it.
func WriteStability(w io.Writer, rows []StabilityRow) {
	fmt.Fprintf(w, "%6s %5s | %-20s %6s | %-20s %-15s | %-20s %-15s\n", "nomC", "size",
		"calibrated min-max", "spread", "trains DBC min-max", "trains/cal", "pairs DBC min-max", "pairs/cal")
	for _, r := range rows {
		lo, hi := slices.Min(r.Cal), slices.Max(r.Cal)
		fmt.Fprintf(w, "%6g %5d | %8.2f - %-9.2f %5.1f%% | %s | %s", r.Nominal/1e6, r.ProbeSize, lo/1e6, hi/1e6, 100*(hi/lo-1),
			ratioCols(r.Trains, r.Cal), ratioCols(r.Pairs, r.Cal))
		if r.Failed > 0 {
			fmt.Fprintf(w, "  (%d without DBC)", r.Failed)
		}
		fmt.Fprintln(w)
	}
}

func ratioCols(dbc, cal []float64) string {
	var got, ratio []float64
	for i, v := range dbc {
		if v > 0 {
			got = append(got, v)
			ratio = append(ratio, v/cal[i])
		}
	}
	if len(got) == 0 {
		return fmt.Sprintf("%-20s %-15s", "none", "")
	}
	return fmt.Sprintf("%8.2f - %-9.2f %6.3f-%-8.3f", slices.Min(got)/1e6, slices.Max(got)/1e6, slices.Min(ratio), slices.Max(ratio))
}
