package web

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServe(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "abing_test_value", Help: "A test gauge."})
	g.Set(42)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var sick error
	hs := Serve(l, Registry(g), slog.New(slog.DiscardHandler), func() error { return sick },
		map[string]http.Handler{"/api/v1/echo": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Query().Get("q")) })})
	defer hs.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + l.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	code, body := get("/metrics")
	for _, want := range []string{"abing_test_value 42\n", "go_goroutines ", "process_resident_memory_bytes "} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	sick = errors.New("store: 12 results not written")
	if code, body := get("/healthz"); code != 503 || body != `{"reason":"store: 12 results not written","status":"unhealthy"}`+"\n" {
		t.Errorf("/healthz when unhealthy: %d %q", code, body)
	}
	if code, body := get("/api/v1/echo?q=hi"); code != 200 || body != "hi" {
		t.Errorf("a handler of the caller's: %d %q", code, body)
	}
	if code, _ := get("/nothing"); code != 404 {
		t.Errorf("/nothing: %d", code)
	}
}
