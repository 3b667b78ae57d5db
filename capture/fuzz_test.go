package capture_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/abing-net/abing/capture"
	"github.com/abing-net/abing/dispersion"
)

// FuzzReader feeds any bytes to the reader, the analysis and the listing:
// nothing may panic or allocate what a record claims before checking it,
// every failure is an error, and no record of a session carries NaN, a
// negative rate or a loss outside [0, 1] (Sanitize would say so).
func FuzzReader(f *testing.F) {
	// Seeds: hello, cookie, a pair and its replies, cut to 200 bytes a
	// packet (the fuzzer slows to a crawl on inputs of tens of kilobytes);
	// every format, every link type, and one capture cut to the headers.
	frames := synthRun(sender4, refl4, 9, 1)[:6]
	for _, fm := range []format{pcapMicro, pcapNano, pcapGzip, pcapng} {
		f.Add(writeCapture(f, frames, fm, links[0], 200))
	}
	for _, l := range links[1:] {
		f.Add(writeCapture(f, frames, pcapMicro, l, 200))
	}
	f.Add(writeCapture(f, frames, pcapng, links[0], 60))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := capture.NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		err = capture.Analyze(r, capture.Options{Clock: dispersion.SourceKernel}, func(s *capture.Session) error {
			res, err := s.Result()
			if err != nil {
				return nil
			}
			for _, rec := range res.Records() {
				if bytes.Contains([]byte(rec.Error), []byte("implausible values")) {
					t.Fatalf("%s record needed Sanitize: %s", rec.Direction, rec.Error)
				}
			}
			return nil
		})
		if err != nil && err.Error() == "" {
			t.Fatal("an empty error")
		}
		r, _ = capture.NewReader(bytes.NewReader(data))
		for {
			d, err := r.Next()
			if errors.Is(err, io.EOF) || err != nil {
				break
			}
			_ = capture.Describe(d, d.Time)
		}
	})
}
