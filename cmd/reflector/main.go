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

	"github.com/abing-net/abing/internal/version"

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
	listen, stamp, stamps, iface, keys, user, web, webConfig, logFormat string
	stampStateful                                                       bool
	allow, deny                                                         []string
	rate, sourceRate, prefixRate                                        float64
	pps, sourcePPS                                                      float64
	cfg                                                                 reflector.Config
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
		Version:      version.Binary(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), &o, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", fmt.Sprintf(":%d", train.DefaultPort), "UDP address to listen on (IPv4 and IPv6)")
	f.StringVar(&o.stamp, "stamp", "", "also answer STAMP (RFC 8762) and TWAMP-Light test packets on this UDP address, e.g. :862 (\"\" disables; with --keys, authenticated mode only)")
	f.BoolVar(&o.stampStateful, "stamp-stateful", false, "STAMP stateful mode: number replies per sender address, port and SSID (RFC 8762 §4.3.1), which shows loss in each direction")
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

// listeners are the reflector's sockets: abing's probe socket, the STAMP
// one (with --stamp) and the web listener (unless disabled).
type listeners struct {
	conn, stamp *dispersion.Conn
	web         net.Listener
}

func (l *listeners) Close() {
	if l.conn != nil {
		l.conn.Close()
	}
	if l.stamp != nil {
		l.stamp.Close()
	}
	if l.web != nil {
		l.web.Close()
	}
}

// sockets opens the probe socket, the STAMP socket and the web listener
// (those asked for), or takes them from inherited files: this image was
// re-executed by one that set them up with capabilities.
func (o *options) sockets(mode dispersion.Mode, inherited []*os.File) (l listeners, err error) {
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if inherited == nil {
		opts := dispersion.Options{Mode: mode, Interface: o.iface}
		if l.conn, err = dispersion.Listen("udp", o.listen, opts); err != nil {
			return l, err
		}
		if o.stamp != "" {
			if l.stamp, err = dispersion.Listen("udp", o.stamp, opts); err != nil {
				return l, fmt.Errorf("--stamp: %w", err)
			}
		}
		if o.web != "" {
			if l.web, err = net.Listen("tcp", o.web); err != nil {
				return l, fmt.Errorf("--web.listen-address: %w", err)
			}
		}
		return l, nil
	}
	defer func() {
		for _, f := range inherited {
			f.Close() // duplicated by FileConn and FileListener
		}
	}()
	want := 1 // the probe socket, then the STAMP socket and the web listener if asked for
	if o.stamp != "" {
		want++
	}
	if o.web != "" {
		want++
	}
	if len(inherited) != want {
		return l, fmt.Errorf("re-executed with %d sockets, want %d", len(inherited), want)
	}
	if l.conn, err = dispersion.FileConn(inherited[0], mode); err != nil {
		return l, err
	}
	next := 1
	if o.stamp != "" {
		if l.stamp, err = dispersion.FileConn(inherited[next], mode); err != nil {
			return l, fmt.Errorf("inherited STAMP socket: %w", err)
		}
		next++
	}
	if o.web != "" {
		if l.web, err = net.FileListener(inherited[next]); err != nil {
			return l, fmt.Errorf("inherited web listener: %w", err)
		}
	}
	return l, nil
}

// reexec runs this program again, without capabilities, handing it the
// sockets in the order sockets takes them. It returns only on failure.
func (o *options) reexec(l listeners) error {
	var files []*os.File
	for _, c := range []*dispersion.Conn{l.conn, l.stamp} {
		if c == nil {
			continue
		}
		f, err := c.File()
		if err != nil {
			return fmt.Errorf("re-execute: %w", err)
		}
		files = append(files, f)
	}
	if l.web != nil {
		wf, err := l.web.(*net.TCPListener).File()
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
	l, err := o.sockets(mode, inherited)
	if err != nil {
		return err
	}
	defer l.Close()
	conn, web := l.conn, l.web
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
			return o.reexec(l)
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
	// Both loops stop when either fails, or at the signal.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	loops := 1
	go func() { errs <- srv.Serve(ctx) }()
	if l.stamp != nil {
		mode := "unauthenticated (and TWAMP-Light)"
		if len(cfg.Keys) > 0 {
			mode = "authenticated only"
		}
		log.Info("STAMP reflector listening", "addr", l.stamp.LocalAddr(), "mode", mode, "stateful", o.stampStateful)
		st := srv.STAMP(l.stamp, o.stampStateful)
		loops++
		go func() { errs <- st.Serve(ctx) }()
	}
	err = <-errs
	cancel()
	for range loops - 1 {
		if e := <-errs; err == nil {
			err = e
		}
	}
	st := srv.Stats()
	log.Info("reflector stopped", "received", st.Received, "dropped", st.DroppedTotal(), "cookies", st.Cookies,
		"trains", st.Trains, "replies", st.Replies, "reports", st.Reports, "refusals", st.Refusals, "stamp_replies", st.STAMPReplies)
	return err
}
