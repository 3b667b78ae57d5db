package record

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCSVRoundTrip(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	ttl := 61
	recs := []Record{
		{Time: time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC), Target: "lab, b", Address: "198.18.2.2:8176", Direction: "forward",
			DBC: f(95.5), XTR: f(40), ABW: f(55.5), DBCLow: f(94), DBCHigh: f(97), XTRLow: f(30), XTRHigh: f(50), ABWLow: f(45.5), ABWHigh: f(65.5), RTT: &RTT{Min: 0.1, Avg: 0.2, Max: 0.4, Jitter: 0.05},
			Loss: 0.03125, TTL: &ttl, Confidence: f(0.9), PairsUsed: 31, TimestampSource: "kernel"},
		{Time: time.Date(2026, 11, 23, 10, 1, 0, 0, time.UTC), Target: "b:8176", Direction: "reverse", DBCMin: f(850), Error: "reflector b:8176: no answer to hello"},
	}
	var b bytes.Buffer
	w := NewCSVWriter(&b)
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "time,target,direction,dbc_mbps,xtr_mbps,abw_mbps,rtt_min_ms,rtt_avg_ms,rtt_max_ms,jitter_ms,loss,ttl,error,") {
		t.Errorf("header: %s", b.String())
	}
	got, err := ReadCSV(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, recs)
	}
	for _, tc := range []struct{ in, want string }{
		{"time,target\n", `lacks column "direction"`},
		{strings.Join(CSVHeader, ",") + "\nnoon,a,forward,,,,,,,,0,,\n", `line 2: time "noon"`},
		{strings.Join(CSVHeader, ",") + "\n2026-11-23T10:00:00Z,a,forward,fast,,,,,,,0,,\n", `line 2: dbc_mbps "fast"`},
	} {
		if _, err := ReadCSV(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
	// A file written before records were named by their target's name:
	// target held the address, name the name.
	old := "time,target,direction,dbc_mbps,xtr_mbps,abw_mbps,rtt_min_ms,rtt_avg_ms,rtt_max_ms,jitter_ms,loss,ttl,error,name\n" +
		"2026-11-23T10:00:00+01:00,b:8176,forward,10,,,,,,,0,,,lab-b\n" +
		"2026-11-23T10:00:01Z,c:8176,forward,10,,,,,,,0,,,\n"
	got, err = ReadCSV(strings.NewReader(old))
	if err != nil || len(got) != 2 || got[0].Target != "lab-b" || got[1].Target != "c:8176" || got[0].Time.Location() != time.UTC || got[0].Time.Hour() != 9 {
		t.Errorf("old form: %+v %v", got, err)
	}
}

// Text that a spreadsheet would run as a formula is written as text, and
// read back as it was; numbers, negative ones too, are left alone.
func TestCSVInjection(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"lab-b", "lab-b"}, {"", ""}, {"-5.2", "-5.2"}, {"+3", "+3"},
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"}, {"@SUM(A1)", "'@SUM(A1)"},
		{"-lab", "'-lab"}, {"+cmd", "'+cmd"}, {"\tx", "'\tx"}, {"'quoted", "'quoted"},
	} {
		if got := CSVCell(tc.in); got != tc.want {
			t.Errorf("CSVCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if back := uncell(CSVCell(tc.in)); back != tc.in {
			t.Errorf("uncell(CSVCell(%q)) = %q", tc.in, back)
		}
	}
	var b strings.Builder
	w := NewCSVWriter(&b)
	rec := Record{Time: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), Target: "=cmd|' /C calc'!A0", Node: "@n", Path: "-p", Direction: "forward", Error: "+e"}
	if err := w.Write(&rec); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if strings.Contains(b.String(), ",=cmd") || strings.Contains(b.String(), ",@n") {
		t.Errorf("a formula cell written: %s", b.String())
	}
	recs, err := ReadCSV(strings.NewReader(b.String()))
	if err != nil || len(recs) != 1 || recs[0].Target != rec.Target || recs[0].Node != "@n" || recs[0].Path != "-p" || recs[0].Error != "+e" {
		t.Errorf("read back %+v, %v", recs, err)
	}
}
