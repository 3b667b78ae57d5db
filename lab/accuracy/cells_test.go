//go:build linux

package accuracy

import (
	"testing"

	"github.com/abing-net/abing/lab/testbed"
)

// A cell's name says what it measures, the probe size when it is not
// 1500 bytes; the jumbo grid is all 9000-byte cells of the default.
func TestCellNames(t *testing.T) {
	for _, tc := range []struct {
		cell Cell
		want string
	}{
		{Cell{Rate: 100e6, Kind: testbed.CBR, Load: 0.5, Mode: Adaptive}, "100M cbr 50% fwd adaptive"},
		{Cell{Rate: 20e6, Kind: testbed.CBR, Load: 0.5, Mode: ManyPairs, Ordinary: true, Busy: true}, "20M cbr 50% (ord) (busy) fwd pairs96"},
		{Cell{Rate: 1000e6, Kind: testbed.TCP, Mode: Adaptive, Size: 9000}, "1000M tcp fwd 9000B adaptive"},
		{Cell{Rate: 200e6, Kind: testbed.CBR, Mode: Trains, Dir: testbed.Reverse, Size: 1500}, "200M idle rev trains"},
		{Cell{Rate: 200e6, Kind: testbed.CBR, Load: 0.5, Mode: Adaptive, Size: 9000, RTT: LongRTT}, "200M cbr 50% fwd 9000B rtt+50ms adaptive"},
	} {
		if got := tc.cell.Name(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.cell, got, tc.want)
		}
	}
	for _, c := range JumboGrid() {
		if c.Size != 9000 || c.Mode.Name != Adaptive.Name {
			t.Errorf("jumbo grid cell %s: size %d, mode %s", c.Name(), c.Size, c.Mode.Name)
		}
	}
}
