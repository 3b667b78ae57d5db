package mesh

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/abing-net/abing/record"
)

// Table is an answer printed as text (aligned columns, "-" for an empty
// cell), json (an array of one object a row, a row a line; [] when there
// is none) or csv (a header, then the rows; an empty cell stays empty).
type Table struct {
	output string
	w      io.Writer
	header []string
	rows   [][]string
	objs   []any
}

// NewTable returns a table of format with the columns of header.
func NewTable(w io.Writer, output string, header ...string) (*Table, error) {
	if output != "text" && output != "json" && output != "csv" {
		return nil, fmt.Errorf("--output %q: want text, json or csv", output)
	}
	return &Table{output: output, w: w, header: header}, nil
}

// Add adds a row: its cells, and obj as its JSON object.
func (t *Table) Add(obj any, cells ...string) {
	t.rows = append(t.rows, cells)
	t.objs = append(t.objs, obj)
}

// Flush writes the table.
func (t *Table) Flush() error {
	switch t.output {
	case "json":
		var b []byte
		for i, o := range t.objs {
			row, err := json.Marshal(o)
			if err != nil {
				return err
			}
			sep := ",\n"
			if i == 0 {
				sep = "[\n"
			}
			b = append(append(b, sep...), row...)
		}
		if b == nil {
			_, err := io.WriteString(t.w, "[]\n")
			return err
		}
		_, err := t.w.Write(append(b, "\n]\n"...))
		return err
	case "csv":
		cw := csv.NewWriter(t.w)
		cw.Write(t.header)
		for _, row := range t.rows {
			safe := make([]string, len(row))
			for i, c := range row {
				safe[i] = record.CSVCell(c)
			}
			cw.Write(safe)
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(t.w, 0, 0, 2, ' ', 0)
	for _, row := range append([][]string{t.header}, t.rows...) {
		for j, c := range row {
			if j > 0 {
				fmt.Fprint(tw, "\t")
			}
			if c == "" {
				c = "-"
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
