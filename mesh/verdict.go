// Package mesh answers the questions of people who run many hosts, from
// measurements abing already makes: is one path to a host (an overlay, a
// VPN) better than another (the plain Internet) — Compare and the verdicts;
// would relaying through a third host beat the direct route — Relays, for
// latency and for bandwidth; what is the best route between two hosts over
// any number of hops — Graph and its routes, by link cost, RTT or
// bandwidth; what is the latency between two hosts nobody
// measured — Coordinates. It reads a matrix of measurements (ReadMatrix) or
// records, and does no measuring or networking itself. The rules and their
// sources are in docs/mesh.md.
package mesh

import (
	"fmt"
	"math"
	"slices"
)

// Verdict says how a path compares with the reference path to the same
// host.
type Verdict string

// Verdicts, as an overlay operator's own evaluation words them.
const (
	Optimized Verdict = "OPTIMIZED" // better than the reference
	OK        Verdict = "OK"        // within the acceptable range
	Same      Verdict = "OK (same)" // loss only: exactly the reference's
	Bad       Verdict = "BAD"       // worse beyond the acceptable range
)

// Margins of the verdicts. RTTMarginMS and RTTMarginRel are those of the
// overlay evaluation the rules come from: an alternative path is acceptable
// while its mean RTT is below the reference's plus the larger of 20 ms and
// 15 %. LossMarginPts is its loss rule: less than one percentage point
// worse is acceptable. For bandwidth (higher is better) we chose the larger
// of BandwidthMarginMbps and BandwidthMarginRel of the reference: 10 % is
// the precision of abing's default run (its ABW interval is at most ±10 %
// of DBC), so a smaller difference is within what one run can tell apart,
// and 1 Mbit/s keeps slow paths from calling noise a loss.
const (
	RTTMarginMS         = 20.0
	RTTMarginRel        = 0.15
	LossMarginPts       = 1.0
	BandwidthMarginMbps = 1.0
	BandwidthMarginRel  = 0.10
)

// RTTVerdict compares a path's mean RTT o with the reference's d (ms):
// lower is OPTIMIZED; below d + max(20 ms, 15 % of d) is OK; else BAD.
func RTTVerdict(d, o float64) Verdict {
	switch {
	case o < d:
		return Optimized
	case o < d+math.Max(RTTMarginMS, RTTMarginRel*d):
		return OK
	}
	return Bad
}

// LossVerdict compares a path's loss o with the reference's d, both in
// percent: lower is OPTIMIZED; equal is OK (same); higher by less than one
// point is OK; else BAD.
func LossVerdict(d, o float64) Verdict {
	switch {
	case o < d:
		return Optimized
	case o == d:
		return Same
	case o-d < LossMarginPts:
		return OK
	}
	return Bad
}

// BandwidthVerdict compares a path's ABW or DBC o with the reference's d
// (Mbit/s; higher is better): higher is OPTIMIZED; above d − max(1 Mbit/s,
// 10 % of d) is OK; else BAD.
func BandwidthVerdict(d, o float64) Verdict {
	switch {
	case o > d:
		return Optimized
	case o > d-math.Max(BandwidthMarginMbps, BandwidthMarginRel*d):
		return OK
	}
	return Bad
}

// Describe says a verdict with its amount, e.g. "OPTIMIZED by 12.0 ms
// (23 %)" or "BAD: 31.0 ms slower"; unit is "ms", "%" (loss points) or
// "Mbit/s", and lowerBetter tells which way is better.
func Describe(v Verdict, d, o float64, unit string, lowerBetter bool) string {
	gain := d - o
	if !lowerBetter {
		gain = o - d
	}
	if unit == "%" {
		unit = "points"
	}
	switch v {
	case Optimized:
		if d != 0 {
			return fmt.Sprintf("%s by %.1f %s (%.0f %%)", v, gain, unit, 100*math.Abs(gain/d))
		}
		return fmt.Sprintf("%s by %.1f %s", v, gain, unit)
	case Bad:
		word := "worse"
		switch {
		case unit == "ms":
			word = "slower"
		case !lowerBetter:
			word = "less"
		case unit == "points":
			word = "more loss"
		}
		return fmt.Sprintf("%s: %.1f %s %s", v, -gain, unit, word)
	}
	return string(v)
}

// RollingMedian3 smooths a series with a centred rolling median of 3 (the
// ends keep their value): one spike does not move the mean.
func RollingMedian3(v []float64) []float64 {
	out := slices.Clone(v)
	for i := 1; i+1 < len(v); i++ {
		w := []float64{v[i-1], v[i], v[i+1]}
		slices.Sort(w)
		out[i] = w[1]
	}
	return out
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
