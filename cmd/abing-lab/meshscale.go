package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/spf13/cobra"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/lab/meshsim"
	"github.com/abing-net/abing/meshagent"
)

func meshscaleCommand() *cobra.Command {
	var nodes string
	var window, interval, runTime time.Duration
	var runBytes float64
	cmd := &cobra.Command{
		Use:   "meshscale",
		Short: "What a mesh of abing agents costs on the wire: gossip measured with real serf members on loopback, probes computed",
		Long: "meshscale runs serf members in this process on loopback, counts every byte each sends, and prints per\n" +
			"member and minute: membership alone, and rows at the agent's gossip budget (the most an agent sends).\n" +
			"Then it computes, for 4 to 1,000 members, the budget, how often the whole row can go out, the probes'\n" +
			"bytes and how long one full cycle of measurements takes. The figures of docs/mesh.md come from it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ns []int
			for _, s := range strings.Split(nodes, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || n < 2 || n > 256 {
					return fmt.Errorf("--nodes %q: want sizes of 2 to 256, comma-separated", s)
				}
				ns = append(ns, n)
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			return meshscale(ctx, cmd.OutOrStdout(), ns, window, interval, runTime, runBytes)
		},
	}
	f := cmd.Flags()
	f.StringVar(&nodes, "nodes", "4,16,64", "mesh sizes to measure")
	f.DurationVar(&window, "window", time.Minute, "how long each phase is measured")
	f.DurationVar(&interval, "interval", 10*time.Minute, "for the computed probes: time between measurements of one peer's path")
	f.DurationVar(&runTime, "run-time", 500*time.Millisecond, "for the computed cycle: how long one measurement takes (docs/accuracy.md: 0.2-1.1 s)")
	f.Float64Var(&runBytes, "run-bytes", 246e3, "for the computed probes: bytes of one measurement, both directions (docs/accuracy.md: 246 KB on an idle path)")
	return cmd
}

func meshscale(ctx context.Context, w io.Writer, ns []int, window, interval, runTime time.Duration, runBytes float64) error {
	fmt.Fprintf(w, "Gossip measured: serf members on loopback (LAN timing), %v per phase, bytes each member sends a minute\n", window)
	// Fixed widths: each line is printed as soon as its mesh is measured.
	const row = "%8v %10v %17v %7v %15v %21v %10v\n"
	fmt.Fprintf(w, row, "members", "converged", "membership B/min", "part B", "budget parts/s", "rows at budget B/min", "delivered")
	for _, n := range ns {
		r, err := meshsim.Run(ctx, meshsim.Config{Nodes: n, Window: window})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, row, n, r.Converged.Round(10*time.Millisecond), fmt.Sprintf("%.0f", r.Membership), r.PartSize,
			fmt.Sprintf("%.4f", r.PartRate), fmt.Sprintf("%.0f", r.Rows), fmt.Sprintf("%.0f %%", 100*r.Delivered))
	}
	lan := memberlist.DefaultLANConfig()
	fmt.Fprintf(w, "\nComputed (LAN timing; the whole row of n-1 links split into parts of %d bytes; probes of %.0f KB a run, a run every %v per peer, %v each):\n",
		config.DefaultEventSize, runBytes/1e3, interval, runTime)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "members\tparts/row\tbudget parts/s\twhole row every\tprobes B/min\tprobe Mbit/s\tfull cycle\t")
	for _, n := range []int{4, 16, 64, 100, 1000} {
		parts, err := meshsim.RowParts(n, config.DefaultEventSize)
		if err != nil {
			return err
		}
		rate := meshagent.GossipRate(lan, n)
		refresh := max(config.DefaultRefresh, time.Duration(2*float64(parts)/rate*float64(time.Second)))
		probes := float64(n-1) * runBytes * time.Minute.Seconds() / interval.Seconds()
		cycle := time.Duration(n-1) * runTime
		fmt.Fprintf(tw, "%d\t%d\t%.4f\t%v\t%.3g\t%.2f\t%v\t\n", n, parts, rate, refresh.Round(time.Minute), probes, probes*8/60/1e6, cycle.Round(time.Second))
	}
	return tw.Flush()
}
