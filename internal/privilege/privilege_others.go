//go:build !linux

package privilege

import (
	"errors"
	"os"
)

// ErrNeedsLinux is what Drop and DropCapabilities return on other systems.
var ErrNeedsLinux = errors.New("dropping privileges needs Linux")

// Drop returns ErrNeedsLinux.
func Drop(name string) (bool, error) { return false, ErrNeedsLinux }

// DropCapabilities returns ErrNeedsLinux.
func DropCapabilities() (bool, error) { return false, ErrNeedsLinux }

// Reexec returns ErrNeedsLinux.
func Reexec(files ...*os.File) error { return ErrNeedsLinux }

// Inherited returns none: nothing re-executes on this system.
func Inherited() ([]*os.File, error) { return nil, nil }
