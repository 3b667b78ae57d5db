package meshagent

import "github.com/prometheus/client_golang/prometheus"

// metrics are the agent's own series on /metrics, beside the monitor's.
type metrics struct {
	members      prometheus.GaugeFunc
	published    prometheus.Counter
	received     prometheus.Counter
	refused      prometheus.Counter
	deferred     prometheus.Counter
	coordRefused prometheus.Counter
	routeChanges prometheus.CounterFunc
	routeFlaps   prometheus.CounterFunc
	routeValue   *prometheus.GaugeVec
}

func newMetrics(a *Agent) *metrics {
	return &metrics{
		members: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "abing_mesh_members",
			Help: "Members of the mesh alive, this node included."}, func() float64 { return float64(a.view.size()) }),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "abing_mesh_row_parts_published_total",
			Help: "Parts of this node's row published as serf user events."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "abing_mesh_row_parts_received_total",
			Help: "Parts of other nodes' rows taken into the map."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "abing_mesh_row_parts_refused_total",
			Help: "Parts of rows refused: malformed or out of range."}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{Name: "abing_mesh_publications_deferred_total",
			Help: "Publications the gossip budget put off to a later second."}),
		coordRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "abing_mesh_coordinate_samples_refused_total",
			Help: "Peers' coordinates not taken: they disagreed wildly with the RTT measured to them while most peers' agreed."}),
		routeChanges: prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "abing_mesh_route_changes_total",
			Help: "Changes of this node's routes (not of provisional ones, before a destination's direct link is in the map)."}, func() float64 { c, _ := a.routes.Counts(); return float64(c) }),
		routeFlaps: prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "abing_mesh_route_flaps_total",
			Help: "Route changes back to the route replaced within the flap window."}, func() float64 { _, f := a.routes.Counts(); return float64(f) }),
		routeValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "abing_mesh_route_value",
			Help: "The value of each route this node chose (link cost by default), by path network and destination; none for an unreachable one."},
			[]string{"path", "destination"}),
	}
}

// routes sets the routes' values from the table.
func (m *metrics) routes(table []Route) {
	m.routeValue.Reset()
	for _, e := range table {
		if e.Value != nil {
			m.routeValue.WithLabelValues(e.Path, e.Dst).Set(*e.Value)
		}
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.members, m.published, m.received, m.refused, m.deferred, m.coordRefused, m.routeChanges, m.routeFlaps, m.routeValue}
}
