// Package testenv holds what the tests and the lab share, once: the rule
// for tests that need root, a buffer that a logger and a test can share,
// and a sleep that a context ends.
package testenv

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// RequireRoot is the environment variable that CI sets to 1: then a test
// that needs root fails where it would skip.
const RequireRoot = "ABING_REQUIRE_ROOT_TESTS"

// NeedRoot skips t when the process is not root, saying why the test
// needs it (or fails it, with RequireRoot=1).
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		NotRoot(t, why)
	}
}

// NotRoot skips t, which cannot run for want of root (why says what
// needed it), or fails it with RequireRoot=1.
func NotRoot(t testing.TB, why any) {
	t.Helper()
	if os.Getenv(RequireRoot) == "1" {
		t.Fatalf("root-only test cannot run (%s=1): %v", RequireRoot, why)
	}
	t.Skipf("skipping: %v (run the tests as root; CI does)", why)
}

// SyncBuffer is a bytes.Buffer safe for a logger and a test to share.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Sleep waits for d, or returns ctx's error when ctx ends first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
