// Package wsengine is the per-connection engine the sentinel and the node SDK share: what a
// WebSocket connection does between its reader and the socket, with one implementation of
// each part.
//
//   - Queue: the send queue, bounded in envelopes and bytes (and, for the sentinel, in bytes
//     over all its connections and per sender), whose writer goroutine exists only while the
//     connection is busy and writes corked batches; a sender may write directly when the
//     writer is idle (below). The sentinel refuses on a full queue (and nacks the sender);
//     the node's senders may wait for room (WaitRoom) or for what they queued to be written
//     (Mark, WaitWritten), up to their context.
//   - Stamps: per-flow sequence numbers and the SYN of a flow's first envelope.
//   - RecvCredits: the receiver side of credit flow control (when to grant the peer more).
//   - Gate: the sender side, for a connection that honours the peer's grants (the node):
//     envelopes of a flow out of credits are held, bounded, until a grant releases them.
//   - Direct, WriteCorked, Release: the writes onto the corked socket (internal/corkconn).
//   - ReadMessage: the read of one message into a pooled buffer, taken only once the message
//     has begun (an idle connection's reader holds none).
//
// The rest of a connection (what its reader dispatches to, the attach handshake,
// heartbeats, the security checks) is the owner's: the sentinel's conn routes on the reader
// goroutine, the node's link hands envelopes to its Node.
//
// # The direct write
//
// A connection has one writer goroutine that drains its send queue in corked batches (one
// write(2) per batch, internal/corkconn). For a sequential call that goroutine is a hand-off
// per hop: the sender queues, wakes the writer, the writer writes. When the connection's
// writer is idle (nothing queued, no batch in progress, nothing left in the cork) the sender
// may write the envelope itself instead (Direct): the message is encoded into the cork and
// the cork is flushed with one non-blocking write(2). A peer whose socket buffer is full
// makes that write take less than all, or nothing: the rest stays corked (nothing reorders)
// and the caller hands it to the writer goroutine, which finishes it under the slow-consumer
// deadline like any batch. So a sender never waits on a peer's socket, and one slow peer
// never stalls another sender: what isolation the queues gave (the bounds of the sentinel's
// send queue, the slow-consumer cut) is unchanged, since everything that cannot go at once
// still goes through them.
//
// Measured with make bench-wakeups (one sequential call, client -> sentinel -> agent and
// back), the hand-offs were ten goroutine wake-ups per call: the client's writer, the
// sentinel's reader of the client, the sentinel's writer to the agent, the agent's reader,
// its handler worker, its writer, the sentinel's reader of the agent, its writer to the
// client, the client's reader, and the caller. The four writers are the ones a direct write
// removes; the readers are woken by the network, the worker runs user code (which may block,
// so it is not run on the reader), and the caller waits for its reply. The sentinel's reader
// already routes on its own goroutine (routing is cheap and never blocks: a full queue is a
// refusal, not a wait).
//
// Who may write directly is the caller's business (the sentinel's conn, the node's
// link): it must own the connection's writing for the duration of Direct, exactly as the
// writer goroutine does for a batch.
package wsengine
