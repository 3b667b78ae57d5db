package privilege

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestInherited: what a re-executed image takes from its environment: the
// descriptors named, checked; nothing when not re-executed; a malformed or
// stale variable is an error, not a guess.
func TestInherited(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	fd := strconv.Itoa(p[0]) // owned by the *os.File Inherited returns
	for _, c := range []struct {
		env  string // "-": unset
		n    int
		want string // in the error
	}{
		{"-", 0, ""},
		{fd, 1, ""},
		{fd, 0, "descriptor " + fd}, // closed by the case before
		{"2", 0, "above 2"},
		{"x", 0, "above 2"},
		{"1,2,3,4,5,6,7,8,9", 0, "above 2"},
		{"999999", 0, "descriptor 999999"},
	} {
		if c.env == "-" {
			os.Unsetenv(inheritedEnv)
		} else {
			t.Setenv(inheritedEnv, c.env)
		}
		files, err := Inherited()
		for _, f := range files {
			f.Close()
		}
		if len(files) != c.n || (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s=%s: %d files, %v", inheritedEnv, c.env, len(files), err)
		}
		if _, set := os.LookupEnv(inheritedEnv); set {
			t.Errorf("%s=%s: still in the environment", inheritedEnv, c.env)
		}
	}
}
