package measure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/estimator"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/reflector/reflectortest"
)

func startReflector(t *testing.T, network, addr string) (string, *reflector.Server) {
	return startReflectorConfig(t, network, addr, reflector.Config{})
}

func startReflectorConfig(t *testing.T, network, addr string, rcfg reflector.Config) (string, *reflector.Server) {
	r := reflectortest.Start(t, network, addr, rcfg)
	return r.String(), r.Server
}

// On loopback there is no bottleneck worth the name, so this checks the
// protocol end to end, not the numbers: every train answered, both
// directions stamped by the kernel, reports fetched, RTT measured.
func TestLoopback(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			target, srv := startReflector(t, tc.network, tc.addr)
			cfg := Defaults().Fixed()
			cfg.Target = target
			cfg.TrainLen = 3
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []*Direction{&res.Forward, &res.Reverse} {
				if d.TrainsSent != 2*cfg.Trains || d.Packets != 2*cfg.Trains*3 || d.Lost != 0 {
					t.Errorf("%s: sent %d trains %d packets, lost %d", d.Name, d.TrainsSent, d.Packets, d.Lost)
				}
				if d.Bytes != d.Packets*cfg.Size {
					t.Errorf("%s: %d bytes for %d packets", d.Name, d.Bytes, d.Packets)
				}
				if d.TTL != 64 && !(tc.network == "udp6" && d.TTL == 64) {
					t.Errorf("%s: TTL %d", d.Name, d.TTL)
				}
			}
			if !res.RTTOK || res.RTT.Min <= 0 || res.RTT.Min > res.RTT.Max {
				t.Errorf("RTT %+v ok %v", res.RTT, res.RTTOK)
			}
			st := srv.Stats()
			if st.Trains != uint64(2*cfg.Trains) || st.Reports == 0 || st.DroppedTotal() != 0 || st.Cookies != 1 {
				t.Errorf("reflector stats %+v", st)
			}
			if res.Unexpected != 0 {
				t.Errorf("%d unexpected datagrams", res.Unexpected)
			}
			if !strings.Contains(res.Text(), "note: the reflector is on this host (loopback)") {
				t.Errorf("no word that loopback has no bottleneck:\n%s", res.Text())
			}
			recs := res.Records()
			if len(recs) != 2 || recs[0].Direction != "forward" || recs[1].Direction != "reverse" {
				t.Fatalf("records %+v", recs)
			}
			// Loopback is faster than a sender can space its probes: where
			// most trains left too slowly to measure it, a lower bound
			// comes out, and the error says what to try.
			for i, d := range []*Direction{&res.Forward, &res.Reverse} {
				t.Logf("%s: %s", d.Name, recs[i].Text())
				if d.CapErr != nil && 2*d.Rejects[dispersion.LeftLate] >= cfg.Trains &&
					(recs[i].DBCMin == nil || *recs[i].DBCMin <= 0 || !strings.Contains(recs[i].Error, "capacity above")) {
					t.Errorf("%s: %d of %d trains left late, and no lower bound: %s", d.Name, d.Rejects[dispersion.LeftLate], cfg.Trains, recs[i].Text())
				}
			}
			b, _ := json.Marshal(recs[0])
			for _, field := range []string{"time", "target", "direction", "rtt_ms", "pairs_sent", "pairs_received",
				"pairs_used", "loss", "packet_size", "train_len", "timestamp_source", "ttl"} {
				if !strings.Contains(string(b), `"`+field+`"`) {
					t.Errorf("JSON lacks %s: %s", field, b)
				}
			}
			if res.Duration > time.Second {
				t.Errorf("took %v", res.Duration)
			}
		})
	}
}

// A reflector with keys measures for a sender with a right key only, and a
// sender without one is told what may be wrong.
func TestKeyed(t *testing.T) {
	key := auth.Key{Name: "site-a", Secret: []byte("0123456789abcdef")}
	target, srv := startReflectorConfig(t, "udp4", "127.0.0.1:0", reflector.Config{Keys: []auth.Key{key}})
	for _, tc := range []struct {
		name string
		key  *auth.Key
		want string // error substring, "" for success
	}{
		{"right key", &key, ""},
		{"no key", nil, "--key-file"},
		{"wrong secret", &auth.Key{Name: "site-a", Secret: []byte("fedcba9876543210")}, "does not accept our key"},
		{"unknown name", &auth.Key{Name: "site-b", Secret: key.Secret}, "does not accept our key"},
	} {
		cfg := Defaults().Fixed()
		cfg.Target, cfg.Key, cfg.Timeout = target, tc.key, 500*time.Millisecond
		res, err := Run(context.Background(), cfg)
		switch {
		case tc.want == "" && (err != nil || res.Forward.Complete != 2*cfg.Trains):
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	st := srv.Stats()
	if st.Dropped[reflector.DropUnsigned] == 0 || st.Dropped[reflector.DropBadSignature] == 0 {
		t.Errorf("drops %v", st.Dropped)
	}
}

func TestNoReflector(t *testing.T) {
	conn, err := dispersion.Listen("udp4", "127.0.0.1:0", dispersion.Options{})
	if err != nil {
		t.Fatal(err)
	}
	target := conn.LocalAddr().String()
	conn.Close()
	cfg := Defaults().Fixed()
	cfg.Target = target
	start := time.Now()
	_, err = Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), target) {
		t.Fatalf("err = %v, want an error naming %s", err, target)
	}
	if time.Since(start) > cfg.Timeout+time.Second {
		t.Errorf("took %v to fail", time.Since(start))
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		setting string
		want    string
	}{
		{"size 20", func(c *Config) { c.Size = 20 }, "size", "size 20: want"},
		{"size 9001", func(c *Config) { c.Size = 9001 }, "size", "size 9001: want"},
		{"pairs 0", func(c *Config) { c.Trains = 0 }, "trains", "trains 0: want"},
		{"train-len 1", func(c *Config) { c.TrainLen = 1 }, "train_len", "train_len 1: want"},
		{"timeout 0", func(c *Config) { c.Timeout = 0 }, "timeout", "timeout 0s: must be positive"},
		{"interval -1", func(c *Config) { c.Interval = -1 }, "interval", "interval -1ns: must be positive"},
		{"method", func(c *Config) { c.Method = "magic" }, "method", `method "magic"`},
		{"network", func(c *Config) { c.Network = "tcp" }, "network", `network "tcp"`},
		{"precision 1", func(c *Config) { c.Precision = 1 }, "precision", "precision 1: want"},
		{"precision NaN", func(c *Config) { c.Precision = math.NaN() }, "precision", "precision NaN"},
		{"budget below one round", func(c *Config) { c.MaxBytes = 100_000 }, "max_bytes", "max_bytes 100000: want 123000"},
		{"budget over the cap", func(c *Config) { c.MaxBytes = MaxBytes + 1 }, "max_bytes", "max_bytes 10000001"},
		{"paced train of 1", func(c *Config) { c.PacedTrainLen = 1 }, "paced_train_len", "paced_train_len 1"},
	} {
		cfg := Defaults()
		tc.mod(&cfg)
		err := cfg.Validate()
		var se *SettingError
		if !errors.As(err, &se) || se.Setting != tc.setting || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want setting %s and %q", tc.name, err, tc.setting, tc.want)
		}
	}
	if cfg := Defaults(); cfg.Validate() != nil {
		t.Errorf("defaults: %v", cfg.Validate())
	}
	// An adaptive run's hard deadline allows for every round it may send.
	ad, fixed := Defaults(), Defaults().Fixed()
	if ad.Validate() != nil || ad.rounds() != 3 || ad.MaxDuration() <= fixed.MaxDuration() {
		t.Errorf("adaptive: %v, %d rounds, deadline %v (fixed %v)", ad.Validate(), ad.rounds(), ad.MaxDuration(), fixed.MaxDuration())
	}
	if _, err := Run(context.Background(), Config{Target: "x"}); err == nil {
		t.Error("zero config accepted")
	}
	cfg := Defaults().Fixed()
	// An invalid name fails in the resolver without a query on the network.
	cfg.Target = "bad..host"
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "bad..host") {
		t.Errorf("unknown host: err = %v", err)
	}
}

// A reflector on a wildcard address, reached at one of the host's other
// addresses (127.0.0.2: loopback holds all of 127/8): it answers from the
// address the request came to, or the sender, which takes answers only from
// the address it asked, would hear nothing. Both an IPv4 socket
// (IP_PKTINFO) and a dual-stack one (IPv4-mapped, IPV6_PKTINFO).
func TestReflectorOnWildcardAnswersFromRequestAddress(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"udp4", "0.0.0.0:0"}, {"udp", ":0"}} {
		t.Run(tc.network, func(t *testing.T) {
			r := reflectortest.Start(t, tc.network, tc.addr, reflector.Config{})
			cfg := Defaults().Fixed()
			cfg.Target = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), r.Addr.Port()).String()
			cfg.Timeout = time.Second
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Forward.Complete != 2*cfg.Trains || res.Unexpected != 0 {
				t.Errorf("%d of %d trains answered whole, %d unexpected datagrams", res.Forward.Complete, 2*cfg.Trains, res.Unexpected)
			}
		})
	}
}

// A reflector that stops during a run: the ICMP port-unreachable for the
// next probes ends the run at once with an error that says so, instead of
// waiting out every timeout (which held a monitor's interface lock).
func TestReflectorStopsMidRun(t *testing.T) {
	r := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{})
	cfg := Defaults().Fixed()
	cfg.Target, cfg.Trains = r.String(), 50 // about a second of trains
	go func() { time.Sleep(150 * time.Millisecond); r.Stop() }()
	start := time.Now()
	_, err := Run(context.Background(), cfg)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "stopped answering") {
		t.Fatalf("err = %v", err)
	}
	if took > cfg.Timeout {
		t.Errorf("run took %v after its reflector stopped, want well under the %v timeout", took, cfg.Timeout)
	}
}

// Capacity turns a refusal into "capacity above N" only when most
// back-to-back trains left too slowly, and only with enough of them; and
// refuses an estimate from the trains that did not leave late when enough
// of the late ones arrived closer together (a selection by cross traffic).
func TestCapacityBound(t *testing.T) {
	ecfg := estimator.Config{Size: 1500, Noise: 1e-9}
	pair := func(out float64) estimator.Sample { return estimator.Sample{In: out, Out: out, Gaps: 1} }
	late := []estimator.Sample{pair(12e-6), pair(12e-6), pair(13e-6), pair(11e-6)}
	var loaded []estimator.Sample // pairs that a cross packet held back: 24 µs
	for range 8 {
		loaded = append(loaded, estimator.Sample{In: 1e-6, Out: 24e-6, Gaps: 1})
	}
	for _, tc := range []struct {
		name     string
		accepted []estimator.Sample
		late     []estimator.Sample
		bound    float64
	}{
		{"all left late", nil, slices.Repeat(late, 4), 1500 * 8 / 12e-6},
		{"half left late", nil, slices.Repeat(late, 2), 1500 * 8 / 12e-6},
		{"a few left late", nil, late[:3], 0},
		{"late ones closer than the accepted", loaded, late, 1500 * 8 / 12e-6},
		{"the accepted ones measured", loaded, late[:3], -1},
	} {
		c, min, err := Capacity(tc.accepted, tc.late, len(tc.late), 16, ecfg)
		switch {
		case tc.bound < 0:
			if err != nil || min != 0 || math.Abs(c.DBC-1500*8/24e-6) > 1 {
				t.Errorf("%s: DBC %.0f, bound %.0f, error %v", tc.name, c.DBC, min, err)
			}
		case tc.bound == 0:
			if err == nil || min != 0 || errors.Is(err, ErrPathFaster) {
				t.Errorf("%s: bound %.0f, error %v", tc.name, min, err)
			}
		default:
			if !errors.Is(err, ErrPathFaster) || math.Abs(min-tc.bound) > 1e-3*tc.bound {
				t.Errorf("%s: bound %.0f, want %.0f; error %v", tc.name, min, tc.bound, err)
			}
		}
	}
}

// TestAdvise: a direction faster than its host can probe is told what is
// left to try, never what the run already did, and nothing on loopback.
func TestAdvise(t *testing.T) {
	faster := fmt.Errorf("%w: capacity above 79 Mbit/s", ErrPathFaster)
	for _, c := range []struct {
		name     string
		err      error
		size     int
		src      dispersion.Source
		loopback bool
		want     string
	}{
		{"1500 bytes, kernel stamps", faster, 1500, dispersion.SourceKernel, false, "; try --size 9000 or hardware timestamps"},
		{"jumbo probes already", faster, MaxSize, dispersion.SourceKernel, false, "; try hardware timestamps"},
		{"hardware stamps already", faster, 1500, dispersion.SourceHardware, false, "; try --size 9000"},
		{"both already", faster, MaxSize, dispersion.SourceHardware, false, ""},
		{"loopback: nothing to find", faster, 1500, dispersion.SourceKernel, true, ""},
		{"a STAMP reflector's echo", fmt.Errorf("%w: %w", ErrPathFaster, ErrEchoed), 1500, dispersion.SourceKernel, false, ""},
		{"another error", estimator.ErrTooFew, 1500, dispersion.SourceKernel, false, ""},
	} {
		d := &Direction{CapErr: c.err, Source: c.src}
		advise(d, c.size, c.loopback)
		if got := strings.TrimPrefix(d.CapErr.Error(), c.err.Error()); got != c.want || !errors.Is(d.CapErr, c.err) {
			t.Errorf("%s: %q, want %q after the error", c.name, d.CapErr, c.want)
		}
	}
}

// The RTT figures of a run: the mean difference of consecutive RTTs and
// RFC 3550's running jitter differ, and both are kept.
func TestRTTStats(t *testing.T) {
	r := rttStats([]float64{10, 12, 10, 30})
	// Differences 2, 2, 20: mean 8; RFC 3550: 2/16 = 0.125, then
	// 0.125 + (2 − 0.125)/16 = 0.2421875, then + (20 − 0.2421875)/16.
	want := record.RTT{Min: 10, Avg: 15.5, Median: 11, Max: 30, Jitter: 8, JitterRFC3550: 0.2421875 + (20-0.2421875)/16}
	if math.Abs(r.JitterRFC3550-want.JitterRFC3550) > 1e-12 {
		t.Errorf("RFC 3550 jitter %g, want %g", r.JitterRFC3550, want.JitterRFC3550)
	}
	r.JitterRFC3550 = want.JitterRFC3550
	if r != want {
		t.Errorf("%+v, want %+v", r, want)
	}
	if r := rttStats([]float64{5}); r.Median != 5 || r.Jitter != 0 || r.JitterRFC3550 != 0 {
		t.Errorf("one packet: %+v", r)
	}
}

// Paced pairs are refused for cross traffic when more than MaxLateShare of
// them (and at least two) left off pace; trains only when most left late
// and too few were left (and then the reason says so, not only "too few").
func TestBusyHost(t *testing.T) {
	tooFew := fmt.Errorf("%w: 3 paced trains, need 5", estimator.ErrTooFew)
	for _, tc := range []struct {
		name       string
		pacedLen   int
		late, used int
		err        error
		dir        string
		want       string // in the error; "" for none
	}{
		{"idle host", 2, 1, 95, nil, "forward", ""},
		{"one late of sixteen", 2, 1, 15, nil, "forward", ""},
		{"at the limit", 2, 10, 90, nil, "forward", ""},
		{"busy host", 2, 14, 82, nil, "forward", "14 of 96 paced pairs left this host"},
		{"two of sixteen", 2, 2, 14, nil, "forward", "2 of 16 paced pairs"},
		{"the reflector's host", 2, 20, 76, nil, "reverse", "left the reflector's host"},
		{"trains on a busy host", 10, 14, 82, nil, "forward", ""},
		{"trains, too few left", 10, 12, 3, tooFew, "forward", "12 of 15 paced trains left this host off pace, too few"},
		{"trains, too few, not for lateness", 10, 2, 3, tooFew, "forward", ""},
	} {
		cfg := Defaults().Fixed()
		cfg.TrainLen = tc.pacedLen
		bk := &book{cfg: cfg}
		d := &Direction{Name: tc.dir}
		d.Rejects[dispersion.OffPace] = tc.late
		err := bk.busyHost(d, tc.used, tc.err)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (!errors.Is(err, ErrBusyHost) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want ErrBusyHost saying %q", tc.name, err, tc.want)
		}
	}
}

// A reflector that is not there (ICMP port unreachable for every hello,
// as a host answers for a closed port): the run fails with ErrNoAnswer,
// and its records say 100 % loss, not 0.
func TestNoReflectorLoss(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	closed := c.LocalAddr().String()
	c.Close()
	for _, protocol := range []string{ProtocolAbing, ProtocolSTAMP} {
		cfg := Defaults()
		cfg.Target, cfg.Protocol, cfg.Timeout = closed, protocol, 500*time.Millisecond
		start := time.Now()
		_, err := Run(context.Background(), cfg)
		if !errors.Is(err, ErrNoAnswer) {
			t.Fatalf("%s: %v", protocol, err)
		}
		for _, rec := range FailedRecords(cfg, start, err) {
			if rec.Loss != 1 || !strings.Contains(rec.Text(), "loss 100.0%") {
				t.Errorf("%s: %s record: loss %v: %s", protocol, rec.Direction, rec.Loss, rec.Text())
			}
		}
	}
}

// User-space stamps are taken when the receiving loop gets to each packet:
// late by what it did before, which does not average out, so the
// estimator counts their noise as a bias too (its intervals widen as for a
// batched train's grain); kernel and hardware stamps do not. A standard
// reflector's forward stamps, whose noise is read from them, count that
// noise.
func TestUserStampsBias(t *testing.T) {
	bk := &book{cfg: Config{Size: 1500}}
	for _, c := range []struct {
		src             dispersion.Source
		forward         bool
		fwdNoise        float64
		noise, wantBias float64
	}{
		{dispersion.SourceUser, true, 0, 20e-6, 20e-6},
		{dispersion.SourceUser, false, 0, 20e-6, 20e-6},
		{dispersion.SourceKernel, true, 0, 2e-6, 0},
		{dispersion.SourceHardware, false, 0, 0.1e-6, 0},
		{dispersion.SourceUser, true, 4e-6, 4e-6, 4e-6},    // a STAMP reflector's, read from its stamps
		{dispersion.SourceUser, false, 4e-6, 20e-6, 20e-6}, // the reverse: its transmit stamps, not read
	} {
		bk.fwdNoise = c.fwdNoise
		cfg := bk.estimatorConfig(c.src, c.forward)
		if cfg.Noise != c.noise || cfg.Bias != c.wantBias {
			t.Errorf("%v stamps, forward %v, noise read %g: noise %g, bias %g; want %g, %g", c.src, c.forward, c.fwdNoise, cfg.Noise, cfg.Bias, c.noise, c.wantBias)
		}
	}
}
