package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// namePrefix starts the name of every namespace a testbed makes; the pid of
// the process that made it follows, so that leftovers of a killed process can
// be recognised and removed.
const namePrefix = "abing-"

const netnsDir = "/var/run/netns"

// ErrNotRoot is returned when the testbed cannot be built for lack of
// privileges.
var ErrNotRoot = errors.New("the testbed needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces")

// Netns is a named network namespace made by the testbed.
type Netns struct {
	Name string
}

// run executes a command and returns its output, with the command and its
// stderr in the error.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// ip runs "ip -n NS args...".
func (n *Netns) ip(ctx context.Context, args ...string) error {
	_, err := run(ctx, "ip", append([]string{"-n", n.Name}, args...)...)
	return err
}

// tc runs "tc -n NS args..." and returns its output.
func (n *Netns) tc(ctx context.Context, args ...string) ([]byte, error) {
	return run(ctx, "tc", append([]string{"-n", n.Name}, args...)...)
}

// Do runs fn on an OS thread that has entered the namespace. Sockets that fn
// opens stay in the namespace after Do returns, so reflectors, senders and
// traffic generators can all live in one process.
func (n *Netns) Do(fn func() error) error {
	target, err := os.Open(filepath.Join(netnsDir, n.Name))
	if err != nil {
		return fmt.Errorf("netns %s: %w", n.Name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		// A fresh goroutine locked to its thread: if the thread cannot be
		// switched back, it is left locked and the runtime discards it.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", n.Name, err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: setns: %w", n.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("netns %s: setns back: %w", n.Name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// sysctl writes a value under /proc/sys inside the namespace.
func (n *Netns) sysctl(key, value string) error {
	return n.Do(func() error {
		p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("netns %s: sysctl %s=%s: %w", n.Name, key, value, err)
		}
		return nil
	})
}

func addNetns(ctx context.Context, name string) (*Netns, error) {
	if _, err := run(ctx, "ip", "netns", "add", name); err != nil {
		return nil, err
	}
	n := &Netns{Name: name}
	return n, n.ip(ctx, "link", "set", "lo", "up")
}

func (n *Netns) delete() error {
	_, err := run(context.Background(), "ip", "netns", "del", n.Name)
	return err
}

// CleanStale removes namespaces left behind by testbeds whose process is gone
// (killed before it could tear down). It returns the names it removed.
func CleanStale() ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), namePrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || unix.Kill(pid, 0) == nil {
			continue
		}
		n := &Netns{Name: e.Name()}
		if err := n.delete(); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}
