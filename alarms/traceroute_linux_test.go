package alarms

import (
	"context"
	"os"
	"testing"
)

// A traceroute to loopback: the host answers the first probe with port
// unreachable, so the path is one hop, reached. Needs a raw socket.
func TestTracerouteLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("ABING_REQUIRE_ROOT_TESTS") != "" {
			t.Fatal("ABING_REQUIRE_ROOT_TESTS is set but this is not root")
		}
		t.Skip("traceroute needs a raw ICMP socket: run as root (CI does)")
	}
	for _, host := range []string{"127.0.0.1", "::1"} {
		tr := (&Traceroute{MaxHops: 5}).Trace(context.Background(), host)
		if tr.Error != "" || !tr.Reached || len(tr.Hops) != 1 || tr.Hops[0].Addr.String() != host || tr.Hops[0].TTL != 1 {
			t.Errorf("%s: %+v", host, tr)
		}
		t.Logf("%s: %s (%.3f ms)", host, tr, tr.Hops[0].RTT)
	}
}
