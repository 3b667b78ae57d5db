package reflector

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/train"
)

// floodSource plays one of many sources that each complete the handshake
// and then misbehave: a train that never completes, a session without a
// cookie, garbage. It returns the UDP payload bytes it sent and received.
func floodSource(addr netip.AddrPort, src netip.Addr, session uint64) (sent, recv int, err error) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	to := net.UDPAddrFromAddrPort(addr)
	write := func(b []byte) {
		if n, err := c.WriteToUDP(b, to); err == nil {
			sent += n
		}
	}
	var seq uint32
	msg := func(h train.Header, n int, cookie train.Cookie) []byte {
		seq++
		b := make([]byte, n)
		h.Session, h.Seq, h.SentNs = session, seq, time.Now().UnixNano()
		train.PutHeader(b, &h)
		train.PutClientBlock(b, &train.ClientBlock{Cookie: cookie})
		return b
	}
	buf := make([]byte, 9000)
	read := func(until time.Time) (cookie *train.Cookie) {
		for {
			c.SetReadDeadline(until)
			n, err := c.Read(buf)
			if err != nil {
				return cookie
			}
			recv += n
			if h, err := train.ParseHeader(buf[:n]); err == nil && h.Type == train.TypeCookie {
				ck, _ := train.ParseCookie(buf[:n])
				return &ck
			}
		}
	}
	write(msg(train.Header{Type: train.TypeHello, Len: 1}, train.HelloMin, train.Cookie{}))
	ck := read(time.Now().Add(time.Second))
	if ck == nil {
		return sent, recv, nil // refused or dropped: fine, counted below
	}
	// The longest train the reflector takes, of which two packets come.
	write(msg(train.Header{Type: train.TypeProbe, Pos: 0, Len: 1024}, 1000, *ck))
	write(msg(train.Header{Type: train.TypeProbe, Pos: 1, Len: 1024}, 1000, *ck))
	// A second session on the same socket with no cookie.
	session++
	write(msg(train.Header{Type: train.TypeProbe, Pos: 0, Len: 2}, 500, train.Cookie{}))
	write([]byte("garbage garbage garbage garbage garbage garbage"))
	read(time.Now().Add(300 * time.Millisecond))
	return sent, recv, nil
}

// flood runs n sources from consecutive addresses after base, batch at a
// time, and returns the highest bytes-out/bytes-in ratio of any source.
func flood(t *testing.T, addr netip.AddrPort, base netip.Addr, n, batch int) float64 {
	var mu sync.Mutex
	worst := 0.0
	a := base
	for done := 0; done < n; done += batch {
		var wg sync.WaitGroup
		for i := range min(batch, n-done) {
			a = a.Next()
			wg.Add(1)
			go func(src netip.Addr, session uint64) {
				defer wg.Done()
				sent, recv, err := floodSource(addr, src, session)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				if sent > 0 {
					worst = max(worst, float64(recv)/float64(sent))
				}
			}(a, uint64(done+i)<<8)
		}
		wg.Wait()
	}
	return worst
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestFlood: 2 × 10,000 distinct loopback sources hit the reflector while a
// real measurement runs from another prefix. No source gets more bytes than
// it sent, the reflector's state stays within its caps, the second 10,000
// sources add no memory, and the measurements keep working.
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood takes about 20 s")
	}
	srv, addr := start(t, Config{})
	base := heap()

	ctx, cancel := context.WithCancel(context.Background())
	var runs, fails int
	var mwg sync.WaitGroup
	mwg.Add(1)
	go func() {
		defer mwg.Done()
		for ctx.Err() == nil {
			cfg := measure.Defaults().Fixed()
			cfg.Target = addr.String()
			res, err := measure.Run(ctx, cfg)
			if ctx.Err() != nil {
				return
			}
			runs++
			if err != nil || res.Forward.Complete < cfg.Trains {
				fails++
				t.Logf("measurement during the flood: %v", err)
			}
		}
	}()

	var peak Stats
	var swg sync.WaitGroup
	swg.Add(1)
	go func() { // sample the reflector's state while it is under load
		defer swg.Done()
		for ctx.Err() == nil {
			st := srv.Stats()
			peak.Sessions, peak.Sources = max(peak.Sessions, st.Sessions), max(peak.Sources, st.Sources)
			time.Sleep(20 * time.Millisecond)
		}
	}()

	amp1 := flood(t, addr, netip.MustParseAddr("127.1.0.0"), 10000, 1000)
	after1 := heap()
	amp2 := flood(t, addr, netip.MustParseAddr("127.2.0.0"), 10000, 1000)
	after2 := heap()
	cancel()
	mwg.Wait()
	swg.Wait()

	st := srv.Stats()
	t.Logf("heap: %.1f MB at start, %.1f after 10,000 sources, %.1f after 20,000; peak %d sessions, %d sources; worst amplification %.3f / %.3f; %d measurements, %d failed",
		float64(base)/1e6, float64(after1)/1e6, float64(after2)/1e6, peak.Sessions, peak.Sources, amp1, amp2, runs, fails)
	t.Logf("reflector: received %d datagrams (%d bytes), sent %d (%d bytes); drops %s",
		st.Received, st.ReceivedBytes, st.Sent, st.SentBytes, dropString(st))
	if amp1 > 1 || amp2 > 1 || st.SentBytes > st.ReceivedBytes {
		t.Errorf("amplification: worst source %.3f, %.3f; reflector %d bytes out for %d in", amp1, amp2, st.SentBytes, st.ReceivedBytes)
	}
	if peak.Sessions > 1024 || st.Sessions > 1024 || peak.Sources > 65536 {
		t.Errorf("state beyond its caps: %d sessions, %d sources", max(peak.Sessions, st.Sessions), peak.Sources)
	}
	// The flood's sessions are capped per /24: 80 prefixes of 8.
	if st.Dropped[DropSessions] == 0 || st.Dropped[DropCookie] == 0 || st.Dropped[DropMalformed] == 0 {
		t.Errorf("drops %s", dropString(st))
	}
	if grow := int64(after2) - int64(after1); grow > 8<<20 {
		t.Errorf("heap grew %.1f MB over the second 10,000 sources", float64(grow)/1e6)
	}
	if after2-base > 64<<20 {
		t.Errorf("heap grew %.1f MB in all", float64(after2-base)/1e6)
	}
	if runs < 3 || fails > 0 {
		t.Errorf("%d measurements during the flood, %d failed", runs, fails)
	}
}

func dropString(st Stats) string {
	s := ""
	for i, n := range st.Dropped {
		if n > 0 {
			s += fmt.Sprintf("%s=%d ", Drop(i), n)
		}
	}
	return s
}
