package privilege

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Drop switches every thread of the process to the user named name and its
// primary group, with no supplementary groups, if the process runs as root;
// it does nothing otherwise. It reports whether it switched.
func Drop(name string) (bool, error) {
	if os.Geteuid() != 0 {
		return false, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return false, fmt.Errorf("drop privileges to %q: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return false, fmt.Errorf("drop privileges to %q: uid %q, gid %q", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return false, fmt.Errorf("drop privileges to %q: that user is root", name)
	}
	// The kernel keeps credentials per thread. The syscall package's
	// Setgroups, Setgid and Setuid apply to every thread of the process
	// (since Go 1.16); x/sys/unix's Setgroups changes the calling thread
	// only, which once left seven of eight threads in root's groups.
	if err := syscall.Setgroups([]int{}); err != nil {
		return false, fmt.Errorf("drop privileges: setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return false, fmt.Errorf("drop privileges: setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return false, fmt.Errorf("drop privileges: setuid %d: %w", uid, err)
	}
	if unix.Setuid(0) == nil {
		return false, ErrStillRoot
	}
	return true, nil
}

// DropCapabilities clears every capability (effective, permitted,
// inheritable, ambient) of every thread, for a daemon started as an
// unprivileged user with capabilities (systemd's AmbientCapabilities) that
// needs none once set up. It reports whether there were any to drop.
//
// The kernel keeps capabilities per thread, and Go can change every
// thread's only with syscall.AllThreadsSyscall, which a binary linked with
// cgo cannot use: such a binary gets ErrCgo, and gives them up with
// Reexec.
func DropCapabilities() (bool, error) {
	held, err := capabilities()
	if err != nil || !held {
		return false, err
	}
	if _, _, e := syscall.AllThreadsSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e != 0 {
		if e == syscall.ENOTSUP {
			return false, ErrCgo
		}
		return false, fmt.Errorf("drop capabilities: clearing ambient ones: %w", e)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var none [2]unix.CapUserData
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&none[0])), 0); e != 0 {
		return false, fmt.Errorf("drop capabilities: capset: %w", e)
	}
	if held, err := capabilities(); err != nil || held {
		return false, fmt.Errorf("drop capabilities: still held after capset (%v)", err)
	}
	return true, nil
}

// capabilities says whether the calling thread holds any capability.
func capabilities() (bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, fmt.Errorf("capget: %w", err)
	}
	// Ambient capabilities are a subset of permitted and inheritable.
	for _, d := range data {
		if d.Effective|d.Permitted|d.Inheritable != 0 {
			return true, nil
		}
	}
	return false, nil
}
