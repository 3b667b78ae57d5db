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
		db, output string
		since      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "history [TARGET]",
		Short: "Print stored results (the monitor's embedded database)",
		Example: "  abing history --since 24h\n" +
			"  abing history --output csv lab-b.example.org:8176 > lab-b.csv",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" && output != "csv" {
				return fmt.Errorf("--output %q: want text, json or csv", output)
			}
			f, err := storeFilter(args, since)
			if err != nil {
				return err
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
