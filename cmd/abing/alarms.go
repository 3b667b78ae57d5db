package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/abing-net/abing/alarms"
	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/source"
)

func alarmsCommand() *cobra.Command {
	var (
		src    source.Flags
		output string
	)
	cmd := &cobra.Command{
		Use:   "alarms [TARGET]",
		Short: "Print the alarms the monitor raised (capacity, load, latency, path, down)",
		Long: "Print the alarms of the monitor's embedded database that were active at some time\n" +
			"within --since: still active ones (no end) and those that ended since.",
		Example: "  abing alarms --since 24h\n  abing alarms --output json lab-b\n  abing alarms --api monitor.example.org:9817 --since 168h",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := record.NewAlarmPrinter(cmd.OutOrStdout(), output)
			if err != nil {
				return err
			}
			f, err := src.Filter(args)
			if err != nil {
				return err
			}
			s, err := src.Open()
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.Alarms(cmd.Context(), f, p.Print); err != nil {
				return err
			}
			return p.Flush()
		},
	}
	src.Bind(cmd.Flags(), 24*time.Hour, source.API, source.Agent)
	cmd.Flags().StringVar(&output, "output", "text", "text, or json (one object per alarm)")
	cmd.AddCommand(replayCommand(), evaluateCommand())
	return cmd
}

// paramFlags are the detector settings as flags; only those given
// override the configuration (or the defaults).
func paramFlags(f *pflag.FlagSet, p *alarms.Params) {
	d := alarms.Defaults()
	f.IntVar(&p.Hold, "hold", 0, fmt.Sprintf("measurements a condition must hold to raise (%d)", d.Hold))
	f.IntVar(&p.Clear, "clear", 0, fmt.Sprintf("measurements it must be gone to clear (%d)", d.Clear))
	f.DurationVar(&p.MinDuration, "min-duration", 0, "and it must last this long to raise (0)")
	f.Float64Var(&p.Hysteresis, "hysteresis", 0, fmt.Sprintf("how far back past the threshold to clear, as a fraction of it (%g)", d.Hysteresis))
	f.DurationVar(&p.AcceptAfter, "accept-after", 0, fmt.Sprintf("a capacity, latency or path alarm this old is taken as the new normal (%v)", d.AcceptAfter))
	f.IntVar(&p.Window, "window", 0, fmt.Sprintf("values in the test window (%d)", d.Window))
	f.IntVar(&p.Reference, "reference", 0, fmt.Sprintf("values in the reference window (%d)", d.Reference))
	f.Float64Var(&p.K, "sensitivity", 0, fmt.Sprintf("robust standard deviations to the threshold; higher: fewer false alarms, later detection (%g)", d.K))
	f.Float64Var(&p.MinChange, "min-change", 0, fmt.Sprintf("smallest DBC or RTT shift, relative (%g)", d.MinChange))
	f.DurationVar(&p.MinRTTChange, "min-rtt-change", 0, fmt.Sprintf("smallest RTT shift (%v)", d.MinRTTChange))
	f.Float64Var(&p.LoadBelow, "load-below", 0, fmt.Sprintf("heavy load: ABW below this fraction of DBC (%g)", d.LoadBelow))
	f.DurationVar(&p.LoadFor, "load-for", 0, fmt.Sprintf("... for this long (%v)", d.LoadFor))
	f.IntVar(&p.DownAfter, "down-after", 0, fmt.Sprintf("failed runs in a row before a down alarm (%d)", d.DownAfter))
}

func replayCommand() *cobra.Command {
	var (
		output, configFile string
		flags              alarms.Params
	)
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Run the detectors over an exported series and print the alarms they would have raised",
		Long: "Run the alarm detectors over the output of `abing history --output csv` or\n" +
			"`--output json` (or of `abing measure --output json`), \"-\" for standard input,\n" +
			"and print the alarms they would have raised: a way to tune thresholds on your\n" +
			"own history. Settings come from the flags, over --config's alarms section\n" +
			"(per target as configured), over the defaults.",
		Example: "  abing history --output csv > lab.csv && abing alarms replay lab.csv\n" +
			"  abing alarms replay --output json --sensitivity 5 --hold 4 lab.csv",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := record.NewAlarmPrinter(cmd.OutOrStdout(), output)
			if err != nil {
				return err
			}
			params := func(string) alarms.Params { return alarms.Defaults().Merge(flags) }
			if configFile != "" {
				b, err := os.ReadFile(configFile)
				if err != nil {
					return err
				}
				cfg, err := config.Parse(b, configFile)
				if err != nil {
					return err
				}
				params = func(name string) alarms.Params {
					for i := range cfg.Targets {
						if t := &cfg.Targets[i]; t.Name == name || t.Address == name {
							return t.AlarmParams().Merge(flags)
						}
					}
					return cfg.Alarms.Params().Merge(flags)
				}
			}
			if err := params("").Check(); err != nil {
				return err
			}
			recs, err := readSeries(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			found, err := replay(recs, params)
			if err != nil {
				return err
			}
			for i := range found {
				if err := p.Print(&found[i]); err != nil {
					return err
				}
			}
			if err := p.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d records, %d alarms\n", len(recs), len(found))
			return nil
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "text, or json (one object per alarm)")
	cmd.Flags().StringVar(&configFile, "config", "", "monitor.yaml whose alarms settings to use")
	paramFlags(cmd.Flags(), &flags)
	return cmd
}

// replay runs the detectors over records (sorted by time first, as the
// engine needs them) and returns every episode in the order raised, with
// its end if it ended.
func replay(recs []record.Record, params func(string) alarms.Params) ([]record.Alarm, error) {
	slices.SortStableFunc(recs, func(a, b record.Record) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		// The forward record of a run before its reverse one.
		return strings.Compare(a.Direction, b.Direction)
	})
	e := alarms.NewEngine(params)
	var out []record.Alarm
	index := map[string]int{}
	id := func(a *record.Alarm) string {
		return fmt.Sprint(a.Kind, a.Target, a.Direction, a.Start.UnixNano())
	}
	for i := range recs {
		as, err := e.Observe(&recs[i])
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i+1, err)
		}
		for _, a := range as {
			if j, ok := index[id(&a)]; ok {
				out[j] = a
				continue
			}
			index[id(&a)] = len(out)
			out = append(out, a)
		}
	}
	return out, nil
}

// readSeries reads CSV (abing history --output csv) or JSON lines from a
// file, or from stdin for "-".
func readSeries(name string, stdin io.Reader) ([]record.Record, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	recs, err := record.Read(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (want the CSV or JSON lines of abing history)", name, err)
	}
	return recs, nil
}

func evaluateCommand() *cobra.Command {
	var (
		seeds int
		flags alarms.Params
	)
	cmd := &cobra.Command{
		Use:   "evaluate",
		Short: "Print detection delay and false alarms of the detectors on synthetic series",
		Long: "Run the detectors over synthetic series with known change points (one measurement a\n" +
			"minute, --seeds series each) and print, per scenario, how many changes were found,\n" +
			"how many measurements after the change the alarm came (the raising one included),\n" +
			"and how many false alarms there were. The flags change the settings evaluated.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p := alarms.Defaults().Merge(flags)
			if err := p.Check(); err != nil {
				return err
			}
			if seeds < 1 {
				return fmt.Errorf("--seeds %d: want 1 or more", seeds)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "| scenario | alarm | series × values | detected | delay mean / worst (measurements) | false alarms |\n|---|---|---|---|---|---|\n")
			for _, sc := range alarms.Scenarios() {
				f := alarms.Evaluate(p, seeds, []alarms.Scenario{sc})[0]
				kind, delay := string(f.Kind), fmt.Sprintf("%.1f / %d", f.MeanDelay, f.WorstDelay)
				detected := fmt.Sprintf("%d/%d", f.Detected, f.Series)
				if kind == "" {
					kind, delay, detected = "none", "–", "–"
				}
				fmt.Fprintf(w, "| %s | %s | %d × %d | %s | %s | %d |\n", f.Scenario, kind, f.Series, f.Points, detected, delay, f.FalseAlarms)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&seeds, "seeds", 50, "series per scenario")
	paramFlags(cmd.Flags(), &flags)
	return cmd
}
