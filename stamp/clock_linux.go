package stamp

import (
	"golang.org/x/sys/unix"
)

// HostClock is the Error Estimate of this host's clock as the kernel
// knows it (adjtimex): synchronised unless the kernel says TIME_ERROR, and
// its estimated error (esterror), or its maximum error when no estimate is
// kept.
func HostClock() ErrorEstimate {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return EstimateOf(1, false, false)
	}
	us := int64(tx.Esterror)
	if us <= 0 {
		us = int64(tx.Maxerror)
	}
	return EstimateOf(float64(us)*1e-6, state != unix.TIME_ERROR, false)
}
