// Package privilege gives up root after a daemon has done what needed it
// (binding a socket, enabling hardware timestamps on a NIC).
package privilege

import "errors"

// ErrStillRoot is returned when a drop appeared to succeed but the process
// could still become root again.
var ErrStillRoot = errors.New("privileges not dropped: setuid(0) still succeeds")
