package privilege

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/abing-net/abing/internal/testenv"
)

// The drop is irreversible, so it runs in a child: this test binary again,
// told by an environment variable to drop and then report on itself.
func TestMain(m *testing.M) {
	if name := os.Getenv("ABING_PRIVILEGE_CHILD"); name != "" {
		child(name)
		return
	}
	os.Exit(m.Run())
}

func child(name string) {
	// Root with supplementary groups, as a root shell has them, on every
	// thread; and more threads, each parked on a goroutine of its own,
	// so that a drop that reaches only the calling thread shows.
	if err := syscall.Setgroups([]int{0, 4, 27}); err != nil {
		fmt.Println("error: setgroups:", err)
		os.Exit(1)
	}
	park := make(chan struct{})
	defer close(park)
	var ready sync.WaitGroup
	for range 6 {
		ready.Add(1)
		go func() {
			runtime.LockOSThread()
			ready.Done()
			<-park
		}()
	}
	ready.Wait()
	switched, err := Drop(name)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("switched:", switched)
	fmt.Println("threads:", len(must(filepath.Glob("/proc/self/task/*"))))
	// Every thread's credentials, as the kernel sees them.
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Uid:") || strings.HasPrefix(line, "Gid:") || strings.HasPrefix(line, "Groups:") {
				fmt.Println(line)
			}
		}
	}
	// A privileged port is out of reach now.
	if l, err := net.ListenPacket("udp", "127.0.0.1:7"); err == nil {
		l.Close()
		fmt.Println("bound a privileged port")
	}
}

func must[T any](v T, _ error) T { return v }

func runChild(t *testing.T, name string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ABING_PRIVILEGE_CHILD="+name)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

func TestDrop(t *testing.T) {
	testenv.NeedRoot(t, "dropping privileges needs root")
	out := runChild(t, "nobody")
	if !strings.Contains(out, "switched: true") || strings.Contains(out, "bound a privileged port") {
		t.Fatalf("child:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && f[0] == "threads:":
			if n, _ := strconv.Atoi(f[1]); n < 7 {
				t.Errorf("child ran %s threads, want at least 7 for the test to mean something", f[1])
			}
		case len(f) == 0 || f[0] == "switched:":
		case f[0] == "Uid:" || f[0] == "Gid:":
			for _, id := range f[1:] { // real, effective, saved, filesystem
				if id == "0" {
					t.Errorf("a thread kept id 0: %s", line)
				}
			}
		case f[0] == "Groups:":
			if len(f) > 1 {
				t.Errorf("supplementary groups kept: %s", line)
			}
		}
	}
	if out := runChild(t, "no-such-user-abing"); !strings.Contains(out, "no-such-user-abing") {
		t.Errorf("unknown user: %s", out)
	}
	if out := runChild(t, "root"); !strings.Contains(out, "is root") {
		t.Errorf("root as target: %s", out)
	}
}

func TestNotRootIsNoop(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("as root, Drop switches; TestDrop covers it")
	}
	if switched, err := Drop("nobody"); switched || err != nil {
		t.Errorf("Drop as non-root: %v %v", switched, err)
	}
}
