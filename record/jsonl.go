package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxLine bounds one JSON line (a record is well under 2 KB).
const maxLine = 1 << 20

// ReadJSONLines reads records written one JSON object a line (abing measure
// --output json, abing history --output json). Blank lines are skipped; a
// bad line, or a record without a time, is an error naming its line.
func ReadJSONLines(r io.Reader) ([]Record, error) { return ReadJSONLinesMax(r, 0) }

// ReadJSONLinesMax is ReadJSONLines that stops with an error at the
// record after the max-th (max > 0), so that what it holds is bounded by
// what the caller keeps, not by what it is sent.
func ReadJSONLinesMax(r io.Reader, max int) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLine)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if rec.Time.IsZero() {
			return nil, fmt.Errorf("line %d: record without a time", line)
		}
		rec.Time = rec.Time.UTC()
		if max > 0 && len(out) == max {
			return nil, fmt.Errorf("line %d: more than %d records", line, max)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("a line longer than %d bytes: %w", maxLine, err)
		}
		return nil, err
	}
	return out, nil
}

// Read reads records in either form abing writes them, CSV or JSON lines,
// telling them apart by the first character that is not a space.
func Read(r io.Reader) ([]Record, error) {
	br := bufio.NewReader(r)
	for {
		c, err := br.Peek(1)
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		switch c[0] {
		case ' ', '\t', '\r', '\n':
			br.ReadByte()
			continue
		case '{':
			return ReadJSONLines(br)
		}
		return ReadCSV(br)
	}
}
