package meshagent

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/monitor"
)

// TestExampleConfig: deploy/mesh-agent.example.yaml parses, shows every
// setting of the agent section, and the defaults it shows are the defaults.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../deploy/mesh-agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := monitor.ParseAgentConfig(b, "mesh-agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := DecodeSettings(&cfg.Agent)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(); err != nil {
		t.Fatal(err)
	}
	def := Settings{Paths: s.Paths, Join: s.Join, Keyring: s.Keyring, Advertise: s.Advertise, PathsText: s.PathsText}
	if err := def.Complete(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, def) {
		t.Errorf("the example's values differ from the defaults:\n%+v\n%+v", s, def)
	}
	if cfg.Node != "lab-a" || time.Duration(cfg.Interval) != monitor.DefaultInterval || cfg.LinkCost != monitor.DefaultLinkCost() {
		t.Errorf("monitor settings %+v", cfg)
	}
	present := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*#?\s*([a-z_]+):`).FindAllStringSubmatch(string(b), -1) {
		present[m[1]] = true
	}
	rt := reflect.TypeOf(Settings{})
	for i := range rt.NumField() {
		key, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
		if key != "" && key != "-" && !present[key] {
			t.Errorf("deploy/mesh-agent.example.yaml lacks the agent's %s (%q)", rt.Field(i).Name, key)
		}
	}
}
