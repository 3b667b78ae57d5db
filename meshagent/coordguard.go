package meshagent

// A peer's published coordinate feeds this node's Vivaldi client with the
// RTT measured to it. A coordinate that a holder of the gossip key forged
// under the peer's name (rows are not signed: docs/mesh.md, Security
// model) disagrees wildly with that RTT: it would drag this node's
// coordinate, and through it the whole map's, seconds away. A sample is
// wild when the distance it predicts exceeds the RTT by more than
// wildFactor times plus wildSlack; a wild sample is refused while most of
// this node's recent samples agree, since then it is the peer's
// coordinate that is wrong. When most disagree, it is this node's own
// coordinate that is wrong (it was poisoned, or the network changed under
// it, or it has just joined a map that drifted away from the origin): the
// samples are taken and it finds its place again, so nothing locks it
// out. Until half of guardSamples have been seen, wild samples wait. With fewer than three honest members the rule cannot tell
// who is wrong; the coordinate bounds (maxCoord) still hold.
const (
	wildFactor = 10
	// wildSlack is in seconds: an honest fit misses by a few ms to tens
	// of ms (Vivaldi's median error on PlanetLab is about 10 %: Dabek et
	// al., SIGCOMM 2004), far under it.
	wildSlack = 0.050
	// guardSamples is how many recent samples (of every peer on a path)
	// decide whether this node's coordinate or the peer's is wrong.
	guardSamples = 16
)

// coordGuard remembers whether a path's recent samples were wild.
type coordGuard struct {
	wild [guardSamples]bool
	n, i int
}

// admit notes a sample, the distance predicted and the RTT measured in
// seconds, and says whether to take it.
func (g *coordGuard) admit(predicted, rtt float64) bool {
	wild := predicted > wildFactor*rtt+wildSlack
	g.wild[g.i] = wild
	g.i = (g.i + 1) % guardSamples
	g.n = min(g.n+1, guardSamples)
	if !wild {
		return true
	}
	if g.n < guardSamples/2 {
		return false // too few samples yet to tell whose coordinate is wrong
	}
	count := 0
	for _, w := range g.wild[:g.n] {
		if w {
			count++
		}
	}
	return 2*count > g.n
}
