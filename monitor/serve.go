package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abing-net/abing/influx"
	"github.com/abing-net/abing/internal/web"
	"github.com/abing-net/abing/notify"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/redact"
	"github.com/abing-net/abing/store"
	"github.com/abing-net/abing/traceroute"
	"github.com/abing-net/abing/webapi"
	"github.com/abing-net/abing/webui"
)

// Setup is what a command line adds to a configuration.
type Setup struct {
	// ConfigFile is reread on every signal from Reload; "" when the
	// targets came from the command line.
	ConfigFile string
	Reload     <-chan os.Signal
	// DB, if set, is the embedded database, in place of the
	// configuration's store path (an InfluxDB spool derived from that
	// path follows it).
	DB      string
	NoStore bool
	// WebAddr is where /metrics, /healthz and, with the store, the API of
	// package webapi are served; "" serves none.
	WebAddr string
	// Handlers are served on the web listener beside /metrics, by path
	// (the mesh agent's API).
	Handlers map[string]http.Handler
	Logger   *slog.Logger
	// Results, if set, receives every batch of records (Options.Results).
	Results func([]record.Record)
	// Collectors are exported on /metrics beside the monitor's (the
	// mesh agent's).
	Collectors []prometheus.Collector
	// Attach, if set, runs beside the monitor until ctx ends: the mesh
	// agent, whose members become the monitor's targets (Reload) and whose
	// failures alarms (Raise).
	Attach func(ctx context.Context, mon *Monitor)
}

// closeGrace is how long, at exit, spooled results and queued alarms are
// given to reach InfluxDB and the hooks.
const closeGrace = 10 * time.Second

// Serve runs a completed configuration until ctx ends: it opens the store,
// InfluxDB, the web listener, the alarm hooks and traceroutes as cfg and s
// ask, runs the monitor, rereads the configuration file on each signal
// from s.Reload (a file that does not parse is logged and the running
// configuration kept), and closes everything on the way out.
func Serve(ctx context.Context, cfg *Config, s Setup) error {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if s.DB != "" {
		cfg.UseDB(s.DB)
	}
	opts := Options{Logger: log, Results: s.Results}
	if !s.NoStore && !cfg.Store.Disabled {
		st, err := store.Open(cfg.Store.Path)
		if err != nil {
			return err
		}
		defer st.Close()
		opts.Store = st
		log.Info("storing results", "db", cfg.Store.Path, "retention", time.Duration(cfg.Store.Retention).String())
	}
	if ic := cfg.InfluxDB; ic != nil {
		sink, err := influx.Open(*ic, log)
		if err != nil {
			return err
		}
		defer sink.Close(closeGrace) // at exit, try for a while to deliver what is spooled
		opts.Sinks = append(opts.Sinks, sink)
		log.Info("writing to influxdb", "url", redact.URL(ic.URL), "bucket", ic.Bucket, "spool", ic.Spool)
	}
	var l net.Listener
	var reg = web.Registry(s.Collectors...)
	if s.WebAddr != "" {
		var err error
		if l, err = net.Listen("tcp", s.WebAddr); err != nil {
			return fmt.Errorf("web listener %s: %w", s.WebAddr, err)
		}
		defer l.Close()
		opts.Metrics = NewMetrics(reg, cfg)
	}
	if !cfg.Alarms.Disabled {
		if hooks := cfg.Alarms.Hooks(); len(hooks) > 0 {
			d := notify.NewDispatcher(notify.DispatcherOptions{Hooks: hooks, Logger: log})
			defer func() { // at exit, give queued alarms a while to reach their hooks
				if err := d.Close(closeGrace); err != nil {
					log.Error("alarm hooks", "err", err)
				}
			}()
			opts.Notify = d
		}
		if cfg.Alarms.Traceroute {
			opts.Tracer = &traceroute.Tracer{}
		}
		log.Info("alarms", "hooks", len(cfg.Alarms.Hooks()), "traceroute", cfg.Alarms.Traceroute)
	}
	log.Info("monitoring", "targets", len(cfg.Targets), "max_in_flight", cfg.MaxInFlight, "exclusive", cfg.Exclusive)
	mon := New(cfg, opts)
	if l != nil {
		log.Info("metrics", "url", "http://"+l.Addr().String()+"/metrics")
		handlers := maps.Clone(s.Handlers)
		if handlers == nil {
			handlers = map[string]http.Handler{}
		}
		if opts.Store != nil {
			// The API and the page read the store.
			_, mesh := handlers["/api/v1/mesh"]
			maps.Copy(handlers, (&webapi.API{Store: opts.Store}).Handlers())
			maps.Copy(handlers, webui.Handlers(mesh))
		}
		hs := web.Serve(l, reg, log, mon.Health, handlers)
		defer hs.Close()
	}
	go reloadOn(ctx, s, mon, log)
	var attached sync.WaitGroup
	if s.Attach != nil {
		attached.Go(func() { s.Attach(ctx, mon) })
	}
	err := mon.Run(ctx)
	attached.Wait()
	log.Info("monitor stopped")
	return err
}

// reloadOn rereads the configuration file on each signal.
func reloadOn(ctx context.Context, s Setup, mon *Monitor, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.Reload:
		}
		if s.ConfigFile == "" {
			log.Warn("SIGHUP: no configuration file to reload; targets came from the command line")
			continue
		}
		cfg, err := LoadConfig(s.ConfigFile)
		if err != nil {
			log.Error("SIGHUP: configuration not reloaded; the running one is kept", "err", err)
			continue
		}
		if s.DB != "" {
			cfg.UseDB(s.DB)
		}
		mon.Reload(ctx, cfg)
	}
}
