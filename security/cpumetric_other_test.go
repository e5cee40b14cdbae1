//go:build !unix

package security

import "testing"

// cpuMetric reports nothing where getrusage is unavailable.
func cpuMetric(*testing.B) func() { return func() {} }
