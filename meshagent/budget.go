package meshagent

import (
	"log/slog"
	"math"
	"time"

	"github.com/hashicorp/memberlist"
	"golang.org/x/time/rate"
)

// GossipShare is the share of the gossip's capacity that rows may take;
// the rest is left to membership and to bursts.
const GossipShare = 0.5

// profile is memberlist's configuration of a timing profile.
func profile(name string) *memberlist.Config {
	switch name {
	case "wan":
		return memberlist.DefaultWANConfig()
	case "local":
		return memberlist.DefaultLocalConfig()
	}
	return memberlist.DefaultLANConfig()
}

// budget keeps this node's rows within its share of the gossip. Gossip is
// a broadcast medium: every member sends every event RetransmitMult ×
// ⌈log10(n+1)⌉ times, in packets of one part each, GossipNodes packets
// every GossipInterval. So a mesh of n members carries at most
// capacity/limit parts a second in all, and one member's share is 1/n of
// that. A member that published faster would fill every queue, and serf
// drops the oldest events of a full queue (docs/mesh.md, Scale).
type budget struct {
	capacity  float64 // packets a member sends a second
	mult      int
	lim       *rate.Limiter
	n         int // members the limit was set for
	fullParts int // parts of the whole row, last built
	refreshed time.Duration
}

func newBudget(ml *memberlist.Config, paths int) *budget {
	b := &budget{capacity: float64(ml.GossipNodes) / ml.GossipInterval.Seconds(), mult: ml.RetransmitMult, fullParts: paths,
		lim: rate.NewLimiter(0, paths)}
	b.set(1)
	return b
}

// Rate is the parts a second one of n members may publish.
func (b *budget) Rate(n int) float64 {
	limit := float64(b.mult) * math.Ceil(math.Log10(float64(n+1)))
	return GossipShare * b.capacity / limit / float64(n)
}

// GossipRate is the parts a second one of n members may publish with
// memberlist's configuration ml: the agent's budget.
func GossipRate(ml *memberlist.Config, n int) float64 { return newBudget(ml, 1).Rate(n) }

func (b *budget) set(n int) {
	b.n = n
	b.lim.SetLimit(rate.Limit(b.Rate(n)))
	b.lim.SetBurst(max(b.fullParts, 1))
}

// allow takes n parts from the budget, if it holds them now.
func (b *budget) allow(now time.Time, n int) bool {
	if n > b.lim.Burst() {
		b.lim.SetBurst(n)
	}
	return b.lim.AllowN(now, n)
}

// refresh is how often the whole row may go out among n members: the
// configured refresh, stretched so that the whole row takes at most half
// of this node's share. It logs when the stretch changes.
func (b *budget) refresh(n int, configured time.Duration, log *slog.Logger) time.Duration {
	if n != b.n {
		b.set(n)
	}
	need := time.Duration(2 * float64(b.fullParts) / b.Rate(n) * float64(time.Second))
	out := max(configured, need)
	if out != b.refreshed {
		if out > configured {
			log.Info("gossip budget: the whole row goes out less often than refresh asks, so that rows take at most their share of the gossip",
				"members", n, "row_parts", b.fullParts, "parts_per_second", b.Rate(n), "refresh", out.Round(time.Second).String())
		}
		b.refreshed = out
	}
	return out
}
