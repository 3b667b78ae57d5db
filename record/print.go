package record

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Printer writes records in one of the forms abing history prints: text
// (one line a record: time, target, direction, DBC, XTR, ABW, RTT, loss,
// error), json (one object a line, as abing measure --output json) or csv
// (CSVWriter's).
type Printer struct {
	w      io.Writer
	format string
	csv    *CSVWriter
	json   *json.Encoder
}

// NewPrinter returns a printer of format: text, json or csv.
func NewPrinter(w io.Writer, format string) (*Printer, error) {
	p := &Printer{w: w, format: format}
	switch format {
	case "text":
	case "json":
		p.json = json.NewEncoder(w)
	case "csv":
		p.csv = NewCSVWriter(w)
	default:
		return nil, fmt.Errorf("--output %q: want text, json or csv", format)
	}
	return p, nil
}

// Print writes one record.
func (p *Printer) Print(r *Record) error {
	switch {
	case p.json != nil:
		return p.json.Encode(r)
	case p.csv != nil:
		return p.csv.Write(r)
	}
	num := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f", *v)
	}
	rtt := "-"
	if r.RTT != nil {
		rtt = fmt.Sprintf("%.2f", r.RTT.Avg)
	}
	_, err := fmt.Fprintf(p.w, "%-30s %-24s %-8s DBC %6s  XTR %6s  ABW %6s  RTT %6s ms  loss %4.1f%%  %s\n",
		r.Time.Format(time.RFC3339Nano), r.Target, r.Direction, num(r.DBC), num(r.XTR), num(r.ABW), rtt, 100*r.Loss, r.Error)
	return err
}

// Flush writes what the printer holds back (CSV's buffer).
func (p *Printer) Flush() error {
	if p.csv != nil {
		return p.csv.Flush()
	}
	return nil
}

// AlarmPrinter writes alarms as text lines (with the routes before and
// after, when the alarm carries them) or as JSON objects, one a line.
type AlarmPrinter struct {
	w    io.Writer
	json *json.Encoder
	n    int
}

// NewAlarmPrinter returns a printer of format: text or json.
func NewAlarmPrinter(w io.Writer, format string) (*AlarmPrinter, error) {
	p := &AlarmPrinter{w: w}
	switch format {
	case "text":
	case "json":
		p.json = json.NewEncoder(w)
	default:
		return nil, fmt.Errorf("--output %q: want text or json", format)
	}
	return p, nil
}

// Print writes one alarm.
func (p *AlarmPrinter) Print(a *Alarm) error {
	p.n++
	if p.json != nil {
		return p.json.Encode(a)
	}
	end := "active"
	if a.End != nil {
		end = a.End.UTC().Format(time.RFC3339) + " (" + a.Cleared + ")"
	}
	_, err := fmt.Fprintf(p.w, "%s  %-30s %-9s %-16s %-8s %-8s %g → %g %s  %s\n", a.Start.UTC().Format(time.RFC3339), end,
		a.Kind, a.Target, a.Direction, a.Severity, a.Before, a.After, a.Unit, a.Summary)
	if err == nil && a.Route != nil {
		_, err = fmt.Fprintf(p.w, "    route before: %s\n    route after:  %s\n", a.Route.Before, a.Route.After)
	}
	return err
}

// Flush ends the output: as text, "no alarms" when none was printed.
func (p *AlarmPrinter) Flush() error {
	if p.n == 0 && p.json == nil {
		_, err := fmt.Fprintln(p.w, "no alarms")
		return err
	}
	return nil
}
