package measure

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/abing-net/abing/record"
)

// Records returns the forward and reverse records of a result.
func (r *Result) Records() []record.Record {
	out := make([]record.Record, 0, 2)
	for _, d := range []*Direction{&r.Forward, &r.Reverse} {
		rec := record.Record{
			Time:            r.Time.UTC(),
			Target:          r.Target,
			Address:         r.Addr.String(),
			Direction:       d.Name,
			Method:          r.Config.Method,
			Protocol:        r.Config.stampProtocol(),
			PairsSent:       d.TrainsSent,
			PairsReceived:   d.Complete,
			PairsUsed:       d.Used,
			Rejected:        d.Rejects.Map(),
			Loss:            d.Loss(),
			Duplicates:      d.Duplicates,
			PacketSize:      r.Config.Size,
			TrainLen:        r.Config.TrainLen,
			PacedTrainLen:   r.Config.PacedTrainLen,
			PacketsSent:     d.Packets,
			BytesSent:       d.Bytes,
			DurationMS:      float64(r.Duration.Microseconds()) / 1000,
			TimestampSource: d.Source.String(),
			Note:            strings.Join(slices.Concat(r.Fitted, r.Notes), "; "),
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
			rec.DBC = record.Mbps(d.Capacity.DBC)
			rec.DBCLow, rec.DBCHigh = record.Mbps(d.Capacity.DBCLow), record.Mbps(d.Capacity.DBCHigh)
			conf := d.Capacity.Confidence
			if d.CrossErr == nil {
				rec.XTR, rec.ABW = record.Mbps(d.Cross.XTR), record.Mbps(d.Cross.ABW)
				if d.Cross.ABWHigh > 0 { // the probe-gap form; ABwE's reduction has none
					rec.XTRLow, rec.XTRHigh = record.Mbps(d.Cross.XTRLow), record.Mbps(d.Cross.XTRHigh)
					rec.ABWLow, rec.ABWHigh = record.Mbps(d.Cross.ABWLow), record.Mbps(d.Cross.ABWHigh)
				}
				conf *= d.Cross.Confidence
			}
			c := float64(int64(conf*1000+0.5)) / 1000
			rec.Confidence = &c
			if d.ProbeGapErr == nil {
				rec.XTRProbeGap = record.Mbps(d.ProbeGap.XTR)
			}
			if d.ABwEErr == nil {
				rec.XTRABwE = record.Mbps(d.ABwE.XTR)
			}
		}
		if d.DBCMin > 0 {
			rec.DBCMin = record.Mbps(d.DBCMin)
		}
		if err := d.Err(); err != nil {
			rec.Error = err.Error()
		}
		rec.Sanitize()
		out = append(out, rec)
	}
	return out
}

// FailedRecords are the records of a run that produced no result at all
// (no reflector, refused, bad address): one per direction, with the error.
// When nothing came back at all (ErrNoAnswer: no reflector there, or an
// ICMP error for every datagram), the loss is 100 %: a run that lost
// everything it sent must not read as a path without loss.
func FailedRecords(cfg Config, start time.Time, err error) []record.Record {
	recs := record.Failed(record.Record{Time: start, Target: cfg.Target, Address: cfg.Target, Method: cfg.Method,
		Protocol: cfg.stampProtocol(), PacketSize: cfg.Size, TrainLen: cfg.TrainLen}, err)
	if errors.Is(err, ErrNoAnswer) {
		for i := range recs {
			recs[i].Loss = 1
		}
	}
	return recs
}

// Text formats a result as one line per direction (record.Record.Text).
func (r *Result) Text() string {
	var b strings.Builder
	for _, rec := range r.Records() {
		b.WriteString(rec.Text())
		b.WriteByte('\n')
	}
	for _, n := range slices.Concat(r.Fitted, r.Notes) {
		b.WriteString("note: " + n + "\n")
	}
	return b.String()
}
