package httpx

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath serves an admission service's Prometheus metrics.
const MetricsPath = "/metrics"

// Outcomes are an admission service's two Prometheus series, requests granted and requests
// refused by reason (the error body's code), in a registry of the service's own so that two
// services in one process (tests) do not collide.
type Outcomes struct {
	reg     *prometheus.Registry
	Granted prometheus.Counter
	Refused *prometheus.CounterVec
}

// NewOutcomes registers the two series under the given names.
func NewOutcomes(granted, grantedHelp, refused, refusedHelp string) *Outcomes {
	o := &Outcomes{reg: prometheus.NewRegistry()}
	o.Granted = prometheus.NewCounter(prometheus.CounterOpts{Name: granted, Help: grantedHelp})
	o.Refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: refused, Help: refusedHelp}, []string{"reason"})
	o.reg.MustRegister(o.Granted, o.Refused)
	return o
}

// Handler serves the registry in the Prometheus text format.
func (o *Outcomes) Handler() http.Handler { return promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{}) }
