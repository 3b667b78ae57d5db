package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/abing-net/abing/capture"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/measure"
)

func analyzeCommand() *cobra.Command {
	var (
		list                   bool
		session, clock, output string
		opts                   capture.Options
	)
	cmd := &cobra.Command{
		Use:   "analyze CAPTURE",
		Short: "Estimate abing runs from a packet capture taken on the sending host (pcap or pcapng)",
		Long: "analyze reads the abing runs in a capture taken on the sending host while abing measured\n" +
			"(tcpdump, dumpcap), and estimates each one from the capture's timestamps with the code of\n" +
			"a live run. A NIC that stamps packets for the capture (tcpdump -j adapter_unsynced) gives\n" +
			"hardware-timestamp accuracy to the replies where the socket cannot have it; say --clock\n" +
			"hardware then (Linux stamps sent packets for a capture in software, before the NIC sends\n" +
			"them, and the NIC's clock must be synchronised to the system's: phc2sys).\n" +
			"CAPTURE - reads standard input. --list prints every abing datagram instead, as a dissector.",
		Example: "  tcpdump -i eth0 --time-stamp-precision nano -w run.pcap udp port 8176 &\n" +
			"  abing measure far.example.org; kill %1\n" +
			"  abing analyze run.pcap\n" +
			"  abing analyze --list --session 5c1f0e2a9b3d4e6f run.pcap",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: want text or json", output)
			}
			switch clock {
			case "kernel", "software":
				opts.Clock = dispersion.SourceKernel
			case "hardware":
				opts.Clock = dispersion.SourceHardware
			default:
				return fmt.Errorf("--clock %q: want kernel or hardware", clock)
			}
			if opts.Method != measure.MethodProbeGap && opts.Method != measure.MethodABwE {
				return fmt.Errorf("--method %q: want %s or %s", opts.Method, measure.MethodProbeGap, measure.MethodABwE)
			}
			if session != "" {
				id, err := strconv.ParseUint(strings.TrimPrefix(session, "0x"), 16, 64)
				if err != nil || id == 0 {
					return fmt.Errorf("--session %q: want a session id in hex, as --list prints it", session)
				}
				opts.Session = id
			}
			in, name := io.Reader(cmd.InOrStdin()), "standard input"
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in, name = f, args[0]
			}
			r, err := capture.NewReader(in)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if list {
				return listCapture(r, opts.Session, cmd.OutOrStdout())
			}
			start, last := time.Now(), time.Now()
			r.Progress(func(st capture.Stats) {
				if time.Since(last) > 2*time.Second {
					last = time.Now()
					fmt.Fprintf(cmd.ErrOrStderr(), "abing: %s: %d packets read, %d abing datagrams (%v)\n",
						name, st.Packets, st.Datagrams, time.Since(start).Round(time.Second))
				}
			})
			p := &sessionPrinter{res: r.Resolution, clock: opts.Clock, output: output, w: cmd.OutOrStdout(), errw: cmd.ErrOrStderr(),
				json: json.NewEncoder(cmd.OutOrStdout())}
			if err := capture.Analyze(r, opts, p.print); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if p.good == 0 {
				return fmt.Errorf("no session of the %d in the capture has an estimate in both directions", p.n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&list, "list", false, "list every abing datagram, one line each, instead of estimating")
	f.StringVar(&session, "session", "", "only the session with this id (hex, as --list prints it)")
	f.StringVar(&clock, "clock", "kernel", "what stamped the packets the capture received: kernel (libpcap's default) or hardware (tcpdump -j adapter_unsynced; sent packets are stamped by the kernel either way)")
	f.StringVar(&opts.Method, "method", measure.MethodProbeGap, "cross-traffic method: probe-gap or abwe")
	f.StringVar(&output, "output", "text", "output format: text or json (one object per direction per session, as abing measure)")
	return cmd
}

func listCapture(r *capture.Reader, session uint64, w io.Writer) error {
	var t0 time.Time
	for n := 0; ; {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				st := r.Stats()
				return fmt.Errorf("no abing datagram in %d packets", st.Packets)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if session != 0 && d.Header.Session != session {
			continue
		}
		if n == 0 {
			t0 = d.Time
		}
		n++
		if _, err := fmt.Fprintln(w, capture.Describe(d, t0)); err != nil {
			return err
		}
	}
}

// sessionPrinter prints each session's estimate as the analysis delivers
// it.
type sessionPrinter struct {
	res     func() time.Duration // the capture's timestamp resolution
	clock   dispersion.Source
	output  string
	w, errw io.Writer
	json    *json.Encoder
	n, good int // sessions, and those with an estimate both ways
}

func (p *sessionPrinter) print(s *capture.Session) error {
	p.n++
	notes := []string{fmt.Sprintf("from a capture: session %016x, %s > %s, %d probes, %d datagrams, stamped by %s every %v",
		s.ID, s.Sender, s.Reflector, s.Probes, s.Datagrams, p.clock, p.res())}
	if n := s.Duplicates(); n > 0 {
		notes = append(notes, fmt.Sprintf("%d probes captured more than once (several interfaces?): the first of each used", n))
	}
	if s.Cut > 0 {
		notes = append(notes, fmt.Sprintf("%d replies or reports cut by the capture's snap length, not used (capture with -s 0)", s.Cut))
	}
	if p.res() > time.Microsecond/2 && p.clock == dispersion.SourceHardware {
		notes = append(notes, "microsecond timestamps hide what the NIC stamped: capture with --time-stamp-precision nano")
	}
	result, err := s.Result()
	if err != nil {
		fmt.Fprintln(p.errw, "abing:", err)
		return nil
	}
	recs := result.Records()
	ok := true
	for i := range recs {
		ok = ok && recs[i].Error == ""
		recs[i].Note = strings.TrimSuffix(strings.Join(append(notes, recs[i].Note), "; "), "; ")
	}
	if ok {
		p.good++
	}
	if p.output == "json" {
		for _, rec := range recs {
			if err := p.json.Encode(rec); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(p.w, "session %016x  %s > %s  %s  (%d probes, %d datagrams)\n", s.ID, s.Sender, s.Reflector,
		result.Time.UTC().Format("2006-01-02 15:04:05.000 MST"), s.Probes, s.Datagrams)
	for _, rec := range recs {
		fmt.Fprintln(p.w, "  "+rec.Text())
	}
	for _, n := range notes[1:] {
		if _, err := fmt.Fprintln(p.w, "  note: "+n); err != nil {
			return err
		}
	}
	return nil
}
