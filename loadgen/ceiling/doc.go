// Package ceiling is the yardstick for fame-go's latency work: a bare coder/websocket relay in
// the topology of a real FAME call, doing the least work a router can do, so that the sentinel
// and the node SDK can be judged as a ratio of it (`make bench-ceiling`, `make bench-compare`).
//
// Three parts, each of which parses every envelope it receives exactly once with
// json.Unmarshal into a map[string]any and otherwise only moves bytes:
//
//   - Relay (the sentinel's place): accepts one echo agent on /agent and any number of callers
//     on /client?id=NAME. A caller's envelope is forwarded verbatim to the agent; the agent's
//     reply is forwarded verbatim to the caller named by its "to" field. Each connection has one
//     reader goroutine, which writes straight into the other connection (coder/websocket's
//     Write is safe for concurrent use): no queue, no extra goroutine hop, no batching.
//   - Echo (the agent's place): answers every request envelope with a reply envelope shaped
//     like a real FAME reply (same corrId and traceId, "to" = the request's replyTo).
//   - Caller (the client SDK's place): one connection shared by any number of concurrent
//     callers, like node.Node; a reader goroutine hands each reply to the caller waiting for its
//     corrId. Caller.Call is a loadgen.CallFunc.
//
// The envelopes are as large and shaped as a real math add call (see the fame-protocol notes),
// so JSON parsing costs what it would in a router that parses into a generic map. Everything
// that makes FAME what it is — routing tables, flow control, security, acks — is absent on
// purpose: the figures are the wire's and the runtime's own limit on this machine.
package ceiling
