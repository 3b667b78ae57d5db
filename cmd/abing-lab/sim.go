package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/lab/heatmap"
	"github.com/abing-net/abing/lab/sim"
)

func simCommand() *cobra.Command {
	var runs int
	var write, only, heat string
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run abing's estimator through the packet-level simulator: 1 Mbit/s to 100 Gbit/s, real hosts, bursty traffic",
		Long: "sim runs abing's sample building and estimator on simulated FIFO paths (package lab/sim): the default run\n" +
			"at 1 Mbit/s to 100 Gbit/s x probes of 1500 and 9000 bytes x kernel stamps (with and without 50 us of interrupt\n" +
			"moderation) and hardware stamps x idle and constant-rate, Poisson, mixed-size, Pareto on/off, TCP-like (bursts\n" +
			"from a faster link), paced TCP and four TCP flows at 20, 50 and 80 % load; then hosts (moderation 10 and\n" +
			"100 us and adaptive, virtual-machine pauses, late wake-ups, user-space stamps, send delays), three-hop paths\n" +
			"and the fixed modes. Per cell: runs with no ABW and of them with a bound on capacity, the share of runs whose\n" +
			"interval or bound held the truth, the median DBC error and how often its interval held C, the median, 90th\n" +
			"percentile and median signed ABW error, the ABW interval's median half-width and coverage (all in % of C), the\n" +
			"median probe bytes and time per run, and the rule the cell meets (honest: at least 90 % held; estimate: and\n" +
			"median error at most 8 %, 90th percentile 15 %). Last, the cells of the users' world meeting each rule per rate.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runs < 1 {
				return fmt.Errorf("--runs %d: want at least 1", runs)
			}
			return printReport(cmd.OutOrStdout(), write, "sim", func(w io.Writer) error {
				start := time.Now()
				cells := sim.DefaultGrid()
				if only != "" {
					cells = slices.DeleteFunc(cells, func(c sim.Cell) bool { return !strings.Contains(c.Name, only) })
					if len(cells) == 0 {
						return fmt.Errorf("--only %q: no cell of the grid has it in its name", only)
					}
				}
				fmt.Fprintf(w, "abing simulator grid, %s: %d cells x %d runs, default settings but for the mode\n\n",
					time.Now().UTC().Format(time.DateOnly), len(cells), runs)
				stats := sim.RunGrid(cells, runs)
				sim.WriteGrid(w, stats)
				fmt.Fprintln(w)
				sim.WriteHeadline(w, stats)
				if heat != "" {
					files, err := heatmap.Write(heat, stats)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "heat maps: %s\n", strings.Join(files, ", "))
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%d runs in %v\n", len(cells)*runs, time.Since(start).Round(time.Millisecond))
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 50, "runs (seeds) per cell")
	cmd.Flags().StringVar(&heat, "heatmap", "", "also draw a heat map per probe size of the users' world into this directory (sim-1500.png, sim-9000.png)")
	cmd.Flags().StringVar(&only, "only", "", "run only the cells whose name contains this, e.g. \"1G 1500\"")
	cmd.Flags().StringVar(&write, "write", "", "also write the table into this Markdown file, between its <!-- begin sim --> and <!-- end sim --> lines")
	return cmd
}
