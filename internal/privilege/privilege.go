// Package privilege gives up root, or the capabilities a daemon was started
// with, after it has done what needed them (binding a socket, enabling
// hardware timestamps on a NIC).
package privilege

import "errors"

// ErrStillRoot is returned when a drop appeared to succeed but the process
// could still become root again.
var ErrStillRoot = errors.New("privileges not dropped: setuid(0) still succeeds")

// ErrCgo is returned by DropCapabilities in a binary linked with cgo, which
// cannot change the capabilities of every thread: Reexec gives them up.
var ErrCgo = errors.New("capabilities cannot be dropped from every thread by a binary built with cgo (re-execute it: Reexec)")
