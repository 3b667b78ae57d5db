package alarms

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
)

var t0 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

// series makes n values around level(i) with relative Gaussian noise
// sigma and a fraction of outliers at half or 1.5 times the level.
func series(seed uint64, n int, level func(i int) float64, sigma, outliers float64) []record.Point {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]record.Point, n)
	for i := range out {
		v := level(i) * (1 + sigma*r.NormFloat64())
		if r.Float64() < outliers {
			v = level(i) * []float64{0.5, 1.5}[r.IntN(2)]
		}
		out[i] = record.Point{Time: t0.Add(time.Duration(i) * time.Minute), Value: v}
	}
	return out
}

func step(at int, before, after float64) func(int) float64 {
	return func(i int) float64 {
		if i < at {
			return before
		}
		return after
	}
}

// run feeds a series and returns the indexes at which shifts were raised
// and cleared.
func run(d *LevelDetector, pts []record.Point) (raised, cleared []int, shifts []*Shift) {
	for i, p := range pts {
		if s := d.Add(p); s != nil {
			if s.End.IsZero() {
				raised = append(raised, i)
				shifts = append(shifts, s)
			} else {
				cleared = append(cleared, i)
			}
		}
	}
	return
}

// Detection delay and false alarms on synthetic series with known change
// points, each over 50 seeds; the bounds are the documented behaviour.
func TestLevelShifts(t *testing.T) {
	for _, tc := range []struct {
		name         string
		level        func(int) float64
		sigma, outl  float64
		change       int // index of the change, -1 none
		maxDelay     int // worst delay over the seeds, values after the change
		wantAlarm    bool
		maxMeanDelay float64
		maxMissed    int // of 50 series
		maxFalse     int // over 50 series
	}{
		{"route change 1000→622, noise 3 %", step(60, 1000, 622), 0.03, 0, 60, 4, true, 4, 0, 0},
		{"upgrade 155→1000, noise 3 %", step(60, 155, 1000), 0.03, 0, 60, 4, true, 4, 0, 0},
		{"bottleneck 100→40, noise 5 %, 5 % outliers", step(60, 100, 40), 0.05, 0.05, 60, 5, true, 4, 0, 0},
		{"15 % drop, noise 2 %", step(60, 100, 85), 0.02, 0, 60, 5, true, 4, 0, 0},
		// Under noise this heavy the detector trades: it misses (or is
		// later than 10 values for) about a third of the halvings rather
		// than raise false alarms on the noise itself (none in these 50
		// series). Before σ also came from successive differences it
		// missed 12 and raised 2 false alarms here, and raised 89 false
		// alarms per million stationary values instead of 8.
		{"halving under heavy noise (15 %, 5 % outliers)", step(60, 100, 50), 0.15, 0.05, 60, 10, true, 5, 20, 1},
		{"ramp 100→50 over 40 values", func(i int) float64 {
			return 100 - 50*min(max(float64(i-60), 0), 40)/40
		}, 0.03, 0, 60, 20, true, 15, 0, 0},
		{"5 % drop, below the 10 % minimum", step(60, 100, 95), 0.01, 0, -1, 0, false, 0, 0, 0},
		{"outliers only (5 %)", step(60, 100, 100), 0.03, 0.05, -1, 0, false, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var delays []int
			falseAlarms, missed := 0, 0
			for seed := range uint64(50) {
				pts := series(seed, 200, tc.level, tc.sigma, tc.outl)
				raised, _, shifts := run(NewLevelDetector(LevelParams{}), pts)
				found := false
				for k, i := range raised {
					// An alarm before the change, or a second one for it,
					// is false; a first one later than maxDelay counts as
					// missed.
					if tc.change < 0 || i < tc.change {
						falseAlarms++
						continue
					}
					if !found && i > tc.change+tc.maxDelay {
						found = true
						missed++
						continue
					}
					if !found {
						found = true
						delays = append(delays, i-tc.change)
						if s := shifts[k]; s.Start.Before(pts[tc.change].Time.Add(-time.Duration(tc.maxDelay) * time.Minute)) {
							t.Errorf("seed %d: episode starts at %v, change at %v", seed, s.Start, pts[tc.change].Time)
						}
					} else {
						falseAlarms++ // a second alarm for the same episode
					}
				}
				if tc.wantAlarm && !found {
					missed++
				}
			}
			worst, sum := 0, 0
			for _, d := range delays {
				worst, sum = max(worst, d), sum+d
			}
			mean := 0.0
			if len(delays) > 0 {
				mean = float64(sum) / float64(len(delays))
			}
			t.Logf("delay mean %.1f worst %d values; false alarms %d, missed %d (50 series)", mean, worst, falseAlarms, missed)
			if falseAlarms > tc.maxFalse || missed > tc.maxMissed || worst > tc.maxDelay || mean > tc.maxMeanDelay {
				t.Errorf("delay mean %.1f (max %.1f) worst %d (max %d); false alarms %d (max %d), missed %d (max %d)",
					mean, tc.maxMeanDelay, worst, tc.maxDelay, falseAlarms, tc.maxFalse, missed, tc.maxMissed)
			}
		})
	}
}

// A long stationary, noisy series raises nothing.
func TestStationary(t *testing.T) {
	pts := series(99, 10000, step(0, 100, 100), 0.05, 0.02)
	if raised, _, _ := run(NewLevelDetector(LevelParams{}), pts); len(raised) != 0 {
		t.Errorf("%d alarms on 10,000 stationary points (first at %d)", len(raised), raised[0])
	}
}

// The bottleneck goes from 100 to 40 and back: one alarm, raised after the
// drop and cleared after the return, with the levels before and after.
func TestRaiseAndClear(t *testing.T) {
	level := func(i int) float64 {
		if i >= 40 && i < 70 {
			return 40
		}
		return 100
	}
	pts := series(3, 120, level, 0.03, 0)
	raised, cleared, shifts := run(NewLevelDetector(LevelParams{}), pts)
	if len(raised) != 1 || len(cleared) != 1 {
		t.Fatalf("raised %v cleared %v", raised, cleared)
	}
	s := shifts[0]
	if raised[0] > 44 || cleared[0] < 70 || cleared[0] > 76 || s.Before < 95 || s.Before > 105 || s.After < 36 || s.After > 44 ||
		len(s.Evidence) != 5 || !s.Start.Equal(pts[40].Time) {
		t.Errorf("raised at %d, cleared at %d, shift %+v", raised[0], cleared[0], s)
	}
	// Gaps (NaN) are skipped, not read as zero.
	d := NewLevelDetector(LevelParams{})
	for i := range 40 {
		d.Add(record.Point{Time: t0.Add(time.Duration(i) * time.Minute), Value: 100})
		if s := d.Add(record.Point{Time: t0, Value: nan()}); s != nil {
			t.Fatal("a gap raised a shift")
		}
	}
}

func nan() float64 { var z float64; return z / z }
