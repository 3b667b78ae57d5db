package mesh

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/abing-net/abing/estimator"
)

// Sample is one measurement from host Src to host Dst. Absent values are
// NaN.
type Sample struct {
	Src, Dst string
	RTT      float64 // ms
	Loss     float64 // fraction, 0 to 1
	Jitter   float64 // ms
	ABW, DBC float64 // Mbit/s, Src → Dst
	// Cost is the link cost published for the link (package linkcost);
	// below 1 (or NaN) it is absent, and routes compute one (NewGraph).
	Cost float64
}

// Matrix holds the measurements between hosts, by pair.
type Matrix struct {
	Nodes []string // sorted
	byDir map[[2]string][]Sample
	rtt   map[[2]string]float64 // median RTT by pair, names in order
	abw   map[[2]string]float64 // median ABW by directed pair
}

// NewMatrix files samples by pair. Samples from a host to itself are left
// out.
func NewMatrix(samples []Sample) *Matrix {
	m := &Matrix{byDir: map[[2]string][]Sample{}, rtt: map[[2]string]float64{}, abw: map[[2]string]float64{}}
	seen := map[string]bool{}
	for _, s := range samples {
		if s.Src == s.Dst {
			continue
		}
		m.byDir[[2]string{s.Src, s.Dst}] = append(m.byDir[[2]string{s.Src, s.Dst}], s)
		for _, n := range []string{s.Src, s.Dst} {
			if !seen[n] {
				seen[n] = true
				m.Nodes = append(m.Nodes, n)
			}
		}
	}
	slices.Sort(m.Nodes)
	for k, ss := range m.byDir {
		a, b := min(k[0], k[1]), max(k[0], k[1])
		if _, done := m.rtt[[2]string{a, b}]; !done {
			if v := m.RTTs(a, b); len(v) > 0 {
				m.rtt[[2]string{a, b}] = estimator.Median(v)
			}
		}
		var abw []float64
		for _, s := range ss {
			if !math.IsNaN(s.ABW) {
				abw = append(abw, s.ABW)
			}
		}
		if len(abw) > 0 {
			m.abw[k] = estimator.Median(abw)
		}
	}
	return m
}

// RTTs are the RTT samples between a and b, both ways (a round trip is the
// same whoever starts it), in the order given.
func (m *Matrix) RTTs(a, b string) []float64 {
	var v []float64
	for _, k := range [][2]string{{a, b}, {b, a}} {
		for _, s := range m.byDir[k] {
			if !math.IsNaN(s.RTT) {
				v = append(v, s.RTT)
			}
		}
	}
	return v
}

// RTT is the median RTT between a and b (ms), and whether there is one: a
// median, so that one spike does not make or hide a shortcut.
func (m *Matrix) RTT(a, b string) (float64, bool) {
	v, ok := m.rtt[[2]string{min(a, b), max(a, b)}]
	return v, ok
}

// ABW is the median available bandwidth from a to b (Mbit/s): bandwidth
// has a direction.
func (m *Matrix) ABW(a, b string) (float64, bool) {
	v, ok := m.abw[[2]string{a, b}]
	return v, ok
}

// CV is the coefficient of variation of the RTT between a and b (standard
// deviation over mean; 0 with fewer than two samples): how stable the pair
// is over the window.
func (m *Matrix) CV(a, b string) float64 {
	v := m.RTTs(a, b)
	if len(v) < 2 {
		return 0
	}
	mu := mean(v)
	var ss float64
	for _, x := range v {
		ss += (x - mu) * (x - mu)
	}
	if mu <= 0 {
		return 0
	}
	return math.Sqrt(ss/float64(len(v)-1)) / mu
}

// MatrixColumns are the columns ReadMatrix knows: src, dst and rtt_ms are
// required, the others optional.
var MatrixColumns = []string{"src", "dst", "rtt_ms", "loss", "jitter_ms", "abw_mbps", "dbc_mbps", "cost"}

// MaxMatrixRows bounds what ReadMatrix reads.
const MaxMatrixRows = 10_000_000

// ReadMatrix reads a CSV of measurements between hosts: a header naming at
// least src, dst and rtt_ms (and any of loss, jitter_ms, abw_mbps,
// dbc_mbps, cost, in any order), then one row per measurement or per
// median. An
// empty cell is an absent value; a value that is not a finite number of its
// range is an error that names the line.
func ReadMatrix(r io.Reader) ([]Sample, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("empty matrix: want a header with src,dst,rtt_ms")
	}
	if err != nil {
		return nil, fmt.Errorf("matrix header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.ToLower(h))
		if !slices.Contains(MatrixColumns, h) {
			return nil, fmt.Errorf("matrix header: unknown column %q (want %s)", h, strings.Join(MatrixColumns, ","))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("matrix header: column %q twice", h)
		}
		col[h] = i
	}
	for _, need := range MatrixColumns[:3] {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("matrix header: no %s column (want at least src,dst,rtt_ms)", need)
		}
	}
	var out []Sample
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("matrix line %d: %w", line, err)
		}
		if len(out) >= MaxMatrixRows {
			return nil, fmt.Errorf("matrix line %d: more than %d rows", line, MaxMatrixRows)
		}
		if len(rec) != len(header) {
			return nil, fmt.Errorf("matrix line %d: %d fields, the header has %d", line, len(rec), len(header))
		}
		s := Sample{Src: strings.TrimSpace(rec[col["src"]]), Dst: strings.TrimSpace(rec[col["dst"]])}
		if s.Src == "" || s.Dst == "" {
			return nil, fmt.Errorf("matrix line %d: empty src or dst", line)
		}
		num := func(name string, hi float64) (float64, error) {
			i, ok := col[name]
			if !ok || strings.TrimSpace(rec[i]) == "" {
				return math.NaN(), nil
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
			if err != nil || math.IsNaN(v) || v < 0 || v > hi {
				return 0, fmt.Errorf("matrix line %d: %s %q: want a number from 0 to %g", line, name, rec[i], hi)
			}
			return v, nil
		}
		for _, f := range []struct {
			name string
			hi   float64
			v    *float64
		}{{"rtt_ms", 1e6, &s.RTT}, {"loss", 1, &s.Loss}, {"jitter_ms", 1e6, &s.Jitter}, {"abw_mbps", 1e7, &s.ABW}, {"dbc_mbps", 1e7, &s.DBC},
			{"cost", 1e9, &s.Cost}} {
			if *f.v, err = num(f.name, f.hi); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
}
