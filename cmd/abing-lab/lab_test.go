//go:build linux

package main

import (
	"io"
	"strings"
	"testing"
)

// The demo's numbers are checked before anything is built (no root needed
// to be told): NaN and infinities included.
func TestDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--rate", "NaN"}, {"--rate", "+Inf"}, {"--cross", "NaN"}, {"--rate", "0"}, {"--cross", "30"}} {
		cmd := demoCommand()
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "want 0 < --cross") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
