package welcome

import "github.com/fame-go/fame/admission/internal/httpx"

// MetricsPath serves the service's Prometheus metrics.
const MetricsPath = httpx.MetricsPath

// newMetrics: hellos answered with a NodeWelcome (fame_welcome_admitted_total) and hellos
// refused by reason (fame_welcome_refused_total).
func newMetrics() *httpx.Outcomes {
	return httpx.NewOutcomes("fame_welcome_admitted_total", "Hellos answered with a NodeWelcome.",
		"fame_welcome_refused_total", "Hellos refused, by reason (the error body's code).")
}
