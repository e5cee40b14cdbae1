// Package connengine is the per-connection engine shared by the sentinel (package sentinel,
// one engine per attached peer) and the node SDK (package node, one per link to its
// sentinel): what moves envelopes over one WebSocket, apart from what they mean.
//
//   - Queue: the bounded send queue (envelopes and bytes per connection, a byte bound shared
//     by every queue of a process, and a sender's fair share), with a writer goroutine that
//     exists only while there is something to write and exits WriterLinger after the queue
//     drained. An idle connection holds no ring, no buffer and no writer goroutine.
//   - Engine: a Queue and the socket. Send writes an envelope directly from the sender's
//     goroutine when the connection's writer is idle and the socket takes it without waiting
//     (corkconn.TryUncork never waits for the peer); otherwise the envelope is queued and the
//     writer sends it in a corked batch (one system call for up to MaxBatch envelopes) under
//     the slow-consumer deadline. A slow peer therefore never holds up its sender: a sender
//     either finishes at once or hands over to the writer. Saving the writer's wake-up on an
//     idle connection is the point: it is two goroutine wake-ups per hop of a call.
//   - Stamper: per-flow seqId/flowFlags numbering, bounded in flows.
//   - RecvCredits: the receiver side of credit flow control (fame-protocol §5.5): a fresh
//     window of CreditWindow after CreditWindow-CreditLowWater envelopes of a flow.
//
// The constants of the connector (CreditWindow, MaxBatch, ...) live here and only here.
//
// The engine decodes nothing: its callers hand it encoded envelopes and read their own.
package connengine
