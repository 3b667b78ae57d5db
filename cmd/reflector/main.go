// Command reflector answers abing probe trains (see package reflector).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/internal/privilege"
	webpkg "github.com/abing-net/abing/internal/web"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/train"
)

func main() {
	if err := command().Execute(); err != nil {
		os.Exit(1)
	}
}

type options struct {
	listen, stamps, iface, keys, user, web, webConfig, logFormat string
	allow, deny                                                  []string
	rate, sourceRate, prefixRate                                 float64
	pps, sourcePPS                                               float64
	cfg                                                          reflector.Config
}

func command() *cobra.Command {
	o := options{}
	def := reflector.Defaults()
	cmd := &cobra.Command{
		Use:   "reflector",
		Short: "Answer abing probe trains on a UDP port",
		Long: "Answer abing probe trains on a UDP port. Safe on the open Internet: replies are never\n" +
			"larger than requests, strangers get only a 56-byte cookie until they prove their address,\n" +
			"every source, /24 or /48 prefix and the whole reflector have rate budgets, and with --keys\n" +
			"only signed probes are answered.",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), &o, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", fmt.Sprintf(":%d", train.DefaultPort), "UDP address to listen on (IPv4 and IPv6)")
	f.StringVar(&o.stamps, "timestamps", "auto", "timestamp source: auto, hardware, software or user")
	f.StringVar(&o.iface, "interface", "", "interface whose NIC stamps packets (hardware timestamps; needs CAP_NET_ADMIN at start)")
	f.StringVar(&o.keys, "keys", "", "answer only probes signed with a key from this file (\"NAME HEX-SECRET\" lines, mode 600)")
	f.StringSliceVar(&o.allow, "allow", nil, "answer only sources in these CIDR prefixes (repeatable)")
	f.StringSliceVar(&o.deny, "deny", nil, "never answer sources in these CIDR prefixes (repeatable; wins over --allow)")
	f.IntVar(&o.cfg.MaxSessions, "max-sessions", def.MaxSessions, "most measurement sessions held at once")
	f.IntVar(&o.cfg.SessionMemory, "session-memory", def.SessionMemory, "most bytes one session may hold")
	f.Float64Var(&o.rate, "rate", def.Limits.Global.Rate/1e6, "budget of the whole reflector, Mbit/s received (replies never exceed it)")
	f.Float64Var(&o.pps, "pps", def.Limits.Global.PPS, "budget of the whole reflector, packets/s received")
	f.Float64Var(&o.sourceRate, "source-rate", def.Limits.Source.Rate/1e6, "budget per source address, Mbit/s")
	f.Float64Var(&o.sourcePPS, "source-pps", def.Limits.Source.PPS, "budget per source address, packets/s")
	f.Float64Var(&o.prefixRate, "prefix-rate", def.Limits.Prefix.Rate/1e6, "budget per source /24 (IPv4) or /48 (IPv6), Mbit/s; packets/s scale with it")
	f.DurationVar(&o.cfg.TrainTimeout, "train-timeout", def.TrainTimeout, "wait this long for the rest of a train")
	f.StringVar(&o.user, "user", "nobody", "user to switch to after binding, when started as root (\"root\" keeps root)")
	f.StringVar(&o.web, "web.listen-address", "127.0.0.1:9816", "HTTP address for /metrics and /healthz, unauthenticated unless --web.config.file says otherwise (\"\" disables)")
	f.StringVar(&o.webConfig, "web.config.file", "", "TLS and basic authentication for the web listener: a Prometheus exporter web configuration file (read as --user)")
	f.StringVar(&o.logFormat, "log.format", "text", "log format: text or json")
	f.DurationVar(&o.cfg.SummaryEvery, "log.summary-interval", def.SummaryEvery, "how often to log a summary of refused datagrams")
	return cmd
}

// config turns flags into a reflector configuration, or says which flag is
// wrong.
func (o *options) config() (reflector.Config, error) {
	cfg := o.cfg
	for _, v := range []struct {
		name string
		v    float64
	}{{"--rate", o.rate}, {"--pps", o.pps}, {"--source-rate", o.sourceRate}, {"--source-pps", o.sourcePPS}, {"--prefix-rate", o.prefixRate}} {
		if !(v.v > 0) || math.IsInf(v.v, 0) { // NaN fails the first test
			return cfg, fmt.Errorf("%s %g: must be a positive number", v.name, v.v)
		}
	}
	lim := reflector.DefaultLimits()
	lim.Global = lim.Global.Scaled(o.rate*1e6, o.pps)
	lim.Source = lim.Source.Scaled(o.sourceRate*1e6, o.sourcePPS)
	// A prefix's packet budget scales with its byte budget.
	lim.Prefix = lim.Prefix.Scaled(o.prefixRate*1e6, lim.Prefix.PPS*o.prefixRate*1e6/lim.Prefix.Rate)
	cfg.Limits = lim
	for _, p := range []struct {
		flag string
		in   []string
		out  *[]netip.Prefix
	}{{"--allow", o.allow, &cfg.Allow}, {"--deny", o.deny, &cfg.Deny}} {
		for _, s := range p.in {
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return cfg, fmt.Errorf("%s %q: want a CIDR prefix such as 198.51.100.0/24 or 2001:db8::/32", p.flag, s)
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			*p.out = append(*p.out, pfx.Masked())
		}
	}
	if o.keys != "" {
		keys, err := auth.LoadKeys(o.keys)
		if err != nil {
			return cfg, err
		}
		cfg.Keys = keys
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return cfg, fmt.Errorf("--log.format %q: want text or json", o.logFormat)
	}
	if o.cfg.SummaryEvery <= 0 {
		return cfg, fmt.Errorf("--log.summary-interval %v: must be positive", o.cfg.SummaryEvery)
	}
	return cfg, cfg.Validate()
}

// sockets opens the probe socket and the web listener (when asked for),
// or takes them from inherited files: this image was re-executed by one
// that set them up with capabilities.
func (o *options) sockets(mode dispersion.Mode, inherited []*os.File) (*dispersion.Conn, net.Listener, error) {
	if inherited == nil {
		conn, err := dispersion.Listen("udp", o.listen, dispersion.Options{Mode: mode, Interface: o.iface})
		if err != nil {
			return nil, nil, err
		}
		if o.web == "" {
			return conn, nil, nil
		}
		web, err := net.Listen("tcp", o.web)
		if err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("--web.listen-address: %w", err)
		}
		return conn, web, nil
	}
	defer func() {
		for _, f := range inherited {
			f.Close() // duplicated by FileConn and FileListener
		}
	}()
	want := 2 // the probe socket and the web listener
	if o.web == "" {
		want = 1
	}
	if len(inherited) != want {
		return nil, nil, fmt.Errorf("re-executed with %d sockets, want %d", len(inherited), want)
	}
	conn, err := dispersion.FileConn(inherited[0], mode)
	if err != nil {
		return nil, nil, err
	}
	if o.web == "" {
		return conn, nil, nil
	}
	web, err := net.FileListener(inherited[1])
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("inherited web listener: %w", err)
	}
	return conn, web, nil
}

// reexec runs this program again, without capabilities, handing it the
// sockets. It returns only on failure.
func (o *options) reexec(conn *dispersion.Conn, web net.Listener) error {
	f, err := conn.File()
	if err != nil {
		return fmt.Errorf("re-execute: %w", err)
	}
	files := []*os.File{f}
	if web != nil {
		wf, err := web.(*net.TCPListener).File()
		if err != nil {
			return fmt.Errorf("re-execute: %w", err)
		}
		files = append(files, wf)
	}
	return privilege.Reexec(files...)
}

func run(ctx context.Context, o *options, logTo io.Writer) error {
	mode, err := dispersion.ParseMode(o.stamps)
	if err != nil {
		return err
	}
	cfg, err := o.config()
	if err != nil {
		return err
	}
	var h slog.Handler = slog.NewTextHandler(logTo, nil)
	if o.logFormat == "json" {
		h = slog.NewJSONHandler(logTo, nil)
	}
	log := slog.New(h)
	cfg.Logger = log

	// Everything that may need privileges happens before the drop; a
	// reflector re-executed without capabilities (below) inherits it.
	inherited, err := privilege.Inherited()
	if err != nil {
		return err
	}
	conn, web, err := o.sockets(mode, inherited)
	if err != nil {
		return err
	}
	defer conn.Close()
	if web != nil {
		defer web.Close()
	}
	if o.user != "root" {
		switched, err := privilege.Drop(o.user)
		if err != nil {
			return err
		}
		if switched {
			log.Info("dropped privileges", "user", o.user)
		}
	} else if os.Geteuid() == 0 {
		log.Warn("running as root (--user root)")
	}
	if os.Geteuid() != 0 {
		// Started unprivileged with capabilities (systemd's
		// AmbientCapabilities=CAP_NET_ADMIN, or setcap, for --interface):
		// none is needed once the socket is set up.
		dropped, err := privilege.DropCapabilities()
		if errors.Is(err, privilege.ErrCgo) && inherited == nil {
			log.Info("re-executing without capabilities: a binary built with cgo cannot clear them from every thread")
			return o.reexec(conn, web)
		}
		if err != nil {
			return fmt.Errorf("started with capabilities that cannot be given up: %w", err)
		}
		if dropped {
			log.Info("dropped capabilities")
		}
	}
	if inherited != nil {
		log.Info("re-executed: no capabilities held; sockets inherited")
	}

	srv, err := reflector.New(conn, cfg)
	if err != nil {
		return err
	}
	rx, tx := conn.Sources()
	metrics := "off"
	if web != nil {
		wcfg := webpkg.Defaults()
		wcfg.ConfigFile = o.webConfig
		ws, err := webpkg.Serve(web, webpkg.Options{Registry: webpkg.Registry(reflector.NewCollector(srv)), Log: log, Config: wcfg})
		if err != nil {
			return fmt.Errorf("--web.config.file: %w", err)
		}
		defer ws.Close()
		metrics = ws.URL("/metrics")
	}
	log.Info("reflector listening", "addr", conn.LocalAddr(), "rx_timestamps", rx, "tx_timestamps", tx,
		"keys", len(cfg.Keys), "allow", o.allow, "deny", o.deny, "metrics", metrics)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = srv.Serve(ctx)
	st := srv.Stats()
	log.Info("reflector stopped", "received", st.Received, "dropped", st.DroppedTotal(), "cookies", st.Cookies,
		"trains", st.Trains, "replies", st.Replies, "reports", st.Reports, "refusals", st.Refusals)
	return err
}
