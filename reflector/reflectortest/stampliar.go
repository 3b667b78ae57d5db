package reflectortest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/stamp"
)

// STAMPLie is how a broken STAMP reflector answers. Routers and software
// reflectors do each of these (docs/stamp.md).
type STAMPLie int

// The lies.
const (
	// STAMPCoarse stamps T2 and T3 to the millisecond, as software that
	// reads a millisecond clock does.
	STAMPCoarse STAMPLie = iota
	// STAMPBatched gives every packet that arrives within a millisecond of
	// the first of its batch that packet's stamps, as a reflector that
	// stamps what one interrupt or one poll delivered.
	STAMPBatched
	// STAMPZero answers with every timestamp zero, as some TWAMP-Light
	// responders do.
	STAMPZero
	// STAMPRateLimited answers from a token bucket of STAMPLimitBurst
	// packets refilled at STAMPLimitPPS, as routers limit their responders;
	// the rest go unanswered.
	STAMPRateLimited
)

// The rate limit of STAMPRateLimited.
const (
	STAMPLimitBurst = 2
	STAMPLimitPPS   = 100
)

// StartSTAMPLiar runs an unauthenticated, stateless STAMP reflector that
// tells lie, on 127.0.0.1, until the end of the test; it returns its address.
// Its receive stamps come from the kernel, before the lie.
func StartSTAMPLiar(t testing.TB, lie STAMPLie) netip.AddrPort {
	t.Helper()
	conn, err := dispersion.Listen("udp4", "127.0.0.1:0", dispersion.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf, out := make([]byte, 65536), make([]byte, 0, 65536)
		var batch int64
		tokens, last := float64(STAMPLimitBurst), time.Now()
		for ctx.Err() == nil {
			conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			ev, err := conn.Recv(buf)
			if err != nil || ev.Kind != dispersion.Data {
				continue
			}
			test, err := stamp.ParseTest(buf[:ev.N])
			if err != nil {
				continue
			}
			rx, tx := ev.Ns, time.Now().UnixNano()
			switch lie {
			case STAMPCoarse:
				rx, tx = rx-rx%1e6, tx-tx%1e6
			case STAMPBatched:
				if rx-batch > 1e6 {
					batch = rx
				}
				rx, tx = batch, batch
			case STAMPRateLimited:
				now := time.Now()
				tokens = min(STAMPLimitBurst, tokens+now.Sub(last).Seconds()*STAMPLimitPPS)
				last = now
				if tokens < 1 {
					continue
				}
				tokens--
			}
			r := stamp.Reply{Seq: test.Seq, SSID: test.SSID, SenderSeq: test.Seq, SenderTime: test.Time,
				SenderErr: test.Err, SenderTTL: 64, Err: stamp.MakeErrorEstimate(false, false, 0, 1)}
			if lie != STAMPZero {
				r.RxTime, r.Time = stamp.NTP(time.Unix(0, rx)), stamp.NTP(time.Unix(0, tx))
			}
			out, _ = r.Append(out[:0], ev.N)
			conn.PeerFrom(ev.From, ev.Dst).Write(out)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; conn.Close() })
	return conn.LocalAddr()
}
