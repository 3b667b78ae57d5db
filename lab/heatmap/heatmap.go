// Package heatmap draws the simulator grid's users' world (package
// lab/sim) as one heat map per probe size: capacity and host across, cross
// traffic down; each cell coloured by the share of runs whose interval or
// bound held the truth, and labelled with its median ABW error (% of the
// capacity), or "bnd" where most runs gave a bound on capacity instead.
// It is lab code: the plotting library (gonum's plot) is linked into
// abing-lab only.
package heatmap

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/abing-net/abing/lab/sim"
)

// grid is one probe size's cells, for plotter.HeatMap: column c, row r.
type grid struct {
	z [][]float64 // [column][row], NaN where there is no cell
}

func (g grid) Dims() (int, int)   { return len(g.z), len(g.z[0]) }
func (g grid) Z(c, r int) float64 { return g.z[c][r] }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }
func (g grid) Min() float64       { return low }
func (g grid) Max() float64       { return 1 }

// low is the share held at which the colour scale starts (dark red at and
// below it); sim.HonestShare is where it turns from orange to green.
const low = 0.5

// scale is the palette: red below the honesty rule's share, green at and
// above it.
type scale []color.Color

func (s scale) Colors() []color.Color { return s }

// colours runs from dark red (half the runs held) through orange to the
// rule (sim.HonestShare) and from light to dark green above it, in steps
// of 2.5 points.
func colours() scale {
	var s scale
	for v := low + 0.0125; v < 1; v += 0.025 {
		if v < sim.HonestShare {
			f := (v - low) / (sim.HonestShare - low) // 0..1
			s = append(s, color.RGBA{R: uint8(150 + 100*f), G: uint8(30 + 140*f), B: 30, A: 255})
		} else {
			f := (v - sim.HonestShare) / (1 - sim.HonestShare)
			s = append(s, color.RGBA{R: uint8(170 - 140*f), G: uint8(215 - 45*f), B: uint8(120 - 60*f), A: 255})
		}
	}
	return s
}

// Write draws a heat map per probe size of the users' world in stats into
// dir (made if need be), as sim-SIZE.png, and returns the files written.
func Write(dir string, stats []sim.Stats) ([]string, error) {
	sizes := map[int][]sim.Stats{}
	var order []int
	for _, st := range stats {
		if !st.Cell.World {
			continue
		}
		size := st.Cell.Probe.Size
		if _, ok := sizes[size]; !ok {
			order = append(order, size)
		}
		sizes[size] = append(sizes[size], st)
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("no cell of the users' world in the grid")
	}
	slices.Sort(order)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("heat maps: %w", err)
	}
	var files []string
	for _, size := range order {
		file := filepath.Join(dir, fmt.Sprintf("sim-%d.png", size))
		if err := draw(file, size, sizes[size]); err != nil {
			return files, err
		}
		files = append(files, file)
	}
	return files, nil
}

// draw writes one probe size's heat map to file.
func draw(file string, size int, stats []sim.Stats) error {
	var cols, rows []string
	for _, st := range stats {
		if !slices.Contains(cols, st.Cell.Column) {
			cols = append(cols, st.Cell.Column)
		}
		if !slices.Contains(rows, st.Cell.Row) {
			rows = append(rows, st.Cell.Row)
		}
	}
	g := grid{z: make([][]float64, len(cols))}
	for c := range g.z {
		g.z[c] = make([]float64, len(rows))
		for r := range g.z[c] {
			g.z[c][r] = math.NaN()
		}
	}
	var at plotter.XYs
	var text []string
	for _, st := range stats {
		c, r := slices.Index(cols, st.Cell.Column), len(rows)-1-slices.Index(rows, st.Cell.Row) // first traffic on top
		g.z[c][r] = st.Held
		label := "-"
		switch {
		case 2*st.Bounded > st.Runs:
			label = "bnd"
		case !math.IsNaN(st.ABWMedian):
			label = fmt.Sprintf("%.0f", 100*st.ABWMedian)
		}
		at = append(at, plotter.XY{X: float64(c), Y: float64(r)})
		text = append(text, label)
	}
	slices.Reverse(rows)

	p := plot.New()
	p.Title.Text = fmt.Sprintf("abing measure's default with %d-byte probes, simulated (lab/sim, %d runs a cell)\n"+
		"colour: runs whose interval or bound held the truth (green: at least %.0f %%)\n"+
		"number: median |ABW error| in %% of capacity; bnd: most runs bounded the capacity instead",
		size, stats[0].Runs, 100*sim.HonestShare)
	p.Title.TextStyle.Font.Size = vg.Points(8)
	hm := plotter.NewHeatMap(g, colours())
	hm.Underflow = color.RGBA{R: 110, G: 0, B: 0, A: 255}
	hm.NaN = color.White
	p.Add(hm)
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: at, Labels: text})
	if err != nil {
		return fmt.Errorf("heat map labels: %w", err)
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].Font.Size = vg.Points(7)
		labels.TextStyle[i].XAlign, labels.TextStyle[i].YAlign = -0.5, -0.5
	}
	p.Add(labels)
	p.NominalX(cols...)
	p.NominalY(rows...)
	p.X.Tick.Label.Font.Size, p.Y.Tick.Label.Font.Size = vg.Points(7), vg.Points(7)
	p.X.Label.Text, p.Y.Label.Text = "capacity and host", "cross traffic"
	w := max(vg.Length(len(cols))*0.7*vg.Inch+1.4*vg.Inch, 6*vg.Inch)
	h := vg.Length(len(rows))*0.2*vg.Inch + 1.5*vg.Inch
	if err := p.Save(w, h, file); err != nil {
		return fmt.Errorf("heat map %s: %w", file, err)
	}
	return nil
}
