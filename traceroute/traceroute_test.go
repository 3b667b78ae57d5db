package traceroute

import "testing"

func TestHost(t *testing.T) {
	for in, want := range map[string]string{"198.18.2.2:8176": "198.18.2.2", "[fd00::2]:8176": "fd00::2", "fd00::2": "fd00::2", "lab.example": "lab.example"} {
		if got := Host(in); got != want {
			t.Errorf("Host(%q) = %q, want %q", in, got, want)
		}
	}
}
