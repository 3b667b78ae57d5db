package record

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestSanitize(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name string
		in   Record
		want func(r Record) bool
	}{
		{"NaN DBC", Record{DBC: f(math.NaN())}, func(r Record) bool { return r.DBC == nil && r.Error != "" }},
		{"negative XTR drops ABW too", Record{DBC: f(10), XTR: f(-1), ABW: f(11)}, func(r Record) bool {
			return r.XTR == nil && r.ABW == nil && *r.DBC == 10
		}},
		{"infinite ABW", Record{ABW: f(math.Inf(1)), XTR: f(1)}, func(r Record) bool { return r.ABW == nil && r.XTR == nil }},
		{"loss above 1", Record{Loss: 1.5}, func(r Record) bool { return r.Loss == 1 && r.Error != "" }},
		{"negative loss", Record{Loss: -0.2, Error: "lost"}, func(r Record) bool {
			return r.Loss == 0 && r.Error != "lost" && r.Error[:4] == "lost"
		}},
		{"NaN loss", Record{Loss: math.NaN()}, func(r Record) bool { return r.Loss == 1 }},
		{"negative RTT", Record{RTT: &RTT{Min: -1, Avg: 1, Max: 2}}, func(r Record) bool { return r.RTT == nil }},
		{"confidence above 1", Record{Confidence: f(2)}, func(r Record) bool { return r.Confidence == nil }},
		{"negative count", Record{PairsSent: -3}, func(r Record) bool { return r.PairsSent == 0 }},
		{"interval beside its estimate", Record{DBC: f(10), DBCLow: f(11), DBCHigh: f(12)}, func(r Record) bool {
			return r.DBCLow == nil && r.DBCHigh == nil && *r.DBC == 10 && r.Error != ""
		}},
		{"half an interval", Record{DBC: f(10), XTR: f(2), ABW: f(8), ABWLow: f(7)}, func(r Record) bool {
			return r.ABWLow == nil && r.ABWHigh == nil && *r.ABW == 8 && r.Error != ""
		}},
		{"interval without its estimate", Record{XTRLow: f(1), XTRHigh: f(3)}, func(r Record) bool {
			return r.XTRLow == nil && r.XTRHigh == nil && r.Error != ""
		}},
		{"NaN interval end", Record{DBC: f(10), DBCLow: f(math.NaN()), DBCHigh: f(12)}, func(r Record) bool {
			return r.DBCLow == nil && r.DBCHigh == nil && *r.DBC == 10
		}},
		{"sane interval kept", Record{DBC: f(10), DBCLow: f(9.5), DBCHigh: f(10.5)}, func(r Record) bool {
			return r.Error == "" && *r.DBCLow == 9.5 && *r.DBCHigh == 10.5
		}},
		{"sane record unchanged", Record{DBC: f(10), XTR: f(2), ABW: f(8), Loss: 0.5, RTT: &RTT{Min: 1, Avg: 2, Max: 3}},
			func(r Record) bool { return r.Error == "" && *r.ABW == 8 && r.RTT != nil && r.Loss == 0.5 }},
	} {
		r := tc.in
		r.Sanitize()
		if !tc.want(r) {
			t.Errorf("%s: got %+v", tc.name, r)
		}
	}
}

// The records of a run that failed as a whole: both directions, the run's
// start in UTC, the configuration's fields kept, no source of timestamps.
func TestFailed(t *testing.T) {
	start := time.Date(2026, 11, 23, 11, 0, 0, 0, time.FixedZone("CET", 3600))
	recs := Failed(Record{Time: start, Target: "lab-b", Method: "probe-gap", PacketSize: 1500, TrainLen: 2}, errors.New("no answer"))
	if len(recs) != 2 || recs[0].Direction != "forward" || recs[1].Direction != "reverse" {
		t.Fatalf("%+v", recs)
	}
	for _, r := range recs {
		if !r.Time.Equal(start) || r.Time.Location() != time.UTC || r.Target != "lab-b" || r.PacketSize != 1500 ||
			r.TimestampSource != "none" || r.Error != "no answer" || !r.Failed() {
			t.Errorf("%+v", r)
		}
	}
}

func TestText(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	r := Record{Direction: "forward", DBC: f(98.7), DBCLow: f(97.9), DBCHigh: f(99.5), XTR: f(49.1), XTRLow: f(41), XTRHigh: f(57.2),
		ABW: f(49.6), ABWLow: f(41.5), ABWHigh: f(57.7), RTT: &RTT{Min: 0.41, Avg: 0.44, Max: 0.52}, PairsUsed: 20, PairsSent: 20, TimestampSource: "kernel"}
	want := "forward  DBC 98.7 (97.9–99.5) Mbit/s  XTR 49.1 (41.0–57.2)  ABW 49.6 (41.5–57.7)  RTT 0.41/0.44/0.52 ms  trains 20/20  ts kernel"
	if got := r.Text(); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	r.ABWLow, r.ABWHigh, r.XTRLow, r.XTRHigh = nil, nil, nil, nil // ABwE's reduction: no interval
	if got := r.Text(); !strings.Contains(got, "XTR 49.1  ABW 49.6  RTT") {
		t.Errorf("without intervals: %s", got)
	}
}
