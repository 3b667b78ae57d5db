package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The agent refuses what it cannot run, before it opens anything.
func TestMeshAgentErrors(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.keyring")
	os.WriteFile(open, []byte("9pB0yQ1GHQyVmbSAZ7H8U1mBVmXJxG2ZR7qXS5Xy1/4=\n"), 0o644)
	conf := filepath.Join(dir, "agent.yaml")
	os.WriteFile(conf, []byte("targets:\n  - address: 198.51.100.7\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agent"}, "no paths"},
		{[]string{"agent", "--paths", "direct"}, "NAME=ADDRESS"},
		{[]string{"agent", "--paths", "direct=198.51.100.5"}, "without encryption"},
		{[]string{"agent", "--paths", "direct=198.51.100.5", "--keyring", open}, "chmod 600"},
		{[]string{"agent", "--paths", "direct=127.0.0.1", "--bind", "127.0.0.1:0", "--node", "a b"}, "node name"},
		{[]string{"agent", "--paths", "direct=127.0.0.1", "--bind", "127.0.0.1:0", "--interval", "10ms"}, "at least 1s"},
		{[]string{"agent", "--config", conf, "--paths", "direct=127.0.0.1"}, "no targets to list"},
		{[]string{"agent", "--paths", "direct=127.0.0.1", "--bind", "127.0.0.1:0", "--log.format", "xml"}, "--log.format"},
	} {
		out, err := runMesh(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q\n%s", tc.args, err, tc.want, out)
		}
	}
}

func TestMeshKeygen(t *testing.T) {
	a, err := runMesh(t, "keygen")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := runMesh(t, "keygen")
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a))
	if err != nil || len(k) != 32 || a == b {
		t.Errorf("keygen: %q, %q: %v", a, b, err)
	}
}

// The systemd unit starts the agent with flags it has.
func TestAgentUnitFlags(t *testing.T) {
	b, err := os.ReadFile("../../deploy/systemd/abing-mesh-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=\S+ mesh agent (.*)$`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("no ExecStart running abing mesh agent")
	}
	cmd := meshAgentCommand()
	for _, f := range regexp.MustCompile(`--([a-z.-]+)`).FindAllStringSubmatch(m[1], -1) {
		if cmd.Flags().Lookup(f[1]) == nil {
			t.Errorf("the unit gives --%s, which abing mesh agent does not have", f[1])
		}
	}
}
