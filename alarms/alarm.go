package alarms

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Params tune the detectors of a target. Zero fields take the defaults;
// Merge lays a target's own settings over the configuration's.
type Params struct {
	// Flap control, for every kind.
	Hold        int           `yaml:"hold" json:"hold"`                 // consecutive measurements a condition must hold to raise (3)
	Clear       int           `yaml:"clear" json:"clear"`               // consecutive measurements it must be gone to clear (3)
	MinDuration time.Duration `yaml:"min_duration" json:"min_duration"` // and it must last this long to raise (0)
	Hysteresis  float64       `yaml:"hysteresis" json:"hysteresis"`     // how far back past the threshold to clear, fraction of it (0.5)
	AcceptAfter time.Duration `yaml:"accept_after" json:"accept_after"` // a capacity, latency or path alarm this old is cleared and its level taken as normal (24h)
	// Level tests on DBC and RTT.
	Window    int     `yaml:"window" json:"window"`         // values in the test window (5)
	Reference int     `yaml:"reference" json:"reference"`   // values in the reference window (12)
	K         float64 `yaml:"sensitivity" json:"k"`         // robust standard deviations to the threshold (4)
	MinChange float64 `yaml:"min_change" json:"min_change"` // smallest DBC or RTT shift, relative (0.1)
	// MinRTTChange is the smallest RTT shift (1ms): below that, RTT moves
	// with queueing, not with the route.
	MinRTTChange time.Duration `yaml:"min_rtt_change" json:"min_rtt_change"`
	// Load: ABW below LoadBelow × DBC (median of the window) for LoadFor.
	LoadBelow float64       `yaml:"load_below" json:"load_below"` // 0.25
	LoadFor   time.Duration `yaml:"load_for" json:"load_for"`     // 5m
	DownAfter int           `yaml:"down_after" json:"down_after"` // failed runs in a row (3)
}

// Defaults are the parameters of a target that sets none.
func Defaults() Params {
	return Params{Hold: 3, Clear: 3, Hysteresis: 0.5, AcceptAfter: 24 * time.Hour, Window: 5, Reference: 12, K: 4,
		MinChange: 0.1, MinRTTChange: time.Millisecond, LoadBelow: 0.25, LoadFor: 5 * time.Minute, DownAfter: 3}
}

// Merge returns p with the non-zero fields of o laid over it.
func (p Params) Merge(o Params) Params {
	set := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	setF := func(dst *float64, v float64) {
		if v != 0 {
			*dst = v
		}
	}
	setD := func(dst *time.Duration, v time.Duration) {
		if v != 0 {
			*dst = v
		}
	}
	set(&p.Hold, o.Hold)
	set(&p.Clear, o.Clear)
	setD(&p.MinDuration, o.MinDuration)
	setF(&p.Hysteresis, o.Hysteresis)
	setD(&p.AcceptAfter, o.AcceptAfter)
	set(&p.Window, o.Window)
	set(&p.Reference, o.Reference)
	setF(&p.K, o.K)
	setF(&p.MinChange, o.MinChange)
	setD(&p.MinRTTChange, o.MinRTTChange)
	setF(&p.LoadBelow, o.LoadBelow)
	setD(&p.LoadFor, o.LoadFor)
	set(&p.DownAfter, o.DownAfter)
	return p
}

// Check reports the first setting out of range, by its configuration name.
func (p Params) Check() error {
	var errs []error
	bad := func(ok bool, name string, v any, want string) {
		if !ok {
			errs = append(errs, fmt.Errorf("alarms %s %v: %s", name, v, want))
		}
	}
	bad(p.Hold >= 1, "hold", p.Hold, "want 1 or more measurements")
	bad(p.Clear >= 1, "clear", p.Clear, "want 1 or more measurements")
	bad(p.MinDuration >= 0, "min_duration", p.MinDuration, "must not be negative")
	bad(p.Hysteresis > 0 && p.Hysteresis < 1, "hysteresis", p.Hysteresis, "want a fraction between 0 and 1")
	bad(p.AcceptAfter > 0, "accept_after", p.AcceptAfter, "must be positive")
	bad(p.Window >= 3, "window", p.Window, "want 3 or more values")
	bad(p.Reference >= p.Window, "reference", p.Reference, "want at least the window")
	bad(p.K > 0 && !math.IsInf(p.K, 1), "sensitivity", p.K, "must be a positive number")
	bad(p.MinChange > 0 && p.MinChange < 1, "min_change", p.MinChange, "want a fraction between 0 and 1")
	bad(p.MinRTTChange >= 0, "min_rtt_change", p.MinRTTChange, "must not be negative")
	bad(p.LoadBelow > 0 && p.LoadBelow < 1, "load_below", p.LoadBelow, "want a fraction of DBC between 0 and 1")
	bad(p.LoadFor >= 0, "load_for", p.LoadFor, "must not be negative")
	bad(p.DownAfter >= 1, "down_after", p.DownAfter, "want 1 or more failed runs")
	return errors.Join(errs...)
}

func (p Params) level(minAbs float64) LevelParams {
	return LevelParams{Window: p.Window, Reference: p.Reference, K: p.K, MinRel: p.MinChange, MinAbs: minAbs,
		Hold: p.Hold, Clear: p.Clear, Hysteresis: p.Hysteresis, MinDuration: p.MinDuration}
}
