package record

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestPrinters(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	dbc := 18.7
	r := Record{Time: at, Target: "lab-b", Direction: "forward", DBC: &dbc, RTT: &RTT{Avg: 2.5}, Loss: 0.01}
	for _, tc := range []struct{ format, want string }{
		{"text", "2026-12-06T10:00:00Z           lab-b                    forward  DBC   18.7  XTR      -  ABW      -  RTT   2.50 ms  loss  1.0%  \n"},
		{"json", `"target":"lab-b"`},
		{"csv", "lab-b"},
	} {
		var b bytes.Buffer
		p, err := NewPrinter(&b, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Print(&r); err != nil {
			t.Fatal(err)
		}
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s: %q, want %q", tc.format, b.String(), tc.want)
		}
	}
	if _, err := NewPrinter(nil, "xml"); err == nil {
		t.Error("format xml: no error")
	}
	var b bytes.Buffer
	ap, err := NewAlarmPrinter(&b, "text")
	if err != nil {
		t.Fatal(err)
	}
	if ap.Flush(); b.String() != "no alarms\n" {
		t.Errorf("no alarms: %q", b.String())
	}
	b.Reset()
	a := Alarm{Kind: Down, Target: "lab-b", Direction: "both", Severity: "critical", Start: at, Route: &Route{}}
	ap.Print(&a)
	if !strings.Contains(b.String(), "active") || !strings.Contains(b.String(), "route before") {
		t.Errorf("alarm line: %q", b.String())
	}
	if _, err := NewAlarmPrinter(nil, "csv"); err == nil {
		t.Error("alarms as csv: no error")
	}
}
