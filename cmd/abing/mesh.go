package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/linkcost"
	"github.com/abing-net/abing/mesh"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/source"
)

// meshInput is where the mesh commands read measurements from: a matrix
// file, or records from any source of package source but an API.
type meshInput struct {
	src          source.Flags
	matrix, path string
}

func (in *meshInput) flags(cmd *cobra.Command, matrix bool) {
	f := cmd.Flags()
	if matrix {
		f.StringVar(&in.matrix, "matrix", "", "CSV of measurements between hosts: src,dst,rtt_ms and optionally loss,jitter_ms,abw_mbps,dbc_mbps")
		f.StringVar(&in.path, "path", mesh.ReferencePath, "with records: the path whose measurements to use (records without a path count as "+mesh.ReferencePath+")")
	}
	in.src.Bind(f, 0, source.Input, source.Influx, source.Agent)
}

// records reads the records of the input.
func (in *meshInput) records(cmd *cobra.Command) ([]record.Record, error) {
	f, err := in.src.Filter(nil)
	if err != nil {
		return nil, err
	}
	src, err := in.src.Open()
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return source.All(cmd.Context(), src, f)
}

// samples are the input as measurements between hosts: the matrix file,
// or the forward records of one path (--path), from their node to their
// target.
func (in *meshInput) samples(cmd *cobra.Command) ([]mesh.Sample, error) {
	byPath, err := in.samplesByPath(cmd, func(path string) bool { return path == in.path }, fmt.Sprintf("on path %q", in.path))
	if err != nil {
		return nil, err
	}
	return byPath[in.path], nil
}

// samplesByPath are the input's measurements between hosts by path
// network: the matrix file's under --path, or the forward records of the
// paths keep keeps. An error when none is left, which where says where
// none was ("on path \"direct\"").
func (in *meshInput) samplesByPath(cmd *cobra.Command, keep func(path string) bool, where string) (map[string][]mesh.Sample, error) {
	if in.matrix != "" {
		if in.src.Input != "" || in.src.Influx != "" || in.src.Agent != "" {
			return nil, errors.New("--matrix, --input, --influx and --agent exclude each other")
		}
		f, err := os.Open(in.matrix)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		s, err := mesh.ReadMatrix(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in.matrix, err)
		}
		return map[string][]mesh.Sample{in.path: s}, nil
	}
	recs, err := in.records(cmd)
	if err != nil {
		return nil, err
	}
	out := map[string][]mesh.Sample{}
	nan := math.NaN()
	for _, r := range recs {
		path := r.Path
		if path == "" {
			path = mesh.ReferencePath
		}
		if r.Direction != "forward" || r.Node == "" || !keep(path) || r.RTT == nil {
			continue
		}
		s := mesh.Sample{Src: r.Node, Dst: r.Target, RTT: r.RTT.Avg, Loss: r.Loss, Jitter: r.RTT.Jitter, ABW: nan, DBC: nan, Cost: nan}
		for _, v := range []struct {
			from *float64
			to   *float64
		}{{r.ABW, &s.ABW}, {r.DBC, &s.DBC}, {r.LinkCost, &s.Cost}} {
			if v.from != nil {
				*v.to = *v.from
			}
		}
		out[path] = append(out[path], s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no measurements between named hosts %s (records need node and target; abing monitor sets node)", where)
	}
	return out, nil
}

func meshCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mesh",
		Short: "Analyse many hosts: overlay against direct paths, relay shortcuts, network coordinates",
		Long: "mesh reads what abing's monitors measured (the embedded database, a records file from\n" +
			"abing history, a shared InfluxDB, a mesh agent's full map, or a matrix CSV gathered elsewhere)\n" +
			"and answers: is one path to a host better than another (compare), would relaying through a\n" +
			"third host beat the direct route (relays), what is the RTT between hosts nobody measured\n" +
			"(coords). agent runs one host of a self-organising\n" +
			"mesh that measures every member and holds the full map. See docs/mesh.md.",
	}
	cmd.AddCommand(meshCompareCommand(), meshRelaysCommand(), meshRoutesCommand(), meshCoordsCommand(), meshAgentCommand(), meshKeygenCommand())
	return cmd
}

// num is a number as a table's cell: empty when absent (NaN), which the
// table shows as "-" in text and leaves empty in CSV.
func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func meshCompareCommand() *cobra.Command {
	var in meshInput
	var output string
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Compare each host's paths (e.g. overlay) with its direct path: RTT, loss, ABW and DBC verdicts",
		Example: "  abing mesh compare --since 24h\n" +
			"  abing mesh compare --input history.csv --output json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := mesh.NewTable(cmd.OutOrStdout(), output, "node", "host", "path", "rounds", "failed",
				"rtt_ms", "ref_rtt_ms", "rtt", "loss_pct", "ref_loss_pct", "loss", "abw_mbps", "ref_abw_mbps", "abw", "dbc_mbps", "ref_dbc_mbps", "dbc")
			if err != nil {
				return err
			}
			recs, err := in.records(cmd)
			if err != nil {
				return err
			}
			cs := mesh.Compare(recs)
			if len(cs) == 0 {
				return errors.New("no host with two or more paths in the input (a monitor target's paths: direct, overlay)")
			}
			for _, c := range cs {
				p, r := c.Path, c.Reference
				obj := map[string]any{"node": c.Node, "host": c.Host, "path": p.Path, "reference": r.Path, "rounds": p.Rounds, "failed": p.Failed,
					"rtt_ms": jsonNum(p.RTT), "ref_rtt_ms": jsonNum(r.RTT), "rtt": mesh.Describe(c.RTT, r.RTT, p.RTT, "ms", true),
					"loss_pct": jsonNum(p.Loss), "ref_loss_pct": jsonNum(r.Loss), "loss": mesh.Describe(c.Loss, r.Loss, p.Loss, "%", true),
					"abw_mbps": jsonNum(p.ABW), "ref_abw_mbps": jsonNum(r.ABW), "abw": mesh.Describe(c.ABW, r.ABW, p.ABW, "Mbit/s", false),
					"dbc_mbps": jsonNum(p.DBC), "ref_dbc_mbps": jsonNum(r.DBC), "dbc": mesh.Describe(c.DBC, r.DBC, p.DBC, "Mbit/s", false)}
				t.Add(obj, c.Node, c.Host, p.Path+" vs "+r.Path, strconv.Itoa(p.Rounds), strconv.Itoa(p.Failed),
					num(p.RTT, 1), num(r.RTT, 1), obj["rtt"].(string), num(p.Loss, 1), num(r.Loss, 1), obj["loss"].(string),
					num(p.ABW, 1), num(r.ABW, 1), obj["abw"].(string), num(p.DBC, 1), num(r.DBC, 1), obj["dbc"].(string))
			}
			return t.Flush()
		},
	}
	in.flags(cmd, false)
	cmd.Flags().StringVar(&output, "output", "text", "text, json or csv")
	return cmd
}

// jsonNum is v for JSON, nil (null) for NaN.
func jsonNum(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

func meshRelaysCommand() *cobra.Command {
	var in meshInput
	var output string
	var top int
	var minGain, minGainMbps float64
	cmd := &cobra.Command{
		Use:   "relays",
		Short: "Find pairs of hosts whose RTT through a third host beats the direct one, and the relays that help most",
		Example: "  abing mesh relays --since 24h --top 5\n" +
			"  abing mesh relays --matrix rtts.csv --min-gain 10",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if top < 0 || math.IsNaN(minGain) || minGain < 0 || math.IsNaN(minGainMbps) || minGainMbps < 0 {
				return errors.New("--top, --min-gain and --min-gain-mbps must not be negative")
			}
			samples, err := in.samples(cmd)
			if err != nil {
				return err
			}
			m := mesh.NewMatrix(samples)
			shortcuts, pairs := mesh.Relays(m, minGain)
			w := cmd.OutOrStdout()
			if output == "text" {
				return relaysText(w, m, shortcuts, pairs, minGain, minGainMbps, top)
			}
			t, err := mesh.NewTable(w, output, "kind", "a", "b", "direct", "relay", "relayed", "gain", "gain_pct", "cv", "relays", "share_pct")
			if err != nil {
				return err
			}
			for _, s := range shortcuts {
				t.Add(map[string]any{"kind": "rtt", "a": s.A, "b": s.B, "direct_ms": s.Direct, "relay": s.Relay, "relayed_ms": s.Relayed,
					"gain_ms": s.Gain, "gain_pct": s.GainPct, "cv": s.CV, "relays": s.Relays},
					"rtt", s.A, s.B, num(s.Direct, 1), s.Relay, num(s.Relayed, 1), num(s.Gain, 1), num(s.GainPct, 0), num(s.CV, 2), strconv.Itoa(s.Relays), "")
			}
			for _, s := range mesh.BandwidthRelays(m, minGainMbps) {
				t.Add(map[string]any{"kind": "abw", "a": s.A, "b": s.B, "direct_mbps": s.Direct, "relay": s.Relay, "relayed_mbps": s.Relayed, "gain_mbps": s.Gain},
					"abw", s.A, s.B, num(s.Direct, 1), s.Relay, num(s.Relayed, 1), num(s.Gain, 1), num(100*s.Gain/s.Direct, 0), "", "", "")
			}
			for _, c := range mesh.TopRelays(m, minGain, top) {
				t.Add(map[string]any{"kind": "top", "relay": c.Relay, "adds": c.Adds, "improved": c.Cumulative, "pairs": pairs, "share": c.Share},
					"top", "", "", "", c.Relay, "", "", "", "", strconv.Itoa(c.Cumulative), num(100*c.Share, 0))
			}
			return t.Flush()
		},
	}
	in.flags(cmd, true)
	cmd.Flags().StringVar(&output, "output", "text", "text, json or csv")
	cmd.Flags().IntVar(&top, "top", 5, "relays to choose greedily by the pairs they improve")
	cmd.Flags().Float64Var(&minGain, "min-gain", 0, "count a relay only when it saves more than this many ms")
	cmd.Flags().Float64Var(&minGainMbps, "min-gain-mbps", 0, "count a bandwidth relay only when it adds more than this many Mbit/s")
	return cmd
}

// relaysText prints the shortcuts, the bandwidth shortcuts and the top
// relays as three tables.
func relaysText(w io.Writer, m *mesh.Matrix, shortcuts []mesh.Shortcut, pairs int, minGain, minGainMbps float64, top int) error {
	fmt.Fprintf(w, "%d hosts, %d pairs with a direct RTT; %d improved through a relay by more than %g ms\n\n", len(m.Nodes), pairs, len(shortcuts), minGain)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(shortcuts) > 0 {
		fmt.Fprintln(tw, "A\tB\tdirect ms\tbest relay\trelayed ms\tgain ms\tgain %\tRTT CV\trelays that help")
		for _, s := range shortcuts {
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%.1f\t%.1f\t%.0f\t%.2f\t%d\n", s.A, s.B, s.Direct, s.Relay, s.Relayed, s.Gain, s.GainPct, s.CV, s.Relays)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	if bw := mesh.BandwidthRelays(m, minGainMbps); len(bw) > 0 {
		fmt.Fprintf(w, "available bandwidth through a relay (the narrower hop) above the direct path's by more than %g Mbit/s:\n", minGainMbps)
		fmt.Fprintln(tw, "from\tto\tdirect Mbit/s\tbest relay\trelayed Mbit/s\tgain Mbit/s")
		for _, s := range bw {
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%.1f\t%.1f\n", s.A, s.B, s.Direct, s.Relay, s.Relayed, s.Gain)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	if cov := mesh.TopRelays(m, minGain, top); len(cov) > 0 {
		fmt.Fprintf(w, "top relays, chosen greedily by the pairs they add:\n")
		fmt.Fprintln(tw, "#\trelay\tadds pairs\tpairs improved\tshare of all pairs")
		for i, c := range cov {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%.0f %%\n", i+1, c.Relay, c.Adds, c.Cumulative, 100*c.Share)
		}
		tw.Flush()
	}
	return nil
}

func meshRoutesCommand() *cobra.Command {
	var in meshInput
	var output, metric, from string
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "The best route between every ordered pair of hosts over the measured links, against the direct link",
		Long: "The best route between every ordered pair of hosts over the graph of measured links (any number\n" +
			"of hops), by link cost (default: the sum of the links' costs), RTT (the sum of the pairs' median\n" +
			"RTTs) or bandwidth (the widest path: the narrowest link's available bandwidth), against the\n" +
			"direct link. Ties go to the route with fewer hops, then to the next hop first in name order.\n" +
			"With records, each path network (direct, overlay) has its own table unless --path names one.",
		Example: "  abing mesh routes --agent 127.0.0.1:9817\n" +
			"  abing mesh routes --since 24h --metric bandwidth --from lab-a --output json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keep, where := func(string) bool { return true }, "on any path"
			if cmd.Flags().Changed("path") {
				keep, where = func(p string) bool { return p == in.path }, fmt.Sprintf("on path %q", in.path)
			}
			byPath, err := in.samplesByPath(cmd, keep, where)
			if err != nil {
				return err
			}
			t, err := mesh.NewTable(cmd.OutOrStdout(), output, "path", "from", "to", "next hop", "route", metricUnit(metric), "direct", "gain")
			if err != nil {
				return err
			}
			for _, path := range slices.Sorted(maps.Keys(byPath)) {
				g, err := mesh.NewGraph(mesh.NewMatrix(byPath[path]), metric, linkcost.Default())
				if err != nil {
					return err
				}
				if from != "" && !slices.Contains(g.Nodes, from) {
					return fmt.Errorf("--from %q: no such host on path %q (hosts: %s)", from, path, strings.Join(g.Nodes, ", "))
				}
				var routes []mesh.Route
				if from != "" {
					routes = g.From(from)
				} else {
					routes = g.Routes()
				}
				addRoutes(t, path, routes)
			}
			return t.Flush()
		},
	}
	in.flags(cmd, true)
	f := cmd.Flags()
	f.StringVar(&output, "output", "text", "text, json or csv")
	f.StringVar(&metric, "metric", mesh.MetricCost, "what a route minimises: cost or rtt; or bandwidth, the widest path")
	f.StringVar(&from, "from", "", "only the routes from this host")
	return cmd
}

// metricUnit is the route value's column name.
func metricUnit(metric string) string {
	switch metric {
	case mesh.MetricRTT:
		return "RTT ms"
	case mesh.MetricBandwidth:
		return "ABW Mbit/s"
	}
	return "cost"
}

// addRoutes adds routes of a path network to t: in JSON, absent numbers
// are null and an unreachable destination has no hops.
func addRoutes(t *mesh.Table, path string, routes []mesh.Route) {
	opt := func(v float64) any {
		if math.IsNaN(v) {
			return nil
		}
		return v
	}
	for _, r := range routes {
		gain := r.Direct - r.Value // what the route saves
		if r.Metric == mesh.MetricBandwidth {
			gain = r.Value - r.Direct // what it adds
		}
		via := strings.Join(r.Hops, ">")
		if !r.Reachable {
			via = "unreachable"
		}
		t.Add(map[string]any{"path": path, "metric": r.Metric, "src": r.Src, "dst": r.Dst, "reachable": r.Reachable, "next_hop": r.NextHop(),
			"hops": r.Hops, "value": opt(r.Value), "direct": opt(r.Direct), "gain": opt(gain)},
			path, r.Src, r.Dst, r.NextHop(), via, num(r.Value, 1), num(r.Direct, 1), num(gain, 1))
	}
}

func meshCoordsCommand() *cobra.Command {
	var in meshInput
	var output string
	var dims, rounds int
	var predict []string
	cmd := &cobra.Command{
		Use:   "coords",
		Short: "Fit Vivaldi network coordinates to measured RTTs and predict the RTT of pairs nobody measured",
		Example: "  abing mesh coords --since 24h\n" +
			"  abing mesh coords --matrix rtts.csv --predict lab-a --predict lab-f",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(predict) != 0 && len(predict) != 2 {
				return errors.New("--predict takes two hosts: --predict A --predict B")
			}
			samples, err := in.samples(cmd)
			if err != nil {
				return err
			}
			c, err := mesh.FitCoordinates(samples, dims, rounds, 1)
			if err != nil {
				return err
			}
			m := mesh.NewMatrix(samples)
			w := cmd.OutOrStdout()
			if len(predict) == 2 {
				p, ok := c.Predict(predict[0], predict[1])
				if !ok {
					return fmt.Errorf("--predict: %s or %s is not in the input", predict[0], predict[1])
				}
				measured, has := m.RTT(predict[0], predict[1])
				t, err := mesh.NewTable(w, output, "a", "b", "predicted_ms", "measured_ms")
				if err != nil {
					return err
				}
				ms := math.NaN()
				if has {
					ms = measured
				}
				t.Add(map[string]any{"a": predict[0], "b": predict[1], "predicted_ms": p, "measured_ms": jsonNum(ms)},
					predict[0], predict[1], num(p, 1), num(ms, 1))
				return t.Flush()
			}
			t, err := mesh.NewTable(w, output, "kind", "node", "other", "x", "rtt_ms")
			if err != nil {
				return err
			}
			for _, n := range c.Nodes {
				co := c.Coordinate(n)
				cells := []string{"coord", n, ""}
				vec := ""
				for i, v := range co.Vec {
					if i > 0 {
						vec += " "
					}
					vec += strconv.FormatFloat(v*1e3, 'f', 2, 64)
				}
				cells = append(cells, fmt.Sprintf("[%s] height %.2f error %.2f", vec, co.Height*1e3, co.Error), "")
				t.Add(map[string]any{"kind": "coord", "node": n, "vec_ms": scale(co.Vec), "height_ms": co.Height * 1e3, "adjustment_ms": co.Adjustment * 1e3, "error": co.Error}, cells...)
			}
			missing := 0
			for i, a := range c.Nodes {
				for _, b := range c.Nodes[i+1:] {
					if _, ok := m.RTT(a, b); ok {
						continue
					}
					p, _ := c.Predict(a, b)
					missing++
					t.Add(map[string]any{"kind": "predicted", "node": a, "other": b, "rtt_ms": p}, "predicted", a, b, "", num(p, 1))
				}
			}
			if output == "text" {
				fmt.Fprintf(w, "%d hosts, %d dimensions plus height; coordinates in ms; %d pairs nobody measured, predicted below\n", len(c.Nodes), dims, missing)
			}
			return t.Flush()
		},
	}
	in.flags(cmd, true)
	cmd.Flags().StringVar(&output, "output", "text", "text, json or csv")
	cmd.Flags().IntVar(&dims, "dims", mesh.DefaultDimensions, "dimensions of the coordinates (plus a height)")
	cmd.Flags().IntVar(&rounds, "rounds", mesh.DefaultRounds, "passes over the measurements")
	cmd.Flags().StringArrayVar(&predict, "predict", nil, "predict the RTT between two hosts (give it twice)")
	return cmd
}

func scale(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x * 1e3
	}
	return out
}
