package monitor

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/reflector/reflectortest"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		silent   int
		want     time.Duration
	}{
		{time.Minute, 0, time.Minute},
		{time.Minute, 2, time.Minute},
		{time.Minute, 3, 2 * time.Minute},
		{time.Minute, 4, 4 * time.Minute},
		{time.Minute, 5, 8 * time.Minute},
		{time.Minute, 6, 10 * time.Minute}, // at most maxBackoffWait
		{time.Minute, 60, 10 * time.Minute},
		{time.Second, 7, 16 * time.Second}, // at most backoffMax intervals
		{time.Hour, 9, time.Hour},          // never below the interval
	} {
		if got := backoff(tc.interval, tc.silent); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.interval, tc.silent, got, tc.want)
		}
	}
}

// A target where nothing answers (ICMP port unreachable on loopback) is
// tried less and less often: at 1 s intervals, 3 runs and then waits of
// 2, 4, 8 s…, not a run a second. Once a reflector answers there, the runs
// come every interval again. Before, 100 such targets drew 1,972 runs in
// 35 s.
func TestBackoffFromSilentTarget(t *testing.T) {
	// A free port: nothing listens on it until the reflector starts.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	tm := newTestMonitor(t, fmt.Sprintf("interval: 1s\njitter: 0\nprobe: {timeout: 1s}\nalarms: {disabled: true}\ntargets:\n  - {name: r, address: %q}\n", addr), Options{})
	var silentRuns []time.Time
	var answered []time.Time
	started := false
	tm.runUntil(t, 40*time.Second, func(b map[string][][]record.Record, _ []record.Alarm) bool {
		silentRuns, answered = silentRuns[:0], answered[:0]
		for _, batch := range b["r"] {
			if batch[0].RTT == nil {
				silentRuns = append(silentRuns, batch[0].Time)
			} else {
				answered = append(answered, batch[0].Time)
			}
		}
		if len(silentRuns) >= 4 && !started {
			started = true
			reflectortest.Start(t, "udp4", addr, reflector.Config{})
		}
		return len(answered) >= 4
	})
	if len(silentRuns) < 4 {
		t.Fatalf("%d unanswered runs", len(silentRuns))
	}
	gaps := make([]time.Duration, 0, len(silentRuns))
	for i := 1; i < len(silentRuns); i++ {
		gaps = append(gaps, silentRuns[i].Sub(silentRuns[i-1]).Round(100*time.Millisecond))
	}
	t.Logf("unanswered runs %v apart; then %d answered", gaps, len(answered))
	// After the third unanswered run the wait doubles: 2 s (then 4 s,
	// after which the reflector answers).
	if gaps[2] < 1800*time.Millisecond {
		t.Errorf("unanswered runs %v apart: no back-off", gaps)
	}
	for i := 2; i < len(answered); i++ {
		if gap := answered[i].Sub(answered[i-1]); gap > 1500*time.Millisecond {
			t.Errorf("answered runs %v apart: the interval is not restored", gap)
		}
	}
}
