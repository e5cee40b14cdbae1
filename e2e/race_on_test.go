//go:build race

package e2e

// raceEnabled: the race detector makes goroutine stacks and allocations larger.
const raceEnabled = true
