// Package daemon builds abing's daemons from their configuration: it is the
// one place that knows which parts exist and how they connect. Monitor runs
// abing monitor: the embedded store (and its retention), InfluxDB, the
// alarm hooks and traceroutes, the Prometheus metrics, the web listener
// (metrics, health, the API and the page) and the monitor, and rereads the
// configuration file on SIGHUP. MeshAgent runs abing mesh agent: the same,
// with the mesh agent beside the monitor, as the source of its targets and
// alarms and a consumer of its records, and its map on the web listener.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/influx"
	"github.com/abing-net/abing/internal/web"
	"github.com/abing-net/abing/meshagent"
	"github.com/abing-net/abing/monitor"
	"github.com/abing-net/abing/notify"
	"github.com/abing-net/abing/redact"
	"github.com/abing-net/abing/store"
	"github.com/abing-net/abing/traceroute"
	"github.com/abing-net/abing/webapi"
	"github.com/abing-net/abing/webui"
)

// Setup is what a command line adds to a configuration.
type Setup struct {
	// ConfigFile is reread on every signal from Reload; "" when the
	// targets came from the command line (abing monitor) or the mesh
	// (abing mesh agent, which does not reread its file).
	ConfigFile string
	Reload     <-chan os.Signal
	// DB, if set, is the embedded database, in place of the
	// configuration's store path (an InfluxDB spool derived from that
	// path follows it).
	DB      string
	NoStore bool
	// WebAddr is where /metrics, /healthz and, with the store, the API
	// and the page are served; "" serves none. WebListener, when set, is
	// used instead (a listener the caller opened: a test's on port 0).
	WebAddr     string
	WebListener net.Listener
	// WebConfigFile is the web listener's TLS and basic authentication
	// (a Prometheus exporter web configuration file); "" serves plain
	// HTTP without authentication.
	WebConfigFile string
	Logger        *slog.Logger
}

// closeGrace is how long, at exit, spooled results and queued alarms are
// given to reach InfluxDB and the hooks, both at once: a stop takes at
// most this long after the measurements in progress end.
const closeGrace = 10 * time.Second

// graceful closes, at exit, what may take up to grace to finish
// (delivering what is spooled or queued), all at once: a stop takes grace,
// not grace for each.
type graceful struct {
	grace time.Duration
	fs    []func(time.Duration) error
}

func (g *graceful) add(f func(time.Duration) error) { g.fs = append(g.fs, f) }

func (g *graceful) close(log *slog.Logger) {
	var wg sync.WaitGroup
	for _, f := range g.fs {
		wg.Go(func() {
			if err := f(g.grace); err != nil {
				log.Error("at exit", "err", err)
			}
		})
	}
	wg.Wait()
}

// Monitor runs abing monitor with a completed configuration until ctx
// ends, then closes everything on the way out. A configuration file that
// does not parse on a reload is logged and the running configuration kept.
func Monitor(ctx context.Context, cfg *config.Config, s Setup) error {
	if s.DB != "" {
		cfg.UseDB(s.DB)
	}
	return run(ctx, cfg, s, nil)
}

// MeshAgent runs abing mesh agent with a completed agent configuration
// (config.ParseAgent) until ctx ends: the agent and, beside it, a monitor
// of every member; then the agent leaves the mesh.
func MeshAgent(ctx context.Context, cfg *config.Config, s Setup) error {
	if s.DB != "" {
		cfg.UseDB(s.DB) // before the copy: the agent's next configurations carry it too
	}
	a, err := meshagent.New(cfg, logger(s))
	if err != nil {
		return err
	}
	if err := a.Open(); err != nil {
		return err
	}
	// The monitor changes its configuration on every reload, while the
	// agent makes the next one from its own (WithTargets): each has its
	// copy.
	monCfg := *cfg
	return run(ctx, &monCfg, s, a)
}

func logger(s Setup) *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// run opens what cfg and s ask for, runs the monitor (and the agent, when
// there is one) and closes everything when ctx ends.
func run(ctx context.Context, cfg *config.Config, s Setup, agent *meshagent.Agent) error {
	log := logger(s)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := monitor.Options{Logger: log}
	atExit := &graceful{grace: closeGrace}
	defer atExit.close(log) // once the monitor has stopped
	var st *store.Store
	if !s.NoStore && !cfg.Store.Disabled {
		var err error
		if st, err = store.Open(cfg.Store.Path); err != nil {
			return err
		}
		defer st.Close()
		opts.Sinks = append(opts.Sinks, st)
		log.Info("storing results", "db", cfg.Store.Path, "retention", cfg.Store.Retention.String())
	}
	if cfg.InfluxDB != nil {
		ic := cfg.InfluxDB.Influx()
		sink, err := influx.Open(ic, log)
		if err != nil {
			return err
		}
		atExit.add(sink.Close) // at exit, try for a while to deliver what is spooled
		opts.Sinks = append(opts.Sinks, sink)
		log.Info("writing to influxdb", "url", redact.URL(ic.URL), "bucket", ic.Bucket, "spool", ic.Spool)
	}
	var l net.Listener
	var collectors []prometheus.Collector
	if agent != nil {
		collectors = agent.Collectors()
	}
	reg := web.Registry(collectors...)
	if l = s.WebListener; l == nil && s.WebAddr != "" {
		var err error
		if l, err = net.Listen("tcp", s.WebAddr); err != nil {
			return fmt.Errorf("web listener %s: %w", s.WebAddr, err)
		}
	}
	if l != nil {
		defer l.Close()
		met := newMetrics(reg, cfg)
		opts.Records = append(opts.Records, met.observe)
		opts.Alarms = append(opts.Alarms, met.alarm)
		opts.Reloaded, opts.Panicked = met.targets, met.panicked
	}
	if agent != nil {
		opts.Records = append(opts.Records, agent.Observe)
	}
	if !cfg.Alarms.Disabled {
		if hooks := cfg.Alarms.Hooks(); len(hooks) > 0 {
			d := notify.NewDispatcher(notify.DispatcherOptions{Hooks: hooks, Logger: log})
			atExit.add(func(grace time.Duration) error { // at exit, give queued alarms a while to reach their hooks
				if err := d.Close(grace); err != nil {
					return fmt.Errorf("alarm hooks: %w", err)
				}
				return nil
			})
			opts.Alarms = append(opts.Alarms, d.Send)
		}
		if cfg.Alarms.Traceroute {
			opts.Tracer = &traceroute.Tracer{}
		}
		log.Info("alarms", "hooks", len(cfg.Alarms.Hooks()), "traceroute", cfg.Alarms.Traceroute)
	}
	log.Info("monitoring", "targets", len(cfg.Targets), "max_in_flight", cfg.MaxInFlight, "exclusive", cfg.Exclusive)
	mon := monitor.New(cfg, opts)
	if l != nil {
		handlers := map[string]http.Handler{}
		if agent != nil {
			maps.Copy(handlers, agent.Handlers())
		}
		if st != nil {
			// The API and the page read the store.
			maps.Copy(handlers, (&webapi.API{Store: st}).Handlers())
			maps.Copy(handlers, webui.Handlers(agent != nil))
		}
		wcfg := web.Defaults()
		wcfg.ConfigFile = s.WebConfigFile
		health := mon.Health
		if agent != nil {
			health = func() error { return errors.Join(agent.Health(), mon.Health()) }
		}
		ws, err := web.Serve(l, web.Options{Registry: reg, Health: health, Handlers: handlers, Log: log, Config: wcfg})
		if err != nil {
			return err
		}
		defer ws.Close()
		if st != nil {
			log.Info("web listener", "page", ws.URL("/"), "metrics", ws.URL("/metrics"))
		} else {
			log.Info("web listener", "metrics", ws.URL("/metrics"))
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if st != nil {
		wg.Go(func() { prune(ctx, st, time.Duration(cfg.Store.Retention), log) })
	}
	if agent != nil {
		// The agent's failure to start (its reflector's port taken, say)
		// ends the monitor too.
		errc := make(chan error, 1)
		wg.Go(func() {
			errc <- agent.Run(ctx, mon.Reload, mon.Raise)
			cancel()
		})
		err := mon.Run(ctx)
		cancel()
		wg.Wait()
		log.Info("monitor stopped")
		return errors.Join(err, <-errc)
	}
	wg.Go(func() { reloadOn(ctx, s, mon, log) })
	err := mon.Run(ctx)
	log.Info("monitor stopped")
	return err
}

// prune applies the store's retention at start and then hourly.
func prune(ctx context.Context, st *store.Store, retention time.Duration, log *slog.Logger) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		n, err := st.Prune(ctx, time.Now().Add(-retention))
		if err != nil && ctx.Err() == nil {
			log.Error("pruning the store", "err", err)
		} else if n > 0 {
			log.Info("pruned old results", "rows", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reloadOn rereads the configuration file on each signal.
func reloadOn(ctx context.Context, s Setup, mon *monitor.Monitor, log *slog.Logger) {
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
		cfg, err := config.Load(s.ConfigFile)
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
