package meshagent

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
	"go.yaml.in/yaml/v3"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/netloc"
	"github.com/abing-net/abing/train"
)

// Path is one of a host's addresses, by the name of the network it is on
// (direct, overlay): every member measures every other on each path both
// have.
type Path struct {
	Name string
	Addr netip.Addr
}

// Settings are an agent's own settings: the agent section of its
// configuration file, and the flags of abing mesh agent, which win.
type Settings struct {
	// Paths in the order given; the first is the one serf gossips on
	// (unless Advertise says otherwise) and whose coordinates the
	// netloc API serves (unless NetlocPath says otherwise).
	Paths []Path `yaml:"-"`
	// PathsText is the paths as written: "direct=ADDR,overlay=ADDR" (a
	// YAML map in the file).
	PathsText map[string]string `yaml:"paths"`
	Join      []string          `yaml:"join"`      // members to join through, host:port; none: this node is the landmark
	Bind      string            `yaml:"bind"`      // serf's TCP and UDP address: DefaultBind
	Advertise string            `yaml:"advertise"` // the address others reach serf at: the first path's, with Bind's port
	Port      int               `yaml:"port"`      // the reflector's UDP port: train.DefaultPort
	Keyring   string            `yaml:"keyring"`   // gossip encryption keys, base64, one a line, the first in use (mode 600)
	Insecure  bool              `yaml:"insecure"`  // allow gossip without encryption beyond loopback
	Netloc    string            `yaml:"netloc"`    // the netloc API's TCP address: netloc.DefaultAddr ("none": off)
	// NetlocPath is the path whose coordinates the netloc API serves.
	NetlocPath string `yaml:"netloc_path"`
	// Refresh is how often the whole row is published again.
	Refresh Duration `yaml:"refresh"`
	// CoordMove publishes the coordinate when it has moved this far (in
	// predicted RTT) since last published.
	CoordMove Duration `yaml:"coord_move"`
	// Dimensions of the coordinates (plus a height).
	Dimensions int `yaml:"dimensions"`
	// EventSize bounds a user event (name and payload), so that one fits
	// a gossip packet.
	EventSize int `yaml:"event_size"`
	// Profile is memberlist's timing: lan (the default), wan or local.
	Profile string `yaml:"profile"`
}

// Duration is a time.Duration written "10m" in YAML.
type Duration time.Duration

// UnmarshalText reads a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Defaults of an agent's settings.
const (
	DefaultBindPort = 7946
	DefaultRefresh  = 10 * time.Minute
	// DefaultCoordMove: Vivaldi's median error is about a tenth of the
	// RTT (Dabek et al.); 2 ms is well inside that on a LAN and far
	// inside on a WAN, and keeps a settled coordinate from publishing
	// on every run.
	DefaultCoordMove  = 2 * time.Millisecond
	DefaultDimensions = 2
	// DefaultEventSize: serf accepts user events of up to 9 KB, but
	// gossip carries them in UDP packets of memberlist's 1,400 bytes; a
	// larger event would need IP fragmentation, which paths drop. 1,000
	// bytes leave room for serf's and memberlist's headers.
	DefaultEventSize = 1000
	MinEventSize     = 400
	// MaxPaths bounds the paths of a member (and so its serf tags).
	MaxPaths = 8
)

// DefaultBind is serf's address by default: every interface, serf's port.
var DefaultBind = ":" + strconv.Itoa(DefaultBindPort)

// ParsePaths reads "direct=198.51.100.5,overlay=2001:db8::5".
func ParsePaths(s string) ([]Path, error) {
	var out []Path
	for _, kv := range strings.Split(s, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("path %q: want NAME=ADDRESS", kv)
		}
		p, err := newPath(name, addr)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
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

// DecodeSettings reads the agent section of a configuration file; an
// absent section is no settings.
func DecodeSettings(n *yaml.Node) (Settings, error) {
	var s Settings
	if n.IsZero() {
		return s, nil
	}
	// yaml.Node.Decode cannot refuse unknown keys; a decoder can.
	b, err := yaml.Marshal(n)
	if err != nil {
		return s, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("agent section (line %d): %w", n.Line, err)
	}
	for _, name := range slices.Sorted(maps.Keys(s.PathsText)) {
		p, err := newPath(name, s.PathsText[name])
		if err != nil {
			return s, fmt.Errorf("agent section: %w", err)
		}
		s.Paths = append(s.Paths, p)
	}
	return s, nil
}

// Complete fills in the defaults and checks everything.
func (s *Settings) Complete() error {
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
	if s.Bind == "" {
		s.Bind = DefaultBind
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
	for _, j := range s.Join {
		if _, _, err := splitPort(j, DefaultBindPort); err != nil {
			return fmt.Errorf("join %q: %w", j, err)
		}
	}
	if s.Port == 0 {
		s.Port = train.DefaultPort
	}
	if s.Port < 1 || s.Port > 65535 {
		return fmt.Errorf("port %d: want 1 to 65535", s.Port)
	}
	if s.Netloc == "" {
		s.Netloc = netloc.DefaultAddr
	}
	if s.NetlocPath == "" {
		s.NetlocPath = s.Paths[0].Name
	}
	if !seen[s.NetlocPath] {
		return fmt.Errorf("netloc path %q: not one of the paths", s.NetlocPath)
	}
	if s.Refresh == 0 {
		s.Refresh = Duration(DefaultRefresh)
	}
	if s.CoordMove == 0 {
		s.CoordMove = Duration(DefaultCoordMove)
	}
	if s.Dimensions == 0 {
		s.Dimensions = DefaultDimensions
	}
	if s.EventSize == 0 {
		s.EventSize = DefaultEventSize
	}
	switch {
	case s.Refresh < Duration(time.Second):
		return fmt.Errorf("refresh %v: want at least 1s", time.Duration(s.Refresh))
	case s.CoordMove < 0:
		return fmt.Errorf("coord_move %v: must not be negative", time.Duration(s.CoordMove))
	case s.Dimensions < 1 || s.Dimensions > 8:
		return fmt.Errorf("dimensions %d: want 1 to 8", s.Dimensions)
	case s.EventSize < MinEventSize || s.EventSize > serf.UserEventSizeLimit:
		return fmt.Errorf("event_size %d: want %d to %d bytes (serf's limit)", s.EventSize, MinEventSize, serf.UserEventSizeLimit)
	}
	switch s.Profile {
	case "":
		s.Profile = "lan"
	case "lan", "wan", "local":
	default:
		return fmt.Errorf("profile %q: want lan, wan or local", s.Profile)
	}
	if s.Keyring == "" && !s.Insecure && !loopback(bindHost) {
		return fmt.Errorf("gossip on %s without encryption: give a keyring (abing mesh keygen > FILE; chmod 600 FILE) or, on a network you trust, --insecure", s.Bind)
	}
	return nil
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

// Key sizes memberlist accepts: AES-128, -192 or -256.
var keySizes = []int{16, 24, 32}

// LoadKeyring reads a keyring file: base64 keys of 16, 24 or 32 bytes,
// one a line (# starts a comment); the first encrypts, all decrypt, so
// that keys can be rotated. Like a keys file, only its owner may read it.
func LoadKeyring(path string) (*memberlist.Keyring, error) {
	b, err := auth.ReadPrivate(path, "keyring")
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil || !slices.Contains(keySizes, len(k)) {
			// The line is not quoted: it may be a key.
			return nil, fmt.Errorf("keyring %s line %d: want a base64 key of 16, 24 or 32 bytes (abing mesh keygen makes one)", path, i+1)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("keyring %s: no key", path)
	}
	kr, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	return kr, nil
}
