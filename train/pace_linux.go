package train

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// precise keeps the calling goroutine on its OS thread with a timer slack
// of 1 ns (the default, 50 µs, would be most of a gap at 100 Mbit/s) until
// the returned function is called, which restores the slack.
func precise() (release func()) {
	runtime.LockOSThread()
	old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err == nil {
		unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	}
	return func() {
		if err == nil {
			unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0)
		}
		runtime.UnlockOSThread()
	}
}

// sleep blocks the thread for d on the kernel's high-resolution timer,
// leaving its CPU to other tasks. d is at most Lead.
func sleep(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	var rem unix.Timespec
	for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, 0, &ts, &rem) == unix.EINTR {
		ts = rem
	}
}

// yield offers the CPU to any task waiting for it (sched_yield), and
// returns at once when none is. A raw system call: the thread keeps Go's
// processor, so that a yield never waits for the Go scheduler.
func yield() { unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
