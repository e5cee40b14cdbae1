package sentinel

import "testing"

// rateLimitsHigh turns both rate limits on, far above what a benchmark reaches, so that every
// call pays the bucket look-ups and none is refused.
var rateLimitsHigh = map[string]string{"FAME_RATE_LIMIT_IDENTITY": "1e12", "FAME_RATE_LIMIT_ADDRESS": "1e12"}

// BenchmarkDispatchExactRateLimited: BenchmarkDispatchExact with both rate limits on (the
// cost of a limited call: two bucket look-ups and reservations).
func BenchmarkDispatchExactRateLimited(b *testing.B) { benchDispatch(b, rateLimitsHigh, 1) }
