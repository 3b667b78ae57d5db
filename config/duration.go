package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that also reads days ("30d"): the one
// duration type of the configuration file.
type Duration time.Duration

// UnmarshalText parses "90s", "5m", "1h30m" or "30d".
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		// NaN, infinities and what overflows a duration are no number of days.
		if err != nil || !(math.Abs(days) < float64(math.MaxInt64)/float64(24*time.Hour)) {
			return fmt.Errorf("duration %q: want a number of days such as 30d", s)
		}
		*d = Duration(days * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. 60s, 5m, 1h or 30d", s)
	}
	*d = Duration(v)
	return nil
}

// String is the time.Duration's.
func (d Duration) String() string { return time.Duration(d).String() }
