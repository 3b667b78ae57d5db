package alarms

import (
	"strings"
	"testing"
)

// The figures of `abing alarms evaluate` with the default parameters, over
// 20 seeds, within the bounds the README states (taken over 50 seeds).
func TestEvaluate(t *testing.T) {
	type bound struct {
		missed, worst, falseAlarms int
		mean                       float64
	}
	step := bound{0, 5, 0, 5}
	bounds := map[string]bound{
		"route change":          step,
		"upgrade":               step,
		"bottleneck 100→40":     step,
		"DBC −15 %":             step,
		"DBC halved, heavy":     {6, MaxDelay, 2, 8},
		"DBC ramp":              {0, 17, 0, 14},
		"DBC −5 %":              {0, 0, 0, 0},
		"heavy load":            {0, 6, 1, 6},
		"latency 10→30 ms":      step,
		"one more hop":          {0, 3, 0, 3},
		"target down":           {0, 3, 1, 3},
		"stationary, 5 % noise": {0, 0, 6, 0},
	}
	figs := Evaluate(Defaults(), 20, Scenarios())
	if len(figs) != len(bounds) {
		t.Fatalf("%d scenarios, %d bounds", len(figs), len(bounds))
	}
	for _, f := range figs {
		t.Logf("%-48s %-9s detected %2d/%d missed %2d delay mean %4.1f worst %2d false %d",
			f.Scenario, f.Kind, f.Detected, f.Series, f.Missed, f.MeanDelay, f.WorstDelay, f.FalseAlarms)
		var b *bound
		for prefix, v := range bounds {
			if strings.HasPrefix(f.Scenario, prefix) {
				b = &v
			}
		}
		if b == nil {
			t.Errorf("%s: no bound", f.Scenario)
			continue
		}
		if f.Missed > b.missed || f.WorstDelay > b.worst || f.FalseAlarms > b.falseAlarms || f.MeanDelay > b.mean {
			t.Errorf("%s: missed %d (max %d), delay mean %.1f (max %.1f) worst %d (max %d), false alarms %d (max %d)",
				f.Scenario, f.Missed, b.missed, f.MeanDelay, b.mean, f.WorstDelay, b.worst, f.FalseAlarms, b.falseAlarms)
		}
	}
}
