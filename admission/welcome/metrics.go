package welcome

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath serves the service's Prometheus metrics.
const MetricsPath = "/metrics"

// metrics are the welcome service's Prometheus series, in a registry of
// its own so that two services in one process (tests) do not collide.
type metrics struct {
	reg      *prometheus.Registry
	admitted prometheus.Counter
	refused  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.admitted = prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_welcome_admitted_total",
		Help: "Hellos answered with a NodeWelcome."})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_welcome_refused_total",
		Help: "Hellos refused, by reason (the error body's code)."}, []string{"reason"})
	m.reg.MustRegister(m.admitted, m.refused)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
