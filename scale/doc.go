// Package scale holds the scale checks, behind the build tag "scale" (`make scale`, which CI
// runs at 10,000 nodes).
//
// TestIdleNodes attaches SCALE_NODES idle nodes (default 10,000) to a sentinel process: raw
// WebSocket peers, each heart-beating every SCALE_HEARTBEAT (15 s), their sockets spread over
// loopback source addresses 127.1.0.2, 127.1.0.3, … (4,000 each) so that the ephemeral port
// range is not the limit. It measures the sentinel's RSS, heap, stacks and goroutines per idle
// node, the attach rate, and the p99 of an active SDK client's calls to an SDK replica with and
// without the idle nodes; then it measures the floor — the same peers against bare
// coder/websocket connections with one reader goroutine each, in a process of their own — and
// fails when an idle node costs more than the floor + 4 KiB or more than 1.1 goroutines. Timings
// (attach rate, p99) are reported, not asserted: the machines that run it are shared.
//
// TestMillionBindings fills the binding table with a million sessions and fails past 300 MiB.
//
// The test raises its own RLIMIT_NOFILE soft limit (and fails saying so when the hard limit is
// too low: 100,000 nodes need about 102,000 descriptors per process). SCALE_PROFILE_DIR=dir keeps
// exact heap profiles of both processes there (their figures are then a little higher).
package scale
