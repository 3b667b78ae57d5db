package privilege

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// inheritedEnv names the variable that tells a re-executed image which of
// its descriptors Reexec handed over.
const inheritedEnv = "ABING_INHERITED_FDS"

// maxInherited bounds the descriptors a re-executed image takes.
const maxInherited = 8

// Reexec replaces this process (same PID, same arguments) with a new
// image of its own program that holds no capability, handing it files:
// the sockets set up with the capabilities (Inherited returns them there).
// It is how a binary linked with cgo, which cannot clear every thread's
// capabilities (ErrCgo), gives them up: execve ends every thread but the
// calling one, whose ambient, inheritable, permitted and effective sets
// are cleared first, and no_new_privs keeps the new image from taking
// file capabilities again (setcap). It returns only on failure.
func Reexec(files ...*os.File) error {
	if len(files) > maxInherited {
		return fmt.Errorf("re-execute: %d files, at most %d", len(files), maxInherited)
	}
	// The rest of this process runs on this thread; it is never unlocked:
	// the thread ends in execve, or the caller exits on the error.
	runtime.LockOSThread()
	var fds []string
	for _, f := range files {
		fd := f.Fd()
		if _, err := unix.FcntlInt(fd, unix.F_SETFD, 0); err != nil { // kept across execve
			return fmt.Errorf("re-execute: keep descriptor %d: %w", fd, err)
		}
		fds = append(fds, strconv.FormatUint(uint64(fd), 10))
	}
	env := []string{inheritedEnv + "=" + strings.Join(fds, ",")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, inheritedEnv+"=") {
			env = append(env, kv)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("re-execute: no_new_privs: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("re-execute: clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var none [2]unix.CapUserData
	if err := unix.Capset(&hdr, &none[0]); err != nil {
		return fmt.Errorf("re-execute: capset: %w", err)
	}
	err := syscall.Exec("/proc/self/exe", os.Args, env)
	return fmt.Errorf("re-execute /proc/self/exe: %w", err)
}

// Inherited returns the files a Reexec handed to this image, in the order
// given, or none when it was not re-executed. It takes the variable out of
// the environment, so that a child of this process does not take them too.
func Inherited() ([]*os.File, error) {
	v, ok := os.LookupEnv(inheritedEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(inheritedEnv)
	var out []*os.File
	for _, s := range strings.Split(v, ",") {
		fd, err := strconv.Atoi(s)
		if err != nil || fd < 3 || fd > 1<<20 || len(out) == maxInherited {
			return nil, fmt.Errorf("%s=%q: want up to %d descriptors above 2", inheritedEnv, v, maxInherited)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("%s: descriptor %d: %w", inheritedEnv, fd, err)
		}
		unix.CloseOnExec(fd)
		out = append(out, os.NewFile(uintptr(fd), "inherited-"+s))
	}
	return out, nil
}
