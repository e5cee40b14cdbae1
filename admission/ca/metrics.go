package ca

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath serves the CA's Prometheus metrics.
const MetricsPath = "/metrics"

// metrics are the CA service's Prometheus series, in a registry of its own.
type metrics struct {
	reg     *prometheus.Registry
	issued  prometheus.Counter
	refused *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.issued = prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_ca_issued_total",
		Help: "Node certificates issued."})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_ca_refused_total",
		Help: "Sign requests refused, by reason (the error body's code)."}, []string{"reason"})
	m.reg.MustRegister(m.issued, m.refused)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
