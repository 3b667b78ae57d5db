package measure

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Record is the JSON form of one direction of one run (abing measure
// --output json prints one per line). Estimate fields are absent, not zero,
// when no estimate could be made; Error then says why.
type Record struct {
	Time            string            `json:"time"`
	Target          string            `json:"target"`
	Name            string            `json:"name,omitempty"`   // set by the monitor
	Labels          map[string]string `json:"labels,omitempty"` // set by the monitor
	Address         string            `json:"address"`
	Direction       string            `json:"direction"`
	DBC             *float64          `json:"dbc_mbps,omitempty"`
	XTR             *float64          `json:"xtr_mbps,omitempty"`
	ABW             *float64          `json:"abw_mbps,omitempty"`
	Method          string            `json:"method"`
	XTRProbeGap     *float64          `json:"xtr_probe_gap_mbps,omitempty"`
	XTRABwE         *float64          `json:"xtr_abwe_mbps,omitempty"`
	RTT             *RTT              `json:"rtt_ms,omitempty"`
	PairsSent       int               `json:"pairs_sent"`
	PairsReceived   int               `json:"pairs_received"`
	PairsUsed       int               `json:"pairs_used"`
	Rejected        map[string]int    `json:"rejected,omitempty"`
	Loss            float64           `json:"loss"`
	Duplicates      int               `json:"duplicates,omitempty"`
	Unexpected      int               `json:"unexpected,omitempty"`      // reverse: datagrams that did not parse or were not ours
	Unauthenticated int               `json:"unauthenticated,omitempty"` // reverse: with a key, datagrams not signed with it
	PacketSize      int               `json:"packet_size"`
	TrainLen        int               `json:"train_len"`
	PacketsSent     int               `json:"packets_sent"`
	BytesSent       int               `json:"bytes_sent"`
	DurationMS      float64           `json:"duration_ms"`
	TimestampSource string            `json:"timestamp_source"`
	TTL             *int              `json:"ttl,omitempty"`
	Confidence      *float64          `json:"confidence,omitempty"`
	Error           string            `json:"error,omitempty"`
}

func mbps(v float64) *float64 {
	r := float64(int64(v/1e4+0.5)) / 100 // Mbit/s, two decimals
	return &r
}

// Records returns the forward and reverse records of a result.
func (r *Result) Records() []Record {
	out := make([]Record, 0, 2)
	for _, d := range []*Direction{&r.Forward, &r.Reverse} {
		rec := Record{
			Time:            r.Time.UTC().Format(time.RFC3339Nano),
			Target:          r.Target,
			Address:         r.Addr.String(),
			Direction:       d.Name,
			Method:          r.Config.Method,
			PairsSent:       d.TrainsSent,
			PairsReceived:   d.Complete,
			PairsUsed:       d.Used,
			Rejected:        d.Rejects.Map(),
			Loss:            d.Loss(),
			Duplicates:      d.Duplicates,
			PacketSize:      r.Config.Size,
			TrainLen:        r.Config.TrainLen,
			PacketsSent:     d.Packets,
			BytesSent:       d.Bytes,
			DurationMS:      float64(r.Duration.Microseconds()) / 1000,
			TimestampSource: d.Source.String(),
		}
		if d == &r.Reverse {
			rec.Unexpected, rec.Unauthenticated = r.Unexpected, r.Unauthenticated
		}
		if len(rec.Rejected) == 0 {
			rec.Rejected = nil
		}
		if r.RTTOK {
			rtt := r.RTT
			rec.RTT = &rtt
		}
		if d.TTL >= 0 {
			ttl := d.TTL
			rec.TTL = &ttl
		}
		if d.CapErr == nil {
			rec.DBC = mbps(d.Capacity.DBC)
			conf := d.Capacity.Confidence
			if d.CrossErr == nil {
				rec.XTR, rec.ABW = mbps(d.Cross.XTR), mbps(d.Cross.ABW)
				conf *= d.Cross.Confidence
			}
			c := float64(int64(conf*1000+0.5)) / 1000
			rec.Confidence = &c
			if d.ProbeGapEr == nil {
				rec.XTRProbeGap = mbps(d.ProbeGap.XTR)
			}
			if d.ABwEErr == nil {
				rec.XTRABwE = mbps(d.ABwE.XTR)
			}
		}
		if err := d.Err(); err != nil {
			rec.Error = err.Error()
		}
		rec.Sanitize()
		out = append(out, rec)
	}
	return out
}

// Sanitize enforces what every record promises, whatever produced it: no
// NaN or infinity, no negative rate, RTT or count, loss within [0, 1]. A
// value that breaks it is removed (a rate, the RTT) or clamped (loss,
// counts), and Error says so. Records built by Records are sanitized.
func (r *Record) Sanitize() {
	var bad []string
	for _, f := range []struct {
		name string
		v    **float64
	}{{"dbc", &r.DBC}, {"xtr", &r.XTR}, {"abw", &r.ABW}, {"xtr_probe_gap", &r.XTRProbeGap}, {"xtr_abwe", &r.XTRABwE}, {"confidence", &r.Confidence}} {
		if v := *f.v; v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 || (f.name == "confidence" && *v > 1)) {
			bad = append(bad, fmt.Sprintf("%s %v", f.name, *v))
			*f.v = nil
		}
	}
	if (r.XTR == nil) != (r.ABW == nil) {
		r.XTR, r.ABW = nil, nil
	}
	if t := r.RTT; t != nil {
		for _, v := range []float64{t.Min, t.Avg, t.Max, t.Jitter} {
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

// FailedRecords are the records of a run that produced no result at all
// (no reflector, refused, bad address): one per direction, with the error.
func FailedRecords(cfg Config, start time.Time, err error) []Record {
	out := make([]Record, 0, 2)
	for _, dir := range []string{"forward", "reverse"} {
		out = append(out, Record{
			Time: start.UTC().Format(time.RFC3339Nano), Target: cfg.Target, Direction: dir,
			Method: cfg.Method, PacketSize: cfg.Size, TrainLen: cfg.TrainLen, Error: err.Error(),
		})
	}
	return out
}

// Text formats a result as one line per direction, in the manner of the
// original abing:
//
//	forward  DBC 98.7 Mbit/s  XTR 49.1  ABW 49.6  RTT 0.41/0.44/0.52 ms  pairs 20/20  ts kernel
func (r *Result) Text() string {
	var b strings.Builder
	for _, rec := range r.Records() {
		fmt.Fprintf(&b, "%-8s", rec.Direction)
		if rec.DBC != nil {
			fmt.Fprintf(&b, " DBC %.1f Mbit/s", *rec.DBC)
		}
		if rec.XTR != nil {
			fmt.Fprintf(&b, "  XTR %.1f  ABW %.1f", *rec.XTR, *rec.ABW)
		}
		if rec.RTT != nil {
			fmt.Fprintf(&b, "  RTT %.2f/%.2f/%.2f ms", rec.RTT.Min, rec.RTT.Avg, rec.RTT.Max)
		}
		fmt.Fprintf(&b, "  pairs %d/%d", rec.PairsUsed, rec.PairsSent)
		if rec.Loss > 0 {
			fmt.Fprintf(&b, "  loss %.1f%%", 100*rec.Loss)
		}
		fmt.Fprintf(&b, "  ts %s", rec.TimestampSource)
		if rec.Confidence != nil {
			fmt.Fprintf(&b, "  conf %.2f", *rec.Confidence)
		}
		if rec.Error != "" {
			fmt.Fprintf(&b, "  error: %s", rec.Error)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
