package ca

import "github.com/fame-go/fame/admission/internal/httpx"

// MetricsPath serves the CA's Prometheus metrics.
const MetricsPath = httpx.MetricsPath

// newMetrics: certificates issued (fame_ca_issued_total) and sign requests refused by reason
// (fame_ca_refused_total).
func newMetrics() *httpx.Outcomes {
	return httpx.NewOutcomes("fame_ca_issued_total", "Node certificates issued.",
		"fame_ca_refused_total", "Sign requests refused, by reason (the error body's code).")
}
