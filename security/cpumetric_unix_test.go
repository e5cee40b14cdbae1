//go:build unix

package security

import (
	"syscall"
	"testing"
)

// cpuMetric reports the process CPU time per iteration (user+system, GC workers included) as
// cpu-ns/op. The development machine is shared, so wall-clock ns/op swings several-fold with
// other load; CPU time is the steadier figure to compare. Use it as `defer cpuMetric(b)()`.
func cpuMetric(b *testing.B) func() {
	start := processCPUNanos()
	return func() {
		if b.N > 0 && start >= 0 {
			b.ReportMetric(float64(processCPUNanos()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func processCPUNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
