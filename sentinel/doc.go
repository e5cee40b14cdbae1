// Package sentinel is the FAME router. Nodes (agents and clients) attach over WebSocket at
// /fame/v1/attach/ws/downstream/<systemId>; the sentinel assigns each a physical path below its
// own, keeps the addresses they bind (exact routes and wildcard replica pools), and forwards
// every envelope by its `to` address: exact route, then pool, then physical path, otherwise a
// NO_ROUTE nack to the sender's replyTo.
//
// The forward path never builds an envelope: it reads the routing header with
// envelope.ParseHeader and writes the received bytes on with only seqId/flowFlags re-stamped,
// so signatures stay valid and the cost per envelope stays small. Each connection has one reader
// goroutine, one writer goroutine behind a bounded queue and a liveness pinger; a peer that
// cannot keep up or stops answering pings is disconnected and leaves every route and pool at
// once, so nothing is routed to a dead replica. Pools pick replicas through the stickiness
// table (channel and session pinning) and a load-balancing strategy from package balancer.
package sentinel
