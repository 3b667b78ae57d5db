package testbed

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
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
	// Delay makes the child the delay element of namespace Netns (see
	// newDelay), for packets of up to MTU bytes, from tun DelayIn to tun
	// DelayOut.
	Delay             time.Duration
	MTU               int
	DelayIn, DelayOut string
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
	// The parent waits for this line (startChild).
	ready := func() { fmt.Fprintln(os.Stdout, childReady) }
	switch {
	case spec.Busy:
		spin(stop, ready)
		return nil
	case spec.Delay > 0:
		return runDelay(spec, stop, ready)
	}
	return generate(spec, stop, ready)
}

// childReady is the line a child prints once it runs.
const childReady = "ready"

// spin keeps the CPU busy until stop closes.
func spin(stop <-chan struct{}, ready func()) {
	ready()
	for {
		select {
		case <-stop:
			return
		default:
		}
	}
}

// child is a running generator or delay element process.
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
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testbed: generator: %w", err)
	}
	c := &child{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	up := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		up <- strings.TrimSpace(line) == childReady
		io.Copy(io.Discard, stdout) // Wait closes the pipe once the child exits
	}()
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
	select {
	case ok := <-up:
		if ok {
			return c, nil
		}
		<-c.exited
		return nil, fmt.Errorf("testbed: generator exited at start: %v", c.err)
	case <-time.After(childStart):
		c.Close()
		return nil, fmt.Errorf("testbed: generator not running after %v", childStart)
	}
}

// childStart bounds a child's start: a fresh process of this binary
// entering a namespace takes milliseconds.
const childStart = 5 * time.Second

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
