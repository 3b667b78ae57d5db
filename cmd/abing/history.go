package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/source"
	"github.com/abing-net/abing/webapi"
)

func historyCommand() *cobra.Command {
	var (
		src          source.Flags
		output, path string
		points       int
	)
	cmd := &cobra.Command{
		Use:   "history [TARGET]",
		Short: "Print stored results (the monitor's embedded database, or any other source)",
		Example: "  abing history --since 24h\n" +
			"  abing history --output csv lab-b.example.org:8176 > lab-b.csv\n" +
			"  abing history --api monitor.example.org:9817                 # every path's last results\n" +
			"  abing history --api monitor.example.org:9817 --since 168h --points 168 lab-b",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := record.NewPrinter(cmd.OutOrStdout(), output)
			if err != nil {
				return err
			}
			f, err := src.Filter(args)
			if err != nil {
				return err
			}
			if src.API != "" {
				if output == "csv" {
					return fmt.Errorf("--output csv needs records; the API answers with text or json")
				}
				c, err := src.Client()
				if err != nil {
					return err
				}
				if f.Target == "" {
					ts, err := c.Targets(cmd.Context())
					if err != nil {
						return err
					}
					return webapi.PrintTargets(cmd.OutOrStdout(), ts, output)
				}
				since := f.Since
				if since == 0 {
					since = webapi.MaxSince // the API's longest window
				}
				h, err := c.History(cmd.Context(), f.Target, path, since, points)
				if err != nil {
					return err
				}
				return webapi.PrintHistory(cmd.OutOrStdout(), h, output)
			}
			if path != "" || points != 0 {
				return fmt.Errorf("--path and --points read the API: give --api too")
			}
			s, err := src.Open()
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.Records(cmd.Context(), f, p.Print); err != nil {
				return err
			}
			return p.Flush()
		},
	}
	src.Bind(cmd.Flags(), 0, source.API, source.Agent, source.Influx, source.Input)
	cmd.Flags().StringVar(&output, "output", "text", "text, json (one object per line, as abing measure) or csv")
	cmd.Flags().StringVar(&path, "path", "", "with --api and TARGET: the target's path (a name of its paths:)")
	cmd.Flags().IntVar(&points, "points", 0, "with --api and TARGET: buckets a direction (10 to 5000; 0: the API's 500)")
	return cmd
}
