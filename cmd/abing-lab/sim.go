package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/lab/sim"
)

func simCommand() *cobra.Command {
	var runs int
	var write, only string
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run abing's estimator through the packet-level simulator: 1 Mbit/s to 10 Gbit/s, every cross-traffic model",
		Long: "sim runs abing's sample building and estimator on simulated FIFO paths (package lab/sim):\n" +
			"1 Mbit/s to 10 Gbit/s x 0-90 % load x constant-rate, Poisson, mixed-size, Pareto on/off and TCP-like\n" +
			"cross traffic x pairs, 10-packet trains, jumbo trains and the adaptive default; then three-hop paths and host\n" +
			"variants. Per cell it prints the runs with no estimate, the median DBC error and how often the DBC\n" +
			"interval held the capacity, the median, 90th percentile and median signed ABW error, the ABW\n" +
			"interval's median half-width and coverage (all in % of the capacity), and the median probe bytes\n" +
			"and time per run.",
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
				fmt.Fprintf(cmd.ErrOrStderr(), "%d runs in %v\n", len(cells)*runs, time.Since(start).Round(time.Millisecond))
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 50, "runs (seeds) per cell")
	cmd.Flags().StringVar(&only, "only", "", "run only the cells whose name contains this, e.g. \"1G 1500\"")
	cmd.Flags().StringVar(&write, "write", "", "also write the table into this Markdown file, between its <!-- begin sim --> and <!-- end sim --> lines")
	return cmd
}
