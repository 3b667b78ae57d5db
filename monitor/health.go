package monitor

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/abing-net/abing/record"
)

// Health thresholds.
const (
	// DeadIntervals: /healthz fails when no target has succeeded (its
	// reflector answered) for this many of the longest target interval.
	DeadIntervals = 3
	// BacklogUnhealthy: /healthz fails when a sink holds this many
	// results it could not write.
	BacklogUnhealthy = 10
)

// HealthChecker is a sink that can say it is in trouble beyond a failed
// write (the InfluxDB sink: undeliverable for a long time).
type HealthChecker interface {
	Health() error
}

// health is what the sink goroutine records for Health, which the web
// server's goroutines call (besides each sink's unwritten count).
type health struct {
	started     time.Time
	lastSuccess atomic.Int64 // Unix ns of the last run a reflector answered; 0: none yet
}

// observe notes a batch of records that shows a reflector answering.
func (h *health) observe(recs []record.Record) {
	for _, r := range recs {
		if r.PairsReceived > 0 {
			h.lastSuccess.Store(time.Now().UnixNano())
			return
		}
	}
}

// Health says why the monitor is not doing its job, or nil: a sink that
// cannot write its results (the store's disk full, say), a sink that says
// it is in trouble, or no target answered for DeadIntervals of the longest
// interval.
func (m *Monitor) Health() error {
	var why []string
	for _, s := range m.sinks {
		if n := s.unwritten.Load(); n >= BacklogUnhealthy {
			why = append(why, fmt.Sprintf("%s: %d results not written", s.name, n))
		}
	}
	for _, s := range m.opts.Sinks {
		if hc, ok := s.(HealthChecker); ok {
			if err := hc.Health(); err != nil {
				why = append(why, err.Error())
			}
		}
	}
	m.mu.Lock()
	longest := time.Duration(m.cfg.Interval)
	for _, t := range m.cfg.Targets {
		longest = max(longest, time.Duration(t.Interval))
	}
	targets := len(m.cfg.Targets)
	m.mu.Unlock()
	since := m.health.started
	if ns := m.health.lastSuccess.Load(); ns != 0 {
		since = time.Unix(0, ns)
	}
	if dead := DeadIntervals * longest; targets > 0 && time.Since(since) > dead {
		what := "since the monitor started"
		if !since.Equal(m.health.started) {
			what = "since " + since.UTC().Format(time.RFC3339)
		}
		why = append(why, fmt.Sprintf("no target has answered %s (%v, %d × the longest interval)", what,
			time.Since(since).Round(time.Second), DeadIntervals))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(why, "; "))
}
