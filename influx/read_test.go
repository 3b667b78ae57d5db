package influx

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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

// A server that trickles its answer, or sends more than Read may hold, is
// given up on: at the read timeout, at the record limit, at a row wider
// than its columns; an answer is decoded as it arrives, not held whole.
func TestReadHostileServer(t *testing.T) {
	row := `[1700000000000000000,"h","forward",5,10]`
	cols := `"columns":["time","target","direction","abw_mbps","dbc_mbps"]`
	head := `{"results":[{"statement_id":0,"series":[{"name":"abing",` + cols + `,"values":[`
	for _, tc := range []struct {
		name string
		body func(w http.ResponseWriter)
		want string
	}{
		{"trickle", func(w http.ResponseWriter) {
			for range 20 {
				w.Write([]byte(" "))
				w.(http.Flusher).Flush()
				time.Sleep(200 * time.Millisecond)
			}
		}, "within 1s"},
		{"a row too wide", func(w http.ResponseWriter) { io.WriteString(w, head+`[1,"h","forward",5,6,7]]}]}]}`) }, "more than 5 values"},
		{"values first", func(w http.ResponseWriter) {
			io.WriteString(w, `{"results":[{"series":[{"values":[[1]],"columns":["time"]}]}]}`)
		}, "values before columns"},
		{"a nested value", func(w http.ResponseWriter) { io.WriteString(w, head+`[1,{"a":1},"forward",5,10]]}]}]}`) }, "not a number"},
		{"an error", func(w http.ResponseWriter) { io.WriteString(w, `{"results":[{"statement_id":0,"error":"boom"}]}`) }, "boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { tc.body(w) }))
			defer srv.Close()
			cfg := Config{URL: srv.URL, Bucket: "abing/autogen", ReadTimeout: time.Second}
			start := time.Now()
			_, err := Read(context.Background(), cfg, time.Time{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
	// A good answer, with keys it does not know, reads.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"x":[1,{"y":[]}],"results":[{"statement_id":0,"series":[{"name":"abing","tags":{"a":"b"},`+cols+`,"values":[`+row+`]}]}]}`)
	}))
	defer srv.Close()
	recs, err := Read(context.Background(), Config{URL: srv.URL, Bucket: "abing/autogen"}, time.Time{})
	if err != nil || len(recs) != 1 || recs[0].Target != "h" || recs[0].DBC == nil || *recs[0].DBC != 10 {
		t.Errorf("a good answer: %+v %v", recs, err)
	}
}

// The answer is decoded as it arrives: a row callback that stops after
// 1,000 rows ends the decoding of an endless answer with a few rows read.
func TestDecodeAnswerStreams(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, `{"results":[{"series":[{"columns":["time","target"],"values":[[1,"h"]`)
		for {
			if _, err := io.WriteString(pw, `,[1,"h"]`); err != nil {
				return
			}
		}
	}()
	defer pr.Close()
	cr := &countingReader{r: pr}
	dec := json.NewDecoder(cr)
	dec.UseNumber()
	n := 0
	err := decodeAnswer(dec, func(cols []string, row []any) error {
		if n++; n > 1000 {
			return errors.New("enough")
		}
		return nil
	})
	if err == nil || err.Error() != "enough" {
		t.Fatalf("error %v", err)
	}
	if cr.n > 1<<20 {
		t.Errorf("read %d bytes for 1,000 rows of 8", cr.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
