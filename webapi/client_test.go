package webapi

import (
	"context"
	"net/http"
	"net/http/httptest"
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
		{"wrong shape", `{"target": 5}`, 200, "cannot unmarshal"},
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
