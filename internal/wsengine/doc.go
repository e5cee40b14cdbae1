// Package wsengine is what the sentinel's and the node SDK's per-connection engines share:
// the constants of credit flow control and write batching, and the direct write that lets a
// sender skip the writer goroutine.
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
// Who may write directly is the caller's business (the sentinel's sendQueue, the node's
// link): it must own the connection's writing for the duration of Direct, exactly as the
// writer goroutine does for a batch.
package wsengine
