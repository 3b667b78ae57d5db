package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/auth"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/reflector"
)

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("a 00112233445566778899aabbccddeeff\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rate", "0"}, "--rate 0"},
		{[]string{"--source-rate", "-1"}, "--source-rate -1"},
		{[]string{"--rate", "NaN"}, "--rate NaN"},
		{[]string{"--pps", "+Inf"}, "--pps +Inf"},
		{[]string{"--allow", "10.0.0.0/33"}, "--allow \"10.0.0.0/33\""},
		{[]string{"--deny", "nonsense"}, "--deny \"nonsense\""},
		{[]string{"--keys", open}, "chmod 600"},
		{[]string{"--keys", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"--log.format", "xml"}, "--log.format"},
		{[]string{"--timestamps", "sundial"}, "sundial"},
		{[]string{"--max-sessions", "-1"}, "max sessions"},
		{[]string{"extra"}, "unknown command"},
	} {
		cmd := command()
		cmd.SetArgs(append(tc.args, "--web.listen-address", "", "--listen", "127.0.0.1:0"))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// The command as an operator runs it: keys, metrics, a measurement, a clean
// stop with a summary line.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte("site-a 00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd := command()
	// --user root: the test process must not drop its own privileges.
	cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--web.listen-address", "127.0.0.1:0", "--keys", keys, "--user", "root", "--log.format", "text"})
	cmd.SetErr(pw)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx); pw.Close() }()
	lines := bufio.NewScanner(pr)
	var addr, metrics string
	for lines.Scan() {
		l := lines.Text()
		if m := regexp.MustCompile(`addr=(\S+).*metrics=(\S+)`).FindStringSubmatch(l); m != nil {
			addr, metrics = m[1], m[2]
			break
		}
	}
	if addr == "" {
		t.Fatal("no listening line")
	}
	go io.Copy(io.Discard, pr) // keep draining the log

	ks, _ := auth.LoadKeys(keys)
	mcfg := measure.Defaults().Fixed()
	mcfg.Target, mcfg.Key = addr, &ks[0]
	if _, err := measure.Run(context.Background(), mcfg); err != nil {
		t.Errorf("keyed measurement: %v", err)
	}
	mcfg.Key, mcfg.Timeout = nil, 300*time.Millisecond
	if _, err := measure.Run(context.Background(), mcfg); err == nil {
		t.Error("unsigned measurement succeeded against a keyed reflector")
	}
	body := get(t, metrics)
	for _, want := range []string{`abing_reflector_sent_messages_total{type="reply"} 64`, `abing_reflector_dropped_packets_total{reason="unsigned"}`, "process_resident_memory_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if h := get(t, strings.Replace(metrics, "/metrics", "/healthz", 1)); h != "ok\n" {
		t.Errorf("healthz %q", h)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reflector did not stop")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Flags scale each budget's bursts with its rates; the defaults stay the
// defaults.
func TestBudgetFlags(t *testing.T) {
	o := options{rate: 1000, pps: 200000, sourceRate: 10, sourcePPS: 5000, prefixRate: 40, logFormat: "text"}
	o.cfg.SummaryEvery = time.Minute
	cfg, err := o.config()
	if err != nil {
		t.Fatal(err)
	}
	if def := reflector.DefaultLimits(); cfg.Limits != def {
		t.Errorf("default flags: %+v, want %+v", cfg.Limits, def)
	}
	o.sourceRate, o.sourcePPS, o.prefixRate = 20, 10000, 80
	cfg, _ = o.config()
	if s, p := cfg.Limits.Source, cfg.Limits.Prefix; s.Burst != 2<<20 || s.PacketBurst != 4000 || p.PPS != 40000 || p.Burst != 8<<20 || p.PacketBurst != 16000 {
		t.Errorf("doubled: source %+v prefix %+v", s, p)
	}
}

// The package's reflector.env gives the unit flags the reflector has, in
// its setting and in the options its comments offer, and the unit passes
// that setting.
func TestPackagedFlags(t *testing.T) {
	env, err := os.ReadFile("../../packaging/reflector.env")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("../../deploy/systemd/abing-reflector.service")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^EnvironmentFile=-/etc/abing/reflector.env$`).Match(unit) ||
		!regexp.MustCompile(`(?m)^ExecStart=/usr/bin/abing-reflector \$REFLECTOR_OPTS$`).Match(unit) {
		t.Error("the unit does not run /usr/bin/abing-reflector with $REFLECTOR_OPTS from /etc/abing/reflector.env")
	}
	if !regexp.MustCompile(`(?m)^REFLECTOR_OPTS="[^"]+"$`).Match(env) {
		t.Error("reflector.env sets no REFLECTOR_OPTS")
	}
	cmd := command()
	cmd.InitDefaultHelpFlag()
	flags := regexp.MustCompile(`--([a-z][a-z.-]+)`).FindAllStringSubmatch(string(env), -1)
	if len(flags) < 5 {
		t.Fatalf("reflector.env names %d flags", len(flags))
	}
	for _, f := range flags {
		if cmd.Flags().Lookup(f[1]) == nil {
			t.Errorf("reflector.env gives --%s, which the reflector does not have", f[1])
		}
	}
}
