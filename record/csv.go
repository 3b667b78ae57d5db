package record

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// CSVHeader is the column list of CSVWriter: the columns ReadCSV requires
// first, then a few more that help reading a series.
var CSVHeader = []string{"time", "target", "direction", "dbc_mbps", "xtr_mbps", "abw_mbps",
	"rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "jitter_ms", "loss", "ttl", "error",
	"address", "confidence", "pairs_used", "timestamp_source",
	"dbc_low_mbps", "dbc_high_mbps", "xtr_low_mbps", "xtr_high_mbps", "abw_low_mbps", "abw_high_mbps", "dbc_min_mbps",
	"xtr_pooled_mbps", "xtr_pooled_low_mbps", "xtr_pooled_high_mbps", "abw_pooled_mbps", "abw_pooled_low_mbps", "abw_pooled_high_mbps", "pooled_runs",
	"node", "path", "link_cost", "rtt_median_ms", "jitter_rfc3550_ms"}

// CSVWriter writes records as CSV, header first. Absent numbers are empty
// cells. Time is RFC 3339 in UTC, with fractions of a second.
type CSVWriter struct {
	w      *csv.Writer
	header bool
}

// NewCSVWriter returns a writer to w.
func NewCSVWriter(w io.Writer) *CSVWriter { return &CSVWriter{w: csv.NewWriter(w)} }

// Write writes one record (and the header before the first).
func (c *CSVWriter) Write(r *Record) error {
	if !c.header {
		c.header = true
		if err := c.w.Write(CSVHeader); err != nil {
			return err
		}
	}
	f := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', -1, 64)
	}
	var rmin, ravg, rmax, jit, rmed, jit3550 *float64
	if r.RTT != nil {
		rmin, ravg, rmax, jit = &r.RTT.Min, &r.RTT.Avg, &r.RTT.Max, &r.RTT.Jitter
		rmed, jit3550 = &r.RTT.Median, &r.RTT.JitterRFC3550
	}
	runs := ""
	if r.PooledRuns > 0 {
		runs = strconv.Itoa(r.PooledRuns)
	}
	ttl := ""
	if r.TTL != nil {
		ttl = strconv.Itoa(*r.TTL)
	}
	return c.w.Write([]string{r.Time.UTC().Format(time.RFC3339Nano), CSVCell(r.Target), CSVCell(r.Direction), f(r.DBC), f(r.XTR), f(r.ABW),
		f(rmin), f(ravg), f(rmax), f(jit), strconv.FormatFloat(r.Loss, 'f', -1, 64), ttl, CSVCell(r.Error),
		CSVCell(r.Address), f(r.Confidence), strconv.Itoa(r.PairsUsed), CSVCell(r.TimestampSource),
		f(r.DBCLow), f(r.DBCHigh), f(r.XTRLow), f(r.XTRHigh), f(r.ABWLow), f(r.ABWHigh), f(r.DBCMin),
		f(r.XTRPooled), f(r.XTRPooledLow), f(r.XTRPooledHigh), f(r.ABWPooled), f(r.ABWPooledLow), f(r.ABWPooledHigh), runs,
		CSVCell(r.Node), CSVCell(r.Path), f(r.LinkCost), f(rmed), f(jit3550)})
}

// CSVCell makes a text cell safe to open in a spreadsheet: one that begins
// with = + - @, a tab or a carriage return and is not a number gets a
// leading apostrophe, so that it is not taken for a formula (OWASP's advice
// on CSV injection: a member named "=HYPERLINK(...)" is text, not a link).
// ReadCSV takes the apostrophe off again.
func CSVCell(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return s
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s
	}
	return "'" + s
}

// uncell is the text CSVCell was given.
func uncell(s string) string {
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(s[1])) {
		return s[1:]
	}
	return s
}

// Flush writes buffered rows (the header alone if there were none) and
// returns the first error of any write.
func (c *CSVWriter) Flush() error {
	if !c.header {
		c.header = true
		c.w.Write(CSVHeader)
	}
	c.w.Flush()
	return c.w.Error()
}

// ReadCSV reads records written by CSVWriter (or any CSV with at least the
// required columns, in any order). It names the line of a bad cell. A
// "name" column, as written before records were named by their target's
// name, takes the place of "target" where it is set.
func ReadCSV(r io.Reader) ([]Record, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("csv header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, req := range CSVHeader[:13] {
		if _, ok := col[req]; !ok {
			return nil, fmt.Errorf("csv header lacks column %q", req)
		}
	}
	var out []Record
	for line := 2; ; line++ {
		row, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(row) {
				return row[i]
			}
			return ""
		}
		var bad error
		num := func(name string) *float64 {
			s := get(name)
			if s == "" || bad != nil {
				return nil
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				bad = fmt.Errorf("csv line %d: %s %q: not a number", line, name, s)
				return nil
			}
			return &v
		}
		text := func(name string) string { return uncell(get(name)) }
		rec := Record{Target: text("target"), Address: text("address"), Direction: text("direction"), Error: text("error"),
			TimestampSource: text("timestamp_source"), Node: text("node"), Path: text("path")}
		if n := text("name"); n != "" {
			rec.Target = n
		}
		at, err := time.Parse(time.RFC3339Nano, get("time"))
		if err != nil {
			return nil, fmt.Errorf("csv line %d: time %q: want RFC 3339", line, get("time"))
		}
		rec.Time = at.UTC()
		rec.DBC, rec.XTR, rec.ABW = num("dbc_mbps"), num("xtr_mbps"), num("abw_mbps")
		rmin, ravg, rmax, jit := num("rtt_min_ms"), num("rtt_avg_ms"), num("rtt_max_ms"), num("jitter_ms")
		if rmin != nil && ravg != nil && rmax != nil {
			rec.RTT = &RTT{Min: *rmin, Avg: *ravg, Max: *rmax}
			if jit != nil {
				rec.RTT.Jitter = *jit
			}
			if v := num("rtt_median_ms"); v != nil {
				rec.RTT.Median = *v
			}
			if v := num("jitter_rfc3550_ms"); v != nil {
				rec.RTT.JitterRFC3550 = *v
			}
		}
		if l := num("loss"); l != nil {
			rec.Loss = *l
		}
		if t := num("ttl"); t != nil {
			v := int(*t)
			rec.TTL = &v
		}
		rec.Confidence = num("confidence")
		rec.DBCLow, rec.DBCHigh = num("dbc_low_mbps"), num("dbc_high_mbps")
		rec.XTRLow, rec.XTRHigh = num("xtr_low_mbps"), num("xtr_high_mbps")
		rec.ABWLow, rec.ABWHigh = num("abw_low_mbps"), num("abw_high_mbps")
		rec.DBCMin = num("dbc_min_mbps")
		rec.LinkCost = num("link_cost")
		rec.XTRPooled, rec.XTRPooledLow, rec.XTRPooledHigh = num("xtr_pooled_mbps"), num("xtr_pooled_low_mbps"), num("xtr_pooled_high_mbps")
		rec.ABWPooled, rec.ABWPooledLow, rec.ABWPooledHigh = num("abw_pooled_mbps"), num("abw_pooled_low_mbps"), num("abw_pooled_high_mbps")
		if p := num("pooled_runs"); p != nil {
			rec.PooledRuns = int(*p)
		}
		if p := num("pairs_used"); p != nil {
			rec.PairsUsed = int(*p)
		}
		if bad != nil {
			return nil, bad
		}
		out = append(out, rec)
	}
}
