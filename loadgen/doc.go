// Package loadgen drives request/reply load at a FAME address and measures it: the engine
// behind `fame bench` and `make bench-compare`.
//
// Two load models. Closed loop: N callers, each issuing its next call as soon as the previous
// one returns, which measures the best throughput the system sustains at that concurrency.
// Open loop: a fixed total rate; call i is due at start+i/rate whether or not earlier calls
// have returned, and its latency is measured from that due time, not from when a caller got
// round to sending it. A stalled server therefore shows up as growing latency instead of
// silently lowering the offered load (the "coordinated omission" blind spot of closed-loop
// tools). Open loop still bounds in-flight calls by the caller count so a dead server cannot
// make the generator spawn goroutines without limit; late calls are sent at once and their
// lateness is part of their latency.
//
// Both models share a warm-up (calls due before it ends are made but not recorded) and a
// measurement window. Latencies go into Histogram, a fixed-size log-linear histogram with at
// most 0.4% relative error per recorded value, one per caller, merged at the end so the hot
// path takes no lock. Errors are counted by kind (timeout, nack code, remote error code,
// closed) via Classify.
//
// Options.CPU adds a cost figure that the machine's other load moves less than latency: the
// CPU time (utime + stime from /proc/<pid>/stat) each named process used over the measured
// window, divided by the successful calls (`fame bench -cpu sentinel=PID,agent=PID`).
//
// The engine (Run) only sees a CallFunc, so it is tested without a network; NodeTarget builds
// a CallFunc from node SDK connections to a sentinel. Subpackage ceiling is the yardstick:
// a bare coder/websocket relay in the topology of a real call (`fame bench-ceiling`).
package loadgen
