// Package version says which build of abing is running, from what the Go
// toolchain recorded in the binary: the main module's version (a tag, or a
// pseudo-version made of the commit's time and hash, "+dirty" when the
// checkout had changes), the commit and the Go release. Nothing is set at
// link time: a binary built from a checkout with `go build` or
// `go install` names its commit, and so does a packaged one.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// String is the version line of a binary whose build information is bi
// (debug.ReadBuildInfo; nil when there is none).
func String(bi *debug.BuildInfo) string {
	if bi == nil {
		return "unknown (no build information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var parts []string
	if rev, ok := setting(bi, "vcs.revision"); ok {
		c := rev[:min(12, len(rev))]
		if m, _ := setting(bi, "vcs.modified"); m == "true" {
			c += ", modified"
		}
		if t, ok := setting(bi, "vcs.time"); ok {
			c += ", " + t
		}
		parts = append(parts, "commit "+c)
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	if len(parts) == 0 {
		return v
	}
	return fmt.Sprintf("%s (%s)", v, strings.Join(parts, "; "))
}

// Binary is the version line of the running binary.
func Binary() string {
	bi, _ := debug.ReadBuildInfo()
	return String(bi)
}

func setting(bi *debug.BuildInfo, key string) (string, bool) {
	for _, s := range bi.Settings {
		if s.Key == key && s.Value != "" {
			return s.Value, true
		}
	}
	return "", false
}
