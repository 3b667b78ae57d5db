// Package influxtest starts a real InfluxDB 1.8 for tests (influxd from
// $ABING_INFLUXD, $PATH or $GOPATH/bin; .ci/run builds it), bound to
// loopback, with its data in a test directory.
package influxtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a real InfluxDB 1.8 (influxd from $ABING_INFLUXD, $PATH or
// $GOPATH/bin), bound to loopback, with its data in a test directory.
type Server struct {
	URL            string // http://127.0.0.1:PORT
	bin, dir, conf string
	cmd            *exec.Cmd
	exited         chan error // cmd's Wait
}

// FreePort is a TCP port on loopback that nothing listens on now: for a
// server that is meant to be away (nothing will listen there).
func FreePort(t testing.TB) int { return freePorts(t, 1)[0] }

// freePorts are n distinct TCP ports on loopback that nothing listens on
// now: all are held open until each is chosen, so none is chosen twice.
// influxd takes its ports from its configuration file, so they are picked
// here; Start tries again with others when influxd could not have them.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out
}

// Start starts an InfluxDB for the test, stopped when it ends; it skips the
// test when influxd is missing (fails with ABING_REQUIRE_INFLUXD=1).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv("ABING_INFLUXD")
	if bin == "" {
		if p, err := exec.LookPath("influxd"); err == nil {
			bin = p
		} else if gp, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			bin = filepath.Join(strings.TrimSpace(string(gp)), "bin", "influxd")
		}
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("ABING_REQUIRE_INFLUXD") == "1" {
			t.Fatalf("influxd not found (%q) and ABING_REQUIRE_INFLUXD=1", bin)
		}
		t.Skip("needs influxd 1.8.10: CGO_ENABLED=0 go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10 (CI installs it)")
	}
	dir := t.TempDir()
	s := &Server{bin: bin, dir: dir, conf: filepath.Join(dir, "influxd.conf")}
	var err error
	for range 3 { // ports taken between their choice and influxd's bind: others
		ports := freePorts(t, 2)
		s.URL = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		os.WriteFile(s.conf, []byte(fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = "%s/meta"
[data]
  dir = "%s/data"
  wal-dir = "%s/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:%d"
  flux-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
`, ports[0], dir, dir, dir, ports[1])), 0o644)
		if err = s.start(); err == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatal(err)
	return nil
}

// Start (re)starts a stopped server on its port and data.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

func (s *Server) start() error {
	cmd := exec.Command(s.bin, "-config", s.conf)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.cmd, s.exited = cmd, exited
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-exited:
			s.cmd = nil
			return fmt.Errorf("influxd exited at start (a port taken?): %v", err)
		default:
		}
		if resp, err := http.Get(s.URL + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
		}
	}
	s.Stop()
	return errors.New("influxd did not come up within 20 s")
}

// Stop stops the server; its data stays for Start.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		<-s.exited
		s.cmd = nil
	}
}

// Query runs InfluxQL and returns the rows of the first series as maps.
func (s *Server) Query(t testing.TB, db, q string) []map[string]any {
	t.Helper()
	resp, err := http.Get(s.URL + "/query?" + url.Values{"db": {db}, "q": {q}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Series []struct {
				Columns []string
				Values  [][]any
			}
			Error string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	for _, r := range out.Results {
		if r.Error != "" {
			t.Fatalf("query %q: %s", q, r.Error)
		}
		for _, sr := range r.Series {
			for _, v := range sr.Values {
				row := map[string]any{}
				for i, c := range sr.Columns {
					row[c] = v[i]
				}
				rows = append(rows, row)
			}
		}
	}
	return rows
}
