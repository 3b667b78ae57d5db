package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/abing-net/abing"

// imports reads the non-test imports of every package of the module,
// keyed by path relative to the module root ("measure", "cmd/abing").
func imports(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if _, ok := out[rel]; !ok {
			out[rel] = nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if local, ok := strings.CutPrefix(p, module+"/"); ok && !slices.Contains(out[rel], local) {
				out[rel] = append(out[rel], local)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// closure is every package pkg depends on, directly or not.
func closure(deps map[string][]string, pkg string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, d := range deps[p] {
			if !seen[d] {
				seen[d] = true
				walk(d)
			}
		}
	}
	walk(pkg)
	return seen
}

func TestImportRules(t *testing.T) {
	deps := imports(t)
	if len(deps) < 20 {
		t.Fatalf("found only %d packages", len(deps))
	}
	for _, rule := range []struct {
		pkgs   []string
		never  []string
		reason string
	}{
		{[]string{"record", "train", "estimator", "redact"}, nil, "the foundations import no abing package"},
		{[]string{"dispersion"}, []string{"train", "measure", "reflector", "record", "monitor"},
			"observing a train's spreading needs the socket and the estimator's sample type, not the wire format or a run"},
		{[]string{"store", "influx", "alarms", "notify", "traceroute"}, []string{"measure", "reflector", "dispersion", "train", "monitor"},
			"consumers of records get them from package record, not from the sender"},
		{[]string{"alarms"}, []string{"notify", "traceroute", "store", "influx"}, "detection is pure: no delivery, no network"},
		{[]string{"mesh", "linkcost"}, []string{"measure", "reflector", "dispersion", "train", "monitor", "store", "influx", "notify", "traceroute"},
			"the mesh analysis and the link cost are pure: they read records and samples, they do not measure or store"},
		{[]string{"reflector"}, []string{"measure", "record", "monitor"}, "the reflector needs the socket and the wire format only"},
		{[]string{"netloc"}, []string{"meshagent", "monitor", "measure", "mesh"}, "the netloc API serves any source of coordinates"},
		{[]string{"monitor", "mesh", "netloc", "store", "influx"}, []string{"meshagent"}, "the agent is built on them, not they on it"},
		{[]string{"capture"}, []string{"reflector", "monitor", "store", "influx", "notify", "traceroute"},
			"offline analysis reads a file and estimates as a live run does; it does not measure, serve or store"},
		{[]string{"cmd/abing", "cmd/reflector"}, []string{"lab/testbed", "lab/accuracy", "lab/sim", "lab/heatmap"},
			"lab code (and the plotting library of lab/heatmap) stays out of what users install"},
		{[]string{"config"}, []string{"monitor", "meshagent", "daemon"}, "the file format is read by the daemons, it does not run them"},
	} {
		for _, p := range rule.pkgs {
			if _, ok := deps[p]; !ok {
				t.Errorf("no package %s", p)
				continue
			}
			all := closure(deps, p)
			if rule.never == nil {
				if len(deps[p]) > 0 {
					t.Errorf("%s imports %v: %s", p, deps[p], rule.reason)
				}
				continue
			}
			for _, n := range rule.never {
				if all[n] {
					t.Errorf("%s depends on %s: %s", p, n, rule.reason)
				}
			}
		}
	}
	// Direct imports: what a package may not name itself, though a package
	// it imports may (config knows the InfluxDB section's type, say).
	for _, rule := range []struct {
		pkg    string
		never  []string
		reason string
	}{
		{"monitor", []string{"store", "influx", "notify", "traceroute", "webapi", "webui", "internal/web", "netloc", "meshagent", "daemon"},
			"the monitor schedules runs and hands records to sinks and observers; which ones exist, and how they are served, is package daemon's"},
		{"meshagent", []string{"monitor", "daemon", "store", "influx", "webapi", "webui", "internal/web"},
			"the mesh agent plugs in beside the monitor (a source of targets, a consumer of records), it does not run one"},
	} {
		for _, n := range rule.never {
			if slices.Contains(deps[rule.pkg], n) {
				t.Errorf("%s imports %s: %s", rule.pkg, n, rule.reason)
			}
		}
	}
	// Only the commands build daemons.
	for p := range deps {
		if !strings.HasPrefix(p, "cmd/") && p != "daemon" && closure(deps, p)["daemon"] {
			t.Errorf("%s depends on daemon: the composition root is reached only from the commands", p)
		}
	}
	// Nothing outside the lab and its command reaches the lab.
	for p := range deps {
		if strings.HasPrefix(p, "lab/") || p == "cmd/abing-lab" {
			continue
		}
		for d := range closure(deps, p) {
			if strings.HasPrefix(d, "lab/") {
				t.Errorf("%s depends on %s: lab code is reached only through abing-lab", p, d)
			}
		}
	}
	// No cycles (the compiler would say so too, but name the loop here).
	for p := range deps {
		if closure(deps, p)[p] {
			t.Errorf("%s depends on itself", p)
		}
	}
}
