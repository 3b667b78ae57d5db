//go:build !linux

package pace

import (
	"runtime"
	"time"
)

// Outside Linux abing does not measure (package timestamp needs Linux);
// these keep the package portable: a Go sleep, which wakes late, and
// runtime.Gosched for the spin.

func precise() (release func()) { return func() {} }

func sleep(d time.Duration) { time.Sleep(d) }

func yield() { runtime.Gosched() }
