package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
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
)

// Config is a monitor's configuration (monitor.yaml), or a mesh agent's
// (the same without targets, with an agent section).
type Config struct {
	Interval    Duration `yaml:"interval"`      // default per target
	Jitter      float64  `yaml:"jitter"`        // ± fraction of the interval, random per run; 0 keeps the cadence exact
	MaxInFlight int      `yaml:"max_in_flight"` // measurements at once
	Exclusive   string   `yaml:"exclusive"`     // interface or target
	// Pool is how many runs of a target (per direction) pooled XTR and
	// ABW take their windows from; 1 turns pooling off.
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
	InfluxDB *InfluxDB `yaml:"influxdb"`
	Alarms   Alarms    `yaml:"alarms"`
	Targets  []Target  `yaml:"targets"`
	// Agent is the section of abing mesh agent; a monitor's
	// configuration may not have one.
	Agent Agent `yaml:"agent"`
	// agent: made by ParseAgent: the targets come from a mesh, not from
	// the file (none may be given, and none is no error).
	agent bool
	lines map[string]int // line of each top-level key, for errors
	// spoolBesideDB: the InfluxDB spool was not given, and lies beside
	// the database.
	spoolBesideDB bool
}

// Probe settings of a measurement. They mirror the flags of abing measure
// of the same names, and a zero field means abing measure's default: no
// setting here takes zero as a value.
type Probe struct {
	Pairs      int      `yaml:"pairs"`
	TrainLen   int      `yaml:"train_len"`
	Size       int      `yaml:"size"`
	Timeout    Duration `yaml:"timeout"`
	Method     string   `yaml:"method"`     // probe-gap or abwe
	Protocol   string   `yaml:"protocol"`   // abing, stamp or twamp-light: what the reflector speaks
	Timestamps string   `yaml:"timestamps"` // auto, hardware, software or user
	Interface  string   `yaml:"interface"`  // NIC for hardware timestamps
	// The adaptive default's precision and byte budget per direction.
	// Pairs or TrainLen make the run fixed, as --pairs and --train-len
	// do, and then these must be unset.
	Precision float64 `yaml:"precision"`
	MaxBytes  int     `yaml:"max_bytes"`
	// KeyFile and KeyName sign the probes for a reflector run with
	// --keys: the keys file (mode 600) and, when it holds several, which.
	KeyFile string `yaml:"key_file"`
	KeyName string `yaml:"key_name"`
}

// Target is one path to watch. In a file, its interval and alarms start
// as the configuration's, and what the target gives is laid over them.
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
	// Probe is laid over the configuration's probe settings.
	Probe Probe `yaml:"probe"`
	// Alarms are this target's detector settings.
	Alarms Detectors `yaml:"alarms"`
	line   int
	key    *auth.Key // loaded by Complete from the probe's key_file
	host   string    // of a target made from paths: the target's name
	path   string    // and the path's
}

// Host is the name its records carry as their target: the target's name,
// or for one path of a target with paths, the target's name without the
// path. Path is that path's name ("" for a target without paths).
func (t *Target) Host() string {
	if t.path != "" {
		return t.host
	}
	return t.Name
}

// Path is the path's name of a target made from paths, else "".
func (t *Target) Path() string { return t.path }

// Store configures the embedded database.
type Store struct {
	Disabled  bool     `yaml:"disabled"`
	Path      string   `yaml:"path"`
	Retention Duration `yaml:"retention"`
}

// InfluxDB is the influxdb section (package influx).
type InfluxDB struct {
	URL         string `yaml:"url"`         // e.g. http://127.0.0.1:8086
	Bucket      string `yaml:"bucket"`      // 2.x bucket, or 1.8 "database/retention-policy"
	Org         string `yaml:"org"`         // empty for 1.8
	Token       string `yaml:"token"`       // empty for 1.8 without auth, or "user:password"
	Measurement string `yaml:"measurement"` // "abing"
	// CreateDatabase: on InfluxDB 1.8, create the database of Bucket
	// (POST /query CREATE DATABASE) when a write says it does not exist.
	CreateDatabase bool   `yaml:"create_database"`
	Spool          string `yaml:"spool"` // directory of undelivered batches; default: beside the database
	SpoolMaxMB     int    `yaml:"spool_max_mb"`
	// UnhealthyAfter: the sink reports itself unhealthy (the monitor's
	// /healthz) once nothing could be delivered for this long.
	UnhealthyAfter Duration `yaml:"unhealthy_after"`
}

// Influx is the sink's configuration.
func (i *InfluxDB) Influx() influx.Config {
	return influx.Config{URL: i.URL, Bucket: i.Bucket, Org: i.Org, Token: i.Token, Measurement: i.Measurement,
		CreateDatabase: i.CreateDatabase, Spool: i.Spool, SpoolMaxMB: i.SpoolMaxMB, BlockedAfter: time.Duration(i.UnhealthyAfter)}
}

func influxSection(c influx.Config) InfluxDB {
	return InfluxDB{URL: c.URL, Bucket: c.Bucket, Org: c.Org, Token: c.Token, Measurement: c.Measurement,
		CreateDatabase: c.CreateDatabase, Spool: c.Spool, SpoolMaxMB: c.SpoolMaxMB, UnhealthyAfter: Duration(c.BlockedAfter)}
}

// Alarms configures change detection (package alarms) and its hooks.
type Alarms struct {
	Disabled bool `yaml:"disabled"`
	// The detectors' settings for every target.
	Detectors `yaml:",inline"`
	// Command is run for every alarm raised or cleared: program and
	// arguments, no shell.
	Command        []string `yaml:"command"`
	CommandTimeout Duration `yaml:"command_timeout"`
	// Webhook receives every alarm in Alertmanager's webhook format.
	Webhook string `yaml:"webhook"`
	// Traceroute to the target on path and capacity alarms (needs root or
	// CAP_NET_RAW).
	Traceroute bool `yaml:"traceroute"`
}

// Detectors are the settings of the alarm detectors (alarms.Params), as the
// file writes them.
type Detectors struct {
	Hold         int      `yaml:"hold"`
	Clear        int      `yaml:"clear"`
	MinDuration  Duration `yaml:"min_duration"`
	Hysteresis   float64  `yaml:"hysteresis"`
	AcceptAfter  Duration `yaml:"accept_after"`
	Window       int      `yaml:"window"`
	Reference    int      `yaml:"reference"`
	Sensitivity  float64  `yaml:"sensitivity"`
	MinChange    float64  `yaml:"min_change"`
	MinRTTChange Duration `yaml:"min_rtt_change"`
	LoadBelow    float64  `yaml:"load_below"`
	LoadFor      Duration `yaml:"load_for"`
	DownAfter    int      `yaml:"down_after"`
}

// Params are the detectors' settings.
func (d Detectors) Params() alarms.Params {
	return alarms.Params{Hold: d.Hold, Clear: d.Clear, MinDuration: time.Duration(d.MinDuration), Hysteresis: d.Hysteresis,
		AcceptAfter: time.Duration(d.AcceptAfter), Window: d.Window, Reference: d.Reference, K: d.Sensitivity, MinChange: d.MinChange,
		MinRTTChange: time.Duration(d.MinRTTChange), LoadBelow: d.LoadBelow, LoadFor: time.Duration(d.LoadFor), DownAfter: d.DownAfter}
}

func detectors(p alarms.Params) Detectors {
	return Detectors{Hold: p.Hold, Clear: p.Clear, MinDuration: Duration(p.MinDuration), Hysteresis: p.Hysteresis,
		AcceptAfter: Duration(p.AcceptAfter), Window: p.Window, Reference: p.Reference, Sensitivity: p.K, MinChange: p.MinChange,
		MinRTTChange: Duration(p.MinRTTChange), LoadBelow: p.LoadBelow, LoadFor: Duration(p.LoadFor), DownAfter: p.DownAfter}
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

// Exclusive says which measurements may not overlap.
const (
	ExclusiveInterface = "interface" // none two at once through one outgoing interface (the default)
	ExclusiveTarget    = "target"    // none two at once to one target
)

// LinkCost configures the link cost of every path (package linkcost) and
// the warning when probes become the load.
type LinkCost struct {
	linkcost.Params    `yaml:",inline"`
	linkcost.Threshold `yaml:",inline"`
	// MaxProbeShare is the share of a path's capacity its probes may take
	// (both directions of a run, over the target's interval) before the
	// monitor warns that it measures its own load.
	MaxProbeShare float64 `yaml:"max_probe_share"`
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

// Load reads and parses the monitor.yaml at path. A file that holds a
// secret (Secrets) must be readable by its owner only, like a keys file.
func Load(path string) (*Config, error) { return load(path, Parse) }

// ReadAgent reads the file at path as Load does, with DecodeAgent: the
// caller lays its flags over it, then calls Complete.
func ReadAgent(path string) (*Config, error) { return load(path, DecodeAgent) }

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

// Parse reads a monitor.yaml. Errors name the file and line: unknown keys,
// wrong types, bad addresses, bad numbers. name is used in messages.
func Parse(b []byte, name string) (*Config, error) { return parse(b, name, false, true) }

// ParseAgent reads the configuration of abing mesh agent: a monitor.yaml
// whose targets come from the mesh (it may not list any) and with an agent
// section.
func ParseAgent(b []byte, name string) (*Config, error) { return parse(b, name, true, true) }

// DecodeAgent reads an agent's configuration as ParseAgent does, without
// Complete, so that flags can be laid over it first.
func DecodeAgent(b []byte, name string) (*Config, error) { return parse(b, name, true, false) }

// parse decodes the file over the defaults (Default), so that what it
// leaves out keeps its default and what it gives, zero included, stays.
// Targets are decoded twice: once with the rest, which refuses unknown
// keys and wrong types with their lines, and then each over its inherited
// settings (the configuration's interval and alarms), which it overrides
// key by key.
func parse(b []byte, name string, agent, complete bool) (*Config, error) {
	cfg := Default()
	cfg.agent = agent
	influxDef := DefaultInfluxDB()
	cfg.InfluxDB = &influxDef // kept only when the file has the section
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: want a mapping of settings", name)
	}
	m := doc.Content[0]
	cfg.lines = map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		cfg.lines[key.Value] = key.Line
		if key.Value != "targets" {
			continue
		}
		for j, tn := range val.Content {
			if j >= len(cfg.Targets) {
				break
			}
			t := Target{Interval: cfg.Interval, Alarms: cfg.Alarms.Detectors}
			if err := tn.Decode(&t); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			t.line = tn.Line
			cfg.Targets[j] = t
		}
	}
	if _, ok := cfg.lines["influxdb"]; !ok || cfg.InfluxDB == nil {
		cfg.InfluxDB = nil
	}
	if agent {
		if len(cfg.Targets) > 0 {
			return nil, fmt.Errorf("%s:%d: the mesh agent measures every member of its mesh: no targets to list", name, cfg.lines["targets"])
		}
		if err := cfg.Agent.readPaths(); err != nil {
			return nil, fmt.Errorf("%s:%d: agent: %w", name, cfg.lines["agent"], err)
		}
	}
	if !complete {
		return &cfg, nil
	}
	if err := cfg.Complete(); err != nil {
		return nil, fmt.Errorf("%s:%w", name, err)
	}
	return &cfg, nil
}

// Complete checks a configuration and derives what follows from the rest:
// the node's name (the hostname when none is given), each target's name
// (its address) and paths, the InfluxDB spool (beside the database) and,
// in an agent's, the agent's addresses. It fills in no default: a
// configuration starts from Default. Errors start with the line number
// (":12: ...") when it is known.
func (c *Config) Complete() error {
	at := func(line int) string {
		if line > 0 {
			return strconv.Itoa(line) + ": "
		}
		return " "
	}
	key := func(k string) string { return at(c.lines[k]) }
	if c.Interval < Duration(time.Second) {
		return fmt.Errorf("%sinterval %v: want at least 1s", key("interval"), c.Interval)
	}
	if !(c.Jitter >= 0 && c.Jitter < 1) { // NaN too
		return fmt.Errorf("%sjitter %g: want a fraction of the interval, 0 to below 1", key("jitter"), c.Jitter)
	}
	if c.MaxInFlight < 1 {
		return fmt.Errorf("%smax_in_flight %d: must be positive", key("max_in_flight"), c.MaxInFlight)
	}
	if c.Pool < 1 || c.Pool > MaxPool {
		return fmt.Errorf("%spool %d: want 1 (no pooling) to %d runs", key("pool"), c.Pool, MaxPool)
	}
	if c.Exclusive != ExclusiveInterface && c.Exclusive != ExclusiveTarget {
		return fmt.Errorf("%sexclusive %q: want interface or target", key("exclusive"), c.Exclusive)
	}
	if c.Store.Retention <= 0 {
		return fmt.Errorf("%sstore retention %v: must be positive", key("store"), c.Store.Retention)
	}
	if c.Store.Path == "" {
		return fmt.Errorf("%sstore path: empty", key("store"))
	}
	if c.InfluxDB != nil {
		if c.InfluxDB.Spool == "" || c.spoolBesideDB {
			c.InfluxDB.Spool = spoolBeside(c.Store.Path)
			c.spoolBesideDB = true
		}
		// Checked before influx.Check, which would fill these in.
		if i := c.InfluxDB; i.Measurement == "" || i.SpoolMaxMB <= 0 || i.UnhealthyAfter <= 0 {
			return fmt.Errorf("%sinfluxdb measurement %q, spool_max_mb %d, unhealthy_after %v: want a name, a positive size and a positive time",
				key("influxdb"), i.Measurement, i.SpoolMaxMB, i.UnhealthyAfter)
		}
		ic := c.InfluxDB.Influx()
		if err := ic.Check(); err != nil {
			return fmt.Errorf("%s%w", key("influxdb"), err)
		}
	}
	if err := c.Alarms.Params().Check(); err != nil {
		return fmt.Errorf("%s%w", key("alarms"), err)
	}
	if len(c.Alarms.Command) > 0 {
		if _, err := exec.LookPath(c.Alarms.Command[0]); err != nil {
			return fmt.Errorf("%salarms command: %w", key("alarms"), err)
		}
	}
	if c.Alarms.CommandTimeout <= 0 {
		return fmt.Errorf("%salarms command_timeout %v: must be positive", key("alarms"), c.Alarms.CommandTimeout)
	}
	if w := c.Alarms.Webhook; w != "" {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%salarms webhook %q: want an http(s):// URL", key("alarms"), w)
		}
	}
	switch {
	case !c.agent && len(c.Targets) == 0:
		return errors.New(" no targets")
	case !c.agent && c.lines["agent"] > 0:
		return fmt.Errorf("%sthe agent section is for abing mesh agent, not abing monitor", key("agent"))
	}
	if c.Node == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return fmt.Errorf("%sno node name given and no hostname: %v", key("node"), err)
		}
		c.Node = h
	}
	if c.agent {
		if err := CheckName(c.Node); err != nil {
			return fmt.Errorf("%snode %w", key("node"), err)
		}
		if err := c.Agent.complete(); err != nil {
			return fmt.Errorf("%sagent: %w", key("agent"), err)
		}
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
		if t.Interval < Duration(time.Second) {
			return fmt.Errorf("%sinterval %v: want at least 1s", at(t.line), t.Interval)
		}
		if err := t.loadKey(c.Probe); err != nil && t.Probe.KeyFile == "" && t.Probe.KeyName == "" {
			return fmt.Errorf("%sprobe: %v", key("probe"), err)
		} else if err != nil {
			return fmt.Errorf("%s%v", at(t.line), err)
		}
		if _, err := t.measure(c.Probe); err != nil && t.Probe == (Probe{}) {
			return fmt.Errorf("%sprobe: %v", key("probe"), err)
		} else if err != nil {
			return fmt.Errorf("%s%v", at(t.line), err)
		}
		if err := t.Alarms.Params().Check(); err != nil {
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

// expandPaths makes one target of each path of the targets that have
// paths, named NAME/PATH, in the order of the path names.
func (c *Config) expandPaths(at func(int) string) error {
	var out []Target
	for _, t := range c.Targets {
		// A target's name and its path are told apart by the "/"
		// (NAME/PATH, in alarms, metrics and the page).
		if strings.Contains(t.Name, "/") {
			return fmt.Errorf("%starget name %q: want no /", at(t.line), t.Name)
		}
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

// NewTarget is a target of this configuration, with its interval and
// alarm settings, for targets given outside the file: on the command line,
// or the members of a mesh.
func (c *Config) NewTarget(name, address string, paths map[string]string) Target {
	return Target{Name: name, Address: address, Paths: paths, Interval: c.Interval, Alarms: c.Alarms.Detectors}
}

// WithTargets returns a completed copy of a completed agent configuration
// (ParseAgent) that measures targets (made with NewTarget), which the mesh
// gave: what the agent hands to the monitor when its members change.
func (c *Config) WithTargets(targets []Target) (*Config, error) {
	if !c.agent {
		return nil, errors.New("config: WithTargets of a configuration not made by ParseAgent")
	}
	out := *c
	out.Targets = slices.Clone(targets)
	out.lines = nil
	if err := out.Complete(); err != nil {
		return nil, fmt.Errorf("mesh targets:%w", err)
	}
	return &out, nil
}

// Measure is the measurement of a target of a completed configuration: its
// probe settings over the configuration's over those of abing measure.
func (c *Config) Measure(t *Target) measure.Config {
	m, _ := t.measure(c.Probe) // checked by Complete
	return m
}

// AlarmParams are the detector settings of a target of a completed
// configuration.
func (t *Target) AlarmParams() alarms.Params { return t.Alarms.Params() }

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

// measure is the measurement of t: its probe settings over the
// defaults over those of `abing measure`.
func (t *Target) measure(def Probe) (measure.Config, error) {
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
		if p.Protocol != "" {
			m.Protocol = p.Protocol
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
