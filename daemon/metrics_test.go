package daemon

import (
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/internal/web"
	"github.com/abing-net/abing/measure"
	"github.com/abing-net/abing/record"
)

// The metrics as Prometheus scrapes them, over HTTP.
func TestMetrics(t *testing.T) {
	cfg, err := config.Parse([]byte("targets:\n  - {address: 198.18.2.2, name: b, labels: {site: lab}}\n  - {address: 198.18.2.3}\n"), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	reg := web.Registry()
	m := newMetrics(reg, cfg)
	f := func(v float64) *float64 { return &v }
	m.observe([]record.Record{
		{Time: t0(), Target: "b", Address: "198.18.2.2:8176", Direction: "forward", DBC: f(95.5), XTR: f(40), ABW: f(55.5),
			RTT: &record.RTT{Avg: 0.25}, PacketsSent: 64, Loss: 0.03125},
		{Time: t0(), Target: "b", Address: "198.18.2.2:8176", Direction: "reverse", PacketsSent: 64, Error: "too few"},
	})
	m.observe(measure.FailedRecords(measure.Config{Target: "198.18.2.3"}, t0(), io.EOF))
	m.alarm(record.Alarm{Kind: record.Capacity, Target: "b", Address: "198.18.2.2", Direction: "forward"})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs, err := web.Serve(l, web.Options{Registry: reg, Config: web.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	resp, err := http.Get("http://" + l.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`abing_dbc_bits_per_second{address="198.18.2.2",direction="forward",target="b"} 9.55e+07`,
		`abing_abw_bits_per_second{address="198.18.2.2",direction="forward",target="b"} 5.55e+07`,
		`abing_dbc_bits_per_second{address="198.18.2.2",direction="reverse",target="b"} NaN`,
		`abing_probes_sent_total{address="198.18.2.2",direction="forward",target="b"} 64`,
		`abing_probes_lost_total{address="198.18.2.2",direction="forward",target="b"} 2`,
		`abing_rtt_seconds_count{address="198.18.2.2",target="b"} 1`,
		`abing_measurements_total{address="198.18.2.2",target="b"} 1`,
		`abing_measurement_errors_total{address="198.18.2.2",target="b"} 0`,
		`abing_measurement_errors_total{address="198.18.2.3",target="198.18.2.3"} 1`,
		`abing_last_measurement_timestamp_seconds{address="198.18.2.2",target="b"} 1.795428e+09`,
		`abing_target_info{address="198.18.2.2",site="lab",target="b"} 1`,
		`abing_target_info{address="198.18.2.3",site="",target="198.18.2.3"} 1`,
		`abing_alarm_active{address="198.18.2.2",direction="forward",kind="capacity",target="b"} 1`,
		`abing_alarm_active{address="198.18.2.2",direction="reverse",kind="capacity",target="b"} 0`,
		`abing_alarm_active{address="198.18.2.3",direction="both",kind="down",target="198.18.2.3"} 0`,
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func t0() (t time.Time) { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) }

// Every metric the monitor exports is in the metrics table of
// docs/monitor.md.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/monitor.md")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("targets: [{address: 198.18.2.2}]\n"), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, cfg)
	m.panics.WithLabelValues("test") // a vector shows once it has a series
	m.observe(measure.FailedRecords(measure.Config{Target: "198.18.2.2"}, t0(), io.EOF))
	cost := 100.0
	m.observe([]record.Record{{Time: t0(), Target: "198.18.2.2", Direction: "forward", RTT: &record.RTT{Avg: 1}, LinkCost: &cost}})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 20 {
		t.Fatalf("only %d metric families", len(fams))
	}
	for _, f := range fams {
		if !strings.Contains(string(doc), "| `"+f.GetName()+"` |") {
			t.Errorf("docs/monitor.md lacks a row for %s", f.GetName())
		}
	}
}
