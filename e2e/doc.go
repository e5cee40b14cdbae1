// Package e2e holds end-to-end tests: a real sentinel and real Go nodes (agents and clients)
// talking over WebSocket on loopback ports. It has no non-test code beyond this file.
//
// Two harnesses: fabric (harness_test.go, a sentinel configured by environment, restartable)
// and strictStack (strict_stack_test.go, the reference example's strict-overlay deployment
// in one process with the real OAuth2, welcome and CA services). The full-stack runs of the
// node SDK live here, on strictStack, so the node package's tests need neither the sentinel
// nor the admission services.
package e2e
