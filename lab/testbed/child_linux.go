package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// childEnv carries a generator's job to a re-executed copy of this binary.
const childEnv = "ABING_TESTBED_GENERATOR"

type childSpec struct {
	Netns string
	Kind  Kind
	Rate  float64
	Size  int
	Seed  uint64
	Dst   string
	// Ordinary priority instead of real time (see Flow.Ordinary).
	Ordinary bool
	// Busy sends nothing: the child keeps one CPU busy (StartBusy).
	Busy bool
}

// RunChild turns this process into a traffic generator when a testbed started
// it as one, and then exits; otherwise it returns at once. Every program that
// builds a testbed calls it first thing in main (and tests in TestMain).
func RunChild() {
	js := os.Getenv(childEnv)
	if js == "" {
		return
	}
	var spec childSpec
	err := json.Unmarshal([]byte(js), &spec)
	if err == nil {
		err = runChild(spec)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbed generator:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runChild enters the namespace and generates until standard input closes
// (the parent stopped it, or died).
func runChild(spec childSpec) error {
	runtime.LockOSThread() // setns and the socket stay on this thread
	f, err := os.Open(filepath.Join(netnsDir, spec.Netns))
	if err != nil {
		return err
	}
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", spec.Netns, err)
	}
	f.Close()
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	if spec.Busy {
		spin(stop)
		return nil
	}
	return generate(spec, stop)
}

// spin keeps the CPU busy until stop closes.
func spin(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
	}
}

// child is a running generator process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{} // closed when the process has been waited for
	err    error         // what Wait returned; read after exited closes
}

func startChild(ctx context.Context, spec childSpec) (*child, error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("testbed: generator: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testbed: generator: %w", err)
	}
	c := &child{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	go func() {
		select {
		case <-ctx.Done():
			c.Close()
		case <-c.exited:
		}
	}()
	// A generator that cannot start fails at once; give it that moment.
	select {
	case <-c.exited:
		return nil, fmt.Errorf("testbed: generator exited at start: %v", c.err)
	case <-time.After(20 * time.Millisecond):
	}
	return c, nil
}

// Close stops the generator: closing its standard input ends it; one that
// does not exit within a second is killed.
func (c *child) Close() error {
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
	return nil
}
