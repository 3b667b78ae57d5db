//go:build linux

package accuracy

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/abing-net/abing/capture"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/lab/testbed"
	"github.com/abing-net/abing/measure"
)

// packetCapture records what passes the sender's interface, as tcpdump
// would there: an AF_PACKET socket (pcapgo's), stamped by the kernel.
type packetCapture struct {
	h    *pcapgo.EthernetHandle
	mu   sync.Mutex
	ci   []gopacket.CaptureInfo
	data [][]byte
	stop chan struct{}
	done chan struct{}
}

// startCapture captures on eth0 of namespace ns, at most limit packets.
func startCapture(t *testing.T, ns *testbed.Netns, limit int) *packetCapture {
	t.Helper()
	c := &packetCapture{stop: make(chan struct{}), done: make(chan struct{})}
	if err := ns.Do(func() (err error) {
		if c.h, err = pcapgo.NewEthernetHandle("eth0"); err != nil {
			return err
		}
		return c.h.SetCaptureLength(65536) // whole packets, as tcpdump -s 0 (pcapgo's default is 1500 bytes of frame)
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		for {
			data, ci, err := c.h.ReadPacketData()
			select {
			case <-c.stop:
				return
			default:
			}
			if err != nil {
				continue
			}
			c.mu.Lock()
			if len(c.data) < limit {
				c.ci, c.data = append(c.ci, ci), append(c.data, data)
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// finish stops the capture and writes it to a pcapng file. The reading
// goroutine blocks in recvmsg, which closing the socket does not end: a
// datagram sent from the namespace (to the reflector's host, a discard
// port) wakes it.
func (c *packetCapture) finish(t *testing.T, ns *testbed.Netns, path string) {
	t.Helper()
	close(c.stop)
	deadline := time.After(5 * time.Second)
	for woken := false; !woken; {
		ns.Do(func() error {
			u, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: testbed.ReflectorAddr.AsSlice(), Port: 9})
			if err == nil {
				u.Write([]byte("wake"))
				u.Close()
			}
			return nil
		})
		select {
		case <-c.done:
			woken = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("the capture did not stop")
		}
	}
	c.h.Close()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapgo.NewNgWriter(f, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.data {
		c.ci[i].InterfaceIndex = 0 // the file's interface, not the kernel's ifindex
		if err := w.WritePacket(c.ci[i], c.data[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// An emulated-path run captured on the sender's interface: `abing analyze`
// of the capture agrees with the run's live estimate within the intervals.
// Both are kernel stamps of the same packets at nearly the same place (the
// packet tap just before veth's transmit stamp, and the receive stamp the
// tap shares with the socket), so they must agree far more closely than
// the intervals: 20 Mbit/s with 10 Mbit/s of CBR cross traffic, the
// testbed's steady rates (see CapacityBound).
func TestCaptureMatchesLive(t *testing.T) {
	env := setup(t, 20e6, 20e6)
	dir := t.TempDir()
	if a := os.Getenv("ABING_ARTIFACTS"); a != "" {
		dir = a
	}
	for i, cfg := range []measure.Config{measure.Defaults(), func() measure.Config {
		c := measure.Defaults().Fixed()
		c.TrainLen = 10
		return c
	}()} {
		c := startCapture(t, env.TB.Sender, 100_000)
		flow := testbed.Flow{Kind: testbed.CBR, Dir: testbed.Forward, Rate: 0.5 * env.Calibration[testbed.Forward].Capacity}
		out, err := env.Measure(context.Background(), cfg, []testbed.Flow{flow})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, []string{"default.pcapng", "trains.pcapng"}[i])
		c.finish(t, env.TB.Sender, path)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := capture.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		var sessions []*capture.Session
		err = capture.Analyze(r, capture.Options{Clock: dispersion.SourceKernel}, func(s *capture.Session) error {
			sessions = append(sessions, s)
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(sessions) != 1 {
			t.Fatalf("%d sessions in the capture", len(sessions))
		}
		off, err := sessions[0].Result()
		if err != nil {
			t.Fatal(err)
		}
		live := out.Result
		// Beside the capture, the live run's records: the pair is recorded
		// data for tests (capture/testdata).
		if js, err := os.Create(strings.TrimSuffix(path, ".pcapng") + ".live.jsonl"); err == nil {
			enc := json.NewEncoder(js)
			for _, rec := range live.Records() {
				enc.Encode(rec)
			}
			js.Close()
		}
		t.Logf("live:\n%scapture (%d packets, %s):\n%s", live.Text(), r.Stats().Packets, path, off.Text())
		for _, pair := range [][2]*measure.Direction{{&live.Forward, &off.Forward}, {&live.Reverse, &off.Reverse}} {
			l, o := pair[0], pair[1]
			if l.Err() != nil || o.Err() != nil {
				t.Errorf("%s: live %v, capture %v", l.Name, l.Err(), o.Err())
				continue
			}
			if o.TrainsSent != l.TrainsSent || o.Packets != l.Packets || o.Lost != l.Lost {
				t.Errorf("%s: capture saw %d trains, %d packets, %d lost; the run %d, %d, %d",
					l.Name, o.TrainsSent, o.Packets, o.Lost, l.TrainsSent, l.Packets, l.Lost)
			}
			within := func(what string, v, lo, hi float64) {
				if v < lo || v > hi {
					t.Errorf("%s %s: %.2f Mbit/s outside (%.2f–%.2f)", l.Name, what, v/1e6, lo/1e6, hi/1e6)
				}
			}
			// Five runs here agreed to 0.1 Mbit/s in DBC, XTR and ABW; 2 %
			// of DBC leaves room and still fails a capture read with the
			// wrong stamps.
			if d := o.Capacity.DBC - l.Capacity.DBC; d > 0.02*l.Capacity.DBC || d < -0.02*l.Capacity.DBC {
				t.Errorf("%s: DBC %.2f from the capture, %.2f live", l.Name, o.Capacity.DBC/1e6, l.Capacity.DBC/1e6)
			}
			within("capture's DBC in the live interval", o.Capacity.DBC, l.Capacity.DBCLow, l.Capacity.DBCHigh)
			within("live DBC in the capture's interval", l.Capacity.DBC, o.Capacity.DBCLow, o.Capacity.DBCHigh)
			within("capture's ABW in the live interval", o.Cross.ABW, l.Cross.ABWLow, l.Cross.ABWHigh)
			within("live ABW in the capture's interval", l.Cross.ABW, o.Cross.ABWLow, o.Cross.ABWHigh)
		}
	}
}
