package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/reflector/reflectortest"
	"github.com/abing-net/abing/store"
	"github.com/abing-net/abing/train"
)

// The test binary doubles as abing, so that the monitor can be killed for
// real.
func TestMain(m *testing.M) {
	if os.Getenv("ABING_TEST_MAIN") == "1" {
		os.Args = append([]string{"abing"}, flagArgs()...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// flagArgs are the arguments after "--": abing's own.
func flagArgs() []string {
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return nil
}

// SIGKILL the monitor mid-run, twice; each time, every result it said it
// stored is in the history, and the store opens cleanly.
func TestMonitorKilled(t *testing.T) {
	target := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{}).String()
	db := filepath.Join(t.TempDir(), "m.db")
	stored := map[string]bool{}
	line := regexp.MustCompile(`msg=stored target=\S+ time=(\S+)`)
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "monitor", "--interval", "1s", "--db", db, "--web.listen-address", "127.0.0.1:0", target)
		cmd.Env = append(os.Environ(), "ABING_TEST_MAIN=1")
		errs, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(errs)
		n := 0
		for sc.Scan() {
			if m := line.FindStringSubmatch(sc.Text()); m != nil {
				stored[m[1]] = true
				if n++; n == 3 {
					time.Sleep(time.Duration(300+400*round) * time.Millisecond) // somewhere in the next run
					cmd.Process.Signal(syscall.SIGKILL)
					break
				}
			}
		}
		cmd.Wait()
		if n < 3 {
			t.Fatalf("round %d: the monitor stored %d results before it died", round, n)
		}
		s, err := store.Open(db)
		if err != nil {
			t.Fatalf("round %d: store after SIGKILL: %v", round, err)
		}
		have := map[string]int{}
		s.Query(context.Background(), store.Filter{}, func(r *record.Record) error { have[r.Time.Format(time.RFC3339Nano)]++; return nil })
		s.Close()
		for tm := range stored {
			if have[tm] != 2 {
				t.Errorf("round %d: result of %s has %d of 2 records", round, tm, have[tm])
			}
		}
	}
}

// SIGHUP: a bad file is refused and the monitor goes on; a good one swaps
// target a for target b without a restart; SIGTERM then stops it cleanly.
func TestMonitorReload(t *testing.T) {
	a := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{}).String()
	b := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{}).String()
	dir := t.TempDir()
	conf := filepath.Join(dir, "monitor.yaml")
	write := func(s string) {
		if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("interval: 1s\ntargets:\n  - {address: %q, name: a}\n", a))
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "monitor", "--config", conf, "--db", filepath.Join(dir, "m.db"), "--web.listen-address", "")
	cmd.Env = append(os.Environ(), "ABING_TEST_MAIN=1")
	errs, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(errs)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	await := func(re string) string {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("monitor exited waiting for %q", re)
				}
				if regexp.MustCompile(re).MatchString(l) {
					return l
				}
			case <-timeout:
				t.Fatalf("no log line %q", re)
			}
		}
	}
	await(`msg=stored target=a `)
	write("targets: [{address: a}]\nbogus: 1\n")
	cmd.Process.Signal(syscall.SIGHUP)
	await(`configuration not reloaded.*bogus`)
	await(`msg=stored target=a `) // still measuring
	write(fmt.Sprintf("interval: 1s\ntargets:\n  - {address: %q, name: b}\n", b))
	cmd.Process.Signal(syscall.SIGHUP)
	await(`configuration reloaded" targets=1 kept=0 started=1 stopped=1`)
	await(`msg=stored target=b `)
	// After the switch, a stores at most the run it was in.
	var afterA int
	for range 2 {
		if regexp.MustCompile(`msg=stored target=a `).MatchString(await(`msg=stored target=`)) {
			afterA++
		}
	}
	if afterA > 1 {
		t.Errorf("target a went on after the reload: %d results", afterA)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	await(`msg="monitor stopped"`)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}

// A SIGHUP during start-up (right as the store is opened) does not kill
// the monitor: the reload handler is installed before anything slow.
func TestMonitorHUPAtStart(t *testing.T) {
	a := reflectortest.Start(t, "udp4", "127.0.0.1:0", reflector.Config{}).String()
	dir := t.TempDir()
	conf := filepath.Join(dir, "monitor.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf("interval: 1s\ntargets:\n  - {address: %q, name: a}\n", a)), 0o644)
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "monitor", "--config", conf, "--db", filepath.Join(dir, "m.db"), "--web.listen-address", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "ABING_TEST_MAIN=1")
	errs, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(errs)
	var log []string
	for sc.Scan() {
		log = append(log, sc.Text())
		if strings.Contains(sc.Text(), "storing results") {
			cmd.Process.Signal(syscall.SIGHUP) // the web listener and the monitor are not up yet
			break
		}
	}
	stored := false
	for !stored && sc.Scan() {
		log = append(log, sc.Text())
		stored = strings.Contains(sc.Text(), "msg=stored target=a ")
	}
	if !stored {
		t.Fatalf("the monitor died after a SIGHUP at start:\n%s", strings.Join(log, "\n"))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	go io.Copy(io.Discard, errs)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}

// SIGTERM ends `abing measure` within a second, wherever the run waits: for
// a hello nobody answers, and for replies a reflector that answered the
// hello never sends.
func TestMeasureSIGTERM(t *testing.T) {
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	mute := reflectortest.StartHostile(t, reflector.Config{}, func(h train.Header, b []byte) [][]byte {
		if h.Type == train.TypeReply || h.Type == train.TypeReport {
			return nil
		}
		return [][]byte{b}
	})
	for _, tc := range []struct{ name, target string }{{"hello", silent.LocalAddr().String()}, {"replies", mute.String()}} {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "measure", "--timeout", "30s", tc.target)
		cmd.Env = append(os.Environ(), "ABING_TEST_MAIN=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(700 * time.Millisecond) // past the hello, into the wait
		start := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
			if took := time.Since(start); took > time.Second {
				t.Errorf("%s: abing measure took %v to stop after SIGTERM", tc.name, took)
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%s: abing measure still running 5 s after SIGTERM", tc.name)
		}
	}
}
