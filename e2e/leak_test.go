package e2e

import (
	"fmt"
	"os"

	"go.uber.org/goleak"
)

// leakCheck fails the package run (TestMain) when a goroutine outlives every test: each test
// stops what it started (sentinels, nodes, httptest servers) in its cleanups, so after the
// last one only the runtime's own goroutines may remain. goleak.Find retries for a while
// before it reports, so goroutines that are ending are not taken for leaks; a leak names the
// goroutine's stack. A run whose tests failed keeps its code unchanged.
func leakCheck(code int) int {
	if code != 0 {
		return code
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: goroutines outlived the tests: %v\n", err)
		return 1
	}
	return 0
}
