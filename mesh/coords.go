package mesh

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hashicorp/serf/coordinate"
)

// Coordinates are Vivaldi network coordinates (hashicorp/serf's coordinate
// package: a latency filter, an adjustment term and gravity on top of
// Vivaldi) fitted to measured RTTs, which predict the RTT of pairs that
// nobody measured. Euclidean coordinates cannot represent triangle-
// inequality violations, so relay analysis (Relays) uses measured RTTs,
// never these.
type Coordinates struct {
	clients map[string]*coordinate.Client
	Nodes   []string // sorted
}

// CoordinateDefaults: two dimensions plus a height, as Vivaldi's authors
// found enough for Internet latencies; 200 passes over the samples.
const (
	DefaultDimensions = 2
	DefaultRounds     = 200
)

// FitCoordinates fits coordinates of dims dimensions plus a height to the
// RTTs of samples (each pair updates both ends), in rounds passes over the
// samples in an order drawn from seed, so that a fit can be repeated.
// Samples without a positive RTT below 10 s are left out.
func FitCoordinates(samples []Sample, dims, rounds int, seed uint64) (*Coordinates, error) {
	if dims < 1 || dims > 16 || rounds < 1 {
		return nil, fmt.Errorf("coordinates: %d dimensions, %d rounds: want 1 to 16 and at least 1", dims, rounds)
	}
	var use []Sample
	for _, s := range samples {
		if s.Src != s.Dst && s.RTT > 0 && s.RTT < 10_000 {
			use = append(use, s)
		}
	}
	if len(use) == 0 {
		return nil, errors.New("coordinates: no RTT to fit")
	}
	cfg := coordinate.DefaultConfig()
	cfg.Dimensionality = uint(dims)
	c := &Coordinates{clients: map[string]*coordinate.Client{}}
	for _, s := range use {
		for _, n := range []string{s.Src, s.Dst} {
			if c.clients[n] == nil {
				cl, err := coordinate.NewClient(cfg)
				if err != nil {
					return nil, fmt.Errorf("coordinates: %w", err)
				}
				c.clients[n] = cl
				c.Nodes = append(c.Nodes, n)
			}
		}
	}
	slices.Sort(c.Nodes)
	rng := rand.New(rand.NewPCG(seed, 0x71a1d1))
	for range rounds {
		rng.Shuffle(len(use), func(i, j int) { use[i], use[j] = use[j], use[i] })
		for _, s := range use {
			rtt := time.Duration(s.RTT * float64(time.Millisecond))
			a, b := c.clients[s.Src], c.clients[s.Dst]
			// Errors only for a coordinate of another dimensionality or
			// an RTT out of range, both excluded above.
			a.Update(s.Dst, b.GetCoordinate(), rtt)
			b.Update(s.Src, a.GetCoordinate(), rtt)
		}
	}
	return c, nil
}

// Coordinate is node's coordinate, nil for a node not fitted.
func (c *Coordinates) Coordinate(node string) *coordinate.Coordinate {
	if cl := c.clients[node]; cl != nil {
		return cl.GetCoordinate()
	}
	return nil
}

// Predict is the RTT between a and b that their coordinates predict, ms.
func (c *Coordinates) Predict(a, b string) (float64, bool) {
	ca, cb := c.Coordinate(a), c.Coordinate(b)
	if ca == nil || cb == nil {
		return math.NaN(), false
	}
	return float64(ca.DistanceTo(cb)) / float64(time.Millisecond), true
}
