package reflector

import (
	"math"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Budget is a pair of token buckets: bytes and packets received. A datagram
// is accepted only if both have tokens for it. Replies are never larger than
// what they answer, so a receive budget also bounds what the reflector sends.
type Budget struct {
	Rate        float64 // bits per second
	Burst       int     // bytes
	PPS         float64 // packets per second
	PacketBurst int     // packets
}

func (b Budget) valid() bool {
	return positive(b.Rate) && b.Burst >= MaxDatagram && positive(b.PPS) && b.PacketBurst >= 1
}

// positive is true for a finite number above zero (not NaN, not +Inf).
func positive(v float64) bool { return v > 0 && !math.IsInf(v, 1) }

// Scaled is b at another byte rate (bit/s) and packet rate, with bursts
// scaled alike so that they hold the same time's worth (at least one
// largest datagram and one packet).
func (b Budget) Scaled(rate, pps float64) Budget {
	return Budget{
		Rate:        rate,
		Burst:       max(MaxDatagram, int(float64(b.Burst)*rate/b.Rate)),
		PPS:         pps,
		PacketBurst: max(1, int(float64(b.PacketBurst)*pps/b.PPS)),
	}
}

// refill is how long an empty bucket of b takes to fill.
func (b Budget) refill() time.Duration {
	return time.Duration(max(float64(b.Burst)*8/b.Rate, float64(b.PacketBurst)/b.PPS) * float64(time.Second))
}

// Limits are the receive budgets per source address, per source prefix (/24
// for IPv4, /48 for IPv6) and for the whole reflector, and the share of the
// reflector's transmit time one source may spend on paced reply trains.
type Limits struct {
	Source, Prefix, Global Budget
	// PacedShare is the fraction of time (0 to 1) a source may keep the
	// reflector's writer busy spacing its replies; the bucket holds one
	// second's worth.
	PacedShare float64
	// PacedTotal is the fraction of time all sources together may keep
	// it busy so: the rest is for back-to-back replies, cookies and
	// reports, however many sources pace.
	PacedTotal float64
}

// DefaultLimits: a source may send 10 Mbit/s and 5000 packets/s (bursts
// of 1 MiB and 2000 packets: a run of 16 trains of 10 jumbo frames fits),
// a prefix four times that, the reflector 1 Gbit/s and 200,000 packets/s;
// a source may keep the writer pacing 10 % of the time, all together 50 %.
func DefaultLimits() Limits {
	return Limits{
		Source:     Budget{Rate: 10e6, Burst: 1 << 20, PPS: 5000, PacketBurst: 2000},
		Prefix:     Budget{Rate: 40e6, Burst: 4 << 20, PPS: 20000, PacketBurst: 8000},
		Global:     Budget{Rate: 1e9, Burst: 16 << 20, PPS: 200000, PacketBurst: 50000},
		PacedShare: 0.1,
		PacedTotal: 0.5,
	}
}

// bucket is one budget in use.
type bucket struct {
	bytes, pkts *rate.Limiter
	paced       *rate.Limiter // sources only: writer time, in µs
	last        time.Time     // last datagram
	notice      time.Time     // last refusal notice sent
	refused     uint64        // datagrams refused since the last summary
	sessions    int           // prefixes only: sessions held
}

func newBucket(b Budget, now time.Time) *bucket {
	return &bucket{
		bytes: rate.NewLimiter(rate.Limit(b.Rate/8), b.Burst),
		pkts:  rate.NewLimiter(rate.Limit(b.PPS), b.PacketBurst),
		last:  now,
	}
}

// take spends one datagram of n bytes, or nothing if either bucket lacks
// tokens.
func (b *bucket) take(now time.Time, n int) bool {
	b.last = now
	if b.pkts.TokensAt(now) < 1 || b.bytes.TokensAt(now) < float64(n) {
		return false
	}
	b.pkts.AllowN(now, 1)
	b.bytes.AllowN(now, n)
	return true
}

// table is a bounded set of buckets, one per key. Keys that find it full
// share one overflow bucket of the same budget: a flood of new sources or
// prefixes can fill the table, but not escape its limits.
type table[K comparable] struct {
	budget   Budget
	paced    *pacedBudget // sources only
	max      int
	m        map[K]*bucket
	swept    time.Time
	overflow *bucket // made when first needed
	// overflowed counts the datagrams charged to the overflow bucket.
	overflowed uint64
}

func newTable[K comparable](b Budget, max int) *table[K] {
	return &table[K]{budget: b, max: max, m: map[K]*bucket{}}
}

// get returns the bucket of k, making one if there is room, or the shared
// overflow bucket if the table is full even after forgetting idle buckets.
func (t *table[K]) get(k K, now time.Time) *bucket {
	if b := t.m[k]; b != nil {
		return b
	}
	if len(t.m) >= t.max && now.Sub(t.swept) > 100*time.Millisecond {
		t.sweep(now)
	}
	if len(t.m) >= t.max {
		if t.overflow == nil {
			t.overflow = t.newBucket(now)
		}
		t.overflowed++
		return t.overflow
	}
	b := t.newBucket(now)
	t.m[k] = b
	return b
}

func (t *table[K]) newBucket(now time.Time) *bucket {
	b := newBucket(t.budget, now)
	if t.paced != nil {
		b.paced = t.paced.limiter()
	}
	return b
}

// sweep forgets buckets idle long enough to have refilled and counting no
// sessions: they hold no state worth keeping.
func (t *table[K]) sweep(now time.Time) {
	t.swept = now
	idle := t.budget.refill() + time.Second
	for k, b := range t.m {
		if now.Sub(b.last) > idle && b.sessions == 0 {
			delete(t.m, k)
		}
	}
}

// pacedBudget is the writer time a source may spend on paced replies: share
// of each second, in µs, with a bucket of burst µs.
type pacedBudget struct {
	share float64
	burst int
}

func (p *pacedBudget) limiter() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(p.share*1e6), p.burst)
}

// prefixOf is the /24 (IPv4) or /48 (IPv6) holding a.
func prefixOf(a netip.Addr) netip.Prefix {
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// acl is the --allow/--deny filter: deny wins; with any allow entry, only
// allowed sources pass.
type acl struct {
	allow, deny []netip.Prefix
}

func (a *acl) permits(addr netip.Addr) bool {
	for _, p := range a.deny {
		if p.Contains(addr) {
			return false
		}
	}
	if len(a.allow) == 0 {
		return true
	}
	for _, p := range a.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
