package dispersion

import (
	"fmt"
	"slices"

	"github.com/abing-net/abing/estimator"
)

// Reject says why a train yields no sample.
type Reject int

// Reasons a train is not used. They are counted and reported, never folded
// silently into an estimate.
const (
	Accepted    Reject = iota
	Lost               // a packet of the train did not arrive
	Reordered          // packets arrived out of order
	NoTxStamp          // a transmit time is missing
	LeftLate           // back-to-back train that left too slowly to measure the path
	OffPace            // paced train whose measured spacing is not what was asked
	Compressed         // a gap at or below the timestamp noise
	MixedClock         // a packet was stamped by a worse clock than the others
	Implausible        // the peer's stamps span more time than the round trip allows
	numRejects
)

func (r Reject) String() string {
	return [...]string{"accepted", "lost", "reordered", "no-tx-stamp", "left-late", "off-pace", "compressed", "mixed-clock", "implausible"}[r]
}

// Pace says what input spacing a train was meant to have. The zero Pace is
// back to back: then every input gap must be under half its output gap (the
// second packet reached the path while the first was still in it). A paced
// train is accepted when its mean input gap lies in [Min, Max] and no single
// gap exceeds Hole. The check is on the train, not on each gap, because a
// sender that is delayed once sends the next packet early to keep its
// schedule, and such delays come with a busy host, that is with the very
// cross traffic being measured: rejecting them gap by gap would keep mostly
// the trains that saw none.
type Pace struct {
	Min, Max, Hole float64 // seconds
}

// Rejects counts trains by reason.
type Rejects [numRejects]int

// Add counts one train.
func (r *Rejects) Add(why Reject) { r[why]++ }

// Rejected is the number of trains not accepted.
func (r *Rejects) Rejected() int {
	n := 0
	for i := Lost; i < numRejects; i++ {
		n += r[i]
	}
	return n
}

// String lists the non-zero rejection counts, e.g. "lost 2, off-pace 1".
func (r *Rejects) String() string {
	s := ""
	for i := Lost; i < numRejects; i++ {
		if r[i] > 0 {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%s %d", i, r[i])
		}
	}
	return s
}

// Map returns the non-zero counts by name, for JSON.
func (r *Rejects) Map() map[string]int {
	m := map[string]int{}
	for i := Lost; i < numRejects; i++ {
		if r[i] > 0 {
			m[i.String()] = r[i]
		}
	}
	return m
}

// maxGaps bounds the train length TrainSample accepts (and its stack use).
const maxGaps = 255

// clean returns the sum and number of the gaps at most 1.5 times the median
// gap: the train's dominating state. gaps is reordered.
func clean(gaps []float64) (float64, int) {
	slices.Sort(gaps)
	n := len(gaps)
	med := gaps[n/2]
	if n%2 == 0 {
		med = (gaps[n/2-1] + gaps[n/2]) / 2
	}
	var sum float64
	k := 0
	for _, g := range gaps {
		if g <= 1.5*med {
			sum += g
			k++
		}
	}
	return sum, k
}

// TrainSample turns one train's timestamps into a dispersion sample. A
// back-to-back train that left too slowly is rejected as LeftLate but its
// sample comes back with its spans, for LowerBound. tx and rx
// hold the transmit and receive time of each position (0 = unknown), order
// the arrival rank of each position (-1 = never arrived), and noise the
// timestamp noise in seconds.
func TrainSample(tx, rx []int64, order []int, pace Pace, noise float64) (estimator.Sample, Reject) {
	n := len(rx)
	if n < 2 || len(tx) != n || len(order) != n {
		return estimator.Sample{}, Lost
	}
	for i := range n {
		if order[i] < 0 || rx[i] == 0 {
			return estimator.Sample{}, Lost
		}
		if i > 0 && order[i] < order[i-1] {
			return estimator.Sample{}, Reordered
		}
	}
	for i := range n {
		if tx[i] == 0 {
			return estimator.Sample{}, NoTxStamp
		}
	}
	var outs [maxGaps]float64
	if n-1 > maxGaps {
		return estimator.Sample{}, Lost
	}
	batched := false
	for i := 1; i < n; i++ {
		in := float64(tx[i]-tx[i-1]) * 1e-9
		out := float64(rx[i]-rx[i-1]) * 1e-9
		outs[i-1] = out
		if out <= noise {
			// A gap the stamps cannot resolve: a pair has nothing to
			// say; a longer train still has its span (the receiver
			// stamped it in batches, or the path is faster than the
			// stamps).
			if n == 2 {
				return estimator.Sample{}, Compressed
			}
			batched = true
		}
		if pace.Max > 0 && in > pace.Hole {
			return estimator.Sample{}, OffPace
		}
	}
	var grain float64
	if batched {
		grain = slices.Max(outs[:n-1])
	}
	late := false
	for i := 1; i < n && pace.Max == 0; i++ {
		// Packet i must have reached the path before packet i−1 left
		// it; for a train, while the backlog of the earlier packets
		// lasted: cumulatively, it entered at least half a gap before it
		// left, by more than the stamps' noise and grain can make up. A
		// sender that is too slow by less than that is caught on the
		// whole run (estimator.ErrNotBackToBack).
		if float64(tx[i]-tx[0])*1e-9 > float64(rx[i]-rx[0])*1e-9-outs[i-1]/2+2*noise+grain {
			late = true
			break
		}
	}
	s := estimator.Sample{
		In:   float64(tx[n-1]-tx[0]) * 1e-9,
		Out:  float64(rx[n-1]-rx[0]) * 1e-9,
		Gaps: n - 1,
		// The first packet's one-way delay, by two clocks whose offset
		// is unknown but the same for every train of a direction.
		Start: float64(tx[0]) * 1e-9,
		Delay: float64(rx[0]-tx[0]) * 1e-9,
		Timed: true,
	}
	if late {
		// The spans still say something: the path kept up with the
		// sender (LowerBound).
		return s, LeftLate
	}
	switch {
	case batched && s.Out <= 2*noise:
		return estimator.Sample{}, Compressed
	case batched:
		s.Clean, s.CleanGaps, s.Grain = s.Out, s.Gaps, grain // only the span is known
	default:
		s.Clean, s.CleanGaps = clean(outs[:n-1])
	}
	if mean := s.In / float64(s.Gaps); pace.Max > 0 && (mean < pace.Min || mean > pace.Max) {
		return estimator.Sample{}, OffPace
	}
	return s, Accepted
}

// LowerBound is what back-to-back trains that left too slowly (LeftLate
// samples) say about the path: it carried them as fast as they came, so
// its capacity is at least L·8 over their median output gap plus the
// timestamp noise, bit/s. It is 0 with fewer than 3 samples.
func LowerBound(late []estimator.Sample, size int, noise float64) float64 {
	var gaps []float64
	for _, s := range late {
		if s.Gaps > 0 && s.Out > 0 {
			gaps = append(gaps, s.Out/float64(s.Gaps))
		}
	}
	if len(gaps) < 3 {
		return 0
	}
	slices.Sort(gaps)
	return float64(size) * 8 / (estimator.Median(gaps) + noise)
}
