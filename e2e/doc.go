// Package e2e holds end-to-end tests: a real sentinel and real Go nodes (agents and clients)
// talking over WebSocket on loopback ports. It has no non-test code beyond this file.
package e2e
