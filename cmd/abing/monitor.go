package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/abing-net/abing/record"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/alarms"
	"github.com/abing-net/abing/influx"
	"github.com/abing-net/abing/internal/web"
	"github.com/abing-net/abing/monitor"
	"github.com/abing-net/abing/redact"
	"github.com/abing-net/abing/store"
)

func monitorCommand() *cobra.Command {
	var (
		file, db, logFormat, webAddr string
		interval, retention          time.Duration
		noStore                      bool
		inFlight                     int
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
			var cfg *monitor.Config
			switch {
			case file != "" && len(args) > 0:
				return errors.New("give --config or targets, not both")
			case file != "":
				var err error
				if cfg, err = monitor.LoadConfig(file); err != nil {
					return err
				}
			case len(args) > 0:
				cfg = &monitor.Config{Interval: monitor.Duration(interval), MaxInFlight: inFlight}
				for _, a := range args {
					cfg.Targets = append(cfg.Targets, monitor.Target{Address: a})
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
				cfg.Store.Retention = monitor.Duration(retention)
			}
			if logFormat != "text" && logFormat != "json" {
				return fmt.Errorf("--log.format %q: want text or json", logFormat)
			}
			var h slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), nil)
			if logFormat == "json" {
				h = slog.NewJSONHandler(cmd.ErrOrStderr(), nil)
			}
			log := slog.New(h)
			opts := monitor.Options{Logger: log}
			if !noStore && !cfg.Store.Disabled {
				path := cfg.Store.Path
				if cmd.Flags().Changed("db") || path == "" {
					path = db
				}
				s, err := store.Open(path)
				if err != nil {
					return err
				}
				defer s.Close()
				opts.Store = s
				log.Info("storing results", "db", path, "retention", time.Duration(cfg.Store.Retention).String())
			}
			if ic := cfg.InfluxDB; ic != nil {
				sink, err := influx.Open(*ic, log)
				if err != nil {
					return err
				}
				// At exit, try for a while to deliver what is spooled.
				defer sink.Close(10 * time.Second)
				opts.Sinks = append(opts.Sinks, sink)
				log.Info("writing to influxdb", "url", redact.URL(ic.URL), "bucket", ic.Bucket, "spool", ic.Spool)
			}
			// The web server starts once the monitor exists (its /healthz
			// asks the monitor), and stops when the command returns.
			var serveWeb func(health func() error)
			stopWeb := func() {}
			defer func() { stopWeb() }()
			if webAddr != "" {
				l, err := net.Listen("tcp", webAddr)
				if err != nil {
					return fmt.Errorf("--web.listen-address: %w", err)
				}
				defer l.Close()
				reg := web.Registry()
				opts.Metrics = monitor.NewMetrics(reg, cfg)
				serveWeb = func(health func() error) {
					log.Info("metrics", "url", "http://"+l.Addr().String()+"/metrics")
					hs := web.Serve(l, reg, log, health)
					stopWeb = func() { hs.Close() }
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if hooks := cfg.Alarms.Hooks(); !cfg.Alarms.Disabled && (len(hooks) > 0 || cfg.Alarms.Traceroute) {
				o := alarms.DispatcherOptions{Hooks: hooks, Logger: log}
				if cfg.Alarms.Traceroute {
					o.Tracer = &alarms.Traceroute{}
				}
				if st := opts.Store; st != nil {
					o.Traced = func(a record.Alarm) {
						if err := st.WriteAlarm(context.Background(), &a); err != nil {
							log.Error("storing an alarm's traceroute", "err", err)
						}
					}
				}
				d := alarms.NewDispatcher(o)
				// At exit, give queued alarms a while to reach their hooks.
				defer func() {
					if err := d.Close(10 * time.Second); err != nil {
						log.Error("alarm hooks", "err", err)
					}
				}()
				opts.Hooks = d
				log.Info("alarm hooks", "hooks", len(hooks), "traceroute", cfg.Alarms.Traceroute)
			}
			log.Info("monitoring", "targets", len(cfg.Targets), "max_in_flight", cfg.MaxInFlight, "exclusive", cfg.Exclusive)
			mon := monitor.New(cfg, opts)
			if serveWeb != nil {
				serveWeb(mon.Health)
			}
			go reloadOnHUP(ctx, hup, mon, file, log)
			err := mon.Run(ctx)
			log.Info("monitor stopped")
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "monitor.yaml with targets, intervals, probe settings and the store")
	f.DurationVar(&interval, "interval", monitor.DefaultInterval, "time between measurements of each target (targets on the command line)")
	f.IntVar(&inFlight, "max-in-flight", monitor.DefaultInFlight, "measurements at once (targets on the command line)")
	f.StringVar(&db, "db", store.DefaultPath(), "embedded database for the results")
	f.BoolVar(&noStore, "no-store", false, "do not store results in the embedded database")
	f.DurationVar(&retention, "retention", monitor.DefaultRetention, "delete stored results older than this")
	f.StringVar(&logFormat, "log.format", "text", "log format: text or json")
	f.StringVar(&webAddr, "web.listen-address", "127.0.0.1:9817", "HTTP address for /metrics and /healthz (\"\" disables)")
	return cmd
}

// reloadOnHUP rereads the configuration file on each signal from hup. A
// file that does not parse is logged and the running configuration kept.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, mon *monitor.Monitor, file string, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if file == "" {
			log.Warn("SIGHUP: no --config file to reload; targets came from the command line")
			continue
		}
		cfg, err := monitor.LoadConfig(file)
		if err != nil {
			log.Error("SIGHUP: configuration not reloaded; the running one is kept", "err", err)
			continue
		}
		mon.Reload(ctx, cfg)
	}
}
