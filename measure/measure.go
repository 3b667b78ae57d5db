// Package measure runs one abing measurement against a reflector: both
// directions, two phases, in about a second.
//
// Phase 1 sends Trains back-to-back trains (pairs by default) and asks the
// reflector to answer each with a back-to-back reply train: the forward
// dispersion (reflector receive stamps) and the reverse one (our receive
// stamps) give the dynamic bottleneck capacity of each direction. Phase 2
// sends Trains trains paced at Tn = L/DBC(forward) and asks for replies paced
// at L/DBC(reverse): their excess dispersion gives the cross traffic. After
// each phase a report exchange fetches the reflector's transmit timestamps,
// so that the reverse spacing is measured, not assumed.
//
// Lost, reordered, duplicated and off-pace trains are counted and left out
// of the estimates; the result says how many and why.
package measure

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/estimator"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/stamp"
	"github.com/abing-net/abing/train"
)

// Methods for cross traffic.
const (
	MethodProbeGap = "probe-gap"
	MethodABwE     = "abwe"
)

// Config describes one measurement.
type Config struct {
	Target     string        // host or host:port
	Network    string        // "udp", "udp4" or "udp6"
	Trains     int           // trains per phase (--pairs)
	TrainLen   int           // packets per train (2 = pair)
	Size       int           // IP-layer packet size, bytes
	Interval   time.Duration // between train starts within a phase
	Timeout    time.Duration // longest wait for replies after a phase
	Timestamps dispersion.Mode
	Interface  string // for hardware timestamps
	Method     string // cross-traffic method for XTR/ABW
	// Precision, when set (0 to 1), makes phase 2 adaptive: it sends
	// rounds of Round paced trains of PacedTrainLen packets until the ABW
	// interval of both directions is within ±Precision·DBC, or another
	// round would take a direction's probe bytes (both phases) past
	// MaxBytes (zero: DefaultBudget probes of Size, 300 KB of 1500-byte
	// ones). Precision zero: phase 2 is Trains trains of TrainLen, as
	// phase 1.
	Precision     float64
	MaxBytes      int
	Round         int // paced trains per round; 0: Trains
	PacedTrainLen int // packets per paced train; 0: TrainLen
	// Protocol is what the reflector speaks: abing's own protocol ("" or
	// ProtocolAbing), or a standard reflector's (ProtocolSTAMP,
	// ProtocolTWAMPLight; stamp.go).
	Protocol string
	// Key, when set, signs every datagram for a reflector that requires
	// keys (HMAC-SHA-256, package auth); with STAMP, it chooses
	// authenticated mode under its secret.
	Key *auth.Key
	// Bind is used to open the socket; nil means dispersion.Listen. The
	// testbed uses it to open sockets inside a network namespace.
	Bind func(network, addr string, opts dispersion.Options) (*dispersion.Conn, error)
}

// Defaults returns the configuration of a default run: capacity from 16
// back-to-back pairs, then rounds of 5 paced 10-packet trains until the
// ABW interval of both directions is within ±10 % of DBC or another round
// would take a direction past DefaultBudget probes (300 KB). The simulator chose these
// (docs/accuracy.md): on an idle path the run stops after a round or two,
// under load it spends what its precision needs.
func Defaults() Config {
	return Config{Network: "udp", Trains: 16, TrainLen: 2, Size: 1500,
		Interval: 10 * time.Millisecond, Timeout: 2 * time.Second, Method: MethodProbeGap,
		Precision: 0.1, Round: 5, PacedTrainLen: 10}
}

// Fixed returns c with a fixed phase 2, as --pairs and --train-len ask:
// Trains paced trains of TrainLen, whatever the interval comes to.
func (c Config) Fixed() Config {
	c.Precision, c.MaxBytes, c.Round, c.PacedTrainLen = 0, 0, 0, 0
	return c
}

// Adaptive reports whether phase 2 adds rounds until the interval is
// narrow enough (Precision set) rather than sending a fixed number.
func (c Config) Adaptive() bool { return c.Precision > 0 }

// pacedLen is the length of phase 2's trains.
func (c *Config) pacedLen() int {
	if c.PacedTrainLen > 0 {
		return c.PacedTrainLen
	}
	return c.TrainLen
}

// round is how many paced trains phase 2 sends at a time.
func (c *Config) round() int {
	if c.Precision > 0 && c.Round > 0 {
		return c.Round
	}
	return c.Trains
}

// DefaultBudget is an adaptive run's probe budget per direction, in
// probes, when MaxBytes is not set: 300 KB of 1500-byte probes, and as
// many jumbo frames (a budget in bytes would leave 9000-byte probes no
// room for a round after phase 1).
const DefaultBudget = 200

// Budget is the adaptive run's probe bytes per direction, both phases.
func (c *Config) Budget() int {
	if c.MaxBytes > 0 {
		return c.MaxBytes
	}
	return DefaultBudget * c.Size
}

// rounds bounds the rounds of an adaptive phase 2 by MaxBytes (1 when not
// adaptive).
func (c *Config) rounds() int {
	if c.Precision <= 0 {
		return 1
	}
	per := c.round() * c.pacedLen() * c.Size
	return max(1, (c.Budget()-c.Trains*c.TrainLen*c.Size)/per)
}

// Limits of a Config.
const (
	MaxSize     = 9000 // the largest probe: a 9000-byte jumbo MTU
	MinSize     = train.OverheadIPv6 + train.SenderBody + train.ReportRequestLen
	MaxTrains   = 1000
	MaxTrainLen = 100
	MaxBytes    = 10_000_000 // an adaptive run's budget per direction
)

// SettingError says which setting of a Config is out of range, named as
// the Config names it (Setting is "trains", "train_len", "size",
// "interval", "timeout", "method" or "network"), so that a command line
// and a configuration file can each say it in their own words.
type SettingError struct {
	Setting string
	Value   any
	Want    string
}

func (e *SettingError) Error() string { return fmt.Sprintf("%s %v: %s", e.Setting, e.Value, e.Want) }

// Validate checks a configuration; an out-of-range setting is a
// *SettingError.
func (c *Config) Validate() error {
	bad := func(setting string, v any, want string) error { return &SettingError{setting, v, want} }
	switch c.Network {
	case "udp", "udp4", "udp6":
	default:
		return bad("network", fmt.Sprintf("%q", c.Network), "want udp, udp4 or udp6")
	}
	if c.Trains < 1 || c.Trains > MaxTrains {
		return bad("trains", c.Trains, fmt.Sprintf("want 1 to %d trains per phase", MaxTrains))
	}
	if c.TrainLen < 2 || c.TrainLen > MaxTrainLen {
		return bad("train_len", c.TrainLen, fmt.Sprintf("want 2 (pairs) to %d packets", MaxTrainLen))
	}
	if c.Size < MinSize || c.Size > MaxSize {
		return bad("size", c.Size, fmt.Sprintf("want %d to %d bytes (IP packet size)", MinSize, MaxSize))
	}
	if c.Interval <= 0 {
		return bad("interval", c.Interval, "must be positive")
	}
	if c.Timeout <= 0 {
		return bad("timeout", c.Timeout, "must be positive")
	}
	if c.PacedTrainLen != 0 && (c.PacedTrainLen < 2 || c.PacedTrainLen > MaxTrainLen) {
		return bad("paced_train_len", c.PacedTrainLen, fmt.Sprintf("want 2 to %d packets", MaxTrainLen))
	}
	if !(c.Precision >= 0 && c.Precision < 1) { // NaN too
		return bad("precision", c.Precision, "want a fraction of DBC below 1 (0: fixed phase 2)")
	}
	if c.Round < 0 || c.Round > MaxTrains {
		return bad("round", c.Round, fmt.Sprintf("want 1 to %d trains", MaxTrains))
	}
	if c.Precision > 0 {
		if min1 := (c.Trains*c.TrainLen + c.round()*c.pacedLen()) * c.Size; c.Budget() < min1 || c.MaxBytes > MaxBytes || c.MaxBytes < 0 {
			return bad("max_bytes", c.Budget(), fmt.Sprintf("want %d (phase 1 and one round) to %d bytes", min1, MaxBytes))
		}
	}
	switch c.Protocol {
	case "", ProtocolAbing, ProtocolSTAMP, ProtocolTWAMPLight:
	default:
		return bad("protocol", fmt.Sprintf("%q", c.Protocol), fmt.Sprintf("want %s, %s or %s", ProtocolAbing, ProtocolSTAMP, ProtocolTWAMPLight))
	}
	if c.Protocol == ProtocolTWAMPLight && c.Key != nil {
		return bad("protocol", c.Protocol, "TWAMP-Light has no authenticated mode without TWAMP-Control: use stamp with a key")
	}
	if c.stamp() && c.Key != nil && c.Size < train.OverheadIPv6+stamp.AuthLen {
		return bad("size", c.Size, fmt.Sprintf("want at least %d bytes for authenticated STAMP", train.OverheadIPv6+stamp.AuthLen))
	}
	if c.Method != MethodProbeGap && c.Method != MethodABwE {
		return bad("method", fmt.Sprintf("%q", c.Method), fmt.Sprintf("want %s or %s", MethodProbeGap, MethodABwE))
	}
	if c.Key != nil {
		if err := auth.ValidName(c.Key.Name); err != nil {
			return err
		}
		if len(c.Key.Secret) < auth.MinSecret {
			return fmt.Errorf("key %q: secret shorter than %d bytes", c.Key.Name, auth.MinSecret)
		}
	}
	return nil
}

// Direction is the estimate for one direction of the path.
type Direction struct {
	Name        string  // "forward" or "reverse"
	DBCMin      float64 // bit/s: with ErrPathFaster, the capacity is at least this
	Capacity    estimator.Capacity
	CapErr      error
	Cross       estimator.Cross // by Config.Method
	CrossErr    error
	ProbeGap    estimator.Cross // both methods, for comparison
	ProbeGapErr error
	ABwE        estimator.Cross
	ABwEErr     error
	Source      dispersion.Source // worst clock among both ends' stamps
	TTL         int               // most common TTL / hop limit received, -1 unknown
	TrainsSent  int
	Complete    int // trains that arrived whole
	Used        int // trains used in an estimate
	Rejects     dispersion.Rejects
	Packets     int // datagrams sent in this direction
	Bytes       int // IP-layer bytes sent in this direction
	Lost        int // datagrams lost in this direction
	Duplicates  int
}

// Loss is the fraction of this direction's datagrams that were lost.
func (d *Direction) Loss() float64 {
	if d.Packets == 0 {
		return 0
	}
	return float64(d.Lost) / float64(d.Packets)
}

// Capacity estimates a direction's capacity from phase 1: its accepted
// back-to-back samples, and the samples of the trains that left too
// slowly to measure the path (late, leftLate of the trains sent). When
// the estimate is refused but the trains still bound the capacity from
// below, the error is ErrPathFaster and dbcMin the bound, as pathload
// says "available bandwidth is greater than" rather than "too few
// samples". When a quarter of the trains (and at least three) left too
// slowly and arrived closer together than the accepted ones found (by more
// than twice the noise), the path forwards faster than the estimate says:
// the accepted ones are a selection (those that cross traffic held back
// long enough to pass), and the estimate is refused for that bound too.
func Capacity(samples, late []estimator.Sample, leftLate, trains int, ecfg estimator.Config) (c estimator.Capacity, dbcMin float64, err error) {
	c, _, err = estimator.EstimateCapacity(samples, ecfg, nil)
	if err == nil {
		var closer []estimator.Sample
		for _, s := range late {
			if s.Gaps > 0 && s.Out/float64(s.Gaps) < c.Tn-2*ecfg.Noise {
				closer = append(closer, s)
			}
		}
		// A quarter of the trains: on an emulated link (a token bucket)
		// a pair sent late can pass closer than Tn, and a busy host sends
		// a few late (two of 96 refuted a right estimate at 20 Mbit/s).
		if len(closer) >= max(3, trains/4) {
			c.Min = dispersion.LowerBound(closer, ecfg.Size, ecfg.Noise)
			err = fmt.Errorf("%w: %d of %d trains that left too slowly arrived closer together than the %d used (%.1f µs)",
				estimator.ErrNotBackToBack, len(closer), trains, c.Used, c.Tn*1e6)
		}
	}
	if err == nil {
		return c, 0, nil
	}
	if min, why := capacityBound(c, err, late, leftLate, trains, ecfg); min > 0 {
		return c, min, fmt.Errorf("%w: capacity above %.0f Mbit/s (%w)", ErrPathFaster, min/1e6, why)
	}
	return c, 0, err
}

// Stronger is d's capacity (c, dbcMin, err) after capacity trains: theirs,
// unless they gave no estimate and the pairs' bound, already in d, was
// higher, or their estimate is below that bound. A bound from pairs whose
// gaps were below the noise yields to the trains' estimate, and to their
// own bound when their spans too were below what their stamps resolve: a
// receiver that stamps in batches gives pairs tiny gaps on any path, and
// its batches show in the trains.
func (d *Direction) Stronger(c estimator.Capacity, dbcMin float64, err error) {
	noiseBound := errors.Is(d.CapErr, estimator.ErrBelowNoise)
	if err != nil && d.CapErr != nil && d.DBCMin > dbcMin && !(noiseBound && errors.Is(err, estimator.ErrBelowNoise)) {
		return
	}
	if err == nil && d.DBCMin > c.DBCHigh && !noiseBound {
		// Below what the pairs showed the path carries: the trains met
		// cross traffic that spread them all alike (a burst), and their
		// estimate is wrong.
		c.Min = d.DBCMin
		d.Capacity, d.CapErr = c, fmt.Errorf("%w: capacity above %.0f Mbit/s (capacity trains read %.0f Mbit/s, less than the pairs showed the path carries: cross traffic spread them)",
			ErrPathFaster, d.DBCMin/1e6, c.DBC/1e6)
		return
	}
	d.Capacity, d.DBCMin, d.CapErr = c, dbcMin, err
}

// advise ends the error of a direction found faster than this host can
// probe with what is left to try: probes of MaxSize bytes (when size was
// less), hardware timestamps (when its stamps were not). Nothing when the
// reflector is on this host (there is no bottleneck to find: the run's
// note says so), for a STAMP reflector's echoed replies (their error says
// what would help), or when the run used both.
func advise(d *Direction, size int, loopback bool) {
	if !errors.Is(d.CapErr, ErrPathFaster) || errors.Is(d.CapErr, ErrEchoed) || loopback {
		return
	}
	var try []string
	if size < MaxSize {
		try = append(try, fmt.Sprintf("--size %d", MaxSize))
	}
	if d.Source < dispersion.SourceHardware {
		try = append(try, "hardware timestamps")
	}
	if len(try) > 0 {
		d.CapErr = fmt.Errorf("%w; try %s", d.CapErr, strings.Join(try, " or "))
	}
}

// capacityBound is the least capacity (bit/s) that back-to-back trains
// show when their estimate c was refused with err, and why: at least half
// of the trains sent (leftLate of them) left too slowly to measure the
// path, and the path carried them as fast as they came; or the estimator
// found the path faster than the stamps or the sender can resolve
// (c.Min). 0 when they say nothing.
func capacityBound(c estimator.Capacity, err error, late []estimator.Sample, leftLate, trains int, ecfg estimator.Config) (float64, error) {
	if 2*leftLate >= trains {
		if min := dispersion.LowerBound(late, ecfg.Size, ecfg.Noise); min > 0 {
			return min, fmt.Errorf("%d of %d trains left too slowly to measure the path", leftLate, trains)
		}
	}
	if c.Min > 0 && (errors.Is(err, estimator.ErrBelowNoise) || errors.Is(err, estimator.ErrNotBackToBack)) {
		return c.Min, err
	}
	return 0, nil
}

// The trains an adaptive run sends for capacity when its pairs could not
// measure it (CapacityTrains): CapacityTrainCount trains of
// CapacityTrainBytes each (100 packets of 1500 bytes, 16 of 9000), whose
// spans are many times the timestamps' noise and the gaps of a receive
// interrupt's batches at 1–10 Gbit/s.
const (
	CapacityTrainCount = 4
	CapacityTrainBytes = 150_000
	// CapacityTrainsUsable is how many of them must be usable: each has
	// many gaps, and the dominating cluster needs three.
	CapacityTrainsUsable = 3
	// CapacityTrainPath is the least capacity bound (bit/s) for which a
	// run sends capacity trains: one of them then lasts at most 2 ms at
	// the bottleneck.
	CapacityTrainPath = CapacityTrainBytes * 8 / 2e-3
)

// CapacityTrains is how many back-to-back trains, of how many packets, an
// adaptive run of pairs sends after its pairs when they could not measure a
// direction's capacity because they cannot resolve the path: a quarter of
// them had a gap below the timestamps' noise or inside one receive
// interrupt's batch (compressed), or they bound the capacity above
// CapacityTrainPath (a path faster than pairs can probe). 0 when the pairs
// measured it, failed for another reason, or the run is not an adaptive run
// of pairs. On a slower path a 150 KB train would stand in its queue for
// more than 2 ms (60 ms at 20 Mbit/s) and lose packets, not resolve it.
func CapacityTrains(cfg Config, dirs ...*Direction) (count, n int) {
	if !cfg.Adaptive() || cfg.TrainLen != 2 {
		return 0, 0
	}
	for _, d := range dirs {
		if d.CapErr != nil && (4*d.Rejects[dispersion.Compressed] >= cfg.Trains || d.DBCMin >= CapacityTrainPath) {
			return CapacityTrainCount, min(max(CapacityTrainBytes/cfg.Size, 10), MaxTrainLen)
		}
	}
	return 0, 0
}

// ErrPathFaster says the path is faster than the sending host could space
// its probes: DBCMin holds what can be said.
var ErrPathFaster = errors.New("the path is faster than this host can probe")

// ErrNoAnswer is what errors.Is finds in the error of a run that never
// heard from the reflector: no answer to its hello, or an ICMP error
// before any answer. A monitor backs off from such a target.
var ErrNoAnswer = errors.New("no answer from the reflector")

// noAnswer marks an error as ErrNoAnswer, its message unchanged.
type noAnswer struct{ error }

func (e noAnswer) Unwrap() error      { return e.error }
func (noAnswer) Is(target error) bool { return target == ErrNoAnswer }

// Err is why no estimate at all could be made, or nil.
func (d *Direction) Err() error {
	if d.CapErr != nil {
		return d.CapErr
	}
	return d.CrossErr
}

// Result is one measurement.
type Result struct {
	Time     time.Time
	Target   string // as given
	Addr     netip.AddrPort
	Config   Config
	Forward  Direction
	Reverse  Direction
	RTT      record.RTT
	RTTOK    bool
	Duration time.Duration
	// Unexpected counts datagrams received that did not parse, came from
	// elsewhere or belonged to no train of ours.
	Unexpected int
	// Unauthenticated counts datagrams from the reflector that were not
	// signed with our key (with Config.Key only), and so were ignored.
	Unauthenticated int
	// Fitted says how the run was fitted to the budget the reflector
	// stated (Fit, PacedInterval).
	Fitted []string
	// Notes say what else the run did of its own accord (capacity trains,
	// CapacityTrains).
	Notes []string
}

type session struct {
	book
	conn    *dispersion.Conn
	peer    *dispersion.Peer
	addr    netip.AddrPort
	id      uint64
	payload int // UDP payload per probe
	seq     uint32

	txKeys   map[uint32][2]int // key → train, pos
	reports  map[uint32]bool   // report requests answered, by first train
	unreach  error
	refused  *train.RefusedBody
	cookie   *train.Cookie
	budget   *train.Budget // what the reflector admits, stated with the cookie
	signer   *auth.Signer
	verifier *auth.Verifier // with a key: checks the reflector's signatures
	malform  int
	unauth   int // datagrams from the reflector not signed with our key
	progress chan struct{}
	rng      *rand.Rand
	stamp    *stampSession // with a STAMP or TWAMP-Light reflector
}

// Run performs one measurement.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The hard deadline covers everything, name resolution included.
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxDuration())
	defer cancel()
	port := train.DefaultPort
	if cfg.stamp() {
		port = stamp.Port
	}
	addr, err := resolve(ctx, cfg.Network, cfg.Target, port)
	if err != nil {
		return nil, err
	}
	bind := cfg.Bind
	if bind == nil {
		bind = dispersion.Listen
	}
	laddr := ":0"
	network := cfg.Network
	if addr.Addr().Is4() {
		network = "udp4"
	} else {
		network = "udp6"
	}
	conn, err := bind(network, laddr, dispersion.Options{Mode: cfg.Timestamps, Interface: cfg.Interface})
	if err != nil {
		return nil, fmt.Errorf("reflector %s: %w", addr, err)
	}
	defer conn.Close()
	overhead := train.OverheadIPv4
	if addr.Addr().Is6() {
		overhead = train.OverheadIPv6
	}
	id := rand.Uint64()
	s := &session{book: book{cfg: cfg, phase1: cfg.Trains, loopback: addr.Addr().Unmap().IsLoopback()}, conn: conn, peer: conn.Peer(addr), addr: addr, id: id, rng: rand.New(rand.NewPCG(id, 1)),
		payload: cfg.Size - overhead, txKeys: map[uint32][2]int{}, reports: map[uint32]bool{},
		progress: make(chan struct{}, 1)}
	switch {
	case cfg.stamp():
		s.stampSetup()
	case cfg.Key != nil:
		s.signer = auth.NewSigner(*cfg.Key)
		s.verifier = auth.NewVerifier([]auth.Key{*cfg.Key})
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- s.receive(ctx) }()
	res, err := s.run(ctx)
	s.bye()
	cancel()
	conn.SetReadDeadline(time.Unix(1, 0))
	if rerr := <-done; err == nil && rerr != nil {
		err = rerr
	}
	if err != nil && parent.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("reflector %s: run stopped at its hard deadline of %v (a reflector that stalls or claims huge gaps?)", addr, cfg.MaxDuration())
	}
	if err != nil {
		return nil, err
	}
	res.Time = start
	res.Duration = time.Since(start)
	return res, nil
}

// resolve finds the reflector's address; a slow resolver is bounded by ctx.
func resolve(ctx context.Context, network, target string, defaultPort int) (netip.AddrPort, error) {
	host, port := target, fmt.Sprint(defaultPort)
	if h, p, err := net.SplitHostPort(target); err == nil {
		host, port = h, p
	}
	pn, err := net.DefaultResolver.LookupPort(ctx, network, port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("reflector %s: %w", target, err)
	}
	ipnet := map[string]string{"udp": "ip", "udp4": "ip4", "udp6": "ip6"}[network]
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, ipnet, host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("reflector %s: %w", target, err)
	}
	// As net.ResolveUDPAddr: IPv4 first when both families are allowed.
	best := addrs[0]
	for _, a := range addrs {
		if a.Unmap().Is4() {
			best = a
			break
		}
	}
	return netip.AddrPortFrom(best.Unmap(), uint16(pn)), nil
}

func (s *session) run(ctx context.Context) (*Result, error) {
	cfg := s.cfg
	res := &Result{Target: cfg.Target, Addr: s.addr, Config: cfg}
	res.Forward.Name, res.Reverse.Name = "forward", "reverse"
	if s.stamp == nil {
		if err := s.handshake(ctx); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	budget := s.budget
	s.mu.Unlock()
	if budget != nil {
		c, note, err := Fit(cfg, *budget)
		if err != nil {
			return nil, fmt.Errorf("reflector %s: %w", s.addr, err)
		}
		cfg, s.cfg, res.Config = c, c, c
		if note != "" {
			res.Fitted = append(res.Fitted, note)
		}
	}

	// Phase 1: back to back. The first train goes alone: its reply tells
	// how long a train occupies the bottleneck, and so how far apart the
	// others must be for the probe load to stay under 1/LoadFactor.
	if err := s.phase(ctx, 0, 1, cfg.TrainLen, 0, 0, cfg.Interval, both); err != nil {
		return nil, err
	}
	// A lost first train is no reason to give up: the others then follow
	// at the configured interval.
	if err := s.wait(ctx, 0, 1, cfg.Timeout/2, false); err != nil {
		return nil, err
	}
	interval := TrainInterval(cfg, s.firstTrainTn())
	if err := s.phase(ctx, 1, cfg.Trains-1, cfg.TrainLen, 0, 0, interval, both); err != nil {
		return nil, err
	}
	if err := s.wait(ctx, 0, cfg.Trains, cfg.Timeout, true); err != nil {
		return nil, err
	}
	s.fetchReports(ctx, 0, cfg.Trains)
	if s.stamp != nil {
		s.stampStamps()
	}
	est, fgap, rgap := s.capacity(res, 0, cfg.Trains)
	// Pairs that could not resolve the path: capacity from trains. Not
	// for a STAMP reflector's reverse direction: it echoes each packet as
	// it comes, and longer trains would only echo longer.
	dirs := []*Direction{&res.Forward, &res.Reverse}
	var limited, sparse bool
	if s.stamp != nil {
		dirs = dirs[:1]
		limited, sparse = s.stampLimit(res)
	}
	if count, n := CapacityTrains(cfg, dirs...); count > 0 && budget != nil && !cfg.capacityTrainsFit(*budget, count, n) {
		res.Notes = append(res.Notes, fmt.Sprintf("the pairs could not resolve the path, and %d trains of %d packets for its capacity would not fit the reflector's budget", count, n))
	} else if count > 0 && limited {
		res.Notes = append(res.Notes, fmt.Sprintf("the pairs could not resolve the path, and a reflector that limits its replies would not answer %d trains of %d packets", count, n))
	} else if count > 0 {
		if err := s.phase(ctx, cfg.Trains, count, n, 0, 0, TrainInterval(cfg, s.firstTrainTn()), both); err != nil {
			return nil, err
		}
		if err := s.wait(ctx, cfg.Trains, cfg.Trains+count, cfg.Timeout, true); err != nil {
			return nil, err
		}
		s.fetchReports(ctx, cfg.Trains, count)
		s.phase1 = cfg.Trains + count
		est, fgap, rgap = s.capacity(res, cfg.Trains, s.phase1)
		res.Notes = append(res.Notes, fmt.Sprintf("capacity from %d trains of %d packets: the pairs could not resolve the path", count, n))
	}

	// Phase 2: paced at each direction's Tn, in rounds when adaptive.
	n := cfg.pacedLen()
	if tn := max(res.Forward.Capacity.Tn, res.Reverse.Capacity.Tn); tn > 0 {
		c := cfg
		c.TrainLen = n
		interval = TrainInterval(c, tn)
	}
	if budget != nil {
		if iv := PacedInterval(*budget, n, rgap, cfg.rounds()*cfg.round(), interval); iv > interval {
			left := ""
			if budget.PacedNow > 0 && budget.PacedNow < budget.PacedBucket() {
				left = fmt.Sprintf(", and had %v of it left", budget.PacedNow.Round(time.Millisecond))
			}
			res.Fitted = append(res.Fitted, fmt.Sprintf("fitted to the reflector's budget: paced trains %v apart on average, not %v (it paces one address's replies %.0f %% of its time%s)",
				iv.Round(time.Millisecond), interval.Round(time.Millisecond), 100*budget.PacedShare, left))
			interval = iv
		}
	}
	if s.stamp != nil {
		s.stampCapacity(res)
		if limited {
			n = 2
		}
		if sparse {
			interval = min(2*interval, MaxInterval)
		}
		if res.Forward.CapErr != nil {
			fgap = 0
		}
		if res.Reverse.CapErr != nil {
			rgap = 0
		}
	}
	first, count := s.phase1, cfg.round()
	for r := 0; r < cfg.rounds(); r++ {
		sent := count
		if s.stamp != nil {
			// A STAMP reflector cannot be asked to pace its replies:
			// they leave as the test packets arrive. So each direction
			// has trains of its own, sent at its pace.
			var err error
			if sent, err = s.stampRound(ctx, first, count, n, fgap, rgap, interval); err != nil {
				return nil, err
			}
		} else if err := s.phase(ctx, first, count, n, fgap, rgap, interval, both); err != nil {
			return nil, err
		}
		if sent == 0 {
			break
		}
		if err := s.wait(ctx, first, first+sent, cfg.Timeout, true); err != nil {
			return nil, err
		}
		s.fetchReports(ctx, first, sent)
		s.round(est, first, sent)
		first += sent
		if precise(&res.Forward, cfg.Precision) && precise(&res.Reverse, cfg.Precision) {
			break
		}
	}
	s.finish(est)
	s.mu.Lock()
	res.Unexpected, res.Unauthenticated = s.malform, s.unauth
	s.mu.Unlock()
	if s.stamp != nil {
		s.stampFinish(res)
	}
	return res, nil
}

// precise says whether phase 2 can stop for a direction: its ABW interval
// is within ±precision·DBC, or no more rounds would help (no capacity to
// pace at, or ABwE's reduction, which has no interval).
func precise(d *Direction, precision float64) bool {
	if d.CapErr != nil || d.Cross.ABWHigh == 0 && d.CrossErr == nil {
		return true
	}
	return d.CrossErr == nil && (d.Cross.ABWHigh-d.Cross.ABWLow)/2 <= precision*d.Capacity.DBC
}

// seal writes the client block into sender datagram b, whose header is in
// place: the cookie, and the signature when a key is set.
func (s *session) seal(b []byte) {
	var c train.ClientBlock
	s.mu.Lock()
	if s.cookie != nil {
		c.Cookie = *s.cookie
	}
	s.mu.Unlock()
	train.PutClientBlock(b, &c)
	if s.signer != nil {
		s.signer.Sign(b)
	}
}

// bye tells the reflector that the session is over, so that it frees
// what it holds for it at once. Best effort: no answer comes.
func (s *session) bye() {
	s.mu.Lock()
	greeted := s.cookie != nil
	s.mu.Unlock()
	if !greeted || s.stamp != nil {
		return
	}
	b := make([]byte, train.SenderBody)
	s.seq++
	train.PutHeader(b, &train.Header{Type: train.TypeClose, Session: s.id, Len: 1, Seq: s.seq, SentNs: time.Now().UnixNano()})
	s.seal(b)
	s.peer.Write(b)
}

// handshake says hello until the reflector answers with a cookie, which
// every later datagram carries. The hello is as large as a probe, so the
// cookie (56 bytes) never amplifies.
func (s *session) handshake(ctx context.Context) error {
	b := make([]byte, s.payload)
	deadline := time.Now().Add(s.cfg.Timeout)
	retry := max(s.cfg.Timeout/4, 100*time.Millisecond)
	for {
		s.seq++
		train.PutHeader(b, &train.Header{Type: train.TypeHello, Session: s.id, Len: 1, Seq: s.seq, SentNs: time.Now().UnixNano()})
		s.seal(b)
		if _, err := s.peer.Write(b); err != nil {
			return fmt.Errorf("reflector %s: %w", s.addr, err)
		}
		next := time.Now().Add(retry)
		if next.After(deadline) {
			next = deadline
		}
		for {
			s.mu.Lock()
			cookie, unreach, refused := s.cookie, s.unreach, s.refused
			s.mu.Unlock()
			switch {
			case cookie != nil:
				return nil
			case refused != nil:
				return fmt.Errorf("reflector %s refused the measurement: %s", s.addr, refused.Reason)
			case unreach != nil:
				return s.gone()
			}
			if !time.Now().Before(next) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.progress:
			case <-time.After(time.Until(next)):
			}
		}
		if !time.Now().Before(deadline) {
			s.mu.Lock()
			unauth := s.unauth
			s.mu.Unlock()
			if unauth > 0 {
				return fmt.Errorf("reflector %s: %d answers not signed with key %q (a reflector without --keys, with another key, or a forger)",
					s.addr, unauth, s.cfg.Key.Name)
			}
			hint := "no reflector there, a firewall drops UDP port %d, or the reflector requires a signing key (--key-file)"
			if s.signer != nil {
				hint = "no reflector there, a firewall drops UDP port %d, or the reflector does not accept our key or clock (within 10 s)"
			}
			return noAnswer{fmt.Errorf("reflector %s: no answer to hello within %v ("+hint+")", s.addr, s.cfg.Timeout, s.addr.Port())}
		}
	}
}

// LoadFactor bounds the probe load: trains start on average at least
// LoadFactor times the time a train occupies the bottleneck apart, so probes
// take at most 1/LoadFactor of the path's capacity (on paths fast enough
// that this needs no more than MaxInterval).
const LoadFactor = 5

// Bounds on what reflector data can make a run do. Tn comes from the
// reflector's stamps, so a hostile or broken reflector could otherwise ask
// for gaps of minutes. MaxGap and MaxSpan are the reflector's own limits on
// reply spacing (reflector.Config.MaxReplyGap, MaxReplySpan). On a path
// slower than L/MaxGap phase 2 sends closer than Tn apart, which the
// probe-gap formula allows (it holds for any Δin ≤ Tn): its windows are
// narrower, not wrong.
const (
	MaxGap      = 20 * time.Millisecond  // largest pacing gap in phase 2
	MaxSpan     = 100 * time.Millisecond // longest paced train
	MaxInterval = time.Second            // longest mean time between trains (unless --train-interval asks for more)
)

// TrainInterval is the mean time between train starts for a per-packet
// bottleneck time tn (seconds): cfg.Interval, stretched for the load bound,
// at most MaxInterval.
func TrainInterval(cfg Config, tn float64) time.Duration {
	load := time.Duration(min(LoadFactor*float64(cfg.TrainLen)*tn*1e9, float64(MaxInterval)))
	return max(cfg.Interval, load)
}

// PaceTn is the per-packet time phase 2 paces for: that of the high end
// of the capacity's interval. A window is only read right while the second
// probe still queues behind the first (Δin ≤ Tn); when DBC read low (the
// dominating state held a cross packet: fast paths, small packets at high
// load, which the interval holds), pacing at the estimate's own Tn would
// open windows longer than the path's and undercount.
func PaceTn(c estimator.Capacity, size int) float64 {
	if c.DBCHigh > c.DBC {
		return min(c.Tn, float64(size)*8/c.DBCHigh)
	}
	return c.Tn
}

// PaceGap is phase 2's spacing for a per-packet time tn (seconds) and
// trains of n packets.
func PaceGap(tn float64, n int) time.Duration {
	return min(time.Duration(PaceFraction*tn*1e9), MaxGap, MaxSpan/time.Duration(n-1))
}

// MaxDuration is the hard deadline of a run with this configuration: the
// longest each step may wait (hello, two waits and two report exchanges of
// two tries per phase, and a wait for capacity trains) and the longest the
// planned trains and the capacity trains can take at MaxInterval and
// MaxSpan. A run that is still going then ends with an error, whatever the
// reflector sends.
func (c *Config) MaxDuration() time.Duration {
	interval := max(c.Interval, MaxInterval)
	trains, _ := c.plan()
	if c.stamp() {
		trains += trains - c.Trains // each direction's paced trains of its own
	}
	trains += CapacityTrainCount // perhaps (CapacityTrains)
	return time.Duration(5+3*c.rounds())*c.Timeout + time.Duration(trains)*(3*interval+MaxSpan)/2
}

// phase sends count trains of n packets from index first, with forward spacing fgap and
// reply spacing rgap (0 = back to back), starting on average interval
// apart, to be read in the directions dir.
func (s *session) phase(ctx context.Context, first, count, n int, fgap, rgap, interval time.Duration, dir directions) error {
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = make([]byte, s.payload)
	}
	var user []int64
	next := time.Now()
	for i := first; i < first+count; i++ {
		// A back-to-back train leaves when it is handed over; a paced one
		// is handed over train.Lead early and leaves at its time, not at
		// whatever woke this goroutine (train.Send).
		at, wake := next, next
		if fgap > 0 {
			wake = next.Add(-train.Lead)
		}
		if err := sleepUntil(ctx, wake); err != nil {
			return err
		}
		if err := s.gone(); err != nil {
			return err
		}
		// Random spacing (uniform, 0.5 to 1.5 intervals): periodic probes
		// against periodic cross traffic would see the same phase of it
		// again and again (PASTA: Poisson-like arrivals see time averages).
		next = next.Add(time.Duration((0.5 + s.rng.Float64()) * float64(interval)))
		var flags uint16
		if fgap > 0 || rgap > 0 {
			flags = train.FlagPaced
		}
		now := time.Now().UnixNano()
		for p := range pkts {
			if s.stamp != nil {
				break
			}
			s.seq++
			train.PutHeader(pkts[p], &train.Header{Type: train.TypeProbe, Flags: flags, Session: s.id,
				Train: uint32(i), Pos: uint16(p), Len: uint16(n), Seq: s.seq,
				ReplyGap: uint32(rgap), SentNs: now})
			s.seal(pkts[p])
		}
		s.mu.Lock()
		for p := range pkts {
			if s.stamp == nil {
				break
			}
			s.stampPacket(pkts[p], i, p, now)
		}
		ts := s.newTrain(n)
		ts.dir = dir
		key := s.peer.FirstKey()
		for p := range pkts {
			s.txKeys[key+uint32(p)] = [2]int{i, p}
		}
		s.mu.Unlock()
		var err error
		user, err = train.Send(ctx, s.peer, pkts, fgap, at, user)
		if err != nil {
			return fmt.Errorf("reflector %s: %w", s.addr, err)
		}
		_, txSrc := s.conn.Sources()
		if txSrc == dispersion.SourceUser {
			s.mu.Lock()
			for p, t := range user {
				ts.slots[p].sTx, ts.slots[p].sSrc = t, dispersion.SourceUser
			}
			s.mu.Unlock()
		}
	}
	return nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// gone is the error that ends a run once an ICMP error came back from the
// reflector's address (the reflector stopped, or was never there), or nil:
// waiting out the timeouts would only keep the monitor's interface lock.
func (s *session) gone() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unreach == nil {
		return nil
	}
	anyAtAll := false
	for _, t := range s.trains {
		anyAtAll = anyAtAll || t.replies > 0
	}
	if anyAtAll {
		return fmt.Errorf("reflector %s: %w (it stopped answering during the run)", s.addr, s.unreach)
	}
	return noAnswer{fmt.Errorf("reflector %s: %w (is a reflector listening there?)", s.addr, s.unreach)}
}

// wait returns when every reply of trains [from, to) is in, or when the
// stragglers are overdue (200 ms plus three times the slowest round trip
// seen since the first of them arrived), or after limit. It fails on an ICMP
// error from the reflector (see gone), and, if required, when nothing at
// all came back within limit.
func (s *session) wait(ctx context.Context, from, to int, limit time.Duration, required bool) error {
	start := time.Now()
	hard := start.Add(limit)
	for {
		s.mu.Lock()
		complete, any := true, false
		for _, t := range s.trains[from:to] {
			complete = complete && t.replies == len(t.slots)
			any = any || t.replies > 0
		}
		anyAtAll := false
		for _, t := range s.trains {
			anyAtAll = anyAtAll || t.replies > 0
		}
		unreach, refused := s.unreach, s.refused
		s.mu.Unlock()
		if refused != nil {
			return fmt.Errorf("reflector %s refused the measurement: %s", s.addr, refused.Reason)
		}
		if complete {
			return nil
		}
		if unreach != nil {
			return s.gone()
		}
		now := time.Now()
		if now.After(hard) {
			if required && !anyAtAll {
				return fmt.Errorf("reflector %s: no reply within %v (no reflector there, or a firewall drops UDP port %d)",
					s.addr, limit, s.addr.Port())
			}
			return nil
		}
		if any && now.Sub(start) > 200*time.Millisecond+3*s.maxRTT() {
			return nil // stragglers are lost
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.progress:
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *session) maxRTT() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m int64
	for _, t := range s.trains {
		for _, sl := range t.slots {
			if sl.seen && sl.sTx != 0 && sl.rRx > sl.sTx {
				m = max(m, sl.rRx-sl.sTx)
			}
		}
	}
	return time.Duration(m)
}

// fetchReports asks the reflector for its transmit stamps of trains
// [first, first+n), in as many report requests as needed, each no larger
// than a probe, and waits for them (two tries).
func (s *session) fetchReports(ctx context.Context, first, n int) {
	if s.stamp != nil {
		return // each reply carries its transmit stamp
	}
	room := s.payload
	if s.verifier != nil {
		room -= auth.TrailerLen // the reflector's signature
	}
	s.mu.Lock()
	if first >= len(s.trains) {
		s.mu.Unlock()
		return
	}
	plen := len(s.trains[first].slots) // trains of one phase are of one length
	s.mu.Unlock()
	perReport := max(1, train.ReportCapacity(room)/plen)
	for try := 0; try < 2; try++ {
		var want []uint32
		for t := first; t < first+n; t += perReport {
			s.mu.Lock()
			got := s.reports[uint32(t)]
			s.mu.Unlock()
			if got {
				continue
			}
			cnt := min(perReport, first+n-t)
			// The report comes back in a datagram of the request's size.
			size := max(train.HeaderLen+8+cnt*plen*train.ReportEntryLen+(s.payload-room), train.SenderBody+train.ReportRequestLen)
			b := make([]byte, min(size, s.payload))
			s.seq++
			train.PutHeader(b, &train.Header{Type: train.TypeReportRequest, Session: s.id, Train: uint32(t),
				Len: 1, Seq: s.seq, SentNs: time.Now().UnixNano()})
			train.PutReportRequest(b, train.ReportRequest{FirstTrain: uint32(t), Trains: uint32(cnt)})
			s.seal(b)
			if _, err := s.peer.Write(b); err != nil {
				return
			}
			want = append(want, uint32(t))
		}
		if len(want) == 0 {
			return
		}
		deadline := time.Now().Add(min(s.cfg.Timeout, 200*time.Millisecond+3*s.maxRTT()))
		for time.Now().Before(deadline) {
			s.mu.Lock()
			all := true
			for _, t := range want {
				all = all && s.reports[t]
			}
			s.mu.Unlock()
			if all {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-s.progress:
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// receive reads the socket until ctx ends.
func (s *session) receive(ctx context.Context) error {
	buf := make([]byte, 65536)
	var stamps []train.TxStamp
	for {
		ev, err := s.conn.Recv(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reflector %s: receive: %w", s.addr, err)
		}
		s.mu.Lock()
		switch ev.Kind {
		case dispersion.TxStamp:
			if tp, ok := s.txKeys[ev.Key]; ok {
				sl := &s.trains[tp[0]].slots[tp[1]]
				sl.sTx, sl.sSrc = ev.Ns, ev.Source
				delete(s.txKeys, ev.Key)
			}
		case dispersion.Unreachable:
			if ev.From == s.addr {
				s.unreach = ev.Err
			}
		case dispersion.Data:
			stamps = s.handle(buf[:ev.N], ev, stamps)
		}
		s.mu.Unlock()
		select {
		case s.progress <- struct{}{}:
		default:
		}
	}
}

// handle records one datagram from the reflector; s.mu is held.
func (s *session) handle(b []byte, ev dispersion.Event, stamps []train.TxStamp) []train.TxStamp {
	if s.stamp != nil {
		s.stampHandle(b, ev)
		return stamps
	}
	h, err := train.ParseHeader(b)
	if ev.From != s.addr || ev.Trunc || err != nil || h.Session != s.id {
		s.malform++
		return stamps
	}
	// With a key, everything the reflector says must be signed with it:
	// anyone who sees the session id could otherwise forge replies,
	// reports, cookies and refusals, and so capacities and alarms.
	if s.verifier != nil {
		if _, err := s.verifier.VerifyTrailer(b); err != nil || h.Flags&train.FlagSigned == 0 {
			s.unauth++
			return stamps
		}
		b = b[:len(b)-auth.TrailerLen]
	}
	switch h.Type {
	case train.TypeReply:
		r, err := train.ParseReplyBody(b)
		if err != nil || int(h.Train) >= len(s.trains) || !s.reply(s.trains[h.Train], int(h.Pos), r, ev.Ns, ev.Source, ev.TTL) {
			s.malform++
		}
	case train.TypeCookie:
		c, err := train.ParseCookie(b)
		if err != nil {
			s.malform++
			return stamps
		}
		s.cookie = &c
		if u, ok := train.ParseBudget(b); ok {
			s.budget = &u
		}
	case train.TypeRefused:
		r, err := train.ParseRefused(b)
		if err != nil {
			s.malform++
			return stamps
		}
		if s.refused == nil {
			s.refused = &r
		}
	case train.TypeReport:
		src, st, err := train.ParseReport(b, stamps[:0])
		if err != nil || !s.report(src, st) {
			s.malform++
			return stamps
		}
		s.reports[h.Train] = true
		return st
	default:
		s.malform++
	}
	return stamps
}
