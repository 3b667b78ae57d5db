package pace

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pin keeps the calling goroutine on its thread, on CPU 0 only.
func pin(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(0)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		t.Skipf("cannot pin to CPU 0: %v", err)
	}
}

// A process that shares the sender's CPU and wakes in the middle of a
// paced gap gets the CPU then, not after the second packet has left: a
// sender that held its CPU through the gap would hold back whatever that
// process sends (cross traffic from the same host) until the window had
// closed, and paced pairs would read too little cross traffic (the
// selection bias of fixed pairs on a busy host, measured in
// docs/accuracy.md). The sender and a competing thread are pinned to one
// CPU; the competitor sleeps until 200 µs into a 1 ms gap and notes how
// late it woke. Spinning through the gap, it woke when the gap ended
// (median lateness 0.8 ms); the pacer must leave it the CPU.
func TestGapLeavesTheCPU(t *testing.T) {
	if raceEnabled {
		t.Skip("timing test: the race detector slows the threads it measures")
	}
	pin(t)
	defer runtime.UnlockOSThread()
	const gap, wake = time.Millisecond, 200 * time.Microsecond
	start := make(chan time.Time)
	late := make(chan time.Duration)
	go func() {
		pin(t)
		defer runtime.UnlockOSThread()
		for s := range start {
			due := s.Add(wake)
			sleep(time.Until(due))
			late <- time.Since(due)
		}
	}()
	var r recorder
	pkts := [][]byte{{1}, {2}}
	var lat []time.Duration
	for range 25 {
		time.Sleep(3 * time.Millisecond) // the competitor is asleep, as between trains
		start <- time.Now()
		if _, err := Send(context.Background(), &r, pkts, gap, nil); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, <-late)
	}
	close(start)
	slices.Sort(lat)
	t.Logf("competitor's wake-up lateness: median %v, max %v", lat[len(lat)/2], lat[len(lat)-1])
	if med := lat[len(lat)/2]; med > (gap-wake)/2 {
		t.Errorf("a thread on the sender's CPU woke %v late (median of %d) in a %v gap: the pacer held the CPU", med, len(lat), gap)
	}
}
