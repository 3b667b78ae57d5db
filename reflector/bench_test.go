package reflector

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
)

// The benchmark's reflector runs in a child process (this test binary
// again) born pinned to CPU 0 with GOMAXPROCS=1: one core, as the README
// states. The load comes from the parent, pinned to CPU 1.
func TestMain(m *testing.M) {
	if os.Getenv("ABING_BENCH_REFLECTOR") == "1" {
		benchChild()
		return
	}
	os.Exit(m.Run())
}

const benchKeyHex = "000102030405060708090a0b0c0d0e0f"

// benchChild serves on loopback until its standard input closes, then
// prints its stats as JSON.
func benchChild() {
	conn, err := dispersion.Listen("udp4", "127.0.0.1:0", dispersion.Options{Buffer: 8 << 20})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	lim := DefaultLimits()
	lim.Source, lim.Prefix = lim.Global, lim.Global // one source is the whole load
	cfg := Config{Limits: lim}
	if os.Getenv("ABING_BENCH_KEYED") == "1" {
		secret, _ := hex.DecodeString(benchKeyHex)
		cfg.Keys = []auth.Key{{Name: "bench", Secret: secret}}
	}
	srv, err := New(conn, cfg)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(conn.LocalAddr())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	srv.Serve(ctx)
	json.NewEncoder(os.Stdout).Encode(srv.Stats())
}

// pin sets the CPU affinity of the calling thread, which must be locked.
func pin(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

// startBenchChild forks the reflector from a thread pinned to CPU 0, so
// that every thread of the child inherits that one CPU.
func startBenchChild(b *testing.B, keyed bool) (addr netip.AddrPort, stop func() Stats) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs two CPUs: one for the reflector, one for the load")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ABING_BENCH_REFLECTOR=1", "GOMAXPROCS=1")
	if keyed {
		cmd.Env = append(cmd.Env, "ABING_BENCH_KEYED=1")
	}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its goroutine
		if err := pin(0); err != nil {
			errc <- err
			return
		}
		errc <- cmd.Start()
	}()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	addr, err = netip.ParseAddrPort(line[:len(line)-1])
	if err != nil {
		b.Fatalf("child: %s", line)
	}
	return addr, func() Stats {
		stdin.Close()
		var st Stats
		json.NewDecoder(out).Decode(&st)
		cmd.Wait()
		return st
	}
}

func BenchmarkReflectorOneCore(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		b.Run(fmt.Sprintf("keyed=%v", keyed), func(b *testing.B) { benchReflector(b, keyed) })
	}
}

// benchReflector sends trains of 10 1500-byte probes, keeping up to 32
// trains in flight, and reports the datagrams per second the reflector
// received and answered.
func benchReflector(b *testing.B, keyed bool) {
	addr, stop := startBenchChild(b, keyed)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pin(1)
	defer func() {
		var all unix.CPUSet
		for i := range runtime.NumCPU() {
			all.Set(i)
		}
		unix.SchedSetaffinity(0, &all)
	}()
	c := newClient(b, "127.0.0.1:0", addr)
	if keyed {
		secret, _ := hex.DecodeString(benchKeyHex)
		c.signer = auth.NewSigner(auth.Key{Name: "bench", Secret: secret})
	}
	const n, window, perSession = 10, 32, 200
	var replies atomic.Int64
	cookies := make(chan train.Cookie, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 9000)
		for ctx.Err() == nil {
			c.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if ev, err := c.conn.Recv(buf); err == nil && ev.Kind == dispersion.Data {
				switch h, _ := train.ParseHeader(buf[:ev.N]); h.Type {
				case train.TypeReply:
					replies.Add(1)
				case train.TypeCookie:
					ck, _ := train.ParseCookie(buf[:ev.N])
					cookies <- ck
				}
			}
		}
	}()
	pkts := make([][]byte, n)
	trains := (b.N + n - 1) / n
	b.ResetTimer()
	start := time.Now()
	for i := range trains {
		if i%perSession == 0 { // fresh sessions keep stamp memory small
			if i > 0 {
				c.send(c.msg(train.Header{Type: train.TypeClose, Len: 1}, train.SenderBody))
			}
			c.session++
			c.benchHello(cookies)
		}
		for p := range pkts {
			pkts[p] = c.probe(i%perSession, p, n, 1472)
		}
		c.send(pkts...)
		for wait := time.Now(); int64((i+1)*n)-replies.Load() > window*n && time.Since(wait) < 20*time.Millisecond; {
			runtime.Gosched()
		}
	}
	for wait := time.Now(); replies.Load() < int64(trains*n) && time.Since(wait) < 200*time.Millisecond; {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	st := stop()
	b.ReportMetric(float64(st.Received)/elapsed.Seconds(), "rx-pkt/s")
	b.ReportMetric(float64(st.Replies)/elapsed.Seconds(), "replies/s")
	b.ReportMetric(float64(trains*n-int(replies.Load()))/float64(trains*n), "lost-frac")
	if d := st.DroppedTotal(); d > 0 {
		b.Logf("reflector dropped %d: %s", d, dropString(st))
	}
}

// benchHello says hello until a cookie arrives on cookies (the receive
// goroutine owns the socket).
func (c *client) benchHello(cookies <-chan train.Cookie) {
	for {
		c.cookie = train.Cookie{}
		c.send(c.msg(train.Header{Type: train.TypeHello, Len: 1}, train.HelloMin))
		select {
		case c.cookie = <-cookies:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
