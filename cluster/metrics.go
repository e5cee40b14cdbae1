package cluster

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the cluster package's Prometheus series. The sentinel
// registers Collectors() on its registry; a nil *Metrics counts nothing.
type Metrics struct {
	// writes counts background binding writes by op (create, update,
	// refresh, delete) and result (won, adopted, failed, backlog, closed).
	writes *prometheus.CounterVec
	// watch counts KV watch events applied by op (put, delete, stale, bad).
	watch *prometheus.CounterVec
	// peers counts sentinel liveness transitions by state (up, down).
	peers *prometheus.CounterVec
	// downs counts down verdicts by why: bye (a graceful close said so),
	// silent (MissedBeats heartbeats missed), route_closed (the embedded
	// server's route to the peer's server closed and a beat was missed).
	downs *prometheus.CounterVec
	// forwards counts envelopes published to other sentinels by result
	// (sent, refused, error) and received (received).
	forwards *prometheus.CounterVec
	// refused counts connections the embedded server refused, by link
	// (client, route) and reason (auth, tls), and peer links refused (link
	// data, reason as on the wire: tls, bad_hello, bad_credentials, ...).
	refused *prometheus.CounterVec
	// links counts peer link events: up (a link this sentinel dialed is
	// carrying its envelopes), lost_out (it ended; back to NATS), accepted,
	// lost_in, no_marker (an accepted link delivered without having seen its
	// switch marker over NATS).
	links *prometheus.CounterVec
	// linkFrames counts envelopes on peer links by result: sent, received,
	// full (refused: the link's queue was full), to_nats (queued on a link
	// that was lost, then published over NATS), lost (neither).
	linkFrames *prometheus.CounterVec
}

// NewMetrics builds the series (not registered).
func NewMetrics() *Metrics {
	return &Metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_binding_writes_total",
			Help: "Background binding writes to the cluster KV by op and result."}, []string{"op", "result"}),
		watch: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_watch_events_total",
			Help: "Binding changes seen by the KV watch by op (put, delete, stale, bad)."}, []string{"op"}),
		peers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_peer_transitions_total",
			Help: "Sentinel liveness transitions seen through heartbeats."}, []string{"state"}),
		downs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_peer_down_total",
			Help: "Sentinel down verdicts by why (bye, silent, route_closed)."}, []string{"why"}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_bus_envelopes_total",
			Help: "Envelopes over the cluster bus by direction and result."}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_refused_total",
			Help: "Connections refused by link (client, route: the embedded NATS server; data: a peer link) and reason."}, []string{"link", "reason"}),
		links: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_links_total",
			Help: "Peer link (direct data path) events: up, lost_out, accepted, lost_in, no_marker."}, []string{"event"}),
		linkFrames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_cluster_link_envelopes_total",
			Help: "Envelopes on peer links by result: sent, received, full, to_nats, lost."}, []string{"result"}),
	}
}

// Collectors returns the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.writes, m.watch, m.peers, m.downs, m.forwards, m.refused, m.links, m.linkFrames}
}

func (m *Metrics) write(op, result string) {
	if m != nil {
		m.writes.WithLabelValues(op, result).Inc()
	}
}

func (m *Metrics) watchEvent(op string) {
	if m != nil {
		m.watch.WithLabelValues(op).Inc()
	}
}

func (m *Metrics) peer(state string) {
	if m != nil {
		m.peers.WithLabelValues(state).Inc()
	}
}

func (m *Metrics) down(why string) {
	if m != nil {
		m.downs.WithLabelValues(why).Inc()
	}
}

func (m *Metrics) forward(result string) {
	if m != nil {
		m.forwards.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) refusal(link, reason string) {
	if m != nil {
		m.refused.WithLabelValues(link, reason).Inc()
	}
}

func (m *Metrics) link(event string) {
	if m != nil {
		m.links.WithLabelValues(event).Inc()
	}
}

func (m *Metrics) frame(result string) {
	if m != nil {
		m.linkFrames.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) frames(result string, n int) {
	if m != nil {
		m.linkFrames.WithLabelValues(result).Add(float64(n))
	}
}
