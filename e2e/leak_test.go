package e2e

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives every test: each test stops what it
// started (sentinels, nodes, httptest servers) in its cleanups, so after the last one only the
// runtime's and the standard library's own background goroutines may remain. A leak names
// the goroutine's stack in the failure.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
