package main

import (
	"crypto/rand"
	"encoding/base64"
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
	"github.com/abing-net/abing/train"
)

func meshAgentCommand() *cobra.Command {
	var (
		file, node, paths, prefixes, db, logFormat, webAddr, webConfig string
		interval                                                       time.Duration
		noStore                                                        bool
		set                                                            config.Agent
		refresh                                                        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "agent --paths NAME=ADDR[,NAME=ADDR...] [--join HOST:PORT] [--config FILE]",
		Short: "Run one host of a self-organising mesh: reflector, monitor of every member, serf membership, the full map",
		Long: "agent runs a reflector, a monitor that measures every other member on each path both have,\n" +
			"and a serf member that gossips membership and every node's row (its coordinate and link costs),\n" +
			"so that every node holds the full map. Start the first node without --join (the landmark);\n" +
			"every other joins through any member. The netloc API answers on --netloc, the map on the web\n" +
			"listener (/api/v1/mesh, /api/v1/netloc, /api/v1/mesh/records), and abing mesh compare|relays|coords\n" +
			"read it with --agent. Gossip beyond loopback needs --keyring (abing mesh keygen) or --insecure.\n" +
			"See docs/mesh.md for a deployment.",
		Example: "  abing mesh keygen > /etc/abing/mesh.keyring && chmod 600 /etc/abing/mesh.keyring\n" +
			"  abing mesh agent --node lab-a --paths direct=198.51.100.5 --keyring /etc/abing/mesh.keyring\n" +
			"  abing mesh agent --node lab-b --paths direct=203.0.113.7,overlay=fd00::7 --path-prefixes overlay=fd00::/64 --join 198.51.100.5 --keyring /etc/abing/mesh.keyring",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *config.Config
			var err error
			if file != "" {
				cfg, err = config.ReadAgent(file)
			} else {
				cfg, err = config.DecodeAgent([]byte("{}"), "defaults")
			}
			if err != nil {
				return err
			}
			s := &cfg.Agent
			f := cmd.Flags()
			if f.Changed("paths") {
				if s.Paths, err = config.ParsePaths(paths); err != nil {
					return fmt.Errorf("--paths: %w", err)
				}
			}
			if f.Changed("path-prefixes") {
				if s.PathPrefixes, err = config.ParsePathPrefixes(prefixes); err != nil {
					return fmt.Errorf("--path-prefixes: %w", err)
				}
			}
			for _, o := range []struct {
				flag string
				set  func()
			}{
				{"join", func() { s.Join = set.Join }}, {"bind", func() { s.Bind = set.Bind }}, {"advertise", func() { s.Advertise = set.Advertise }},
				{"port", func() { s.Port = set.Port }}, {"keyring", func() { s.Keyring = set.Keyring }}, {"insecure", func() { s.Insecure = set.Insecure }},
				{"netloc", func() { s.Netloc = set.Netloc }}, {"netloc-path", func() { s.NetlocPath = set.NetlocPath }},
				{"refresh", func() { s.Refresh = config.Duration(refresh) }}, {"profile", func() { s.Profile = set.Profile }},
				{"node", func() { cfg.Node = node }}, {"interval", func() { cfg.Interval = config.Duration(interval) }},
			} {
				if f.Changed(o.flag) {
					o.set()
				}
			}
			// The flags laid over the file, checked as the file is.
			if err := cfg.Complete(); err != nil {
				if file == "" {
					return fmt.Errorf("flags:%w", err)
				}
				return fmt.Errorf("%s (and the flags):%w", file, err)
			}
			if logFormat != "text" && logFormat != "json" {
				return fmt.Errorf("--log.format %q: want text or json", logFormat)
			}
			var h slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), nil)
			if logFormat == "json" {
				h = slog.NewJSONHandler(cmd.ErrOrStderr(), nil)
			}
			log := slog.New(h)
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					log.Warn("SIGHUP: the mesh agent does not reread its configuration; restart it to change its settings (members come and go without)")
				}
			}()
			setup := daemon.Setup{NoStore: noStore, WebAddr: webAddr, WebConfigFile: webConfig, Logger: log}
			if f.Changed("db") {
				setup.DB = db
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return daemon.MeshAgent(ctx, cfg, setup)
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "configuration: a monitor.yaml without targets, with an agent section (deploy/mesh-agent.example.yaml)")
	f.StringVar(&node, "node", "", "this host's name in the mesh and in every record (default: the configuration's node, else the hostname)")
	f.StringVar(&paths, "paths", "", "this host's address on each network, NAME=ADDR,... (e.g. direct=198.51.100.5,overlay=fd00::5); the first carries the gossip")
	f.StringVar(&prefixes, "path-prefixes", "", "networks in which members may advertise a path's address other than their gossip address, NAME=PREFIX,... (e.g. overlay=fd00::/64): an overlay's")
	f.StringSliceVar(&set.Join, "join", nil, "a member to join through, HOST[:PORT] (repeatable; none: this node starts the mesh)")
	f.StringVar(&set.Bind, "bind", config.DefaultBind, "serf's TCP and UDP address")
	f.StringVar(&set.Advertise, "advertise", "", "the address others reach serf at (default: the first path's address, --bind's port)")
	f.IntVar(&set.Port, "port", train.DefaultPort, "the reflector's UDP port, advertised to the members")
	f.StringVar(&set.Keyring, "keyring", "", "gossip encryption keys: base64, one a line, the first in use (mode 600; abing mesh keygen)")
	f.BoolVar(&set.Insecure, "insecure", false, "gossip without encryption beyond loopback (a network you trust)")
	f.StringVar(&set.Netloc, "netloc", "", "TCP address of the netloc API (default 127.0.0.1:4001; \"none\" turns it off)")
	f.StringVar(&set.NetlocPath, "netloc-path", "", "the path whose coordinates the netloc API serves (default: the first)")
	f.DurationVar(&refresh, "refresh", config.DefaultRefresh, "publish the whole row again this often")
	f.StringVar(&set.Profile, "profile", "lan", "serf's timing: lan, wan or local")
	f.DurationVar(&interval, "interval", config.DefaultInterval, "time between measurements of each member's path")
	f.StringVar(&db, "db", store.DefaultPath(), "embedded database for the results")
	f.BoolVar(&noStore, "no-store", false, "do not store results in the embedded database")
	f.StringVar(&logFormat, "log.format", "text", "log format: text or json")
	f.StringVar(&webAddr, "web.listen-address", "127.0.0.1:9817", "HTTP address for the page (/), the JSON and mesh API, /metrics and /healthz; unauthenticated unless --web.config.file says otherwise (\"\" disables)")
	f.StringVar(&webConfig, "web.config.file", "", "TLS and basic authentication for the web listener: a Prometheus exporter web configuration file")
	return cmd
}

func meshKeygenCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new gossip encryption key (AES-256, base64) for a mesh's keyring file",
		Long: "keygen prints a new random key. Put it in a file readable only by the agent (chmod 600) on every\n" +
			"node and give it with --keyring. To rotate, add the new key on every node below the old one, restart,\n" +
			"move it to the first line, restart, then remove the old one.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k := make([]byte, 32)
			if _, err := rand.Read(k); err != nil {
				return err
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(k))
			return err
		},
	}
}
