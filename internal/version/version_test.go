package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, c := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build information", nil, "unknown (no build information)"},
		{"a test binary", &debug.BuildInfo{GoVersion: "go1.26.8"}, "(devel) (go1.26.8)"},
		{"a clean checkout", &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Version: "v0.0.0-20261207063202-1c73106abcde"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "1c73106abcdef0123456789"},
				{Key: "vcs.time", Value: "2026-12-07T06:32:02Z"},
				{Key: "vcs.modified", Value: "false"},
			},
		}, "v0.0.0-20261207063202-1c73106abcde (commit 1c73106abcde, 2026-12-07T06:32:02Z; go1.26.8)"},
		{"a changed checkout", &debug.BuildInfo{
			Main:     debug.Module{Version: "v0.0.0-20261207063202-1c73106abcde+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "1c73"}, {Key: "vcs.modified", Value: "true"}},
		}, "v0.0.0-20261207063202-1c73106abcde+dirty (commit 1c73, modified)"},
		{"a tag", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, "v1.2.0"},
	} {
		if got := String(c.bi); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if b := Binary(); !strings.Contains(b, "go1.") {
		t.Errorf("this test binary: %q names no Go release", b)
	}
}
