package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/abing-net/abing/internal/testenv"
)

// Kind is a kind of cross traffic.
type Kind int

// Kinds of cross traffic.
const (
	CBR     Kind = iota // constant-rate UDP, evenly spaced full-size packets
	Poisson             // UDP with exponentially distributed spacing
	TCP                 // one bulk TCP flow (its rate is whatever TCP gets)
)

func (k Kind) String() string {
	return [...]string{"cbr", "poisson", "tcp"}[k]
}

// Flow is cross traffic from the cross host through one bottleneck.
type Flow struct {
	Kind Kind
	Dir  Direction
	Rate float64 // bit/s at the IP layer (UDP kinds)
	Size int     // IP packet size (UDP kinds); 0 = 1500
	// Seed for the Poisson spacing; the same seed gives the same schedule.
	Seed uint64
	// Ordinary runs the UDP generator at ordinary priority instead of
	// real time: it then loses the CPU while the sender spins, as a
	// process on the sender's own host would, and the probes' windows
	// and the cross traffic stop being independent (the selection-bias
	// tests run both ways).
	Ordinary bool
}

// Ports used by cross-traffic sinks.
const (
	discardPort = 9
	tcpPort     = 5201
)

// Traffic is running cross traffic.
type Traffic struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closers []io.Closer
	mu      sync.Mutex
	err     error
}

// Stop ends the traffic and waits for the generator to finish.
func (t *Traffic) Stop() error {
	t.cancel()
	t.mu.Lock()
	closers := t.closers
	t.closers = nil
	t.mu.Unlock()
	for _, c := range closers {
		c.Close()
	}
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// closeLater registers c to be closed by Stop; once Stop has begun, c is
// closed at once.
func (t *Traffic) closeLater(ctx context.Context, c io.Closer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ctx.Err() != nil {
		c.Close()
		return
	}
	t.closers = append(t.closers, c)
}

func (t *Traffic) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = err
	}
}

// sink is where direction d's cross traffic goes.
func (tb *Testbed) sink(d Direction) (*Netns, netip.Addr) {
	if d == Forward {
		return tb.Reflector, ReflectorAddr
	}
	return tb.Sender, SenderAddr
}

// StartTraffic starts a flow; it runs until Stop or until ctx ends.
func (tb *Testbed) StartTraffic(ctx context.Context, f Flow) (*Traffic, error) {
	if f.Size == 0 {
		f.Size = 1500
	}
	ctx, cancel := context.WithCancel(ctx)
	t := &Traffic{cancel: cancel}
	dstNs, dst := tb.sink(f.Dir)
	var err error
	switch f.Kind {
	case CBR, Poisson:
		err = tb.startUDP(ctx, t, f, dstNs, dst)
	case TCP:
		err = tb.startTCP(ctx, t, dstNs, dst)
	default:
		err = fmt.Errorf("testbed: unknown traffic kind %d", f.Kind)
	}
	if err != nil {
		t.Stop()
		return nil, err
	}
	return t, nil
}

func (tb *Testbed) startUDP(ctx context.Context, t *Traffic, f Flow, dstNs *Netns, dst netip.Addr) error {
	if f.Rate <= 0 {
		return fmt.Errorf("testbed: %s traffic needs a positive rate", f.Kind)
	}
	// The sink is a socket nobody reads: once its buffer is full the kernel
	// drops what arrives, quietly (no ICMP goes back through the path).
	var sink *net.UDPConn
	err := dstNs.Do(func() (err error) {
		sink, err = net.ListenUDP("udp4", &net.UDPAddr{IP: dst.AsSlice(), Port: discardPort})
		return err
	})
	if err != nil {
		return fmt.Errorf("testbed: traffic sink: %w", err)
	}
	t.closeLater(ctx, sink)
	sink.SetReadBuffer(4096)
	// The generator runs in a process of its own, as cross traffic from
	// another host would: inside this process it would share the Go
	// scheduler with the sender and reflector, which spin while they pace
	// probes, and it would fall silent exactly while probes are in flight.
	child, err := startChild(ctx, childSpec{Netns: tb.Cross.Name, Kind: f.Kind, Rate: f.Rate, Size: f.Size,
		Seed: f.Seed, Dst: netip.AddrPortFrom(dst, discardPort).String(), Ordinary: f.Ordinary})
	if err != nil {
		return err
	}
	t.closeLater(ctx, child)
	return nil
}

// StartBusy keeps one CPU of the machine busy at ordinary priority, in a
// process of its own, until Stop or until ctx ends: a host whose CPUs are
// not all free for the sender, as a shared server or a virtual machine
// with a noisy neighbour is. On the 2-vCPU machines of the project it
// leaves one CPU to the sender, the reflector, the router and an
// ordinary-priority generator.
func (tb *Testbed) StartBusy(ctx context.Context) (*Traffic, error) {
	ctx, cancel := context.WithCancel(ctx)
	t := &Traffic{cancel: cancel}
	child, err := startChild(ctx, childSpec{Netns: tb.Cross.Name, Busy: true})
	if err != nil {
		cancel()
		return nil, err
	}
	t.closeLater(ctx, child)
	return t, nil
}

// generate sends UDP from the current network namespace until stop closes.
func generate(spec childSpec, stop <-chan struct{}, ready func()) error {
	src, err := net.Dial("udp4", spec.Dst)
	if err != nil {
		return fmt.Errorf("traffic to %s: %w", spec.Dst, err)
	}
	defer src.Close()
	payload := make([]byte, spec.Size-28)
	mean := float64(spec.Size*8) / spec.Rate * 1e9 // ns between packets
	rng := rand.New(rand.NewPCG(spec.Seed, 0x5eed))
	next := func() int64 {
		if spec.Kind == Poisson {
			return int64(rng.ExpFloat64() * mean)
		}
		return int64(mean)
	}
	// A thread of its own with 1 ns timer slack: Go's timers wake about a
	// millisecond late here, far too coarse for spacing packets tens of
	// microseconds apart.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	// Real-time priority: on a 2-core machine that also runs the sender,
	// the reflector and the router, an ordinary thread loses the CPU while
	// a probe train is paced (the sender spins) and the cross traffic falls
	// silent exactly then. Traffic from another host would not.
	if !spec.Ordinary {
		if err := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 50}, 0); err != nil {
			return fmt.Errorf("traffic: SCHED_FIFO: %w", err)
		}
	}
	ready()
	due := monotonic()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		due += next()
		now := monotonic()
		if now-due > int64(10*time.Millisecond) {
			due = now // fell far behind (descheduled): do not burst to catch up
		}
		if due > now {
			ts := unix.NsecToTimespec(due)
			for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil) == unix.EINTR {
			}
		}
		if _, err := src.Write(payload); err != nil && !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.ECONNREFUSED) {
			return fmt.Errorf("traffic to %s: %w", spec.Dst, err)
		}
	}
}

func monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func (tb *Testbed) startTCP(ctx context.Context, t *Traffic, dstNs *Netns, dst netip.Addr) error {
	var ln *net.TCPListener
	err := dstNs.Do(func() (err error) {
		ln, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: dst.AsSlice(), Port: tcpPort})
		return err
	})
	if err != nil {
		return fmt.Errorf("testbed: tcp sink: %w", err)
	}
	t.closeLater(ctx, ln)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		t.closeLater(ctx, c)
		io.Copy(io.Discard, c)
	}()
	var conn *net.TCPConn
	err = tb.Cross.Do(func() error {
		d := net.Dialer{Timeout: 2 * time.Second}
		c, err := d.DialContext(ctx, "tcp4", netip.AddrPortFrom(dst, tcpPort).String())
		if err == nil {
			conn = c.(*net.TCPConn)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("testbed: tcp source: %w", err)
	}
	t.closeLater(ctx, conn)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		buf := make([]byte, 64<<10)
		for ctx.Err() == nil {
			if _, err := conn.Write(buf); err != nil {
				return
			}
		}
	}()
	return nil
}

// Calibration is what a bottleneck really forwards when saturated.
type Calibration struct {
	Dir      Direction
	Nominal  float64 // bit/s asked of tc
	Capacity float64 // bit/s at the IP layer, of packets of the probe size
}

// Calibration windows: the saturated bottleneck's rate is read over
// calWindows windows of calWindow each, and the median is the capacity. One
// one-second reading at nominal 20 Mbit/s once came out 8 % low (CI, both
// directions otherwise agreeing within 1 %): a stall of the host, the
// generator's or the timers', costs the window it falls in, and the median
// of five leaves it out.
const (
	calWindows = 5
	calWindow  = 200 * time.Millisecond
)

// Calibrate saturates the idle bottleneck of direction d for a second with
// probe-size UDP at 1.5 times its nominal rate and returns what it
// forwarded: the median rate of five 200 ms windows.
func (tb *Testbed) Calibrate(ctx context.Context, d Direction) (Calibration, error) {
	nominal := tb.Nominal(d)
	cal := Calibration{Dir: d, Nominal: nominal}
	if nominal == 0 {
		return cal, fmt.Errorf("testbed: %s is not shaped", d)
	}
	tr, err := tb.StartTraffic(ctx, Flow{Kind: CBR, Dir: d, Rate: 1.5 * nominal, Size: tb.cfg.ProbeSize})
	if err != nil {
		return cal, err
	}
	defer tr.Stop()
	if err := testenv.Sleep(ctx, 200*time.Millisecond); err != nil { // fill the queue
		return cal, err
	}
	c0, t0, err := tb.countersAt(ctx, d)
	if err != nil {
		return cal, err
	}
	cPrev, tPrev := c0, t0
	rates := make([]float64, 0, calWindows)
	for range calWindows {
		if err := testenv.Sleep(ctx, calWindow); err != nil {
			return cal, err
		}
		c, t, err := tb.countersAt(ctx, d)
		if err != nil {
			return cal, err
		}
		rates = append(rates, float64(c.Sub(cPrev).IPBytes()*8)/t.Sub(tPrev).Seconds())
		cPrev, tPrev = c, t
	}
	if err := tr.Stop(); err != nil {
		return cal, err
	}
	slices.Sort(rates)
	cal.Capacity = rates[len(rates)/2]
	if cPrev.Sub(c0).Drops == 0 {
		return cal, fmt.Errorf("testbed: calibrating %s: the bottleneck never dropped, so it was not saturated (generator too slow?)", d)
	}
	return cal, testenv.Sleep(ctx, 100*time.Millisecond) // let the queue drain
}

// countersAt reads counters and the time they stand for (the middle of the
// read).
func (tb *Testbed) countersAt(ctx context.Context, d Direction) (Counters, time.Time, error) {
	before := time.Now()
	c, err := tb.Counters(ctx, d)
	after := time.Now()
	return c, before.Add(after.Sub(before) / 2), err
}
