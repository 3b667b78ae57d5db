package heatmap

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/abing-net/abing/lab/sim"
)

// A heat map per probe size of the users' world, as PNG images that grow
// with the grid; a grid without such cells is an error.
func TestWrite(t *testing.T) {
	cell := func(col, row string, size int) sim.Cell {
		return sim.Cell{World: true, Column: col, Row: row, Probe: sim.Probe{Size: size}}
	}
	stats := []sim.Stats{
		{Cell: cell("1G kernel", "idle", 1500), Runs: 50, Held: 1, ABWMedian: 0.01},
		{Cell: cell("1G kernel", "tcp 50%", 1500), Runs: 50, Held: 0.7, ABWMedian: 0.4},
		{Cell: cell("10G kernel", "idle", 1500), Runs: 50, Held: 1, Failed: 50, Bounded: 50, ABWMedian: math.NaN()},
		{Cell: cell("10G hardware", "idle", 9000), Runs: 50, Held: 0.95, ABWMedian: 0.02},
		{Cell: sim.Cell{Name: "not of the world", Probe: sim.Probe{Size: 4000}}, Runs: 50},
	}
	dir := t.TempDir()
	files, err := Write(dir, stats)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0] != filepath.Join(dir, "sim-1500.png") || files[1] != filepath.Join(dir, "sim-9000.png") {
		t.Fatalf("files %v", files)
	}
	var heights []int
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		heights = append(heights, img.Bounds().Dy())
	}
	if heights[0] <= heights[1] {
		t.Errorf("heights %v: two rows of traffic drawn no taller than one", heights)
	}
	if _, err := Write(dir, stats[4:]); err == nil {
		t.Error("a grid with no cell of the users' world drew a heat map")
	}
}
