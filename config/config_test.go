package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/alarms"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/measure"
)

const good = `
interval: 30s
jitter: 0.2
probe:
  pairs: 20
store:
  retention: 7d
targets:
  - address: 198.18.2.2
    name: lab-b
    labels: {site: b, link: lhcopn}
  - address: "[fd00:ab:2::2]:8176"
    interval: 10s
    probe: {train_len: 10}
`

func TestParse(t *testing.T) {
	c, err := Parse([]byte(good), "monitor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Targets[0], c.Targets[1]
	if a.Name != "lab-b" || a.Labels["link"] != "lhcopn" || time.Duration(a.Interval) != 30*time.Second ||
		b.Name != "[fd00:ab:2::2]:8176" || time.Duration(b.Interval) != 10*time.Second ||
		time.Duration(c.Store.Retention) != 7*24*time.Hour || c.MaxInFlight != DefaultInFlight || c.Exclusive != ExclusiveInterface {
		t.Errorf("parsed %+v", c)
	}
	m := c.Measure(&c.Targets[1])
	if m.Trains != 20 || m.TrainLen != 10 || m.Size != 1500 {
		t.Errorf("probe settings %+v", m)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"empty", "", "m.yaml: empty"},
		{"unknown key", "intervall: 5s\ntargets: [{address: a}]\n", "m.yaml: yaml: unmarshal errors:\n  line 1: field intervall not found"},
		{"unknown target key", "targets:\n  - address: a\n    adress: b\n", "line 3: field adress not found"},
		{"wrong type", "max_in_flight: many\ntargets: [{address: a}]\n", "line 1: cannot unmarshal"},
		{"bad duration", "interval: soon\ntargets: [{address: a}]\n", `duration "soon"`},
		{"negative interval", "interval: -5s\ntargets: [{address: a}]\n", "m.yaml:1: interval -5s: want at least 1s"},
		{"no targets", "interval: 5s\n", "m.yaml: no targets"},
		{"no address", "targets:\n  - name: x\n", "m.yaml:2: address missing"},
		{"bad address", "targets:\n  - address: a\n  - address: 'bad host'\n", `m.yaml:3: address "bad host"`},
		{"bad port", "targets:\n  - address: a:99999\n", `m.yaml:2: address "a:99999": port`},
		{"short interval", "targets:\n  - address: a\n    interval: 100ms\n", "m.yaml:2: interval 100ms: want at least 1s"},
		{"bad probe", "targets:\n  - address: a\n    probe: {size: 20}\n", "m.yaml:2: size 20: want"},
		// Probe errors name the YAML keys, not abing measure's flags.
		{"too many pairs", "targets:\n  - address: a\n    probe: {pairs: 5000}\n", "m.yaml:2: pairs 5000: want 1 to 1000"},
		{"short train", "targets:\n  - address: a\n    probe: {train_len: 1}\n", "m.yaml:2: train_len 1: want"},
		{"bad method", "targets:\n  - address: a\n    probe: {method: magic}\n", `m.yaml:2: method "magic"`},
		{"bad precision", "targets:\n  - address: a\n    probe: {precision: 1.5}\n", "m.yaml:2: precision 1.5: want"},
		{"budget below a round", "targets:\n  - address: a\n    probe: {max_bytes: 1000}\n", "m.yaml:2: max_bytes 1000: want"},
		{"fixed and adaptive", "targets:\n  - address: a\n    probe: {pairs: 20, precision: 0.05}\n", "m.yaml:2: precision and max_bytes shape the adaptive default"},
		{"paths and address", "targets:\n  - {name: h, address: a, paths: {direct: b}}\n", "m.yaml:2: address and paths exclude each other"},
		{"paths without a name", "targets:\n  - {paths: {direct: b}}\n", "m.yaml:2: a target with paths needs a name"},
		{"bad path name", "targets:\n  - {name: h, paths: {a/b: b}}\n", `m.yaml:2: path name "a/b"`},
		{"a / in a target's name", "targets:\n  - {name: lab/b, address: b}\n", `m.yaml:2: target name "lab/b": want no /`},
		{"a / in a name with paths", "targets:\n  - {name: h/x, paths: {direct: b}}\n", `m.yaml:2: target name "h/x": want no /`},
		{"bad path address", "targets:\n  - {name: h, paths: {direct: \"bad host\"}}\n", `m.yaml:2: address "bad host"`},
		{"reserved label", "targets:\n  - {address: a, labels: {path: x}}\n", `label "path": reserved`},
		{"duplicate", "targets:\n  - address: a\n  - address: b\n    name: a\n", `m.yaml:3: target "a" is also at line 2`},
		{"jitter", "jitter: 1.5\ntargets: [{address: a}]\n", "m.yaml:1: jitter 1.5"},
		{"NaN jitter", "jitter: .nan\ntargets: [{address: a}]\n", "m.yaml:1: jitter NaN"},
		{"NaN days", "store: {retention: NaNd}\ntargets: [{address: a}]\n", `duration "NaNd"`},
		{"infinite days", "interval: Infd\ntargets: [{address: a}]\n", `duration "Infd"`},
		{"infinite sensitivity", "alarms: {sensitivity: .inf}\ntargets: [{address: a}]\n", "alarms sensitivity +Inf"},
		{"NaN hysteresis", "targets:\n  - address: a\n    alarms: {hysteresis: .nan}\n", "alarms hysteresis NaN"},
		{"default probe", "targets: [{address: a}]\nprobe: {pairs: 0, size: 9999}\n", "m.yaml:2: probe: size 9999: want"},
		{"exclusive", "exclusive: never\ntargets: [{address: a}]\n", `m.yaml:1: exclusive "never"`},
		{"reserved label", "targets:\n  - address: a\n    labels: {direction: x}\n", `m.yaml:2: label "direction"`},
		{"address label", "targets:\n  - address: a\n    labels: {address: x}\n", `m.yaml:2: label "address"`},
		{"empty label value", "targets:\n  - address: a\n    labels: {site: \"\"}\n", `m.yaml:2: label "site": empty value`},
	} {
		_, err := Parse([]byte(tc.yaml), "m.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestInfluxConfig(t *testing.T) {
	c, err := Parse([]byte("store: {path: /var/lib/abing/abing.db}\ninfluxdb: {url: 'http://127.0.0.1:8086', bucket: abing/autogen, create_database: true}\ntargets: [{address: a}]\n"), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.InfluxDB.Spool != "/var/lib/abing/influx-spool" || c.InfluxDB.Measurement != "abing" || c.InfluxDB.SpoolMaxMB != 100 {
		t.Errorf("influxdb %+v", c.InfluxDB)
	}
	// abing monitor --db moves the database, and the spool beside it...
	c.UseDB("/srv/abing/abing.db")
	if c.Store.Path != "/srv/abing/abing.db" || c.InfluxDB.Spool != "/srv/abing/influx-spool" {
		t.Errorf("--db: store %s, spool %s", c.Store.Path, c.InfluxDB.Spool)
	}
	// ...but not a spool the configuration names.
	c, err = Parse([]byte("influxdb: {url: 'http://127.0.0.1:8086', bucket: b, spool: /spool}\ntargets: [{address: a}]\n"), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.UseDB("/srv/abing/abing.db"); c.InfluxDB.Spool != "/spool" {
		t.Errorf("--db moved the configured spool to %s", c.InfluxDB.Spool)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"influxdb: {url: 'localhost:8086', bucket: b}\ntargets: [{address: a}]\n", "m.yaml:1: influxdb url"},
		{"influxdb: {url: 'http://h:8086'}\ntargets: [{address: a}]\n", "bucket missing"},
		{"influxdb: {url: 'http://h:8086', bucket: b, tokn: x}\ntargets: [{address: a}]\n", "field tokn not found"},
	} {
		if _, err := Parse([]byte(tc.yaml), "m.yaml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestAlarmsConfig(t *testing.T) {
	c, err := Parse([]byte(`
alarms:
  hold: 4
  load_for: 10m
  command: [sh, -c, "cat > /dev/null"]
  command_timeout: 5s
  webhook: http://127.0.0.1:9093/api/v2/alerts
  traceroute: true
targets:
  - address: a
    alarms: {hold: 2, min_change: 0.2}
  - address: b
`), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := c.Targets[0].AlarmParams(), c.Targets[1].AlarmParams()
	if pa.Hold != 2 || pa.MinChange != 0.2 || pa.LoadFor != 10*time.Minute || pb.Hold != 4 || pb.MinChange != 0.1 || pb.Clear != 3 {
		t.Errorf("params a %+v b %+v", pa, pb)
	}
	if h := c.Alarms.Hooks(); len(h) != 2 || !c.Alarms.Traceroute || time.Duration(c.Alarms.CommandTimeout) != 5*time.Second {
		t.Errorf("hooks %v, alarms %+v", h, c.Alarms)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"alarms: {hysteresis: 2}\ntargets: [{address: a}]\n", "m.yaml:1: alarms hysteresis 2: want a fraction"},
		{"alarms: {holdd: 2}\ntargets: [{address: a}]\n", "field holdd not found"},
		{"alarms: {load_for: soon}\ntargets: [{address: a}]\n", `duration "soon"`},
		{"alarms: {command: [/no/such/hook]}\ntargets: [{address: a}]\n", `m.yaml:1: alarms command: exec: "/no/such/hook"`},
		{"alarms: {webhook: 'localhost:9093'}\ntargets: [{address: a}]\n", `alarms webhook "localhost:9093": want an http(s):// URL`},
		{"targets:\n  - address: a\n    alarms: {hold: -1}\n", "m.yaml:2: alarms hold -1"},
	} {
		if _, err := Parse([]byte(tc.yaml), "m.yaml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// Probe settings that `abing measure` has as flags: keys for keyed
// reflectors, method, timestamps, interface, protocol; each checked when the file is
// read, with its line.
func TestProbeKeysAndMethod(t *testing.T) {
	dir := t.TempDir()
	keys, open := filepath.Join(dir, "keys"), filepath.Join(dir, "open")
	os.WriteFile(keys, []byte("a 00112233445566778899aabbccddeeff\nb 00112233445566778899aabbccddeeff\n"), 0o600)
	os.WriteFile(open, []byte("a 00112233445566778899aabbccddeeff\n"), 0o644)
	cfg, err := Parse([]byte(fmt.Sprintf(`probe: {key_file: %q, key_name: a, method: abwe}
targets:
  - address: x
  - address: y
    probe: {key_name: b, timestamps: software, interface: eth1, protocol: stamp}
`, keys)), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mx := cfg.Measure(&cfg.Targets[0])
	my := cfg.Measure(&cfg.Targets[1])
	if mx.Key == nil || mx.Key.Name != "a" || mx.Method != "abwe" || my.Key == nil || my.Key.Name != "b" ||
		my.Timestamps != dispersion.ModeSoftware || my.Interface != "eth1" || my.Method != "abwe" ||
		my.Protocol != "stamp" || mx.Protocol != "" {
		t.Errorf("x: %+v\ny: %+v", mx, my)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"name without file", "targets:\n  - address: a\n    probe: {key_name: a}\n", `m.yaml:2: key_name "a" needs key_file`},
		{"readable keys file", fmt.Sprintf("probe: {key_file: %q}\ntargets: [{address: a}]\n", open), "m.yaml:1: probe: key_file: keys file " + open + ": mode 0644"},
		{"which key", fmt.Sprintf("targets:\n  - address: a\n    probe: {key_file: %q}\n", keys), "m.yaml:2: key_file " + keys + ": 2 keys (a, b)"},
		{"no such key", fmt.Sprintf("targets:\n  - address: a\n    probe: {key_file: %q, key_name: c}\n", keys), `no key named "c"`},
		{"method", "targets:\n  - address: a\n    probe: {method: guess}\n", `m.yaml:2: method "guess"`},
		{"timestamps", "targets:\n  - address: a\n    probe: {timestamps: gps}\n", "m.yaml:2: "},
		{"protocol", "targets:\n  - address: a\n    probe: {protocol: owamp}\n", `m.yaml:2: protocol "owamp": want abing, stamp or twamp-light`},
	} {
		if _, err := Parse([]byte(tc.yaml), "m.yaml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// A configuration that holds a secret must be readable by its owner only;
// one without needs no such care.
func TestLoadConfigSecrets(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml string
		mode       os.FileMode
		want       string // error substring, "" for none
	}{
		{"token, 0644", "influxdb: {url: \"http://127.0.0.1:8086\", bucket: a, token: t0k3n}\ntargets: [{address: a}]\n", 0o644, "holds a secret (influxdb token) and mode 0644"},
		{"token, 0600", "influxdb: {url: \"http://127.0.0.1:8086\", bucket: a, token: t0k3n}\ntargets: [{address: a}]\n", 0o600, ""},
		{"password in url, 0640", "influxdb: {url: \"http://u:p@127.0.0.1:8086\", bucket: a}\ntargets: [{address: a}]\n", 0o640, "influxdb url with a password"},
		{"webhook token, 0644", "alarms: {webhook: \"https://example.org/hook?token=x\"}\ntargets: [{address: a}]\n", 0o644, "alarms webhook"},
		{"no secret, 0644", "targets: [{address: a}]\n", 0o644, ""},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
		os.WriteFile(path, []byte(tc.yaml), tc.mode)
		os.Chmod(path, tc.mode)
		_, err := Load(path)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// The probe is adaptive by default, as abing measure is; precision and
// max_bytes adjust it; pairs or train_len make it fixed.
func TestAdaptiveProbe(t *testing.T) {
	c, err := Parse([]byte("targets:\n  - {address: a}\n  - {address: b, probe: {precision: 0.05, max_bytes: 600000}}\n  - {address: c, probe: {train_len: 10}}\n"), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := c.Measure(&c.Targets[0])
	b := c.Measure(&c.Targets[1])
	f := c.Measure(&c.Targets[2])
	if want := measure.Defaults(); !a.Adaptive() || a.Precision != want.Precision || a.MaxBytes != want.MaxBytes || a.PacedTrainLen != 10 {
		t.Errorf("default: %+v", a)
	}
	if b.Precision != 0.05 || b.MaxBytes != 600000 || b.Round != 5 {
		t.Errorf("adjusted: %+v", b)
	}
	if f.Adaptive() || f.TrainLen != 10 || f.PacedTrainLen != 0 || f.Trains != 16 {
		t.Errorf("train_len made no fixed run: %+v", f)
	}
	// A target's word wins over the defaults, either way.
	c, err = Parse([]byte("probe: {pairs: 20}\ntargets:\n  - {address: a}\n  - {address: b, probe: {precision: 0.05}}\n"), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a = c.Measure(&c.Targets[0])
	b = c.Measure(&c.Targets[1])
	if a.Adaptive() || a.Trains != 20 || !b.Adaptive() || b.Precision != 0.05 || b.Trains != 20 {
		t.Errorf("fixed defaults, adaptive target: %+v, %+v", a, b)
	}
}

// TestAgentConfig: an agent's configuration lists no targets (the mesh
// gives them), may have an agent section that a monitor's may not, and
// WithTargets completes the targets it is given.
func TestAgentConfig(t *testing.T) {
	cfg, err := ParseAgent([]byte("node: lab-a\ninterval: 30s\nagent:\n  paths: {direct: 198.51.100.5}\n  insecure: true\n"), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Targets) != 0 || len(cfg.Agent.Paths) != 1 || time.Duration(cfg.Interval) != 30*time.Second {
		t.Fatalf("%+v", cfg)
	}
	got, err := cfg.WithTargets([]Target{cfg.NewTarget("lab-b", "", map[string]string{"direct": "198.51.100.7:8176", "overlay": "[fd00::7]:8176"})})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Targets) != 2 || got.Targets[0].Name != "lab-b/direct" || got.Targets[1].path != "overlay" || time.Duration(got.Targets[0].Interval) != 30*time.Second || len(cfg.Targets) != 0 {
		t.Errorf("targets %+v (the configuration's: %d)", got.Targets, len(cfg.Targets))
	}
	if _, err := cfg.WithTargets([]Target{cfg.NewTarget("lab-c", "", map[string]string{"direct": "not an address:x"})}); err == nil {
		t.Error("a bad address from the mesh: no error")
	}
	for _, tc := range []struct{ name, text, want string }{
		{"targets in an agent's", "targets:\n  - address: 198.51.100.7\n", "no targets to list"},
		{"an interval too short", "interval: 500ms\nagent:\n  paths: {direct: 198.51.100.5}\n  insecure: true\n", "want at least 1s"},
	} {
		if _, err := ParseAgent([]byte(tc.text), "agent.yaml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Parse([]byte("agent: {}\ntargets:\n  - address: 198.51.100.7\n"), "monitor.yaml"); err == nil || !strings.Contains(err.Error(), "mesh agent") {
		t.Errorf("an agent section in a monitor's: %v", err)
	}
	if _, err := Parse([]byte("interval: 30s\n"), "monitor.yaml"); err == nil || !strings.Contains(err.Error(), "no targets") {
		t.Errorf("a monitor without targets: %v", err)
	}
	if _, err := (&Config{}).WithTargets(nil); err == nil {
		t.Error("WithTargets of a monitor's configuration: no error")
	}
}

// Every zero the file may give stays zero: the defaults fill the
// configuration before the file is read, so a key given as 0 is the
// file's word, not a gap to fill (jitter: 0 once became 0.1). A target's
// settings are laid over the configuration's key by key, zeros included.
func TestExplicitZeroStaysZero(t *testing.T) {
	c, err := Parse([]byte(`
jitter: 0
alarms: {min_duration: 5m, min_rtt_change: 0s, load_for: 0s}
link_cost: {overall: 0, a: 0, b: 0, c: 0, rtt_min_ms: 0, threshold: 0, threshold_abs: 0}
targets:
  - address: a
    alarms: {min_duration: 0s}
  - address: b
`), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := c.Targets[0].AlarmParams(), c.Targets[1].AlarmParams()
	lc := c.LinkCost
	for _, z := range []struct {
		name string
		v    float64
	}{
		{"jitter", c.Jitter},
		{"alarms min_rtt_change", float64(pa.MinRTTChange)},
		{"alarms load_for", float64(pa.LoadFor)},
		{"a target's alarms min_duration over 5m", float64(pa.MinDuration)},
		{"link_cost overall", lc.Overall}, {"link_cost a", lc.A}, {"link_cost b", lc.B}, {"link_cost c", lc.C},
		{"link_cost rtt_min_ms", lc.RTTMin}, {"link_cost threshold", lc.Rel}, {"link_cost threshold_abs", lc.Abs},
	} {
		if z.v != 0 {
			t.Errorf("%s: 0 given, %v kept", z.name, z.v)
		}
	}
	if pb.MinDuration != 5*time.Minute || pb.Hold != alarms.Defaults().Hold {
		t.Errorf("a target without alarms of its own: %+v", pb)
	}
	a, err := ParseAgent([]byte("agent: {paths: {direct: 127.0.0.1}, bind: '127.0.0.1:7946', coord_move: 0s}\n"), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a.Agent.CoordMove != 0 {
		t.Errorf("agent coord_move: 0 given, %v kept", a.Agent.CoordMove)
	}
	// A zero that is not allowed is an error, never a default.
	for _, tc := range []struct{ yaml, want string }{
		{"max_in_flight: 0\ntargets: [{address: a}]\n", "max_in_flight 0"},
		{"pool: 0\ntargets: [{address: a}]\n", "pool 0"},
		{"interval: 0s\ntargets: [{address: a}]\n", "interval 0s"},
		{"store: {retention: 0s}\ntargets: [{address: a}]\n", "retention 0s"},
		{"alarms: {hold: 0}\ntargets: [{address: a}]\n", "alarms hold 0"},
		{"alarms: {command_timeout: 0s}\ntargets: [{address: a}]\n", "command_timeout 0s"},
		{"link_cost: {window: 0}\ntargets: [{address: a}]\n", "window 0"},
		{"influxdb: {url: 'http://127.0.0.1:8086', bucket: b, spool_max_mb: 0}\ntargets: [{address: a}]\n", "spool_max_mb 0"},
		{"targets:\n  - {address: a, interval: 0s}\n", "m.yaml:2: interval 0s"},
	} {
		if _, err := Parse([]byte(tc.yaml), "m.yaml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
