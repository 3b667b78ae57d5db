package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/measure"
)

func measureCommand() *cobra.Command {
	cfg := measure.Defaults()
	var (
		count      int
		interval   time.Duration
		stamps     string
		output     string
		ipv4, ipv6 bool
		keyFile    string
		keyName    string
	)
	cmd := &cobra.Command{
		Use:   "measure HOST[:PORT]",
		Short: "Measure both directions of the path to a reflector",
		Example: "  abing measure reflector.example.org\n" +
			"  abing measure --precision 0.05 --max-bytes 600000 reflector.example.org\n" +
			"  abing measure -6 --train-len 10 --output json [2001:db8::1]:8176\n" +
			"  abing measure --protocol stamp router.example.org",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Target = args[0]
			var err error
			if cfg.Timestamps, err = dispersion.ParseMode(stamps); err != nil {
				return err
			}
			fl := cmd.Flags()
			if fl.Changed("pairs") || fl.Changed("train-len") {
				if fl.Changed("precision") || fl.Changed("max-bytes") {
					return errors.New("--precision and --max-bytes shape the adaptive default; --pairs and --train-len ask for a fixed run instead: give one or the other")
				}
				cfg = cfg.Fixed()
			} else if cfg.Precision == 0 {
				cfg = cfg.Fixed() // --precision 0: as many paced trains as back-to-back ones
			}
			switch {
			case ipv4 && ipv6:
				return errors.New("-4 and -6 exclude each other")
			case ipv4:
				cfg.Network = "udp4"
			case ipv6:
				cfg.Network = "udp6"
			}
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: want text or json", output)
			}
			if count < 1 {
				return fmt.Errorf("--count %d: want at least 1", count)
			}
			if interval < 0 {
				return fmt.Errorf("--interval %v: must not be negative", interval)
			}
			if keyFile != "" {
				keys, err := auth.LoadKeys(keyFile)
				if err != nil {
					return err
				}
				k, err := auth.Pick(keys, keyName)
				if err != nil {
					return fmt.Errorf("--key-file %s: %w (--key-name)", keyFile, err)
				}
				cfg.Key = &k
			} else if keyName != "" {
				return errors.New("--key-name needs --key-file")
			}
			if err := cfg.Validate(); err != nil {
				return inFlags(err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runMeasure(ctx, cfg, count, interval, output, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Trains, "pairs", cfg.Trains, "back-to-back trains (pairs) for capacity; given, it makes the run fixed: as many paced trains of the same length follow")
	f.IntVar(&cfg.TrainLen, "train-len", cfg.TrainLen, "packets per back-to-back train (2 = pairs); given, it makes the run fixed, with paced trains of this length")
	f.IntVar(&cfg.Size, "size", cfg.Size, "IP packet size in bytes, up to 9000 (jumbo)")
	f.DurationVar(&cfg.Interval, "train-interval", cfg.Interval, "time between trains within a phase")
	f.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "longest wait for replies")
	f.StringVar(&stamps, "timestamps", "auto", "timestamp source: auto, hardware, software or user")
	f.StringVar(&cfg.Interface, "interface", "", "interface whose NIC stamps packets (hardware timestamps)")
	f.StringVar(&cfg.Protocol, "protocol", measure.ProtocolAbing, "the reflector's protocol: abing (abing's reflector), stamp (RFC 8762; port 862 unless given; authenticated with --key-file) or twamp-light")
	f.StringVar(&cfg.Method, "method", cfg.Method, "cross-traffic method: probe-gap or abwe (ABwE's published q/(1+q))")
	f.Float64Var(&cfg.Precision, "precision", cfg.Precision, "stop adding paced trains when the ABW interval is within ± this fraction of DBC (0: a fixed run)")
	f.IntVar(&cfg.MaxBytes, "max-bytes", cfg.MaxBytes, "probe bytes per direction, both phases, at most (0: 200 probes' worth, 300 KB of 1500-byte ones)")
	var adaptive bool
	f.BoolVar(&adaptive, "adaptive", false, "")
	f.MarkDeprecated("adaptive", "the adaptive run is the default now; --pairs or --train-len ask for a fixed one")
	f.IntVar(&count, "count", 1, "number of runs")
	f.DurationVar(&interval, "interval", time.Second, "time between the starts of runs")
	f.StringVar(&output, "output", "text", "output format: text or json (one object per direction per run)")
	f.BoolVarP(&ipv4, "ipv4", "4", false, "use IPv4 only")
	f.BoolVarP(&ipv6, "ipv6", "6", false, "use IPv6 only")
	f.StringVar(&keyFile, "key-file", "", "sign probes with a key from this keys file (\"NAME HEX-SECRET\" lines, mode 600), for reflectors started with --keys")
	f.StringVar(&keyName, "key-name", "", "which key of --key-file to use when it holds several")
	return cmd
}

// runMeasure runs count measurements and prints each; it fails if any run
// or any direction produced no estimate.
func runMeasure(ctx context.Context, cfg measure.Config, count int, interval time.Duration, output string, w io.Writer) error {
	enc := json.NewEncoder(w)
	failed := 0
	next := time.Now()
	for i := 0; i < count; i++ {
		if i > 0 {
			next = next.Add(interval)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Until(next)):
			}
		}
		start := time.Now()
		res, err := measure.Run(ctx, cfg)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if count == 1 && output == "text" {
				return err
			}
			failed++
			if output == "json" {
				for _, rec := range measure.FailedRecords(cfg, start, err) {
					if err := enc.Encode(rec); err != nil {
						return err
					}
				}
			}
			fmt.Fprintln(os.Stderr, "abing:", err)
			continue
		}
		bad := false
		for _, rec := range res.Records() {
			bad = bad || rec.Error != ""
			if output == "json" {
				if err := enc.Encode(rec); err != nil {
					return err
				}
			}
		}
		if bad {
			failed++
		}
		if output == "text" {
			fmt.Fprint(w, res.Text())
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d runs had no estimate in some direction", failed, count)
	}
	return nil
}

// flagOf is the flag of each measure.Config setting.
var flagOf = map[string]string{"trains": "--pairs", "train_len": "--train-len", "size": "--size",
	"interval": "--train-interval", "timeout": "--timeout", "method": "--method", "precision": "--precision",
	"max_bytes": "--max-bytes", "protocol": "--protocol"}

// inFlags says a setting error in the words of the command line.
func inFlags(err error) error {
	var se *measure.SettingError
	if errors.As(err, &se) {
		if f, ok := flagOf[se.Setting]; ok {
			return fmt.Errorf("%s %v: %s", f, se.Value, se.Want)
		}
	}
	return err
}
