package record

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// Every JSON field of a record has its row in docs/measure.md, and every
// CSV column is named there: the docs are what users read the output by.
func TestFieldsDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/measure.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	rt := reflect.TypeOf(Record{})
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" && !strings.Contains(doc, "`"+name+"`") && !strings.Contains(doc, "`"+name+",") {
			t.Errorf("JSON field %s (%s) is not in docs/measure.md", name, rt.Field(i).Name)
		}
	}
	for _, col := range CSVHeader {
		if !strings.Contains(doc, col) {
			t.Errorf("CSV column %s is not in docs/measure.md", col)
		}
	}
}
