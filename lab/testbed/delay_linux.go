package testbed

import (
	"context"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// delayElement moves packets from its tun in to its tun out of a router d
// later, in order (the kernel here has no netem). At most maxQueued wait at
// once; more are dropped, as a full queue would. A router may have several,
// each its own delay, numbered from 0: element n reads dly<n>i, writes
// dly<n>o, and its routing table (table, 100+n) leads into it; rules choose
// what goes there.
//
// It runs in a process of its own, as the generators do, with two threads:
// one blocked reading its tun in, one sleeping in clock_nanosleep with a timer
// slack of 1 ns until each packet is due. In the testbed's own process,
// Go's timers wake about a millisecond late when nothing else runs (a
// 50 µs time.Sleep measured 1.05 ms late at the median), and a thread back
// from a sleep waits for the scheduler while the sender spins through a
// paced train: either released paced probes in clumps (probes sent 500 µs
// apart: 4–11 of 39 gaps under 150 µs, against 1–2 without the element;
// this element: 0 of 39).
type delayElement struct {
	d       time.Duration
	table   string
	in, out string
	child   *child
}

// maxDelays bounds a router's delay elements.
const maxDelays = 8

const maxQueued = 4096

// newDelay makes delay element n (0 to maxDelays-1) in router with delay
// d for packets of up to mtu bytes: packets routed into its tun in (by its
// routing table) come back out of its tun out d later, and the router
// routes them on by its main table (a rule sends whatever arrives on out
// there), IPv4 and IPv6.
func newDelay(ctx context.Context, router *Netns, n int, d time.Duration, mtu int) (e *delayElement, err error) {
	if d <= 0 || d > time.Second {
		return nil, fmt.Errorf("testbed: delay %v: want above 0, at most 1s", d)
	}
	if n < 0 || n >= maxDelays {
		return nil, fmt.Errorf("testbed: delay element %d: at most %d in a router", n, maxDelays)
	}
	e = &delayElement{d: d, table: fmt.Sprint(100 + n), in: fmt.Sprintf("dly%di", n), out: fmt.Sprintf("dly%do", n)}
	// The element lives as long as the testbed, not as the caller's ctx.
	c, err := startChild(context.WithoutCancel(ctx), childSpec{Netns: router.Name, Delay: d, MTU: mtu, DelayIn: e.in, DelayOut: e.out})
	if err != nil {
		return nil, fmt.Errorf("testbed: delay element: %w", err)
	}
	e.child = c
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	m := fmt.Sprint(mtu)
	for _, args := range [][]string{
		{"link", "set", e.in, "mtu", m, "up"}, {"link", "set", e.out, "mtu", m, "up"},
		{"route", "add", "default", "dev", e.in, "table", e.table},
		{"-6", "route", "add", "default", "dev", e.in, "table", e.table},
		{"rule", "add", "iif", e.out, "lookup", "main", "pref", "50"},
		{"-6", "rule", "add", "iif", e.out, "lookup", "main", "pref", "50"},
	} {
		if err := router.ip(ctx, args...); err != nil {
			return nil, fmt.Errorf("testbed: delay element: %w", err)
		}
	}
	for _, key := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf." + e.out + ".rp_filter"} {
		if err := router.sysctl(key, "0"); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *delayElement) close() { e.child.Close() }

// runDelay is the delay element's process, in the router's namespace: it
// creates the two tun devices (they go when it exits), says it is ready,
// and moves packets until stop closes.
func runDelay(spec childSpec, stop <-chan struct{}, ready func()) error {
	in, err := openTun(spec.DelayIn)
	if err != nil {
		return err
	}
	out, err := openTun(spec.DelayOut)
	if err != nil {
		return err
	}
	type delayed struct {
		due int64 // CLOCK_MONOTONIC, ns
		pkt []byte
	}
	q := make(chan delayed, maxQueued)
	errs := make(chan error, 2)
	// Threads of their own, with 1 ns timer slack. Ordinary priority: a
	// link in the network does not take the hosts' CPUs from them, and at
	// real-time priority the element would preempt the sender between the
	// packets of a pair.
	thread := func() error {
		runtime.LockOSThread() // for good: the thread ends with the goroutine
		if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("delay element: timer slack: %w", err)
		}
		return nil
	}
	started := make(chan error, 2)
	go func() {
		if err := thread(); err != nil {
			started <- err
			return
		}
		started <- nil
		buf := make([]byte, max(spec.MTU, 1500))
		for {
			n, err := unix.Read(in, buf)
			if err != nil {
				if err == unix.EINTR {
					continue
				}
				errs <- fmt.Errorf("delay element: reading %s: %w", spec.DelayIn, err)
				return
			}
			select {
			case q <- delayed{monotonic() + spec.Delay.Nanoseconds(), append([]byte(nil), buf[:n]...)}:
			default: // full: dropped
			}
		}
	}()
	go func() {
		if err := thread(); err != nil {
			started <- err
			return
		}
		started <- nil
		for p := range q {
			ts := unix.NsecToTimespec(p.due)
			for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil) == unix.EINTR {
			}
			unix.Write(out, p.pkt) // an error drops the packet, as a link would
		}
	}()
	for range 2 {
		if err := <-started; err != nil {
			return err
		}
	}
	ready()
	select {
	case <-stop:
		return nil
	case err := <-errs:
		return err
	}
}

// openTun creates tun device name in the calling thread's namespace and
// returns its descriptor for reading and writing packets (no packet
// information header; blocking).
func openTun(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	var req struct {
		name  [unix.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(req.name[:], name)
	req.flags = unix.IFF_TUN | unix.IFF_NO_PI
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req))); errno != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %s: %w", name, errno)
	}
	return fd, nil
}
