package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/daemon"
	"github.com/abing-net/abing/store"
)

func monitorCommand() *cobra.Command {
	var (
		file, db, logFormat, webAddr, webConfig string
		interval, retention                     time.Duration
		noStore                                 bool
		inFlight                                int
	)
	cmd := &cobra.Command{
		Use:   "monitor {--config FILE | TARGET...}",
		Short: "Measure many paths around the clock and store every result",
		Example: "  abing monitor --config /etc/abing/monitor.yaml\n" +
			"  abing monitor --interval 30s lab-b.example.org lab-c.example.org:8176",
		RunE: func(cmd *cobra.Command, args []string) error {
			// Before anything slow (opening the store, InfluxDB, the
			// listener): a SIGHUP that comes during start-up would
			// otherwise kill the process. It is taken once running.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			var cfg *config.Config
			switch {
			case file != "" && len(args) > 0:
				return errors.New("give --config or targets, not both")
			case file != "":
				var err error
				if cfg, err = config.Load(file); err != nil {
					return err
				}
			case len(args) > 0:
				c := config.Default()
				cfg = &c
				cfg.Interval, cfg.MaxInFlight = config.Duration(interval), inFlight
				for _, a := range args {
					cfg.Targets = append(cfg.Targets, cfg.NewTarget("", a, nil))
				}
				if err := cfg.Complete(); err != nil {
					return fmt.Errorf("targets:%w", err)
				}
			default:
				return errors.New("give --config FILE or at least one target")
			}
			if cmd.Flags().Changed("retention") {
				if retention <= 0 {
					return fmt.Errorf("--retention %v: must be positive", retention)
				}
				cfg.Store.Retention = config.Duration(retention)
			}
			if logFormat != "text" && logFormat != "json" {
				return fmt.Errorf("--log.format %q: want text or json", logFormat)
			}
			var h slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), nil)
			if logFormat == "json" {
				h = slog.NewJSONHandler(cmd.ErrOrStderr(), nil)
			}
			setup := daemon.Setup{ConfigFile: file, Reload: hup, NoStore: noStore, WebAddr: webAddr, WebConfigFile: webConfig, Logger: slog.New(h)}
			if cmd.Flags().Changed("db") {
				setup.DB = db
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return daemon.Monitor(ctx, cfg, setup)
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "monitor.yaml with targets, intervals, probe settings and the store")
	f.DurationVar(&interval, "interval", config.DefaultInterval, "time between measurements of each target (targets on the command line)")
	f.IntVar(&inFlight, "max-in-flight", config.DefaultInFlight, "measurements at once (targets on the command line)")
	f.StringVar(&db, "db", store.DefaultPath(), "embedded database for the results")
	f.BoolVar(&noStore, "no-store", false, "do not store results in the embedded database")
	f.DurationVar(&retention, "retention", config.DefaultRetention, "delete stored results older than this")
	f.StringVar(&logFormat, "log.format", "text", "log format: text or json")
	f.StringVar(&webAddr, "web.listen-address", "127.0.0.1:9817", "HTTP address for the page (/), the JSON API, /metrics and /healthz; unauthenticated unless --web.config.file says otherwise (\"\" disables)")
	f.StringVar(&webConfig, "web.config.file", "", "TLS and basic authentication for the web listener: a Prometheus exporter web configuration file")
	return cmd
}
