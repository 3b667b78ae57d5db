// Command reflector answers abing probe trains (see package reflector).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/reflector"
)

func main() {
	if err := command().Execute(); err != nil {
		os.Exit(1)
	}
}

func command() *cobra.Command {
	var (
		listen, stamps, iface string
		cfg                   reflector.Config
		rateMbps              float64
	)
	cmd := &cobra.Command{
		Use:           "reflector",
		Short:         "Answer abing probe trains on a UDP port",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: false,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mode, err := dispersion.ParseMode(stamps)
			if err != nil {
				return err
			}
			if rateMbps <= 0 {
				return fmt.Errorf("--source-rate %g: must be positive", rateMbps)
			}
			cfg.SourceRate = rateMbps * 1e6
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			cfg.Logger = log
			conn, err := dispersion.Listen("udp", listen, dispersion.Options{Mode: mode, Interface: iface})
			if err != nil {
				return err
			}
			defer conn.Close()
			rx, tx := conn.Sources()
			log.Info("reflector listening", "addr", conn.LocalAddr(), "rx_timestamps", rx, "tx_timestamps", tx)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv := reflector.New(conn, cfg)
			err = srv.Serve(ctx)
			st := srv.Stats()
			log.Info("reflector stopped", "received", st.Received, "malformed", st.Malformed, "trains", st.Trains,
				"replies", st.Replies, "reports", st.Reports, "rate_limited", st.RateLimited, "overloaded", st.Overloaded)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", ":8176", "UDP address to listen on (IPv4 and IPv6)")
	f.StringVar(&stamps, "timestamps", "auto", "timestamp source: auto, hardware, software or user")
	f.StringVar(&iface, "interface", "", "interface whose NIC stamps packets (hardware timestamps)")
	f.Float64Var(&rateMbps, "source-rate", 10, "reply budget per source address, Mbit/s")
	f.DurationVar(&cfg.TrainTimeout, "train-timeout", 50*time.Millisecond, "wait this long for the rest of a train")
	f.IntVar(&cfg.MaxSessions, "max-sessions", 4096, "most sessions kept at once")
	return cmd
}
