package influx

import (
	"encoding/json"
	"strings"
	"testing"
)

// What a server answers is checked before it becomes a record: a row of the
// wrong width, a time that is no number, a point without target or
// direction are errors; a negative rate is dropped as records promise.
func TestFromRowHostile(t *testing.T) {
	n := func(s string) json.Number { return json.Number(s) }
	cols := []string{"time", "target", "direction", "abw_mbps", "loss"}
	for _, tc := range []struct {
		row  []any
		want string
	}{
		{[]any{n("1"), "h"}, "row of 2 values for 5 columns"},
		{[]any{"yesterday", "h", "forward", nil, nil}, "time \"yesterday\""},
		{[]any{n("1.5e30"), "h", "forward", nil, nil}, "time"},
		{[]any{n("1"), nil, "forward", nil, nil}, "without time, target or direction"},
		{[]any{n("1"), "h", "sideways", nil, nil}, "without time, target or direction"},
	} {
		if _, err := fromRow(cols, tc.row); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.row, err, tc.want)
		}
	}
	r, err := fromRow(cols, []any{n("1"), "h", "forward", n("-5"), n("7")})
	if err != nil || r.ABW != nil || r.Loss != 1 || r.Error == "" {
		t.Errorf("negative ABW, loss 7: %+v %v", r, err)
	}
}
