package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/record"
)

// The mesh commands on files: a matrix for relays and coords, a records
// file with node and path for compare (and for relays, from its records).
func TestMeshCommands(t *testing.T) {
	dir := t.TempDir()
	matrix := filepath.Join(dir, "m.csv")
	os.WriteFile(matrix, []byte("src,dst,rtt_ms\na,b,100\nc,d,100\na,c,100\nr1,a,20\nr1,b,20\nr2,a,20\nr2,c,20\nr2,d,20\n"), 0o644)
	out, err := runMesh(t, "relays", "--matrix", matrix, "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var objs []map[string]any
	if err := json.Unmarshal([]byte(out), &objs); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	for _, o := range objs {
		kinds = append(kinds, o["kind"].(string)+":"+str(o["relay"]))
	}
	if got := strings.Join(kinds, " "); got != "rtt:r1 rtt:r2 rtt:r2 top:r2 top:r1" {
		t.Errorf("relays: %s", got)
	}
	// Nothing to list is an empty array, not nothing.
	flat := filepath.Join(dir, "flat.csv")
	os.WriteFile(flat, []byte("src,dst,rtt_ms\na,b,10\nb,c,10\na,c,10\n"), 0o644)
	if out, err := runMesh(t, "relays", "--matrix", flat, "--output", "json"); err != nil || out != "[]\n" {
		t.Errorf("relays with none to list: %q, %v", out, err)
	}
	out, err = runMesh(t, "coords", "--matrix", matrix, "--predict", "b", "--predict", "d", "--output", "csv")
	if err != nil || !strings.HasPrefix(out, "a,b,predicted_ms,measured_ms\nb,d,") {
		t.Errorf("coords --predict: %v\n%s", err, out)
	}

	// Records: host h reached from node n over two paths for 5 runs.
	t0 := time.Now().Add(-time.Hour).UTC()
	f := func(v float64) *float64 { return &v }
	var b strings.Builder
	w := record.NewCSVWriter(&b)
	for i := range 5 {
		for _, p := range []struct {
			name string
			rtt  float64
		}{{"direct", 80}, {"overlay", 50}} {
			r := record.Record{Time: t0.Add(time.Duration(i) * time.Minute), Node: "n", Target: "h", Path: p.name, Direction: "forward",
				RTT: &record.RTT{Avg: p.rtt}, ABW: f(40), DBC: f(100)}
			w.Write(&r)
		}
	}
	w.Flush()
	input := filepath.Join(dir, "h.csv")
	os.WriteFile(input, []byte(b.String()), 0o644)
	out, err = runMesh(t, "compare", "--input", input)
	if err != nil || !strings.Contains(out, "overlay vs direct") || !strings.Contains(out, "OPTIMIZED by 30.0 ms (38 %)") {
		t.Errorf("compare: %v\n%s", err, out)
	}
	out, err = runMesh(t, "relays", "--input", input)
	if err != nil || !strings.Contains(out, "2 hosts, 1 pairs with a direct RTT; 0 improved") {
		t.Errorf("relays from records: %v\n%s", err, out)
	}

	// Routes: the seeds' example in a matrix with published costs; from
	// records, a table for each path network.
	seeds := filepath.Join(dir, "seeds.csv")
	os.WriteFile(seeds, []byte("src,dst,rtt_ms,cost\n2,1,5,43\n1,3,5,43\n2,4,5,1\n4,3,5,2\n5,6,5,10\n"), 0o644)
	out, err = runMesh(t, "routes", "--matrix", seeds, "--from", "2", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var routes []struct {
		Src, Dst      string
		NextHop       string `json:"next_hop"`
		Hops          []string
		Value, Direct *float64
		Reachable     bool
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil || len(routes) != 5 {
		t.Fatalf("routes from 2: %v\n%s", err, out)
	}
	if r := routes[1]; r.Dst != "3" || strings.Join(r.Hops, ">") != "2>4>3" || r.NextHop != "4" || r.Value == nil || *r.Value != 3 || r.Direct != nil {
		t.Errorf("2 to 3: %+v", r)
	}
	if r := routes[0]; r.Dst != "1" || !r.Reachable || strings.Join(r.Hops, ">") != "2>1" || r.Direct == nil || *r.Direct != 43 {
		t.Errorf("2 to 1: %+v", r)
	}
	// 5 and 6 are a mesh of their own.
	out, err = runMesh(t, "routes", "--matrix", seeds, "--from", "5", "--output", "csv")
	if err != nil || out != "path,from,to,next hop,route,cost,direct,gain\ndirect,5,1,,unreachable,,,\ndirect,5,2,,unreachable,,,\n"+
		"direct,5,3,,unreachable,,,\ndirect,5,4,,unreachable,,,\ndirect,5,6,6,5>6,10.0,10.0,0.0\n" {
		t.Errorf("routes from 5: %v\n%s", err, out)
	}
	out, err = runMesh(t, "routes", "--input", input, "--metric", "rtt", "--output", "csv")
	if err != nil || out != "path,from,to,next hop,route,RTT ms,direct,gain\ndirect,h,n,n,h>n,80.0,80.0,0.0\ndirect,n,h,h,n>h,80.0,80.0,0.0\n"+
		"overlay,h,n,n,h>n,50.0,50.0,0.0\noverlay,n,h,h,n>h,50.0,50.0,0.0\n" {
		t.Errorf("routes from records, both paths: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"routes", "--matrix", seeds, "--metric", "hops"}, `route metric "hops"`},
		{[]string{"routes", "--matrix", seeds, "--from", "9"}, `--from "9": no such host`},
		{[]string{"routes", "--input", input, "--path", "wifi"}, `on path "wifi"`},
		{[]string{"relays", "--matrix", filepath.Join(dir, "none.csv")}, "no such file"},
		{[]string{"relays", "--matrix", input}, "unknown column"},
		{[]string{"relays", "--matrix", matrix, "--input", input}, "exclude each other"},
		{[]string{"relays", "--matrix", matrix, "--min-gain", "-1"}, "must not be negative"},
		{[]string{"relays", "--matrix", matrix, "--output", "xml"}, `--output "xml"`},
		{[]string{"coords", "--matrix", matrix, "--predict", "a"}, "two hosts"},
		{[]string{"coords", "--matrix", matrix, "--predict", "a", "--predict", "zz"}, "not in the input"},
		{[]string{"compare", "--input", input, "--since", "1ns"}, "no host with two or more paths"},
		{[]string{"relays", "--input", input, "--path", "wifi"}, `on path "wifi"`},
	} {
		if _, err := runMesh(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func runMesh(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := meshCommand()
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}
