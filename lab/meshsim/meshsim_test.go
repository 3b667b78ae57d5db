package meshsim

import (
	"context"
	"testing"
	"time"
)

// TestSmallMesh: four members converge, membership costs something and
// little, rows at the budget's rate reach every member, and cost more
// than membership alone. (The figures of docs/mesh.md come from longer
// runs of abing-lab meshscale.)
func TestSmallMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a mesh for 10 s")
	}
	r, err := Run(context.Background(), Config{Nodes: 4, Window: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	// Bounds: a member pings one other a second (tens of bytes each
	// way) and gossips when there is news; 100 KB/min would be a
	// runaway loop.
	if r.Membership <= 0 || r.Membership > 100e3 || r.Rows <= r.Membership || r.Delivered != 1 || r.PartSize < 100 {
		t.Errorf("%+v", r)
	}
}
