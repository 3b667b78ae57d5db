package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestAgentExample: deploy/mesh-agent.example.yaml parses, shows every
// setting of the agent section, and the defaults it shows are the defaults.
func TestAgentExample(t *testing.T) {
	b, err := os.ReadFile("../deploy/mesh-agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Its keyring and key names are the deployment's; here only the
	// settings are read.
	cfg, err := ParseAgent(b, "mesh-agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Agent
	def := DefaultAgent()
	def.Paths, def.PathsText, def.Join, def.Keyring = s.Paths, s.PathsText, s.Join, s.Keyring
	if err := def.complete(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, def) {
		t.Errorf("the example's values differ from the defaults:\n%+v\n%+v", s, def)
	}
	d := Default()
	if cfg.Node != "lab-a" || cfg.Interval != d.Interval || cfg.LinkCost != d.LinkCost || cfg.Jitter != d.Jitter || cfg.Pool != d.Pool {
		t.Errorf("monitor settings %+v", cfg)
	}
	present := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*#?\s*([a-z_]+):`).FindAllStringSubmatch(string(b), -1) {
		present[m[1]] = true
	}
	rt := reflect.TypeOf(Agent{})
	for i := range rt.NumField() {
		key, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
		if key != "" && key != "-" && !present[key] {
			t.Errorf("deploy/mesh-agent.example.yaml lacks the agent's %s (%q)", rt.Field(i).Name, key)
		}
	}
}
