package web

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// serve starts a listener on loopback with cfg and the echo handler; it
// is closed when the test ends.
func serve(t *testing.T, cfg Config, handlers map[string]http.Handler) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if handlers == nil {
		handlers = map[string]http.Handler{}
	}
	handlers["/api/v1/echo"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Query().Get("q")) })
	s, err := Serve(l, Options{Config: cfg, Handlers: handlers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// get asks url with a client of its own (no connection shared with other
// requests) and a deadline.
func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestServe(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "abing_test_value", Help: "A test gauge."})
	g.Set(42)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var sick error
	s, err := Serve(l, Options{Registry: Registry(g), Health: func() error { return sick }, Config: Defaults(),
		Handlers: map[string]http.Handler{"/api/v1/echo": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Query().Get("q")) })}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if resp, body := get(t, nil, s.URL("/healthz")); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}
	resp, body := get(t, nil, s.URL("/metrics"))
	for _, want := range []string{"abing_test_value 42\n", "go_goroutines ", "process_resident_memory_bytes "} {
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", resp.StatusCode, want)
		}
	}
	sick = errors.New("store: 12 results not written")
	if resp, body := get(t, nil, s.URL("/healthz")); resp.StatusCode != 503 || body != `{"reason":"store: 12 results not written","status":"unhealthy"}`+"\n" {
		t.Errorf("/healthz when unhealthy: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, nil, s.URL("/api/v1/echo?q=hi")); resp.StatusCode != 200 || body != "hi" {
		t.Errorf("a handler of the caller's: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, nil, s.URL("/nothing")); resp.StatusCode != 404 {
		t.Errorf("/nothing: %d", resp.StatusCode)
	}
	if got := s.URL("/x"); got != "http://"+l.Addr().String()+"/x" {
		t.Errorf("URL: %s", got)
	}
}

// Every answer, found or not, carries the same security headers; a
// loopback listener answers requests for localhost and loopback addresses
// only (a DNS-rebinding page asks with its own host name).
func TestHeadersAndHost(t *testing.T) {
	s := serve(t, Defaults(), nil)
	want := map[string]string{
		"Content-Security-Policy": contentPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
	if !strings.Contains(contentPolicy, "frame-ancestors 'none'") {
		t.Errorf("policy %q lets other sites frame the page", contentPolicy)
	}
	for _, path := range []string{"/healthz", "/metrics", "/api/v1/echo?q=x", "/nothing"} {
		resp, _ := get(t, nil, s.URL(path))
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s (%d): %s %q, want %q", path, resp.StatusCode, k, got, v)
			}
		}
	}
	port := s.addr[strings.LastIndex(s.addr, ":"):]
	for _, tc := range []struct {
		host string
		code int
	}{
		{"127.0.0.1" + port, 200},
		{"localhost" + port, 200},
		{"LOCALHOST.", 200},
		{"[::1]" + port, 200},
		{"abing.localhost" + port, 200},
		{"rebind.attacker.example" + port, http.StatusMisdirectedRequest},
		{"198.51.100.7" + port, http.StatusMisdirectedRequest},
		{"localhost.attacker.example", http.StatusMisdirectedRequest},
	} {
		req, _ := http.NewRequest("GET", s.URL("/api/v1/echo?q=targets"), nil)
		req.Host = tc.host
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("Host %q: %d %q, want %d", tc.host, resp.StatusCode, b, tc.code)
		}
		if tc.code != 200 && strings.Contains(string(b), "targets") {
			t.Errorf("Host %q: the answer leaked: %q", tc.host, b)
		}
	}
}

// A keep-alive connection is closed once idle for IdleTimeout, and one
// that never sends a whole header after ReadHeaderTimeout.
func TestTimeouts(t *testing.T) {
	cfg := Defaults()
	cfg.IdleTimeout, cfg.ReadHeaderTimeout = 200*time.Millisecond, 300*time.Millisecond
	s := serve(t, cfg, nil)
	for _, tc := range []struct {
		name, send string
	}{
		{"idle keep-alive", "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"},
		{"half a header", "GET /healthz HTTP/1.1\r\nHost: loc"},
	} {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, tc.send)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		start := time.Now()
		r := bufio.NewReader(c)
		if strings.HasPrefix(tc.send, "GET /healthz HTTP/1.1\r\nHost: localhost") {
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		_, err = io.Copy(io.Discard, r) // until the server closes
		took := time.Since(start)
		c.Close()
		if err != nil || took > 2*time.Second {
			t.Errorf("%s: connection still open after %v (%v)", tc.name, took.Round(time.Millisecond), err)
		}
	}
}

// nofile is how many descriptors this process may hold.
func nofile(t *testing.T) int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	return int(min(r.Cur, 1<<20))
}

// Thousands of connections that send nothing (or went idle) cannot keep
// a client out nor take the daemon's descriptors: the listener holds at
// most MaxConns, evicting the longest idle, and a new client is answered
// within a second. Before, every one was held until the client let go.
func TestManyIdleConnections(t *testing.T) {
	cfg := Defaults()
	s := serve(t, cfg, nil)
	n := min(5000, (nofile(t)-200)/2) // the test holds the clients' ends and the server's
	if n < 2*cfg.MaxConns {
		t.Skipf("descriptor limit %d: too few to open %d connections", nofile(t), 2*cfg.MaxConns)
	}
	goroutines := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	time.Sleep(100 * time.Millisecond) // the listener accepts the backlog
	for i := range 3 {
		start := time.Now()
		resp, body := get(t, &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}, s.URL("/api/v1/echo?q=hello"))
		if took := time.Since(start); resp.StatusCode != 200 || body != "hello" || took > time.Second {
			t.Errorf("request %d among %d idle connections: %d %q in %v", i, n, resp.StatusCode, body, took)
		}
	}
	open, evicted, refused := s.lim.Stats()
	t.Logf("%d connections opened: %d held, %d evicted, %d refused; goroutines %d → %d", n, open, evicted, refused, goroutines, runtime.NumGoroutine())
	if open > cfg.MaxConns {
		t.Errorf("%d connections held, cap %d", open, cfg.MaxConns)
	}
	if g := runtime.NumGoroutine() - goroutines; g > cfg.MaxConns+50 {
		t.Errorf("%d more goroutines with %d connections held", g, open)
	}
}

// A connection with a request in progress is never evicted: when every
// held one is busy, the new one is closed, and served again once one is
// free. Another source's connections do not count against a source's cap.
func TestBusyConnectionsKept(t *testing.T) {
	cfg := Defaults()
	cfg.MaxConns, cfg.MaxConnsPerSource = 2, 2
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	s := serve(t, cfg, map[string]http.Handler{"/slow": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "done")
	})})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}).Get(s.URL("/slow"))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "done" {
					err = fmt.Errorf("slow answer %q", b)
				}
			}
			errs <- err
		}()
	}
	<-started
	<-started
	_, err := (&http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{}}).Get(s.URL("/healthz"))
	if err == nil {
		t.Error("a third connection was served while two requests held the cap of 2")
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a request in progress: %v", err)
		}
	}
	if resp, _ := get(t, nil, s.URL("/healthz")); resp.StatusCode != 200 {
		t.Errorf("after the slow requests: %d", resp.StatusCode)
	}
	if _, _, refused := s.lim.Stats(); refused == 0 {
		t.Error("no connection counted as refused")
	}
}

// With a web configuration file, the listener speaks TLS and asks for the
// users' passwords (bcrypt), as Prometheus exporters do; a file that does
// not load stops Serve.
func TestTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("cert.pem", string(certPEM))
	write("key.pem", string(keyPEM))
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := write("web.yml", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  ops: %s\n",
		filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), hash))
	cfg := Defaults()
	cfg.ConfigFile = file
	s := serve(t, cfg, nil)
	if !strings.HasPrefix(s.URL("/"), "https://") {
		t.Errorf("URL %s with TLS configured", s.URL("/"))
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, _ := get(t, c, s.URL("/metrics")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no password: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		pass string
		code int
	}{{"wrong", http.StatusUnauthorized}, {"s3cret", 200}} {
		req, _ := http.NewRequest("GET", s.URL("/api/v1/echo?q=ok"), nil)
		req.SetBasicAuth("ops", tc.pass)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("password %q: %d, want %d", tc.pass, resp.StatusCode, tc.code)
		}
	}
	// Go's TLS server answers a plain request 400, "Client sent an HTTP
	// request to an HTTPS server".
	if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + s.addr + "/healthz"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), "ok") {
			t.Errorf("plain HTTP on a TLS listener: %d %q", resp.StatusCode, b)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bad := Defaults()
	bad.ConfigFile = write("bad.yml", "basic_auth_users:\n  ops: not-a-bcrypt-hash\n")
	if _, err := Serve(l, Options{Config: bad}); err == nil {
		t.Error("a password that is not a bcrypt hash accepted")
	}
	bad.ConfigFile = filepath.Join(dir, "missing.yml")
	if _, err := Serve(l, Options{Config: bad}); err == nil {
		t.Error("a missing configuration file accepted")
	}
}

// selfSigned makes a certificate for 127.0.0.1 and its key, PEM-encoded.
func selfSigned(t *testing.T) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "abing test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
