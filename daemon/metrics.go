package daemon

import (
	"math"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abing-net/abing/config"
	"github.com/abing-net/abing/record"
)

// metrics are the monitor's Prometheus metrics, named after the
// conventions of blackbox_exporter and smokeping_prober: abing_ prefix,
// base units (bits per second, seconds), the last estimate as gauges, RTT
// as a histogram, counters for probes and errors. Every series of a target
// carries its name (target) and its configured address (address).
type metrics struct {
	dbc, xtr, abw *prometheus.GaugeVec
	abwLo, abwHi  *prometheus.GaugeVec // the last ABW's 95 % interval
	// Over the windows of the target's last runs (config.Config.Pool).
	xtrPool, abwPool, abwPoolLo, abwPoolHi, pooled *prometheus.GaugeVec
	linkCost                                       *prometheus.GaugeVec // the last published link cost
	last                                           *prometheus.GaugeVec
	rtt                                            *prometheus.HistogramVec
	sent, lost                                     *prometheus.CounterVec
	runs, errors                                   *prometheus.CounterVec
	info                                           *prometheus.GaugeVec
	alarms                                         *prometheus.GaugeVec
	panics                                         *prometheus.CounterVec
	keys                                           []string // label keys of abing_target_info, fixed at start
	// mu orders a reload's change of the series (targets, from Run)
	// with the results' and alarms' updates (from the sink goroutine).
	mu    sync.Mutex
	addrs map[string]string // the configured address of each target with series now, by name
}

// newMetrics registers the metrics of cfg's targets with reg. Each
// target's labels appear on abing_target_info (every label key of any
// target, empty where a target lacks it), to join on in queries.
func newMetrics(reg prometheus.Registerer, cfg *config.Config) *metrics {
	dir := []string{"target", "address", "direction"}
	tgt := []string{"target", "address"}
	g := func(name, help string, labels []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "abing_" + name, Help: help}, labels)
	}
	c := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "abing_" + name, Help: help}, labels)
	}
	var keys []string
	for _, t := range cfg.Targets {
		for k := range t.Labels {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	m := &metrics{
		dbc:       g("dbc_bits_per_second", "Last dynamic bottleneck capacity estimate.", dir),
		xtr:       g("xtr_bits_per_second", "Last cross-traffic estimate.", dir),
		abw:       g("abw_bits_per_second", "Last available-bandwidth estimate.", dir),
		abwLo:     g("abw_low_bits_per_second", "Lower end of the last available-bandwidth estimate's 95 % interval.", dir),
		abwHi:     g("abw_high_bits_per_second", "Upper end of the last available-bandwidth estimate's 95 % interval.", dir),
		xtrPool:   g("xtr_pooled_bits_per_second", "Cross traffic over the windows of the target's last runs (pool).", dir),
		abwPool:   g("abw_pooled_bits_per_second", "Available bandwidth over the windows of the target's last runs (pool).", dir),
		abwPoolLo: g("abw_pooled_low_bits_per_second", "Lower end of the pooled available bandwidth's 95 % interval.", dir),
		abwPoolHi: g("abw_pooled_high_bits_per_second", "Upper end of the pooled available bandwidth's 95 % interval.", dir),
		pooled:    g("pooled_runs", "Runs the last pooled estimate took its windows from.", dir),
		linkCost:  g("link_cost", "The path's link cost as last published (it changes only past its thresholds).", tgt),
		last:      g("last_measurement_timestamp_seconds", "When the last measurement of the target started.", tgt),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "abing_rtt_seconds",
			Help:    "Round-trip time of the probes (mean of each measurement), less time inside the reflector.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, tgt),
		sent:   c("probes_sent_total", "Probe datagrams sent, by direction.", dir),
		lost:   c("probes_lost_total", "Probe datagrams lost, by direction.", dir),
		runs:   c("measurements_total", "Measurements run.", tgt),
		errors: c("measurement_errors_total", "Measurements that produced no estimate (both directions failed).", tgt),
		info:   g("target_info", "The labels of each target, value 1.", append(slices.Clone(tgt), keys...)),
		alarms: g("alarm_active", "1 while an alarm of the kind is active on the target and direction, else 0.",
			[]string{"target", "address", "direction", "kind"}),
		panics: c("panics_total", "Panics recovered in the monitor's result handling (a bug: see the log), by where.", []string{"where"}),
		keys:   keys,
		addrs:  map[string]string{},
	}
	reg.MustRegister(m.dbc, m.xtr, m.abw, m.abwLo, m.abwHi, m.xtrPool, m.abwPool, m.abwPoolLo, m.abwPoolHi, m.pooled, m.linkCost, m.last, m.rtt, m.sent, m.lost, m.runs, m.errors, m.info, m.alarms, m.panics)
	m.targets(cfg)
	return m
}

// targets makes the series of cfg's targets and deletes those of targets
// no longer there (after a reload). Label keys that were not in the
// configuration at start are left out of abing_target_info until a
// restart: a metric's label names cannot change.
func (m *metrics) targets(cfg *config.Config) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.info.Reset()
	now := map[string]string{}
	for _, t := range cfg.Targets {
		now[t.Name] = t.Address
		vals := []string{t.Name, t.Address}
		for _, k := range m.keys {
			vals = append(vals, t.Labels[k])
		}
		m.info.WithLabelValues(vals...).Set(1)
		m.runs.WithLabelValues(t.Name, t.Address)
		m.errors.WithLabelValues(t.Name, t.Address)
		if !cfg.Alarms.Disabled {
			for _, k := range record.Kinds {
				for _, d := range alarmDirections(k) {
					m.alarms.WithLabelValues(t.Name, t.Address, d, string(k)).Add(0)
				}
			}
		}
	}
	for n, addr := range m.addrs {
		if now[n] != addr { // gone, or its address changed
			for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
				m.dbc, m.xtr, m.abw, m.abwLo, m.abwHi, m.xtrPool, m.abwPool, m.abwPoolLo, m.abwPoolHi, m.pooled, m.linkCost, m.last, m.rtt, m.sent, m.lost, m.runs, m.errors, m.alarms} {
				v.DeletePartialMatch(prometheus.Labels{"target": n, "address": addr})
			}
		}
	}
	m.addrs = now
}

// alarmDirections are the directions an alarm kind is raised for.
func alarmDirections(k record.Kind) []string {
	if k == record.Latency || k == record.Down {
		return []string{"both"}
	}
	return []string{"forward", "reverse"}
}

// alarm sets abing_alarm_active.
func (m *metrics) alarm(a record.Alarm) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := 0.0
	if a.Active() {
		v = 1
	}
	m.alarms.WithLabelValues(a.Target, m.addrs[a.Target], a.Direction, string(a.Kind)).Set(v)
}

// observe records one measurement's records (one per direction).
func (m *metrics) observe(recs []record.Record) {
	if len(recs) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r0 := &recs[0]
	tgt := []string{r0.Key(), m.addrs[r0.Key()]}
	m.runs.WithLabelValues(tgt...).Inc()
	m.last.WithLabelValues(tgt...).Set(float64(r0.Time.UnixNano()) / 1e9)
	failed := true
	for i := range recs {
		r := &recs[i]
		l := []string{r.Key(), m.addrs[r.Key()], r.Direction}
		set := func(g *prometheus.GaugeVec, v *float64) {
			if v == nil {
				g.WithLabelValues(l...).Set(math.NaN())
			} else {
				g.WithLabelValues(l...).Set(*v * 1e6)
			}
		}
		set(m.dbc, r.DBC)
		set(m.xtr, r.XTR)
		set(m.abw, r.ABW)
		set(m.abwLo, r.ABWLow)
		set(m.abwHi, r.ABWHigh)
		set(m.xtrPool, r.XTRPooled)
		set(m.abwPool, r.ABWPooled)
		set(m.abwPoolLo, r.ABWPooledLow)
		set(m.abwPoolHi, r.ABWPooledHigh)
		m.pooled.WithLabelValues(l...).Set(float64(r.PooledRuns))
		failed = failed && r.DBC == nil
		m.sent.WithLabelValues(l...).Add(float64(r.PacketsSent))
		m.lost.WithLabelValues(l...).Add(math.Round(r.Loss * float64(r.PacketsSent)))
	}
	if failed {
		m.errors.WithLabelValues(tgt...).Inc()
	}
	if r0.RTT != nil {
		m.rtt.WithLabelValues(tgt...).Observe(r0.RTT.Avg / 1e3)
	}
	if r0.LinkCost != nil {
		m.linkCost.WithLabelValues(tgt...).Set(*r0.LinkCost)
	}
}

// panicked counts a panic recovered in the monitor's result handling.
func (m *metrics) panicked(where string) { m.panics.WithLabelValues(where).Inc() }
