package webapi

import (
	"cmp"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/abing-net/abing/store"
)

// Stat is the minimum, median and maximum of a value over a bucket; NaN
// when the bucket holds none. It is written [min, median, max], or null.
type Stat struct{ Min, Median, Max float64 }

// MarshalJSON writes [min, median, max], or null for no value.
func (s Stat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(s.Median) {
		return []byte("null"), nil
	}
	return json.Marshal([3]float64{s.Min, s.Median, s.Max})
}

// UnmarshalJSON reads [min, median, max], or null as NaN.
func (s *Stat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = Stat{math.NaN(), math.NaN(), math.NaN()}
		return nil
	}
	var v [3]float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Stat{v[0], v[1], v[2]}
	return nil
}

// Bucket is one direction's points over one span of time.
type Bucket struct {
	Time      time.Time `json:"time"` // the span's start
	Direction string    `json:"direction"`
	N         int       `json:"n"` // runs in the span
	DBC       Stat      `json:"dbc_mbps"`
	ABW       Stat      `json:"abw_mbps"`
	// The lowest lower end and the highest upper end of ABW's 95 %
	// intervals in the span: the band to draw.
	ABWLow  *float64 `json:"abw_low_mbps"`
	ABWHigh *float64 `json:"abw_high_mbps"`
	XTR     Stat     `json:"xtr_mbps"`
	RTT     Stat     `json:"rtt_ms"`
	Loss    Stat     `json:"loss"`
}

// Downsample files points (oldest first) into buckets of width each,
// aligned on since, one series per direction, and sums each value up as
// its minimum, median and maximum. A plot of a month of one-minute runs
// so gets a few hundred buckets that keep the extremes and a median that
// one outlier does not move.
func Downsample(points []store.Point, since time.Time, width time.Duration) []Bucket {
	d := newDownsampler(since, width)
	for _, p := range points {
		d.add(p)
	}
	return d.done()
}

// downsampler files points as they come (oldest first): only the open
// bucket of each direction is held.
type downsampler struct {
	since time.Time
	width time.Duration
	open  map[string]*acc // by direction
	out   []Bucket
}

// acc gathers one bucket's values.
type acc struct {
	i                        int64
	n                        int
	dbc, abw, xtr, rtt, loss []float64
	lo, hi                   float64
}

func newDownsampler(since time.Time, width time.Duration) *downsampler {
	return &downsampler{since: since, width: width, open: map[string]*acc{}, out: []Bucket{}}
}

func (d *downsampler) add(p store.Point) {
	i := int64(p.Time.Sub(d.since) / d.width)
	a := d.open[p.Direction]
	if a != nil && a.i != i {
		d.close(p.Direction, a)
		a = nil
	}
	if a == nil {
		a = &acc{i: i, lo: math.NaN(), hi: math.NaN()}
		d.open[p.Direction] = a
	}
	a.n++
	for _, v := range []struct {
		dst *[]float64
		v   float64
	}{{&a.dbc, p.DBC}, {&a.abw, p.ABW}, {&a.xtr, p.XTR}, {&a.rtt, p.RTT}, {&a.loss, p.Loss}} {
		if !math.IsNaN(v.v) {
			*v.dst = append(*v.dst, v.v)
		}
	}
	if !math.IsNaN(p.ABWLow) && !(p.ABWLow >= a.lo) {
		a.lo = p.ABWLow
	}
	if !math.IsNaN(p.ABWHigh) && !(p.ABWHigh <= a.hi) {
		a.hi = p.ABWHigh
	}
}

func (d *downsampler) close(dir string, a *acc) {
	b := Bucket{Time: d.since.Add(time.Duration(a.i) * d.width).UTC(), Direction: dir, N: a.n,
		DBC: stat(a.dbc), ABW: stat(a.abw), XTR: stat(a.xtr), RTT: stat(a.rtt), Loss: stat(a.loss)}
	if !math.IsNaN(a.lo) {
		b.ABWLow = &a.lo
	}
	if !math.IsNaN(a.hi) {
		b.ABWHigh = &a.hi
	}
	d.out = append(d.out, b)
	delete(d.open, dir)
}

// done closes the open buckets and returns them all, in order of time
// (and of direction within a time).
func (d *downsampler) done() []Bucket {
	for _, dir := range slices.Sorted(maps.Keys(d.open)) {
		d.close(dir, d.open[dir])
	}
	slices.SortStableFunc(d.out, func(a, b Bucket) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.Direction, b.Direction))
	})
	return d.out
}

// stat is the minimum, median and maximum of vals (sorted in place).
func stat(vals []float64) Stat {
	if len(vals) == 0 {
		return Stat{math.NaN(), math.NaN(), math.NaN()}
	}
	slices.Sort(vals)
	med := vals[len(vals)/2]
	if len(vals)%2 == 0 {
		med = (vals[len(vals)/2-1] + med) / 2
	}
	return Stat{vals[0], med, vals[len(vals)-1]}
}
