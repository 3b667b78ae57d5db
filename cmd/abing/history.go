package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/store"
)

func historyCommand() *cobra.Command {
	var (
		db, output, api, path string
		since                 time.Duration
		points                int
	)
	cmd := &cobra.Command{
		Use:   "history [TARGET]",
		Short: "Print stored results (the monitor's embedded database)",
		Example: "  abing history --since 24h\n" +
			"  abing history --output csv lab-b.example.org:8176 > lab-b.csv\n" +
			"  abing history --api monitor.example.org:9817                 # every path's last results\n" +
			"  abing history --api monitor.example.org:9817 --since 168h --points 168 lab-b",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" && output != "csv" {
				return fmt.Errorf("--output %q: want text, json or csv", output)
			}
			f, err := storeFilter(args, since)
			if err != nil {
				return err
			}
			if api != "" {
				if output == "csv" {
					return fmt.Errorf("--output csv needs the records of the local database; the API answers with text or json")
				}
				c, err := apiClient(cmd, api, since)
				if err != nil {
					return err
				}
				if f.Target == "" {
					ts, err := c.Targets(cmd.Context())
					if err != nil {
						return err
					}
					return printTargets(ts, output, cmd.OutOrStdout())
				}
				h, err := c.History(cmd.Context(), f.Target, path, apiSince(since), points)
				if err != nil {
					return err
				}
				return printBuckets(h, output, cmd.OutOrStdout())
			}
			if path != "" || points != 0 {
				return fmt.Errorf("--path and --points read the API: give --api too")
			}
			s, err := store.Open(db)
			if err != nil {
				return err
			}
			defer s.Close()
			return printHistory(cmd, s, f, output, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&db, "db", store.DefaultPath(), "embedded database to read")
	cmd.Flags().DurationVar(&since, "since", 0, "only results newer than this (0: all)")
	cmd.Flags().StringVar(&output, "output", "text", "text, json (one object per line, as abing measure) or csv")
	cmd.Flags().StringVar(&api, "api", "", "read a monitor's or agent's API instead (HOST:PORT of its web listener, or a URL): the last results of every path, or with TARGET its history in buckets")
	cmd.Flags().StringVar(&path, "path", "", "with --api and TARGET: the target's path (a name of its paths:)")
	cmd.Flags().IntVar(&points, "points", 0, "with --api and TARGET: buckets a direction (10 to 5000; 0: the API's 500)")
	return cmd
}

// storeFilter is the filter of a command's optional TARGET and --since.
func storeFilter(args []string, since time.Duration) (store.Filter, error) {
	f := store.Filter{}
	if since < 0 {
		return f, fmt.Errorf("--since %v: must not be negative", since)
	}
	if len(args) == 1 {
		f.Target = args[0]
	}
	if since > 0 {
		f.Since = time.Now().Add(-since)
	}
	return f, nil
}

func printHistory(cmd *cobra.Command, s *store.Store, f store.Filter, output string, w io.Writer) error {
	var each func(r *record.Record) error
	csvw := record.NewCSVWriter(w)
	enc := json.NewEncoder(w)
	switch output {
	case "csv":
		each = csvw.Write
	case "json":
		each = func(r *record.Record) error { return enc.Encode(r) }
	default:
		each = func(r *record.Record) error {
			num := func(p *float64) string {
				if p == nil {
					return "-"
				}
				return fmt.Sprintf("%.1f", *p)
			}
			rtt := "-"
			if r.RTT != nil {
				rtt = fmt.Sprintf("%.2f", r.RTT.Avg)
			}
			_, err := fmt.Fprintf(w, "%-30s %-24s %-8s DBC %6s  XTR %6s  ABW %6s  RTT %6s ms  loss %4.1f%%  %s\n",
				r.Time.Format(time.RFC3339Nano), r.Target, r.Direction, num(r.DBC), num(r.XTR), num(r.ABW), rtt, 100*r.Loss, r.Error)
			return err
		}
	}
	if err := s.Query(cmd.Context(), f, each); err != nil {
		return err
	}
	if output == "csv" {
		return csvw.Flush()
	}
	return nil
}
