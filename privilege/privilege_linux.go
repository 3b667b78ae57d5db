package privilege

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"

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
