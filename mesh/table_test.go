package mesh

import (
	"bytes"
	"testing"
)

// Each format of a table: an empty cell (an absent number) is "-" in text
// and empty in CSV; a cell a spreadsheet would run is written as text;
// JSON is an array of the rows' objects, [] when there is none.
func TestTable(t *testing.T) {
	rows := []struct {
		obj   any
		cells []string
	}{
		{map[string]any{"a": "x", "v": 1.5}, []string{"x", "1.5"}},
		{map[string]any{"a": "=cmd", "v": nil}, []string{"=cmd", ""}},
	}
	for _, c := range []struct {
		output string
		rows   bool
		want   string
	}{
		{"text", true, "a     v\nx     1.5\n=cmd  -\n"},
		{"csv", true, "a,v\nx,1.5\n'=cmd,\n"},
		{"json", true, "[\n{\"a\":\"x\",\"v\":1.5},\n{\"a\":\"=cmd\",\"v\":null}\n]\n"},
		{"json", false, "[]\n"},
		{"csv", false, "a,v\n"},
	} {
		var b bytes.Buffer
		tab, err := NewTable(&b, c.output, "a", "v")
		if err != nil {
			t.Fatal(err)
		}
		if c.rows {
			for _, r := range rows {
				tab.Add(r.obj, r.cells...)
			}
		}
		if err := tab.Flush(); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("%s (rows %v):\n%q\nwant\n%q", c.output, c.rows, b.String(), c.want)
		}
	}
	if _, err := NewTable(&bytes.Buffer{}, "xml"); err == nil {
		t.Error("output xml accepted")
	}
}
