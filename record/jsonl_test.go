package record

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	rec := Record{Time: time.Date(2026, 11, 23, 10, 0, 0, 5, time.UTC), Target: "lab-b", Address: "198.18.2.2:8176",
		Direction: "forward", DBC: f(18.5), RTT: &RTT{Min: 1, Avg: 2, Max: 3}, Loss: 0.25}
	var js bytes.Buffer
	json.NewEncoder(&js).Encode(&rec)
	var csv bytes.Buffer
	w := NewCSVWriter(&csv)
	w.Write(&rec)
	w.Flush()
	for _, tc := range []struct {
		name, in string
		target   string
		n        int
		fail     string
	}{
		{"json lines", "\n  " + js.String() + "\n" + js.String(), "lab-b", 2, ""},
		{"csv", csv.String(), "lab-b", 1, ""},
		{"empty", " \n", "", 0, ""},
		// Written before records were named by their target's name.
		{"old json", `{"time":"2026-11-23T10:00:00Z","target":"b:8176","name":"lab-b","direction":"forward","loss":0}`, "lab-b", 1, ""},
		{"bad json line", js.String() + "{\"time\":", "", 0, "line 2"},
		{"no time", `{"target":"a","direction":"forward"}`, "", 0, "line 1: record without a time"},
		{"bad time", `{"time":"noon","target":"a"}`, "", 0, "line 1"},
		{"too long", "{" + strings.Repeat(" ", maxLine+1) + "}", "", 0, "longer than"},
		{"bad csv", "time,target\n", "", 0, "lacks column"},
	} {
		got, err := Read(strings.NewReader(tc.in))
		if tc.fail != "" {
			if err == nil || !strings.Contains(err.Error(), tc.fail) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.fail)
			}
			continue
		}
		if err != nil || len(got) != tc.n {
			t.Errorf("%s: %d records, %v", tc.name, len(got), err)
			continue
		}
		for _, r := range got {
			if r.Target != tc.target || r.Time.Location() != time.UTC {
				t.Errorf("%s: %+v", tc.name, r)
			}
		}
	}
}
