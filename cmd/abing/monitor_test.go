package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/reflector"
	"github.com/abing-net/abing/store"
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
	conn, err := dispersion.Listen("udp4", "127.0.0.1:0", dispersion.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := reflector.New(conn, reflector.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	db := filepath.Join(t.TempDir(), "m.db")
	stored := map[string]bool{}
	line := regexp.MustCompile(`msg=stored target=\S+ time=(\S+)`)
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "monitor", "--interval", "1s", "--db", db, "--web.listen-address", "127.0.0.1:0", conn.LocalAddr().String())
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
		s.Query(context.Background(), store.Filter{}, func(r *measure.Record) error { have[r.Time]++; return nil })
		s.Close()
		for tm := range stored {
			if have[tm] != 2 {
				t.Errorf("round %d: result of %s has %d of 2 records", round, tm, have[tm])
			}
		}
	}
}
