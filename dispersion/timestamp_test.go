package dispersion

import "testing"

func TestChoose(t *testing.T) {
	all := Capabilities{Hardware: true, Timestamping: true, TimestampNS: true}
	sw := Capabilities{Timestamping: true, TimestampNS: true}
	nsOnly := Capabilities{TimestampNS: true}
	for _, tc := range []struct {
		mode   Mode
		caps   Capabilities
		rx, tx Source
		fail   bool
	}{
		{ModeAuto, all, SourceHardware, SourceHardware, false},
		{ModeAuto, sw, SourceKernel, SourceKernel, false},
		{ModeAuto, nsOnly, SourceKernel, SourceUser, false},
		{ModeAuto, Capabilities{}, SourceUser, SourceUser, false},
		{ModeHardware, all, SourceHardware, SourceHardware, false},
		{ModeHardware, sw, 0, 0, true},
		{ModeSoftware, all, SourceKernel, SourceKernel, false},
		{ModeSoftware, nsOnly, SourceKernel, SourceUser, false},
		{ModeSoftware, Capabilities{}, 0, 0, true},
		{ModeUser, all, SourceUser, SourceUser, false},
	} {
		rx, tx, err := Choose(tc.mode, tc.caps)
		if (err != nil) != tc.fail || rx != tc.rx || tx != tc.tx {
			t.Errorf("%v %+v: got %v %v %v", tc.mode, tc.caps, rx, tx, err)
		}
	}
	for _, s := range []string{"auto", "hardware", "software", "user"} {
		if m, err := ParseMode(s); err != nil || m.String() != s {
			t.Errorf("ParseMode(%q) = %v %v", s, m, err)
		}
	}
	if _, err := ParseMode("gps"); err == nil {
		t.Error("ParseMode(gps) accepted")
	}
}
