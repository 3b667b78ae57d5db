//go:build !linux

package train

import (
	"runtime"
	"time"
)

// Outside Linux abing does not measure (package dispersion needs Linux);
// these keep the package portable: a Go sleep, which wakes late, and
// runtime.Gosched for the spin.

func precise() (release func()) { return func() {} }

func sleep(d time.Duration) { time.Sleep(d) }

func yield() { runtime.Gosched() }
