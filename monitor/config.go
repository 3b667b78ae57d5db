package monitor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/abing-net/abing/alarms"
	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/influx"
	"github.com/abing-net/abing/linkcost"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/notify"
	"github.com/abing-net/abing/store"
)

// Duration is a time.Duration that also reads days ("30d").
type Duration time.Duration

// UnmarshalText parses "90s", "5m", "1h30m" or "30d".
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		// NaN, infinities and what overflows a duration are no number of days.
		if err != nil || !(math.Abs(days) < float64(math.MaxInt64)/float64(24*time.Hour)) {
			return fmt.Errorf("duration %q: want a number of days such as 30d", s)
		}
		*d = Duration(days * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. 60s, 5m, 1h or 30d", s)
	}
	*d = Duration(v)
	return nil
}

// Probe settings of a measurement; zero fields take the defaults of
// `abing measure`, whose flags of the same names they mirror.
type Probe struct {
	Pairs      int      `yaml:"pairs"`
	TrainLen   int      `yaml:"train_len"`
	Size       int      `yaml:"size"`
	Timeout    Duration `yaml:"timeout"`
	Method     string   `yaml:"method"`     // probe-gap or abwe
	Timestamps string   `yaml:"timestamps"` // auto, hardware, software or user
	Interface  string   `yaml:"interface"`  // NIC for hardware timestamps
	// The adaptive default's precision and byte budget per direction
	// (zero: abing measure's). Pairs or TrainLen make the run fixed, as
	// --pairs and --train-len do, and then these must be unset.
	Precision float64 `yaml:"precision"`
	MaxBytes  int     `yaml:"max_bytes"`
	// KeyFile and KeyName sign the probes for a reflector run with
	// --keys: the keys file (mode 600) and, when it holds several, which.
	KeyFile string `yaml:"key_file"`
	KeyName string `yaml:"key_name"`
}

// Target is one path to watch.
type Target struct {
	Address string `yaml:"address"` // reflector host[:port]
	// Paths name several addresses of the same host (direct: 203.0.113.5,
	// overlay: "2001:db8::5"), each measured as its own path: Complete
	// makes one target of each, named NAME/PATH, whose records carry the
	// target's name and the path's (abing mesh compare reads them).
	Paths    map[string]string `yaml:"paths"`
	Name     string            `yaml:"name"`
	Labels   map[string]string `yaml:"labels"`
	Interval Duration          `yaml:"interval"`
	Probe    Probe             `yaml:"probe"`
	// Alarms are this target's detector settings, laid over the
	// configuration's.
	Alarms alarms.Params `yaml:"alarms"`
	line   int
	key    *auth.Key // loaded by Complete from the probe's key_file
	host   string    // of a target made from paths: the target's name
	path   string    // and the path's
}

// expandPaths makes one target of each path of the targets that have
// paths, named NAME/PATH, in the order of the path names.
func (c *Config) expandPaths(at func(int) string) error {
	var out []Target
	for _, t := range c.Targets {
		if len(t.Paths) == 0 {
			out = append(out, t)
			continue
		}
		if t.Address != "" {
			return fmt.Errorf("%saddress and paths exclude each other: give every path its address", at(t.line))
		}
		if t.Name == "" {
			return fmt.Errorf("%sa target with paths needs a name", at(t.line))
		}
		for _, p := range slices.Sorted(maps.Keys(t.Paths)) {
			if p == "" || strings.ContainsAny(p, "/ \t") {
				return fmt.Errorf("%spath name %q: want a word without / or spaces", at(t.line), p)
			}
			u := t
			u.Paths, u.Address, u.Name, u.host, u.path = nil, t.Paths[p], t.Name+"/"+p, t.Name, p
			out = append(out, u)
		}
	}
	c.Targets = out
	return nil
}

// Store configures the embedded database.
type Store struct {
	Disabled  bool     `yaml:"disabled"`
	Path      string   `yaml:"path"`
	Retention Duration `yaml:"retention"`
}

// Alarms configures change detection (package alarms) and its hooks.
type Alarms struct {
	Disabled bool `yaml:"disabled"`
	// The detectors' settings for every target (zero: the defaults).
	alarms.Params `yaml:",inline"`
	// Command is run for every alarm raised or cleared: program and
	// arguments, no shell.
	Command        []string `yaml:"command"`
	CommandTimeout Duration `yaml:"command_timeout"` // 10s
	// Webhook receives every alarm in Alertmanager's webhook format.
	Webhook string `yaml:"webhook"`
	// Traceroute to the target on path and capacity alarms (needs root or
	// CAP_NET_RAW).
	Traceroute bool `yaml:"traceroute"`
}

// Hooks are the hooks a configuration asks for.
func (a *Alarms) Hooks() []notify.Hook {
	var hooks []notify.Hook
	if len(a.Command) > 0 {
		hooks = append(hooks, &notify.Command{Argv: a.Command, Timeout: time.Duration(a.CommandTimeout)})
	}
	if a.Webhook != "" {
		hooks = append(hooks, &notify.Webhook{URL: a.Webhook})
	}
	return hooks
}

// AlarmParams are the detector settings of a target.
func (c *Config) AlarmParams(t *Target) alarms.Params {
	return alarms.Defaults().Merge(c.Alarms.Params).Merge(t.Alarms)
}

// Exclusive says which measurements may not overlap.
const (
	ExclusiveInterface = "interface" // none two at once through one outgoing interface (the default)
	ExclusiveTarget    = "target"    // none two at once to one target
)

// Config is a monitor's configuration (monitor.yaml).
type Config struct {
	Interval    Duration `yaml:"interval"`      // default per target: 60s
	Jitter      float64  `yaml:"jitter"`        // ± fraction of the interval, random per run: 0.1
	MaxInFlight int      `yaml:"max_in_flight"` // measurements at once: 4
	Exclusive   string   `yaml:"exclusive"`     // interface (default) or target
	// Pool is how many runs of a target (per direction) pooled XTR and
	// ABW take their windows from: 10; 1 turns pooling off.
	Pool int `yaml:"pool"`
	// Node is this host's name in every record (default: the hostname),
	// so that a fleet's records can be told apart where they meet.
	Node string `yaml:"node"`
	// LinkCost weighs each path's RTT, loss and jitter into a cost for a
	// routing layer, published when it changes past its thresholds.
	LinkCost LinkCost `yaml:"link_cost"`
	Probe    Probe    `yaml:"probe"` // defaults for every target
	Store    Store    `yaml:"store"`
	// InfluxDB, when set, receives every result too (package influx).
	InfluxDB *influx.Config `yaml:"influxdb"`
	Alarms   Alarms         `yaml:"alarms"`
	Targets  []Target       `yaml:"targets"`
	// Agent is the section of abing mesh agent (package meshagent), which
	// reads it; a monitor's configuration may not have one.
	Agent yaml.Node `yaml:"agent"`
	// meshTargets: the targets come from a mesh, not from the file
	// (ParseAgentConfig): none may be given, and none is no error.
	meshTargets bool
	lines       map[string]int // line of each top-level key, for errors
	// spoolBesideDB: the InfluxDB spool was not given, and lies beside
	// the database.
	spoolBesideDB bool
}

// LinkCost configures the link cost of every path (package mesh) and the
// warning when probes become the load.
type LinkCost struct {
	linkcost.Params    `yaml:",inline"`
	linkcost.Threshold `yaml:",inline"`
	// MaxProbeShare is the share of a path's capacity its probes may take
	// (both directions of a run, over the target's interval) before the
	// monitor warns that it measures its own load.
	MaxProbeShare float64 `yaml:"max_probe_share"`
}

// DefaultLinkCost: linkcost.Default and linkcost.DefaultThreshold, and a warning
// past 5 % of a path.
func DefaultLinkCost() LinkCost {
	return LinkCost{Params: linkcost.Default(), Threshold: linkcost.DefaultThreshold(), MaxProbeShare: 0.05}
}

// spoolBeside is the InfluxDB spool folder of a configuration that names
// none: beside the embedded database.
func spoolBeside(db string) string { return filepath.Join(filepath.Dir(db), "influx-spool") }

// UseDB sets the embedded database's path (abing monitor --db) of a
// completed configuration; an InfluxDB spool that was not given moves
// with it.
func (c *Config) UseDB(path string) {
	c.Store.Path = path
	if c.InfluxDB != nil && c.spoolBesideDB {
		c.InfluxDB.Spool = spoolBeside(path)
	}
}

// Defaults of a Config.
const (
	DefaultInterval  = 60 * time.Second
	DefaultJitter    = 0.1
	DefaultInFlight  = 4
	DefaultPool      = 10
	MaxPool          = 1000
	DefaultRetention = 30 * 24 * time.Hour
)

// LoadConfig reads and parses the monitor.yaml at path. A file that holds
// a secret (Secrets) must be readable by its owner only, like a keys file.
func LoadConfig(path string) (*Config, error) { return load(path, ParseConfig) }

func load(path string, parse func([]byte, string) (*Config, error)) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := parse(b, path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if secrets := cfg.Secrets(); len(secrets) > 0 && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s holds a secret (%s) and mode %04o lets group or others read it; run chmod 600 %s",
			path, strings.Join(secrets, ", "), st.Mode().Perm(), path)
	}
	return cfg, nil
}

// Secrets names what in the configuration is a credential: an InfluxDB
// token, a user and password in a URL, a webhook URL that carries one in
// its query.
func (c *Config) Secrets() []string {
	var out []string
	if ic := c.InfluxDB; ic != nil {
		if ic.Token != "" {
			out = append(out, "influxdb token")
		}
		if u, err := url.Parse(ic.URL); err == nil && u.User != nil {
			out = append(out, "influxdb url with a password")
		}
	}
	if u, err := url.Parse(c.Alarms.Webhook); c.Alarms.Webhook != "" && err == nil && (u.User != nil || u.RawQuery != "") {
		out = append(out, "alarms webhook with a credential")
	}
	return out
}

// ParseConfig reads a monitor.yaml. Errors name the file and line: unknown
// keys, wrong types, bad addresses, bad numbers. name is used in messages.
func ParseConfig(b []byte, name string) (*Config, error) { return parse(b, name, false) }

// ParseAgentConfig reads the configuration of abing mesh agent: a
// monitor.yaml whose targets come from the mesh (it may not list any) and
// with an agent section (Config.Agent).
func ParseAgentConfig(b []byte, name string) (*Config, error) { return parse(b, name, true) }

// LoadAgentConfig reads the file at path as LoadConfig does, with
// ParseAgentConfig.
func LoadAgentConfig(path string) (*Config, error) { return load(path, ParseAgentConfig) }

func parse(b []byte, name string, mesh bool) (*Config, error) {
	cfg := Config{LinkCost: DefaultLinkCost(), meshTargets: mesh} // keys not given keep their defaults
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// Line numbers of the targets, for the checks below.
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err == nil && len(doc.Content) == 1 {
		m := doc.Content[0]
		cfg.lines = map[string]int{}
		for i := 0; i+1 < len(m.Content); i += 2 {
			cfg.lines[m.Content[i].Value] = m.Content[i].Line
			if m.Content[i].Value == "targets" {
				for j, t := range m.Content[i+1].Content {
					if j < len(cfg.Targets) {
						cfg.Targets[j].line = t.Line
					}
				}
			}
		}
	}
	if mesh && len(cfg.Targets) > 0 {
		return nil, fmt.Errorf("%s:%d: the mesh agent measures every member of its mesh: no targets to list", name, cfg.lines["targets"])
	}
	if err := cfg.Complete(); err != nil {
		return nil, fmt.Errorf("%s:%w", name, err)
	}
	return &cfg, nil
}

// Complete fills in defaults and checks everything; errors start with the
// line number (":12: ...") when it is known.
func (c *Config) Complete() error {
	at := func(line int) string {
		if line > 0 {
			return strconv.Itoa(line) + ": "
		}
		return " "
	}
	if c.Interval == 0 {
		c.Interval = Duration(DefaultInterval)
	}
	key := func(k string) string { return at(c.lines[k]) }
	if c.Interval < 0 {
		return fmt.Errorf("%sinterval %v: must be positive", key("interval"), time.Duration(c.Interval))
	}
	if c.Jitter == 0 {
		c.Jitter = DefaultJitter
	}
	if !(c.Jitter >= 0 && c.Jitter < 1) { // NaN too
		return fmt.Errorf("%sjitter %g: want a fraction of the interval, 0 to below 1", key("jitter"), c.Jitter)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultInFlight
	}
	if c.MaxInFlight < 0 {
		return fmt.Errorf("%smax_in_flight %d: must be positive", key("max_in_flight"), c.MaxInFlight)
	}
	if c.Pool == 0 {
		c.Pool = DefaultPool
	}
	if c.Pool < 1 || c.Pool > MaxPool {
		return fmt.Errorf("%spool %d: want 1 (no pooling) to %d runs", key("pool"), c.Pool, MaxPool)
	}
	switch c.Exclusive {
	case "":
		c.Exclusive = ExclusiveInterface
	case ExclusiveInterface, ExclusiveTarget:
	default:
		return fmt.Errorf("%sexclusive %q: want interface or target", key("exclusive"), c.Exclusive)
	}
	if c.Store.Retention == 0 {
		c.Store.Retention = Duration(DefaultRetention)
	}
	if c.Store.Retention < 0 {
		return fmt.Errorf("%sstore retention %v: must be positive", key("store"), time.Duration(c.Store.Retention))
	}
	if c.Store.Path == "" {
		c.Store.Path = store.DefaultPath()
	}
	if c.InfluxDB != nil {
		if c.InfluxDB.Spool == "" {
			c.InfluxDB.Spool = spoolBeside(c.Store.Path)
			c.spoolBesideDB = true
		}
		if err := c.InfluxDB.Check(); err != nil {
			return fmt.Errorf("%s%w", key("influxdb"), err)
		}
	}
	if err := alarms.Defaults().Merge(c.Alarms.Params).Check(); err != nil {
		return fmt.Errorf("%s%w", key("alarms"), err)
	}
	if len(c.Alarms.Command) > 0 {
		if _, err := exec.LookPath(c.Alarms.Command[0]); err != nil {
			return fmt.Errorf("%salarms command: %w", key("alarms"), err)
		}
	}
	if c.Alarms.CommandTimeout < 0 {
		return fmt.Errorf("%salarms command_timeout %v: must be positive", key("alarms"), time.Duration(c.Alarms.CommandTimeout))
	}
	if w := c.Alarms.Webhook; w != "" {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%salarms webhook %q: want an http(s):// URL", key("alarms"), w)
		}
	}
	switch {
	case c.meshTargets && c.Interval < Duration(time.Second):
		// Every member's path gets this interval: checked here, not
		// only when the first member joins.
		return fmt.Errorf("%sinterval %v: want at least 1s", key("interval"), time.Duration(c.Interval))
	case !c.meshTargets && len(c.Targets) == 0:
		return errors.New(" no targets")
	case !c.meshTargets && !c.Agent.IsZero():
		return fmt.Errorf("%sthe agent section is for abing mesh agent, not abing monitor", key("agent"))
	}
	if c.Node == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return fmt.Errorf("%sno node name given and no hostname: %v", key("node"), err)
		}
		c.Node = h
	}
	if c.LinkCost == (LinkCost{}) {
		c.LinkCost = DefaultLinkCost()
	}
	if err := c.LinkCost.Check(); err != nil {
		return fmt.Errorf("%s%v", key("link_cost"), err)
	}
	if lc := c.LinkCost; !(lc.Rel >= 0) || !(lc.Abs >= 0) || lc.Window < 1 || lc.Window > 100 || !(lc.MaxProbeShare > 0 && lc.MaxProbeShare <= 1) {
		return fmt.Errorf("%slink_cost threshold %g, threshold_abs %g, window %d, max_probe_share %g: want thresholds not negative, a window of 1 to 100 runs, a share above 0 up to 1",
			key("link_cost"), lc.Rel, lc.Abs, lc.Window, lc.MaxProbeShare)
	}
	if err := c.expandPaths(at); err != nil {
		return err
	}
	seen := map[string]int{}
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.Address == "" {
			return fmt.Errorf("%saddress missing", at(t.line))
		}
		if err := checkAddress(t.Address); err != nil {
			return fmt.Errorf("%saddress %q: %v", at(t.line), t.Address, err)
		}
		if t.Name == "" {
			t.Name = t.Address
		}
		if l, ok := seen[t.Name]; ok {
			return fmt.Errorf("%starget %q is also at line %d", at(t.line), t.Name, l)
		}
		seen[t.Name] = t.line
		if t.Interval == 0 {
			t.Interval = c.Interval
		}
		if t.Interval < Duration(time.Second) {
			return fmt.Errorf("%sinterval %v: want at least 1s", at(t.line), time.Duration(t.Interval))
		}
		if err := t.loadKey(c.Probe); err != nil && t.Probe.KeyFile == "" && t.Probe.KeyName == "" {
			return fmt.Errorf("%sprobe: %v", key("probe"), err)
		} else if err != nil {
			return fmt.Errorf("%s%v", at(t.line), err)
		}
		if _, err := t.measureConfig(c.Probe); err != nil && t.Probe == (Probe{}) {
			return fmt.Errorf("%sprobe: %v", key("probe"), err)
		} else if err != nil {
			return fmt.Errorf("%s%v", at(t.line), err)
		}
		if err := c.AlarmParams(t).Check(); err != nil {
			return fmt.Errorf("%s%w", at(t.line), err)
		}
		for k, v := range t.Labels {
			if k == "" || k == "target" || k == "address" || k == "direction" || k == "kind" || k == "node" || k == "path" {
				return fmt.Errorf("%slabel %q: reserved or empty", at(t.line), k)
			}
			// InfluxDB cannot store an empty tag value: every point of
			// the target would be refused.
			if v == "" {
				return fmt.Errorf("%slabel %q: empty value", at(t.line), k)
			}
		}
	}
	return nil
}

// WithTargets returns a completed copy of a completed agent configuration
// (ParseAgentConfig) that measures targets, which the mesh gave: what the
// agent hands to Monitor.Reload when its members change.
func (c *Config) WithTargets(targets []Target) (*Config, error) {
	if !c.meshTargets {
		return nil, errors.New("monitor: WithTargets of a configuration not made by ParseAgentConfig")
	}
	out := *c
	out.Targets = slices.Clone(targets)
	out.lines = nil
	if err := out.Complete(); err != nil {
		return nil, fmt.Errorf("mesh targets:%w", err)
	}
	return &out, nil
}

// loadKey reads the key the target's probes are signed with, if its probe
// settings (laid over def) name a keys file: the file must be readable by
// its owner only, as for `abing measure --key-file`.
func (t *Target) loadKey(def Probe) error {
	file, name := def.KeyFile, def.KeyName
	if t.Probe.KeyFile != "" {
		file, name = t.Probe.KeyFile, t.Probe.KeyName
	} else if t.Probe.KeyName != "" {
		name = t.Probe.KeyName
	}
	t.key = nil
	if file == "" {
		if name != "" {
			return fmt.Errorf("key_name %q needs key_file", name)
		}
		return nil
	}
	keys, err := auth.LoadKeys(file)
	if err != nil {
		return fmt.Errorf("key_file: %w", err)
	}
	k, err := auth.Pick(keys, name)
	if err != nil {
		return fmt.Errorf("key_file %s: %w (key_name)", file, err)
	}
	t.key = &k
	return nil
}

// checkAddress accepts host, host:port, [v6]:port; it does not resolve.
func checkAddress(a string) error {
	host, port := a, ""
	if h, p, err := net.SplitHostPort(a); err == nil {
		host, port = h, p
	} else if strings.Count(a, ":") == 1 || strings.HasPrefix(a, "[") {
		return err
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1 to 65535", port)
		}
	}
	if host == "" {
		return errors.New("no host")
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("host %q: not an IP address or a DNS name", host)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host %q: not an IP address or a DNS name", host)
			}
		}
	}
	return nil
}

// measureConfig is the measurement of t: its probe settings over the
// defaults over those of `abing measure`.
func (t *Target) measureConfig(def Probe) (measure.Config, error) {
	m := measure.Defaults()
	m.Target = t.Address
	m.Key = t.key
	// A target's probe section over the defaults: either may ask for a
	// fixed run (pairs, train_len) or shape the adaptive one (precision,
	// max_bytes), not both at once; the target's word wins.
	fixed := false
	for _, p := range []Probe{def, t.Probe} {
		if p.Method != "" {
			m.Method = p.Method
		}
		if p.Timestamps != "" {
			mode, err := dispersion.ParseMode(p.Timestamps)
			if err != nil {
				return m, err
			}
			m.Timestamps = mode
		}
		if p.Interface != "" {
			m.Interface = p.Interface
		}
		pf, pa := p.Pairs != 0 || p.TrainLen != 0, p.Precision != 0 || p.MaxBytes != 0
		if pf && pa {
			return m, errors.New("precision and max_bytes shape the adaptive default; pairs and train_len ask for a fixed run instead: give one or the other")
		}
		if pf || pa {
			fixed = pf
		}
		if p.Pairs != 0 {
			m.Trains = p.Pairs
		}
		if p.TrainLen != 0 {
			m.TrainLen = p.TrainLen
		}
		if p.Size != 0 {
			m.Size = p.Size
		}
		if p.Timeout != 0 {
			m.Timeout = time.Duration(p.Timeout)
		}
		if p.Precision != 0 {
			m.Precision = p.Precision
		}
		if p.MaxBytes != 0 {
			m.MaxBytes = p.MaxBytes
		}
	}
	if fixed {
		m = m.Fixed()
	}
	return m, inYAML(m.Validate())
}

// inYAML says a measure.Config setting error in the words of monitor.yaml.
func inYAML(err error) error {
	var se *measure.SettingError
	if errors.As(err, &se) {
		key := se.Setting
		if key == "trains" {
			key = "pairs"
		}
		return fmt.Errorf("%s %v: %s", key, se.Value, se.Want)
	}
	return err
}
