package meshagent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/abing-net/abing/train"
)

func TestSettings(t *testing.T) {
	direct := func(s string) []Path { p, _ := ParsePaths(s); return p }
	for _, tc := range []struct {
		name string
		s    Settings
		want string // "" for no error
	}{
		{"loopback without a keyring", Settings{Paths: direct("direct=127.0.0.1"), Bind: "127.0.0.1:7946"}, ""},
		{"every interface without a keyring", Settings{Paths: direct("direct=198.51.100.5")}, "without encryption"},
		{"a public address without a keyring", Settings{Paths: direct("direct=198.51.100.5"), Bind: "198.51.100.5:7946"}, "without encryption"},
		{"insecure", Settings{Paths: direct("direct=198.51.100.5"), Insecure: true}, ""},
		{"a keyring", Settings{Paths: direct("direct=198.51.100.5"), Keyring: "/etc/abing/mesh.keyring"}, ""},
		{"no paths", Settings{Insecure: true}, "no paths"},
		{"a path twice", Settings{Paths: append(direct("direct=198.51.100.5"), direct("direct=198.51.100.6")...), Insecure: true}, "twice"},
		{"netloc path unknown", Settings{Paths: direct("direct=198.51.100.5"), NetlocPath: "overlay", Insecure: true}, "netloc path"},
		{"bad bind", Settings{Paths: direct("direct=198.51.100.5"), Bind: "x:y:z", Insecure: true}, "bind"},
		{"bad advertise", Settings{Paths: direct("direct=198.51.100.5"), Advertise: "0.0.0.0:7946", Insecure: true}, "advertise"},
		{"bad join", Settings{Paths: direct("direct=198.51.100.5"), Join: []string{"lab-a"}, Insecure: true}, "join"},
		{"bad port", Settings{Paths: direct("direct=198.51.100.5"), Port: 70000, Insecure: true}, "port"},
		{"refresh too short", Settings{Paths: direct("direct=198.51.100.5"), Refresh: Duration(1), Insecure: true}, "refresh"},
		{"event size too small", Settings{Paths: direct("direct=198.51.100.5"), EventSize: 100, Insecure: true}, "event_size"},
		{"event size past serf's", Settings{Paths: direct("direct=198.51.100.5"), EventSize: 10000, Insecure: true}, "event_size"},
		{"bad profile", Settings{Paths: direct("direct=198.51.100.5"), Profile: "fast", Insecure: true}, "profile"},
	} {
		err := tc.s.Complete()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	s := Settings{Paths: direct("direct=198.51.100.5,overlay=fd00::5"), Insecure: true}
	if err := s.Complete(); err != nil {
		t.Fatal(err)
	}
	if s.Advertise != "198.51.100.5:7946" || s.Port != train.DefaultPort || s.Netloc != "127.0.0.1:4001" || s.NetlocPath != "direct" || s.Profile != "lan" {
		t.Errorf("defaults: %+v", s)
	}
	for _, bad := range []string{"direct", "direct=", "direct=lab-a", "a b=198.51.100.5", "direct=0.0.0.0", "direct=fe80::1%eth0"} {
		if _, err := ParsePaths(bad); err == nil {
			t.Errorf("--paths %q: no error", bad)
		}
	}
}

func TestDecodeSettings(t *testing.T) {
	var doc struct {
		Agent yaml.Node `yaml:"agent"`
	}
	if err := yaml.Unmarshal([]byte("agent:\n  paths: {overlay: \"fd00::5\", direct: 198.51.100.5}\n  join: [198.51.100.1]\n  refresh: 5m\n"), &doc); err != nil {
		t.Fatal(err)
	}
	s, err := DecodeSettings(&doc.Agent)
	if err != nil || len(s.Paths) != 2 || s.Paths[0].Name != "direct" || s.Join[0] != "198.51.100.1" || s.Refresh != Duration(300e9) {
		t.Errorf("%+v %v", s, err)
	}
	if err := yaml.Unmarshal([]byte("agent:\n  pathz: {}\n"), &doc); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeSettings(&doc.Agent); err == nil || !strings.Contains(err.Error(), "pathz") {
		t.Errorf("an unknown key: %v", err)
	}
}

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
