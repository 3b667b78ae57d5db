package record

import (
	"errors"
	"math"
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
