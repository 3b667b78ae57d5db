package measure

import (
	"fmt"
	"strings"
	"time"

	"github.com/abing-net/abing/train"
)

// FitShare is the share of a reflector's stated budget a run plans to use:
// the rest is for report requests, for other runs from the same address
// and for the buckets' own rounding.
const FitShare = 0.8

// Fit plans a run within the budget a reflector states in its cookie (what
// it admits from one source address): a run that would overrun it is
// refused or loses trains in the middle, which the sender could only
// guess at. It returns cfg fitted and, when it changed anything, a
// sentence saying what and why; an error when no run of cfg's kind fits.
// A budget is only ever used to make a run smaller or slower, never larger,
// so a reflector stating a huge one changes nothing.
func Fit(cfg Config, u train.Budget) (Config, string, error) {
	var notes []string
	if u.MaxTrainLen >= 2 {
		if cfg.TrainLen > u.MaxTrainLen {
			return cfg, "", &SettingError{"train_len", cfg.TrainLen, fmt.Sprintf("the reflector accepts trains of at most %d packets", u.MaxTrainLen)}
		}
		if n := cfg.pacedLen(); n > u.MaxTrainLen {
			cfg.PacedTrainLen = u.MaxTrainLen
			notes = append(notes, fmt.Sprintf("paced trains of %d packets, not %d (the reflector's longest)", u.MaxTrainLen, n))
		}
	}
	burst := int(FitShare * float64(u.Burst))
	if cfg.Adaptive() && u.Burst > 0 && cfg.Budget() > burst {
		if min1 := (cfg.Trains*cfg.TrainLen + cfg.round()*cfg.pacedLen()) * cfg.Size; burst >= min1 {
			notes = append(notes, fmt.Sprintf("probe budget %d KB a direction, not %d (the reflector admits bursts of %d KB)",
				burst/1000, cfg.Budget()/1000, u.Burst/1000))
			cfg.MaxBytes = burst
		}
	}
	// What is left over the bursts must come at the rates: spread the
	// trains so that it does.
	trains, packets := cfg.plan()
	bytes := packets * cfg.Size
	var need time.Duration
	if u.Rate > 0 && u.Burst > 0 && bytes > burst {
		need = max(need, time.Duration(float64(bytes-burst)*8/(FitShare*u.Rate)/float64(trains)*1e9))
	}
	if pb := int(FitShare * float64(u.PacketBurst)); u.PPS > 0 && u.PacketBurst > 0 && packets > pb {
		need = max(need, time.Duration(float64(packets-pb)/(FitShare*u.PPS)/float64(trains)*1e9))
	}
	if need > cfg.Interval {
		if need > MaxInterval {
			return cfg, "", fmt.Errorf("%d packets of %d bytes a direction would need trains %v apart to stay within what the reflector admits (%s, bursts of %d KB and %d packets): use fewer or smaller probes",
				packets, cfg.Size, need.Round(time.Millisecond), rateText(u.Rate), u.Burst/1000, u.PacketBurst)
		}
		notes = append(notes, fmt.Sprintf("trains %v apart on average, not %v (the reflector admits %s and bursts of %d KB from one address)",
			need.Round(time.Millisecond), cfg.Interval, rateText(u.Rate), u.Burst/1000))
		cfg.Interval = need
	}
	if len(notes) == 0 {
		return cfg, "", nil
	}
	return cfg, "fitted to the reflector's budget: " + strings.Join(notes, "; "), nil
}

// plan is the most trains and packets a direction of the run may send.
func (c *Config) plan() (trains, packets int) {
	if c.Adaptive() {
		rounds := c.rounds()
		return c.Trains + rounds*c.round(), c.Trains*c.TrainLen + rounds*c.round()*c.pacedLen()
	}
	return 2 * c.Trains, c.Trains * (c.TrainLen + c.pacedLen())
}

// capacityTrainsFit says whether count capacity trains of n packets fit in
// what is left of the reflector's burst allowance u after the planned run.
func (c *Config) capacityTrainsFit(u train.Budget, count, n int) bool {
	_, packets := c.plan()
	if u.MaxTrainLen >= 2 && n > u.MaxTrainLen {
		return false
	}
	if u.Burst > 0 && (packets+count*n)*c.Size > int(FitShare*float64(u.Burst)) {
		return false
	}
	return u.PacketBurst <= 0 || packets+count*n <= int(FitShare*float64(u.PacketBurst))
}

// PacedInterval is the mean time between phase 2's train starts that keeps
// the reflector's pacing of our reply trains (trains of n packets, rgap
// apart) within what it grants one source: a bucket of a second's share of
// its time (or one longest reply train), of which it holds what the
// reflector says is left (Budget.PacedNow: a run soon after another finds
// it part empty), and that share of the time since. It is interval when
// that suffices, and at most MaxInterval.
func PacedInterval(u train.Budget, n int, rgap time.Duration, trains int, interval time.Duration) time.Duration {
	if u.PacedShare <= 0 || rgap <= 0 || n < 2 || trains < 1 {
		return interval
	}
	busy := float64(rgap) * float64(n-1) * float64(trains)
	bucket := float64(u.PacedBucket())
	if u.PacedNow > 0 {
		bucket = min(bucket, float64(u.PacedNow))
	}
	need := time.Duration((busy - FitShare*bucket) / (FitShare * u.PacedShare * float64(trains)))
	return min(max(interval, need), max(interval, MaxInterval))
}

func rateText(bps float64) string {
	return fmt.Sprintf("%.3g Mbit/s", bps/1e6)
}
