package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/alarms"
	"github.com/abing-net/abing/linkcost"
)

// The example configuration shipped in deploy/ parses, says what the
// documentation says it does, and names every key there is.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../deploy/monitor.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Its keys file is a real one here (mode 600, as the monitor demands).
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("site-a 00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "/etc/abing/keys", keys)
	c, err := Parse([]byte(text), "monitor.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Targets) != 5 || c.Targets[0].Name != "lab-b" || c.Targets[1].Name != "[2001:db8::7]:8176" || c.Targets[4].Name != "lab-d/overlay" ||
		time.Duration(c.Targets[1].Interval) != 5*time.Minute || c.Targets[2].key == nil || c.Targets[2].key.Name != "site-a" {
		t.Errorf("targets: %+v", c.Targets)
	}
	if c.InfluxDB == nil || c.InfluxDB.Spool != "/var/lib/abing/influx-spool" || !c.Alarms.Traceroute || len(c.Alarms.Hooks()) != 2 {
		t.Errorf("influxdb %+v, alarms %+v", c.InfluxDB, c.Alarms)
	}
	// Every value the example gives as a default is the default.
	if p := c.Targets[0].AlarmParams(); p != alarms.Defaults() {
		t.Errorf("alarm defaults in the example %+v, in the code %+v", p, alarms.Defaults())
	}
	if d := Default(); c.Interval != d.Interval || c.Jitter != d.Jitter || c.MaxInFlight != d.MaxInFlight || c.Pool != d.Pool || c.LinkCost != d.LinkCost ||
		c.Store.Retention != d.Store.Retention || c.Alarms.CommandTimeout != d.Alarms.CommandTimeout {
		t.Errorf("monitor defaults differ: %+v", c)
	}
	if d := DefaultInfluxDB(); c.InfluxDB.Measurement != d.Measurement || c.InfluxDB.SpoolMaxMB != d.SpoolMaxMB || c.InfluxDB.UnhealthyAfter != d.UnhealthyAfter {
		t.Errorf("influxdb defaults differ: %+v", c.InfluxDB)
	}
	// Every configuration key appears in it.
	present := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*-?\s*([a-z_]+):|[{,]\s*([a-z_]+):`).FindAllStringSubmatch(text, -1) {
		present[m[1]+m[2]] = true
	}
	for _, typ := range []any{Config{}, Probe{}, Store{}, Target{}, Alarms{}, Detectors{}, InfluxDB{}, LinkCost{}, linkcost.Params{}, linkcost.Threshold{}} {
		rt := reflect.TypeOf(typ)
		for i := range rt.NumField() {
			key, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
			// The agent section is abing mesh agent's: its example is
			// deploy/mesh-agent.example.yaml (package meshagent checks it).
			if key != "" && key != "-" && key != "agent" && !present[key] {
				t.Errorf("deploy/monitor.example.yaml lacks %s.%s (%q)", rt.Name(), rt.Field(i).Name, key)
			}
		}
	}
}
