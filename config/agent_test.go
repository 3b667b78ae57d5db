package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/abing-net/abing/train"
)

func TestAgentChecks(t *testing.T) {
	direct := func(s string) []Path { p, _ := ParsePaths(s); return p }
	// with is the defaults with some settings changed.
	with := func(f func(a *Agent)) Agent {
		a := DefaultAgent()
		f(&a)
		return a
	}
	for _, tc := range []struct {
		name string
		s    Agent
		want string // "" for no error
	}{
		{"loopback without a keyring", with(func(a *Agent) { a.Paths = direct("direct=127.0.0.1"); a.Bind = "127.0.0.1:7946" }), ""},
		{"every interface without a keyring", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5") }), "without encryption"},
		{"a public address without a keyring", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Bind = "198.51.100.5:7946" }), "without encryption"},
		{"insecure", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Insecure = true }), ""},
		{"a keyring", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Keyring = "/etc/abing/mesh.keyring" }), ""},
		{"no paths", with(func(a *Agent) { a.Insecure = true }), "no paths"},
		{"a path twice", with(func(a *Agent) {
			a.Paths = append(direct("direct=198.51.100.5"), direct("direct=198.51.100.6")...)
			a.Insecure = true
		}), "twice"},
		{"netloc path unknown", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.NetlocPath = "overlay"; a.Insecure = true }), "netloc path"},
		{"bad bind", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Bind = "x:y:z"; a.Insecure = true }), "bind"},
		{"bad advertise", with(func(a *Agent) {
			a.Paths = direct("direct=198.51.100.5")
			a.Advertise = "0.0.0.0:7946"
			a.Insecure = true
		}), "advertise"},
		{"bad join", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Join = []string{"lab-a"}; a.Insecure = true }), "join"},
		{"bad port", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Port = 70000; a.Insecure = true }), "port"},
		{"refresh too short", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Refresh = Duration(1); a.Insecure = true }), "refresh"},
		{"event size too small", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.EventSize = 100; a.Insecure = true }), "event_size"},
		{"event size past serf's", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.EventSize = 10000; a.Insecure = true }), "event_size"},
		{"bad profile", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Profile = "fast"; a.Insecure = true }), "profile"},
		{"routes by rtt", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Routes.Metric = "rtt"; a.Insecure = true }), ""},
		{"routes by hops", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Routes.Metric = "hops"; a.Insecure = true }), "routes: metric"},
		{"a margin of 100 %", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Routes.Margin = 1; a.Insecure = true }), "routes: margin"},
		{"a negative hold", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Routes.Hold = -1; a.Insecure = true }), "routes: hold"},
		{"no smoothing", with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5"); a.Routes.Smooth = 0; a.Insecure = true }), "routes: smooth"},
	} {
		err := tc.s.complete()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	s := with(func(a *Agent) { a.Paths = direct("direct=198.51.100.5,overlay=fd00::5"); a.Insecure = true })
	if err := s.complete(); err == nil || !strings.Contains(err.Error(), "--path-prefixes overlay=fd00::/64") {
		t.Errorf("an overlay address outside path_prefixes: %v", err)
	}
	s.PathPrefixes = []PathPrefix{{"overlay", netip.MustParsePrefix("fd00::/64")}}
	if err := s.complete(); err != nil {
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
	for _, bad := range []string{"overlay", "overlay=10.8.0.5", "overlay=0.0.0.0/0", "overlay=::/0", "a b=10.8.0.0/16", "overlay=fe80::/64%eth0"} {
		if _, err := ParsePathPrefixes(bad); err == nil {
			t.Errorf("--path-prefixes %q: no error", bad)
		}
	}
	// What a member may advertise: its gossip address, or an address in
	// a network listed for that very path.
	s.PathPrefixes = []PathPrefix{{"overlay", netip.MustParsePrefix("10.8.0.0/16")}}
	gossip := netip.MustParseAddr("198.51.100.7")
	for _, c := range []struct {
		path, addr string
		want       bool
	}{
		{"direct", "198.51.100.7", true}, {"overlay", "198.51.100.7", true}, {"overlay", "10.8.3.4", true},
		{"direct", "10.8.3.4", false}, {"overlay", "10.9.0.1", false}, {"direct", "127.0.0.99", false},
	} {
		if got := s.PathAllowed(c.path, netip.MustParseAddr(c.addr), gossip); got != c.want {
			t.Errorf("%s=%s from %s: allowed %v", c.path, c.addr, gossip, got)
		}
	}
}

func TestAgentSection(t *testing.T) {
	cfg, err := ParseAgent([]byte("agent:\n  paths: {overlay: \"fd00::5\", direct: 198.51.100.5}\n  path_prefixes: {overlay: [\"fd00::/64\"]}\n  join: [198.51.100.1]\n  refresh: 5m\n  coord_move: 0s\n  insecure: true\n"), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Agent
	if len(s.Paths) != 2 || s.Paths[0].Name != "direct" || s.Join[0] != "198.51.100.1" || len(s.PathPrefixes) != 1 || s.PathPrefixes[0].Prefix.String() != "fd00::/64" || s.Refresh != Duration(300e9) || s.CoordMove != 0 {
		t.Errorf("%+v", s)
	}
	if _, err := ParseAgent([]byte("agent:\n  pathz: {}\n"), "a.yaml"); err == nil || !strings.Contains(err.Error(), "pathz") {
		t.Errorf("an unknown key: %v", err)
	}
}
