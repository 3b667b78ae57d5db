package monitor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/reflector"
)

// The benchmark's reflector runs in a child process (this test binary
// again), so that the CPU the benchmark reports is the monitor's alone.
func TestMain(m *testing.M) {
	if os.Getenv("ABING_MONITOR_BENCH_REFLECTOR") == "1" {
		conn, err := dispersion.Listen("udp4", "127.0.0.1:0", dispersion.Options{})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		lim := reflector.DefaultLimits()
		lim.Source, lim.Prefix = lim.Global, lim.Global
		srv, _ := reflector.New(conn, reflector.Config{Limits: lim})
		fmt.Println(conn.LocalAddr())
		ctx, cancel := context.WithCancel(context.Background())
		go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
		srv.Serve(ctx)
		return
	}
	os.Exit(m.Run())
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMonitorTargets measures what one target costs the monitor: the
// CPU and wall time of one default measurement (the monitor's own path,
// against a reflector in another process on loopback) and the memory of an
// idle target loop, and from them how many targets one monitor keeps on a
// 60 s cadence on this machine: at most 60 s / wall time through one
// interface (measurements there never overlap), and at most
// cores × 60 s / CPU time.
func BenchmarkMonitorTargets(b *testing.B) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ABING_MONITOR_BENCH_REFLECTOR=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.HasPrefix(line, "error") {
		b.Fatalf("reflector: %q %v", line, err)
	}
	addr := strings.TrimSpace(line)

	// Memory of idle targets: 1000 loops with an interval far away.
	var yaml strings.Builder
	yaml.WriteString("interval: 24h\ntargets:\n")
	for i := range 1000 {
		fmt.Fprintf(&yaml, "  - {address: %q, name: t%d}\n", addr, i)
	}
	cfg, err := config.Parse([]byte(yaml.String()), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	before := heapInUse() + stackInUse()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { New(cfg, Options{}).Run(ctx); close(done) }()
	time.Sleep(200 * time.Millisecond)
	perTarget := float64(heapInUse()+stackInUse()-before) / 1000
	cancel()
	<-done

	one, err := config.Parse([]byte(fmt.Sprintf("targets: [{address: %q, name: bench}]\n", addr)), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	m := New(one, Options{})
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	meas := one.Measure(&one.Targets[0])
	for range b.N {
		res, _, err := m.measure(context.Background(), &one.Targets[0], meas)
		if err != nil || res.Forward.Complete == 0 {
			b.Fatalf("no answer: %v", err)
		}
	}
	cpu, wall := (cpuTime()-cpu0)/time.Duration(b.N), time.Since(wall0)/time.Duration(b.N)
	b.StopTimer()
	byWall := float64(time.Minute) / float64(wall)
	byCPU := float64(runtime.NumCPU()) * float64(time.Minute) / float64(cpu)
	b.ReportMetric(float64(cpu)/1e6, "cpu-ms/run")
	b.ReportMetric(float64(wall)/1e6, "wall-ms/run")
	b.ReportMetric(perTarget/1024, "KiB/target")
	b.ReportMetric(min(byWall, byCPU), "targets@60s")
	b.ReportMetric(byCPU, "targets@60s-cpu")
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func stackInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.StackInuse
}
