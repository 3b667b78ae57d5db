package influx

import "github.com/abing-net/abing/record"

// numbers are a record's optional numbers by their field name in InfluxDB:
// what Lines writes and Read reads back, in one list so that the two cannot
// drift apart.
var numbers = []struct {
	name string
	of   func(*record.Record) **float64
}{
	{"dbc_mbps", func(r *record.Record) **float64 { return &r.DBC }},
	{"xtr_mbps", func(r *record.Record) **float64 { return &r.XTR }},
	{"abw_mbps", func(r *record.Record) **float64 { return &r.ABW }},
	{"dbc_low_mbps", func(r *record.Record) **float64 { return &r.DBCLow }},
	{"dbc_high_mbps", func(r *record.Record) **float64 { return &r.DBCHigh }},
	{"xtr_low_mbps", func(r *record.Record) **float64 { return &r.XTRLow }},
	{"xtr_high_mbps", func(r *record.Record) **float64 { return &r.XTRHigh }},
	{"abw_low_mbps", func(r *record.Record) **float64 { return &r.ABWLow }},
	{"abw_high_mbps", func(r *record.Record) **float64 { return &r.ABWHigh }},
	{"dbc_min_mbps", func(r *record.Record) **float64 { return &r.DBCMin }},
	{"link_cost", func(r *record.Record) **float64 { return &r.LinkCost }},
	{"xtr_pooled_mbps", func(r *record.Record) **float64 { return &r.XTRPooled }},
	{"xtr_pooled_low_mbps", func(r *record.Record) **float64 { return &r.XTRPooledLow }},
	{"xtr_pooled_high_mbps", func(r *record.Record) **float64 { return &r.XTRPooledHigh }},
	{"abw_pooled_mbps", func(r *record.Record) **float64 { return &r.ABWPooled }},
	{"abw_pooled_low_mbps", func(r *record.Record) **float64 { return &r.ABWPooledLow }},
	{"abw_pooled_high_mbps", func(r *record.Record) **float64 { return &r.ABWPooledHigh }},
	{"confidence", func(r *record.Record) **float64 { return &r.Confidence }},
}

// rttNumbers are the fields of a record's RTT, written when it has one.
var rttNumbers = []struct {
	name string
	of   func(*record.RTT) *float64
}{
	{"rtt_min_ms", func(t *record.RTT) *float64 { return &t.Min }},
	{"rtt_avg_ms", func(t *record.RTT) *float64 { return &t.Avg }},
	{"rtt_median_ms", func(t *record.RTT) *float64 { return &t.Median }},
	{"rtt_max_ms", func(t *record.RTT) *float64 { return &t.Max }},
	{"jitter_ms", func(t *record.RTT) *float64 { return &t.Jitter }},
	{"jitter_rfc3550_ms", func(t *record.RTT) *float64 { return &t.JitterRFC3550 }},
}
