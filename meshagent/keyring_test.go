package meshagent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/serf/serf"

	"github.com/abing-net/abing/config"
)

func TestLoadKeyring(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const k1, k2 = "9pB0yQ1GHQyVmbSAZ7H8U1mBVmXJxG2ZR7qXS5Xy1/4=", "AAECAwQFBgcICQoLDA0ODw=="
	kr, err := LoadKeyring(write("good", "# mesh\n"+k1+"\n"+k2+"  # the old one\n", 0o600))
	if err != nil || len(kr.GetKeys()) != 2 || len(kr.GetPrimaryKey()) != 32 {
		t.Fatalf("%v %v", kr, err)
	}
	for _, tc := range []struct {
		name, text string
		mode       os.FileMode
		want       string
	}{
		{"readable by others", k1 + "\n", 0o644, "chmod 600"},
		{"not base64", "not-a-key!\n", 0o600, "line 1"},
		{"a key of 10 bytes", "AAECAwQFBgcICQ==\n", 0o600, "16, 24 or 32"},
		{"empty", "# nothing\n", 0o600, "no key"},
	} {
		_, err := LoadKeyring(write(tc.name, tc.text, tc.mode))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "9pB0") {
			t.Errorf("%s: the error shows the key: %v", tc.name, err)
		}
	}
}

// config.MaxEventSize, which the agent section is checked against, is
// serf's limit.
func TestEventSizeLimit(t *testing.T) {
	if config.MaxEventSize != serf.UserEventSizeLimit {
		t.Errorf("config.MaxEventSize %d, serf.UserEventSizeLimit %d", config.MaxEventSize, serf.UserEventSizeLimit)
	}
}
