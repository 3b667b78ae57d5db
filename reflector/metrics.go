package reflector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abing-net/abing/dispersion"
)

// Collector exports a server's counters to Prometheus, named after the
// conventions of blackbox_exporter and smokeping_prober (abing_ prefix,
// base units, _total for counters).
type Collector struct {
	s                                              *Server
	packets, bytes, dropped, sent, sessions, track *prometheus.Desc
	trains, timeouts, sendErrors, recvErrors, icmp *prometheus.Desc
}

// NewCollector returns a collector for s; register it with a registry of
// your own.
func NewCollector(s *Server) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("abing_reflector_"+name, help, labels, nil)
	}
	return &Collector{
		s:          s,
		packets:    d("packets_total", "Datagrams received and sent.", "direction"),
		bytes:      d("bytes_total", "UDP payload bytes received and sent.", "direction"),
		dropped:    d("dropped_packets_total", "Received datagrams dropped, by reason.", "reason"),
		sent:       d("sent_messages_total", "Datagrams sent, by message type.", "type"),
		trains:     d("reply_trains_total", "Reply trains sent."),
		timeouts:   d("train_timeouts_total", "Trains answered incomplete after the train timeout."),
		sendErrors: d("send_errors_total", "Failed sends."),
		recvErrors: d("receive_errors_total", "Failed receives other than ICMP errors (the reflector goes on)."),
		icmp:       d("icmp_errors_total", "ICMP errors that came back for datagrams the reflector sent, by kind.", "kind"),
		sessions:   d("sessions", "Sessions held now: active (counted against the caps), remembered (active or not), and stateful STAMP sessions (stamp).", "state"),
		track:      d("tracked", "Source addresses and prefixes with a rate budget held now.", "kind"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packets, c.bytes, c.dropped, c.sent, c.trains, c.timeouts, c.sendErrors, c.recvErrors, c.icmp, c.sessions, c.track} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter(c.packets, st.Received, "received")
	counter(c.packets, st.Sent, "sent")
	counter(c.bytes, st.ReceivedBytes, "received")
	counter(c.bytes, st.SentBytes, "sent")
	for i, n := range st.Dropped {
		counter(c.dropped, n, Drop(i).String())
	}
	counter(c.sent, st.Replies, "reply")
	counter(c.sent, st.Reports, "report")
	counter(c.sent, st.Cookies, "cookie")
	counter(c.sent, st.Refusals, "refused")
	counter(c.sent, st.STAMPReplies, "stamp_reply")
	counter(c.trains, st.Trains)
	counter(c.timeouts, st.TrainTimeouts)
	counter(c.sendErrors, st.SendErrors)
	counter(c.recvErrors, st.ReceiveErrors)
	for i, n := range st.ICMPErrors {
		counter(c.icmp, n, dispersion.ICMP(i).String())
	}
	gauge(c.sessions, st.Sessions, "active")
	gauge(c.sessions, st.Remembered, "remembered")
	gauge(c.sessions, st.STAMPSessions, "stamp")
	gauge(c.track, st.Sources, "source")
	gauge(c.track, st.Prefixes, "prefix")
}
