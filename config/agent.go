package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/abing-net/abing/mesh"
)

// Agent is the agent section of abing mesh agent's configuration; the
// command's flags are laid over it.
type Agent struct {
	// Paths in the order given; the first is the one serf gossips on
	// (unless Advertise says otherwise) and whose coordinates the
	// netloc API serves (unless NetlocPath says otherwise).
	Paths []Path `yaml:"-"`
	// PathsText is the paths as the file writes them, a map from name to
	// address, taken in the order of the names.
	PathsText map[string]string `yaml:"paths"`
	// PathPrefixes are, by path name, the networks in which a member may
	// advertise that path's address. Without, a member's every path
	// address must be its gossip address: a holder of the gossip key
	// cannot aim the agents' probes at an address of its choosing. An
	// overlay's own addresses (WireGuard, VPN) differ from the gossip's:
	// list the overlay's network here (the same on every member).
	PathPrefixes     []PathPrefix        `yaml:"-"`
	PathPrefixesText map[string][]string `yaml:"path_prefixes"`
	Join             []string            `yaml:"join"`      // members to join through, host:port; none: this node is the landmark
	Bind             string              `yaml:"bind"`      // serf's TCP and UDP address
	Advertise        string              `yaml:"advertise"` // the address others reach serf at: default the first path's, with Bind's port
	Port             int                 `yaml:"port"`      // the reflector's UDP port (0: any free port, which the tags announce)
	Keyring          string              `yaml:"keyring"`   // gossip encryption keys, base64, one a line, the first in use (mode 600)
	Insecure         bool                `yaml:"insecure"`  // allow gossip without encryption beyond loopback
	Netloc           string              `yaml:"netloc"`    // the netloc API's TCP address ("none": off)
	// NetlocPath is the path whose coordinates the netloc API serves:
	// default the first.
	NetlocPath string `yaml:"netloc_path"`
	// Refresh is how often the whole row is published again.
	Refresh Duration `yaml:"refresh"`
	// CoordMove publishes the coordinate when it has moved this far (in
	// predicted RTT) since last published; 0 publishes every move.
	CoordMove Duration `yaml:"coord_move"`
	// Dimensions of the coordinates (plus a height).
	Dimensions int `yaml:"dimensions"`
	// EventSize bounds a user event (name and payload), so that one fits
	// a gossip packet.
	EventSize int `yaml:"event_size"`
	// Profile is memberlist's timing: lan, wan or local.
	Profile string `yaml:"profile"`
	// Routes is how the agent chooses its routes.
	Routes Routes `yaml:"routes"`
}

// Routes is the discipline of the agent's route table (docs/mesh.md,
// Routes): a route is replaced only by one better on both the latest and
// the smoothed metric by Margin of the current route's value and at least
// MarginAbs, a route just installed is kept for Hold, and a change back
// to the route replaced within FlapWindow counts as a flap.
type Routes struct {
	Metric     string   `yaml:"metric"`      // cost, rtt, or bandwidth (the widest path)
	Margin     float64  `yaml:"margin"`      // of the current route's value, 0 to 1
	MarginAbs  float64  `yaml:"margin_abs"`  // in the metric's unit
	Hold       Duration `yaml:"hold"`        // the least time a new route is kept
	Smooth     Duration `yaml:"smooth"`      // time constant of the smoothed metric
	FlapWindow Duration `yaml:"flap_window"` // a change back within it is a flap
}

// check says what is wrong with the route settings.
func (r Routes) check() error {
	switch {
	case !slices.Contains(mesh.Metrics, r.Metric):
		return fmt.Errorf("routes: metric %q: want one of %s", r.Metric, strings.Join(mesh.Metrics, ", "))
	case !(r.Margin >= 0 && r.Margin < 1):
		return fmt.Errorf("routes: margin %g: want 0 to below 1", r.Margin)
	case !(r.MarginAbs >= 0) || math.IsInf(r.MarginAbs, 0):
		return fmt.Errorf("routes: margin_abs %g: want a finite number, not negative", r.MarginAbs)
	case r.Hold < 0 || r.FlapWindow < 0:
		return fmt.Errorf("routes: hold %v, flap_window %v: must not be negative", r.Hold, r.FlapWindow)
	case r.Smooth < Duration(time.Second):
		return fmt.Errorf("routes: smooth %v: want at least 1s", r.Smooth)
	}
	return nil
}

// Path is one of a host's addresses, by the name of the network it is on
// (direct, overlay): every member measures every other on each path both
// have.
type Path struct {
	Name string
	Addr netip.Addr
}

// PathPrefix is a network in which members may advertise path Name.
type PathPrefix struct {
	Name   string
	Prefix netip.Prefix
}

// MaxPathPrefixes bounds the prefixes of a section.
const MaxPathPrefixes = 64

// ParsePathPrefixes reads "overlay=fd00:ab::/64,overlay=10.8.0.0/16".
func ParsePathPrefixes(s string) ([]PathPrefix, error) {
	return parsePairs(s, "path prefix %q: want NAME=PREFIX", newPathPrefix)
}

// parsePairs reads "NAME=VALUE,..." with parse, each pair's error said
// with bad.
func parsePairs[T any](s, bad string, parse func(name, value string) (T, error)) ([]T, error) {
	var out []T
	for _, kv := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf(bad, kv)
		}
		v, err := parse(name, value)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func newPathPrefix(name, prefix string) (PathPrefix, error) {
	if err := CheckName(name); err != nil {
		return PathPrefix{}, fmt.Errorf("path_prefixes: path %w", err)
	}
	p, err := netip.ParsePrefix(prefix)
	if err != nil || p.Addr().Zone() != "" {
		return PathPrefix{}, fmt.Errorf("path_prefixes: %s: %q: want a network, e.g. 10.8.0.0/16 or fd00:ab::/64", name, prefix)
	}
	if p.Bits() == 0 {
		return PathPrefix{}, fmt.Errorf("path_prefixes: %s: %s is every address: name the overlay's own network", name, p)
	}
	return PathPrefix{Name: name, Prefix: p.Masked()}, nil
}

// PathAllowed says whether a member whose gossip address is gossip may
// advertise addr for path name: addr is its gossip address, or inside one
// of the section's prefixes for that path.
func (s *Agent) PathAllowed(name string, addr, gossip netip.Addr) bool {
	if addr == gossip.Unmap() {
		return true
	}
	for _, p := range s.PathPrefixes {
		if p.Name == name && p.Prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// MaxNameLen bounds a node's or a path's name.
const MaxNameLen = 64

// CheckName says whether s is a node or path name: 1 to MaxNameLen
// letters, digits, '.', '_' or '-'.
func CheckName(s string) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("name %q: want 1 to %d characters", s, MaxNameLen)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name %q: want letters, digits, '.', '_' or '-'", s)
		}
	}
	return nil
}

// ParsePaths reads "direct=198.51.100.5,overlay=2001:db8::5".
func ParsePaths(s string) ([]Path, error) {
	return parsePairs(s, "path %q: want NAME=ADDRESS", newPath)
}

func newPath(name, addr string) (Path, error) {
	if err := CheckName(name); err != nil {
		return Path{}, fmt.Errorf("path %w", err)
	}
	a, err := netip.ParseAddr(addr)
	if err != nil || a.IsUnspecified() || a.Zone() != "" {
		return Path{}, fmt.Errorf("path %s: address %q: want the host's IP address on that path", name, addr)
	}
	return Path{Name: name, Addr: a.Unmap()}, nil
}

// readPaths makes Paths of the file's PathsText.
func (s *Agent) readPaths() error {
	s.Paths = nil
	for _, name := range slices.Sorted(maps.Keys(s.PathsText)) {
		p, err := newPath(name, s.PathsText[name])
		if err != nil {
			return err
		}
		s.Paths = append(s.Paths, p)
	}
	s.PathPrefixes = nil
	for _, name := range slices.Sorted(maps.Keys(s.PathPrefixesText)) {
		for _, prefix := range s.PathPrefixesText[name] {
			p, err := newPathPrefix(name, prefix)
			if err != nil {
				return err
			}
			s.PathPrefixes = append(s.PathPrefixes, p)
		}
	}
	return nil
}

// complete checks the section and derives Advertise and NetlocPath from
// the first path when they are not given.
func (s *Agent) complete() error {
	if len(s.Paths) == 0 {
		return errors.New("no paths: give this host's address on each network, e.g. --paths direct=198.51.100.5")
	}
	if len(s.Paths) > MaxPaths {
		return fmt.Errorf("%d paths: at most %d", len(s.Paths), MaxPaths)
	}
	seen := map[string]bool{}
	for _, p := range s.Paths {
		if seen[p.Name] {
			return fmt.Errorf("path %s given twice", p.Name)
		}
		seen[p.Name] = true
	}
	bindHost, bindPort, err := splitPort(s.Bind, DefaultBindPort)
	if err != nil {
		return fmt.Errorf("bind %q: %w", s.Bind, err)
	}
	if s.Advertise == "" {
		s.Advertise = net.JoinHostPort(s.Paths[0].Addr.String(), strconv.Itoa(bindPort))
	}
	if h, _, err := splitPort(s.Advertise, bindPort); err != nil {
		return fmt.Errorf("advertise %q: %w", s.Advertise, err)
	} else if a, err := netip.ParseAddr(h); err != nil || a.IsUnspecified() {
		return fmt.Errorf("advertise %q: want the IP address others reach this host at", s.Advertise)
	}
	if len(s.PathPrefixes) > MaxPathPrefixes {
		return fmt.Errorf("path_prefixes: %d networks, at most %d", len(s.PathPrefixes), MaxPathPrefixes)
	}
	// What the other members check of this one's paths (with the same
	// section): said here, not discovered from their logs.
	gossip, _ := s.AdvertiseAddr()
	ga, _ := netip.ParseAddr(gossip)
	for _, p := range s.Paths {
		if !s.PathAllowed(p.Name, p.Addr, ga) {
			return fmt.Errorf("path %s: %s is not the gossip address %s, and path_prefixes lists no network of path %s that holds it: the other members would not measure it (list the network, e.g. --path-prefixes %s=%s, on every member)",
				p.Name, p.Addr, ga, p.Name, p.Name, netip.PrefixFrom(p.Addr, p.Addr.BitLen()/2).Masked())
		}
	}
	for _, j := range s.Join {
		if _, _, err := splitPort(j, DefaultBindPort); err != nil {
			return fmt.Errorf("join %q: %w", j, err)
		}
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("port %d: want 0 (any free port) to 65535", s.Port)
	}
	if s.Netloc == "" {
		return errors.New(`netloc: empty (want HOST:PORT, or "none")`)
	}
	if s.NetlocPath == "" {
		s.NetlocPath = s.Paths[0].Name
	}
	if !seen[s.NetlocPath] {
		return fmt.Errorf("netloc path %q: not one of the paths", s.NetlocPath)
	}
	switch {
	case s.Refresh < Duration(time.Second):
		return fmt.Errorf("refresh %v: want at least 1s", s.Refresh)
	case s.CoordMove < 0:
		return fmt.Errorf("coord_move %v: must not be negative", s.CoordMove)
	case s.Dimensions < 1 || s.Dimensions > 8:
		return fmt.Errorf("dimensions %d: want 1 to 8", s.Dimensions)
	case s.EventSize < MinEventSize || s.EventSize > MaxEventSize:
		return fmt.Errorf("event_size %d: want %d to %d bytes (serf's limit)", s.EventSize, MinEventSize, MaxEventSize)
	}
	switch s.Profile {
	case "lan", "wan", "local":
	default:
		return fmt.Errorf("profile %q: want lan, wan or local", s.Profile)
	}
	if err := s.Routes.check(); err != nil {
		return err
	}
	if s.Keyring == "" && !s.Insecure && !loopback(bindHost) {
		return fmt.Errorf("gossip on %s without encryption: give a keyring (abing mesh keygen > FILE; chmod 600 FILE) or, on a network you trust, --insecure", s.Bind)
	}
	return nil
}

// BindAddr is serf's bind address and port of a completed section ("" is
// every interface).
func (s *Agent) BindAddr() (string, int) {
	h, p, _ := splitPort(s.Bind, DefaultBindPort)
	return h, p
}

// AdvertiseAddr is the address and port others reach serf at, of a
// completed section.
func (s *Agent) AdvertiseAddr() (string, int) {
	_, bp := s.BindAddr()
	h, p, _ := splitPort(s.Advertise, bp)
	return h, p
}

// loopback says whether host is a loopback address; "" and 0.0.0.0 are
// every interface.
func loopback(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func splitPort(hostport string, def int) (string, int, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		if _, aerr := netip.ParseAddr(hostport); aerr != nil {
			return "", 0, errors.New("want HOST:PORT or an IP address")
		}
		return hostport, def, nil
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("port %q: want 0 to 65535", port)
	}
	return host, p, nil
}
