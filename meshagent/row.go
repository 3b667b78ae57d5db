package meshagent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/hashicorp/serf/coordinate"

	"github.com/abing-net/abing/config"
)

// A node's row is published as serf user events named EventPrefix+node,
// one event (a Part) per path and per slice of its links. A receiver
// upserts the links of each part: a part needs no other to be used, and a
// lost one costs only what it carried until the next refresh.
const EventPrefix = "row:"

// Link is what a node measured to one peer on one path, as its row
// publishes it. Absent values (ABW and DBC of a run that could not
// estimate them) are nil.
type Link struct {
	Peer   string   `json:"p"`
	Cost   float64  `json:"c"`           // link cost (package linkcost)
	RTT    float64  `json:"r"`           // ms, mean of the run
	Loss   float64  `json:"l"`           // fraction, 0 to 1
	Jitter float64  `json:"j"`           // ms
	ABW    *float64 `json:"a,omitempty"` // Mbit/s, node → peer
	DBC    *float64 `json:"d,omitempty"` // Mbit/s, node → peer
}

// Part is one user event of a row: the node's coordinate on one path and
// some of its links on that path.
type Part struct {
	Node  string                 `json:"n"`
	Path  string                 `json:"path"`
	Coord *coordinate.Coordinate `json:"coord"`
	// Iter counts the updates of the coordinate (netloc's iteration).
	Iter  uint64 `json:"it"`
	Links []Link `json:"links"`
}

// Bounds of what a part may say; anything beyond is refused.
const (
	MaxLinks = 10000
	maxRTT   = 60_000 // ms
	maxRate  = 1e7    // Mbit/s: 10 Tbit/s
	maxCost  = 1e9
	// maxCoord bounds any component of a coordinate, its height and its
	// adjustment, in seconds (and its unitless error). A coordinate's
	// distances are round trips: no path on Earth, a geostationary hop
	// included (about 0.6 s), puts a node 2 s from the origin, and rows
	// at ±99.9 s pulled honest agents to (−30 s, +30 s) for a quarter of
	// an hour while the bound was 100 s.
	maxCoord = 2
)

// Split encodes a row (one path's coordinate and links) as the payloads
// of parts whose name and payload together take at most limit bytes.
// Links are sorted by the caller; each part carries the coordinate.
func Split(p Part, limit int) ([][]byte, error) {
	name := len(EventPrefix) + len(p.Node)
	head := p
	head.Links = nil
	empty, err := json.Marshal(head)
	if err != nil {
		return nil, err
	}
	if name+len(empty) > limit {
		return nil, fmt.Errorf("row of %s/%s: the coordinate alone takes %d bytes, more than the event limit %d", p.Node, p.Path, name+len(empty), limit)
	}
	if len(p.Links) == 0 {
		return [][]byte{empty}, nil
	}
	var out [][]byte
	// Greedy: as many links as fit, then a new part. Each link's size is
	// its JSON and a comma.
	room := limit - name - len(empty)
	start, used := 0, 0
	for i, l := range p.Links {
		b, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		n := len(b) + 1
		if n > limit-name-len(empty) {
			return nil, fmt.Errorf("row of %s/%s: link to %s takes %d bytes, more than the event limit allows", p.Node, p.Path, l.Peer, n)
		}
		if used+n > room {
			part := head
			part.Links = p.Links[start:i]
			if out, err = appendJSON(out, part); err != nil {
				return nil, err
			}
			start, used = i, 0
		}
		used += n
	}
	part := head
	part.Links = p.Links[start:]
	return appendJSON(out, part)
}

func appendJSON(out [][]byte, v any) ([][]byte, error) {
	b, err := json.Marshal(v)
	return append(out, b), err
}

// Decode reads and checks the payload of the event named name: every
// field against its range, the node against the event's name, the
// coordinate against the dimensions of this mesh. A part from the network
// is hostile until Decode has passed it.
func Decode(name string, payload []byte, dims int) (*Part, error) {
	node, ok := strings.CutPrefix(name, EventPrefix)
	if !ok {
		return nil, fmt.Errorf("event %q: not a row", name)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var p Part
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("row of %q: %w", node, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("row of %q: data after the part", node)
	}
	if p.Node != node {
		return nil, fmt.Errorf("row of %q: event says node %q", node, p.Node)
	}
	if err := config.CheckName(p.Node); err != nil {
		return nil, fmt.Errorf("row: node %w", err)
	}
	if err := config.CheckName(p.Path); err != nil {
		return nil, fmt.Errorf("row of %s: path %w", p.Node, err)
	}
	if err := checkCoord(p.Coord, dims); err != nil {
		return nil, fmt.Errorf("row of %s/%s: %w", p.Node, p.Path, err)
	}
	if len(p.Links) > MaxLinks {
		return nil, fmt.Errorf("row of %s/%s: %d links, at most %d", p.Node, p.Path, len(p.Links), MaxLinks)
	}
	seen := map[string]bool{}
	for _, l := range p.Links {
		if err := checkLink(l); err != nil {
			return nil, fmt.Errorf("row of %s/%s: %w", p.Node, p.Path, err)
		}
		if l.Peer == p.Node || seen[l.Peer] {
			return nil, fmt.Errorf("row of %s/%s: link to %s twice or to itself", p.Node, p.Path, l.Peer)
		}
		seen[l.Peer] = true
	}
	return &p, nil
}

func inRange(v, hi float64) bool { return v >= 0 && v <= hi } // false for NaN

func checkLink(l Link) error {
	if err := config.CheckName(l.Peer); err != nil {
		return fmt.Errorf("link: peer %w", err)
	}
	for _, f := range []struct {
		name string
		v    *float64
		hi   float64
	}{{"cost", &l.Cost, maxCost}, {"rtt", &l.RTT, maxRTT}, {"loss", &l.Loss, 1}, {"jitter", &l.Jitter, maxRTT}, {"abw", l.ABW, maxRate}, {"dbc", l.DBC, maxRate}} {
		if f.v != nil && !inRange(*f.v, f.hi) {
			return fmt.Errorf("link to %s: %s %g: want 0 to %g", l.Peer, f.name, *f.v, f.hi)
		}
	}
	return nil
}

func checkCoord(c *coordinate.Coordinate, dims int) error {
	if c == nil {
		return errors.New("no coordinate")
	}
	if len(c.Vec) != dims {
		return fmt.Errorf("coordinate of %d dimensions, this mesh has %d", len(c.Vec), dims)
	}
	ok := inRange(c.Error, maxCoord) && inRange(c.Height, maxCoord) && math.Abs(c.Adjustment) <= maxCoord
	for _, v := range c.Vec {
		ok = ok && math.Abs(v) <= maxCoord
	}
	if !ok {
		return fmt.Errorf("coordinate %+v: a component is not a finite number of at most %d s", *c, maxCoord)
	}
	return nil
}
