package webapi

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/abing-net/abing/record"
)

// PrintTargets prints the API's overview, as text or json: each path's
// last results and active alarms.
func PrintTargets(w io.Writer, ts []Target, output string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		for _, t := range ts {
			if err := enc.Encode(t); err != nil {
				return err
			}
		}
		return nil
	}
	if len(ts) == 0 {
		_, err := fmt.Fprintln(w, "no targets")
		return err
	}
	for _, t := range ts {
		for _, r := range []*record.Record{t.Forward, t.Reverse} {
			if r == nil {
				continue
			}
			alarms := ""
			if n := len(t.Alarms); n > 0 {
				alarms = fmt.Sprintf("  %d active alarms", n)
			}
			if _, err := fmt.Fprintf(w, "%-24s %s%s\n", t.Key, r.Text(), alarms); err != nil {
				return err
			}
		}
	}
	return nil
}

// PrintHistory prints one path's downsampled history, as text or json.
func PrintHistory(w io.Writer, h *History, output string) error {
	if output == "json" {
		return json.NewEncoder(w).Encode(h)
	}
	key := h.Target
	if h.Path != "" {
		key += "/" + h.Path
	}
	fmt.Fprintf(w, "%s: %d runs from %s to %s, in buckets of %v (each value: median, min–max)\n", key, h.Runs,
		h.Since.Format(time.RFC3339), h.Until.Format(time.RFC3339), time.Duration(h.BucketSeconds*float64(time.Second)))
	stat := func(s Stat, f string) string {
		if math.IsNaN(s.Median) {
			return "-"
		}
		return fmt.Sprintf(f+" ("+f+"–"+f+")", s.Median, s.Min, s.Max)
	}
	for _, b := range h.Buckets {
		band := ""
		if b.ABWLow != nil && b.ABWHigh != nil {
			band = fmt.Sprintf(" [%.1f–%.1f]", *b.ABWLow, *b.ABWHigh)
		}
		if _, err := fmt.Fprintf(w, "%s  %-7s  n %-3d  DBC %s  ABW %s%s  XTR %s  RTT %s ms  loss %s\n", b.Time.Format(time.RFC3339), b.Direction, b.N,
			stat(b.DBC, "%.1f"), stat(b.ABW, "%.1f"), band, stat(b.XTR, "%.1f"), stat(b.RTT, "%.2f"), stat(b.Loss, "%.2f")); err != nil {
			return err
		}
	}
	return nil
}
