package meshagent

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/serf/coordinate"

	"github.com/abing-net/abing/config"
)

func coord(x, y float64) *coordinate.Coordinate {
	return &coordinate.Coordinate{Vec: []float64{x, y}, Error: 0.5, Height: 1e-5}
}

func links(n int) []Link {
	var out []Link
	for i := range n {
		abw := float64(i)
		out = append(out, Link{Peer: fmt.Sprintf("node-%04d", i), Cost: 96 + float64(i), RTT: 12.345, Loss: 0.01, Jitter: 0.4, ABW: &abw})
	}
	return out
}

// TestSplit: every part fits the limit with its name, carries the
// coordinate, decodes, is full (the next link would not have fitted), and
// together they hold every link once, in order.
func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		links, limit, parts int
	}{
		{0, config.DefaultEventSize, 1},
		{1, config.DefaultEventSize, 1},
		{14, config.DefaultEventSize, 1},
		{15, config.DefaultEventSize, 2},
		{1000, config.DefaultEventSize, 72},
		{1000, 9 * 1024, 7},
		{50, config.MinEventSize, 13},
	} {
		p := Part{Node: "lab-a", Path: "direct", Coord: coord(0.01, -0.02), Iter: 7, Links: links(tc.links)}
		parts, err := Split(p, tc.limit)
		if err != nil {
			t.Fatalf("%d links, limit %d: %v", tc.links, tc.limit, err)
		}
		var got []Link
		for i, b := range parts {
			n := len(EventPrefix+p.Node) + len(b)
			if n > tc.limit {
				t.Errorf("%d links: a part of %d bytes, limit %d", tc.links, n, tc.limit)
			}
			if i < len(parts)-1 {
				next, _ := json.Marshal(p.Links[len(got)+strings.Count(string(b), `"p":`)])
				if n+len(next)+1 <= tc.limit {
					t.Errorf("%d links: part %d of %d bytes had room for the next link (%d bytes)", tc.links, i, n, len(next))
				}
			}
			d, err := Decode(EventPrefix+p.Node, b, 2)
			if err != nil {
				t.Fatalf("%d links: %v", tc.links, err)
			}
			if d.Iter != 7 || d.Coord.Vec[0] != 0.01 || d.Path != "direct" {
				t.Errorf("part %+v", d)
			}
			got = append(got, d.Links...)
		}
		if len(parts) != tc.parts {
			t.Errorf("%d links, limit %d: %d parts, want %d", tc.links, tc.limit, len(parts), tc.parts)
		}
		if len(got) != tc.links {
			t.Fatalf("%d links: %d came back", tc.links, len(got))
		}
		for i := range got {
			if got[i].Peer != p.Links[i].Peer || *got[i].ABW != *p.Links[i].ABW {
				t.Fatalf("link %d: %+v, want %+v", i, got[i], p.Links[i])
			}
		}
	}
	// A coordinate alone larger than the limit cannot be sent.
	if _, err := Split(Part{Node: strings.Repeat("n", 64), Path: "direct", Coord: coord(1, 2)}, 100); err == nil {
		t.Error("a part that cannot fit: no error")
	}
}

// TestDecodeRefuses: a part from the network is checked field by field.
func TestDecodeRefuses(t *testing.T) {
	good := `{"n":"b","path":"direct","coord":{"Vec":[0.001,0.002],"Error":1.5,"Adjustment":0,"Height":0.00001},"it":3,"links":[{"p":"c","c":96,"r":1.5,"l":0,"j":0.1,"a":9.5}]}`
	if p, err := Decode("row:b", []byte(good), 2); err != nil || len(p.Links) != 1 || *p.Links[0].ABW != 9.5 {
		t.Fatalf("the good part: %+v %v", p, err)
	}
	for _, tc := range []struct{ name, event, payload, want string }{
		{"not a row", "deploy", good, "not a row"},
		{"someone else's name", "row:c", good, `event says node "b"`},
		{"not JSON", "row:b", `{"n":`, "unexpected EOF"},
		{"unknown field", "row:b", strings.Replace(good, `"it":3`, `"it":3,"x":1`, 1), "unknown field"},
		{"two objects", "row:b", good + good, "data after"},
		{"bad node name", "row:b c", strings.Replace(good, `"n":"b"`, `"n":"b c"`, 1), "want letters"},
		{"bad path name", "row:b", strings.Replace(good, `"path":"direct"`, `"path":"../x"`, 1), "path name"},
		{"no coordinate", "row:b", strings.Replace(good, `"coord":{"Vec":[0.001,0.002],"Error":1.5,"Adjustment":0,"Height":0.00001}`, `"coord":null`, 1), "no coordinate"},
		{"3-D coordinate", "row:b", strings.Replace(good, `[0.001,0.002]`, `[0.001,0.002,0.003]`, 1), "3 dimensions"},
		{"coordinate far out", "row:b", strings.Replace(good, `[0.001,0.002]`, `[1e300,0.002]`, 1), "finite number"},
		{"coordinate 99.9 s out", "row:b", strings.Replace(good, `[0.001,0.002]`, `[99.9,-99.9]`, 1), "at most 2 s"},
		{"height 3 s", "row:b", strings.Replace(good, `"Height":0.00001`, `"Height":3`, 1), "at most 2 s"},
		{"negative height", "row:b", strings.Replace(good, `"Height":0.00001`, `"Height":-1`, 1), "finite number"},
		{"negative rtt", "row:b", strings.Replace(good, `"r":1.5`, `"r":-1.5`, 1), "rtt -1.5"},
		{"loss above 1", "row:b", strings.Replace(good, `"l":0`, `"l":1.5`, 1), "loss 1.5"},
		{"huge abw", "row:b", strings.Replace(good, `"a":9.5`, `"a":1e30`, 1), "abw"},
		{"negative cost", "row:b", strings.Replace(good, `"c":96`, `"c":-96`, 1), "cost"},
		{"link to itself", "row:b", strings.Replace(good, `"p":"c"`, `"p":"b"`, 1), "to itself"},
		{"link twice", "row:b", strings.Replace(good, `"links":[`, `"links":[{"p":"c","c":1,"r":1,"l":0,"j":0},`, 1), "twice"},
		{"bad peer", "row:b", strings.Replace(good, `"p":"c"`, `"p":""`, 1), "peer name"},
	} {
		_, err := Decode(tc.event, []byte(tc.payload), 2)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("row:b", []byte(`{"n":"b","path":"direct","coord":{"Vec":[0.001,0.002],"Error":1.5,"Adjustment":0,"Height":0.00001},"it":3,"links":[]}`))
	f.Fuzz(func(t *testing.T, name string, payload []byte) {
		p, err := Decode(name, payload, 2)
		if err != nil {
			return
		}
		// What passes is within every bound.
		if checkCoord(p.Coord, 2) != nil || len(p.Links) > MaxLinks {
			t.Fatalf("passed: %+v", p)
		}
		for _, l := range p.Links {
			if checkLink(l) != nil {
				t.Fatalf("passed: %+v", l)
			}
		}
	})
}
