// Package record is abing's data model: the record of one direction of one
// measurement, the alarm raised on a series of them, and their CSV and
// JSON-lines forms. The sender produces records, the store, the InfluxDB
// sink, the alarms and the monitor consume them; none of those needs the
// sender to read one.
//
// A record names its target by the target's name (a monitor target's name;
// for `abing measure`, the host as given) and keeps the address measured
// beside it.
package record

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Record is one direction of one run (abing measure --output json prints
// one per line). Estimate fields are absent, not zero, when no estimate
// could be made; Error then says why.
type Record struct {
	Time    time.Time         `json:"time"`             // the run's start, UTC
	Target  string            `json:"target"`           // the target's name
	Address string            `json:"address"`          // the address measured (IP:port), or the host as given when it was never resolved
	Labels  map[string]string `json:"labels,omitempty"` // set by the monitor
	// Node is the measuring host's name and Path the name of the path to
	// the target when the target has several (a monitor target's paths:
	// direct, overlay); both are absent for abing measure.
	Node      string   `json:"node,omitempty"`
	Path      string   `json:"path,omitempty"`
	Direction string   `json:"direction"` // forward or reverse
	DBC       *float64 `json:"dbc_mbps,omitempty"`
	XTR       *float64 `json:"xtr_mbps,omitempty"`
	ABW       *float64 `json:"abw_mbps,omitempty"`
	// 95 % intervals of the three estimates, each present with its
	// estimate (none for XTR and ABW by ABwE's reduction).
	DBCLow  *float64 `json:"dbc_low_mbps,omitempty"`
	DBCHigh *float64 `json:"dbc_high_mbps,omitempty"`
	XTRLow  *float64 `json:"xtr_low_mbps,omitempty"`
	XTRHigh *float64 `json:"xtr_high_mbps,omitempty"`
	ABWLow  *float64 `json:"abw_low_mbps,omitempty"`
	ABWHigh *float64 `json:"abw_high_mbps,omitempty"`
	// XTR and ABW over the windows of the last PooledRuns runs of this
	// path and direction (the monitor's pool), with their 95 % intervals.
	XTRPooled     *float64 `json:"xtr_pooled_mbps,omitempty"`
	XTRPooledLow  *float64 `json:"xtr_pooled_low_mbps,omitempty"`
	XTRPooledHigh *float64 `json:"xtr_pooled_high_mbps,omitempty"`
	ABWPooled     *float64 `json:"abw_pooled_mbps,omitempty"`
	ABWPooledLow  *float64 `json:"abw_pooled_low_mbps,omitempty"`
	ABWPooledHigh *float64 `json:"abw_pooled_high_mbps,omitempty"`
	PooledRuns    int      `json:"pooled_runs,omitempty"`
	// LinkCost is the path's cost for a routing layer (package linkcost:
	// overall + a·latency + b·loss + c·jitter), present only in the records
	// of the run that published a new one (past its thresholds).
	LinkCost *float64 `json:"link_cost,omitempty"`
	// DBCMin is a lower bound of the capacity when the path was faster than
	// the sending host could space its probes (and DBC is absent).
	DBCMin *float64 `json:"dbc_min_mbps,omitempty"`
	Method string   `json:"method"`
	// Protocol is the reflector's protocol when it was a standard one
	// (stamp, twamp-light); empty for abing's own.
	Protocol        string         `json:"protocol,omitempty"`
	XTRProbeGap     *float64       `json:"xtr_probe_gap_mbps,omitempty"`
	XTRABwE         *float64       `json:"xtr_abwe_mbps,omitempty"`
	RTT             *RTT           `json:"rtt_ms,omitempty"`
	PairsSent       int            `json:"pairs_sent"`
	PairsReceived   int            `json:"pairs_received"`
	PairsUsed       int            `json:"pairs_used"`
	Rejected        map[string]int `json:"rejected,omitempty"`
	Loss            float64        `json:"loss"`
	Duplicates      int            `json:"duplicates,omitempty"`
	Unexpected      int            `json:"unexpected,omitempty"`      // reverse: datagrams that did not parse or were not ours
	Unauthenticated int            `json:"unauthenticated,omitempty"` // reverse: with a key, datagrams not signed with it
	PacketSize      int            `json:"packet_size"`
	TrainLen        int            `json:"train_len"`
	PacedTrainLen   int            `json:"paced_train_len,omitempty"` // phase 2's train length, when not train_len (the adaptive default)
	PacketsSent     int            `json:"packets_sent"`
	BytesSent       int            `json:"bytes_sent"`
	DurationMS      float64        `json:"duration_ms"`
	TimestampSource string         `json:"timestamp_source"` // hardware, kernel, user, or none
	TTL             *int           `json:"ttl,omitempty"`
	Confidence      *float64       `json:"confidence,omitempty"`
	Error           string         `json:"error,omitempty"`
	// Note says how the run was fitted to what the reflector admits
	// (the budget it states in its handshake), when it was.
	Note string `json:"note,omitempty"`
}

// RTT is the round-trip time of a run's probes, in ms. Jitter is the mean
// absolute difference of consecutive RTTs; JitterRFC3550 is RFC 3550's
// interarrival jitter over the same differences (a running mean with gain
// 1/16, which weighs the last packets most). They differ, so both are kept.
type RTT struct {
	Min           float64 `json:"min"`
	Avg           float64 `json:"avg"`
	Median        float64 `json:"median"`
	Max           float64 `json:"max"`
	Jitter        float64 `json:"jitter"`
	JitterRFC3550 float64 `json:"jitter_rfc3550"`
}

// UnmarshalJSON reads a record, also in the form written before records
// were named by their target's name: then "target" held the configured
// address and "name" the name.
func (r *Record) UnmarshalJSON(b []byte) error {
	type plain Record
	var v struct {
		plain
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Record(v.plain)
	if v.Name != "" {
		r.Target = v.Name
	}
	return nil
}

// Mbps rounds a rate in bit/s to Mbit/s with two decimals, as records
// carry it.
func Mbps(bps float64) *float64 {
	r := float64(int64(bps/1e4+0.5)) / 100
	return &r
}

// Failed are the records of a run that produced no result at all (no
// reflector, refused, bad address): one per direction, with the error.
// base gives what the run's configuration says (target, method, packet
// size, train length, labels); its time is the run's start.
func Failed(base Record, err error) []Record {
	out := make([]Record, 0, 2)
	for _, dir := range []string{"forward", "reverse"} {
		r := base
		r.Time = base.Time.UTC()
		r.Direction, r.TimestampSource, r.Error = dir, "none", err.Error()
		out = append(out, r)
	}
	return out
}

// Key names the path r measured: its target, and the path's name after a
// slash when the target has several paths ("lab-b/overlay"). Alarms, their
// state and the monitor's metrics are kept by it.
func (r *Record) Key() string {
	if r.Path == "" {
		return r.Target
	}
	return r.Target + "/" + r.Path
}

// Failed says whether r is the record of a run that produced nothing: an
// error and neither an RTT nor a capacity.
func (r *Record) Failed() bool { return r.Error != "" && r.RTT == nil && r.DBC == nil }

// Sanitize enforces what every record promises, whatever produced it: no
// NaN or infinity, no negative rate, RTT or count, loss within [0, 1]. A
// value that breaks it is removed (a rate, the RTT) or clamped (loss,
// counts), and Error says so.
func (r *Record) Sanitize() {
	var bad []string
	for _, f := range []struct {
		name string
		v    **float64
	}{{"dbc", &r.DBC}, {"xtr", &r.XTR}, {"abw", &r.ABW}, {"xtr_probe_gap", &r.XTRProbeGap}, {"xtr_abwe", &r.XTRABwE}, {"confidence", &r.Confidence},
		{"dbc_min", &r.DBCMin}, {"dbc_low", &r.DBCLow}, {"dbc_high", &r.DBCHigh}, {"xtr_low", &r.XTRLow}, {"xtr_high", &r.XTRHigh}, {"abw_low", &r.ABWLow}, {"abw_high", &r.ABWHigh},
		{"xtr_pooled", &r.XTRPooled}, {"xtr_pooled_low", &r.XTRPooledLow}, {"xtr_pooled_high", &r.XTRPooledHigh},
		{"abw_pooled", &r.ABWPooled}, {"abw_pooled_low", &r.ABWPooledLow}, {"abw_pooled_high", &r.ABWPooledHigh}, {"link_cost", &r.LinkCost}} {
		if v := *f.v; v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 || (f.name == "confidence" && *v > 1)) {
			bad = append(bad, fmt.Sprintf("%s %v", f.name, *v))
			*f.v = nil
		}
	}
	if (r.XTR == nil) != (r.ABW == nil) {
		r.XTR, r.ABW = nil, nil
	}
	if (r.XTRPooled == nil) != (r.ABWPooled == nil) {
		r.XTRPooled, r.ABWPooled = nil, nil
	}
	if r.PooledRuns < 0 || (r.PooledRuns == 0) != (r.ABWPooled == nil) {
		bad = append(bad, fmt.Sprintf("pooled runs %d", r.PooledRuns))
		r.XTRPooled, r.ABWPooled, r.PooledRuns = nil, nil, 0
	}
	// An interval is whole, around its estimate, or absent.
	for _, iv := range []struct {
		name      string
		v, lo, hi **float64
	}{{"dbc", &r.DBC, &r.DBCLow, &r.DBCHigh}, {"xtr", &r.XTR, &r.XTRLow, &r.XTRHigh}, {"abw", &r.ABW, &r.ABWLow, &r.ABWHigh},
		{"xtr_pooled", &r.XTRPooled, &r.XTRPooledLow, &r.XTRPooledHigh}, {"abw_pooled", &r.ABWPooled, &r.ABWPooledLow, &r.ABWPooledHigh}} {
		v, lo, hi := *iv.v, *iv.lo, *iv.hi
		if lo == nil && hi == nil {
			continue
		}
		if v == nil || lo == nil || hi == nil || *lo > *v || *hi < *v {
			bad = append(bad, fmt.Sprintf("%s interval %s", iv.name, interval(lo, hi)))
			*iv.lo, *iv.hi = nil, nil
		}
	}
	if t := r.RTT; t != nil {
		for _, v := range []float64{t.Min, t.Avg, t.Median, t.Max, t.Jitter, t.JitterRFC3550} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				bad = append(bad, fmt.Sprintf("rtt %v", *t))
				r.RTT = nil
				break
			}
		}
	}
	if !(r.Loss >= 0 && r.Loss <= 1) { // NaN fails both
		bad = append(bad, fmt.Sprintf("loss %v", r.Loss))
		r.Loss = math.Min(1, math.Max(0, r.Loss))
		if math.IsNaN(r.Loss) {
			r.Loss = 1
		}
	}
	if !(r.DurationMS >= 0) || math.IsInf(r.DurationMS, 0) {
		bad = append(bad, fmt.Sprintf("duration %v", r.DurationMS))
		r.DurationMS = 0
	}
	for _, n := range []*int{&r.PairsSent, &r.PairsReceived, &r.PairsUsed, &r.Duplicates, &r.Unexpected, &r.Unauthenticated, &r.PacketsSent, &r.BytesSent} {
		if *n < 0 {
			bad = append(bad, fmt.Sprintf("count %d", *n))
			*n = 0
		}
	}
	if len(bad) > 0 {
		msg := "implausible values dropped: " + strings.Join(bad, ", ")
		if r.Error != "" {
			msg = r.Error + "; " + msg
		}
		r.Error = msg
	}
}

// interval formats an interval whose ends may be absent.
func interval(lo, hi *float64) string {
	f := func(p *float64) string {
		if p == nil {
			return "?"
		}
		return fmt.Sprint(*p)
	}
	return f(lo) + "–" + f(hi)
}

// Text is the record on one line, in the manner of the original abing:
//
//	forward  DBC 98.7 (97.9–99.5) Mbit/s  XTR 49.1 (41.0–57.2)  ABW 49.6 (41.5–57.7)  RTT 0.41/0.44/0.52 ms  trains 20/20  ts kernel
//
// The figures in brackets are 95 % intervals.
func (r *Record) Text() string {
	var b strings.Builder
	iv := func(lo, hi *float64) string {
		if lo == nil || hi == nil {
			return ""
		}
		return fmt.Sprintf(" (%.1f–%.1f)", *lo, *hi)
	}
	fmt.Fprintf(&b, "%-8s", r.Direction)
	if r.DBC != nil {
		fmt.Fprintf(&b, " DBC %.1f%s Mbit/s", *r.DBC, iv(r.DBCLow, r.DBCHigh))
	} else if r.DBCMin != nil {
		fmt.Fprintf(&b, " DBC > %.1f Mbit/s", *r.DBCMin)
	}
	if r.XTR != nil {
		fmt.Fprintf(&b, "  XTR %.1f%s  ABW %.1f%s", *r.XTR, iv(r.XTRLow, r.XTRHigh), *r.ABW, iv(r.ABWLow, r.ABWHigh))
	}
	if r.RTT != nil {
		fmt.Fprintf(&b, "  RTT %.2f/%.2f/%.2f ms", r.RTT.Min, r.RTT.Avg, r.RTT.Max)
	}
	fmt.Fprintf(&b, "  trains %d/%d", r.PairsUsed, r.PairsSent)
	if r.Loss > 0 {
		fmt.Fprintf(&b, "  loss %.1f%%", 100*r.Loss)
	}
	fmt.Fprintf(&b, "  ts %s", r.TimestampSource)
	if r.Confidence != nil {
		fmt.Fprintf(&b, "  conf %.2f", *r.Confidence)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "  error: %s", r.Error)
	}
	return b.String()
}
