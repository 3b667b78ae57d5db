package daemon

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

// What delivers at exit (the InfluxDB spool, the alarm hooks) is given
// the grace all at once: two that each use all of it take it once, not
// twice (the monitor took 20 s to stop, one grace after the other).
func TestGracefulAtOnce(t *testing.T) {
	const grace = 300 * time.Millisecond
	g := &graceful{grace: grace}
	for range 2 {
		g.add(func(d time.Duration) error {
			time.Sleep(d)
			return errors.New("undelivered")
		})
	}
	start := time.Now()
	g.close(slog.New(slog.DiscardHandler))
	if took := time.Since(start); took < grace || took > grace*3/2 {
		t.Errorf("closing two took %v with a grace of %v each", took, grace)
	}
}
