package webapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// A server that answers nonsense gets an error, not a crash or a negative
// rate: the client reads the API of whatever its flag points at.
func TestClientHostileServer(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"not JSON", "<html>hello</html>", 200, "invalid character"},
		{"wrong shape", `{"target": 5}`, 200, "where a list was expected"},
		{"wrong element", `[{"target": 5}]`, 200, "cannot unmarshal"},
		{"error page", "something broke\n", 500, "500 Internal Server Error: something broke"},
		{"binary reason", "\xff\xfe reason", 400, "400 Bad Request: ?"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.code)
			w.Write([]byte(tc.body))
		}))
		c, err := NewClient(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Targets(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		srv.Close()
	}
	// Records with impossible values are sanitized as they arrive.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"target":"x","key":"x","forward":{"direction":"forward","dbc_mbps":-5,"abw_mbps":3,"loss":7}}]`))
	}))
	defer srv.Close()
	c, _ := NewClient(strings.TrimPrefix(srv.URL, "http://"))
	ts, err := c.Targets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f := ts[0].Forward; f.DBC != nil || f.Loss > 1 || !strings.Contains(f.Error, "implausible") {
		t.Errorf("hostile record kept: %+v", f)
	}
	for _, bad := range []string{"ftp://x", "http://", "http://h:1/?q=1", "::"} {
		if _, err := NewClient(bad); err == nil {
			t.Errorf("NewClient(%q) accepted", bad)
		}
	}
}

// Lists of empty objects (6 MB of "[{},{},...]" made the client hold 1.1–
// 1.7 GB) are refused at the element limit, holding a bounded amount; a
// history of more buckets than the API gives is refused too.
func TestClientListLimits(t *testing.T) {
	empties := "[" + strings.Repeat("{},", 2_000_000) + "{}]"
	buckets := `{"target":"x","buckets":[` + strings.Repeat(`{"n":1},`, maxBuckets) + `{"n":1}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/history" {
			io.WriteString(w, buckets)
			return
		}
		io.WriteString(w, empties)
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, errT := c.Targets(context.Background())
	_, errA := c.Alarms(context.Background(), "", 0)
	runtime.ReadMemStats(&after)
	for _, err := range []error{errT, errA} {
		if err == nil || !strings.Contains(err.Error(), "more than 100000 elements") {
			t.Errorf("6 MB of empty objects: %v", err)
		}
	}
	// Allocated in all, garbage included (100,000 elements of each kind,
	// the list's growth, the decoder's).
	t.Logf("two lists of 2,000,000 empty objects refused after allocating %d MB", (after.TotalAlloc-before.TotalAlloc)>>20)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 300<<20 {
		t.Errorf("reading two lists of empty objects allocated %d MB", alloc>>20)
	}
	if _, err := c.History(context.Background(), "x", "", 0, 0); err == nil || !strings.Contains(err.Error(), "more than 10000 elements") {
		t.Errorf("a history of too many buckets: %v", err)
	}
}
