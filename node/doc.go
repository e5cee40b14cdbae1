// Package node is the Go node SDK for a FAME fabric: it attaches to a sentinel (Go or the
// reference TypeScript one) over WebSocket, serves JSON-RPC operations under a logical address
// and calls operations served by other nodes. A Go node is a drop-in for a reference node: same
// attach handshake, binds, capability adverts, JSON-RPC conventions, end-to-end delivery acks,
// credit updates and heartbeats as the captures in the protocol notes show.
//
// Shape of a Node. Connect dials `<FAME_DIRECT_ADMISSION_URL>/<systemId>`, sends NodeAttach and
// waits for NodeAttachAck; from then on one session owns the socket with exactly three
// goroutines (reader, writer, heartbeat). The writer is the only goroutine that touches the
// socket for writing and the only one that stamps seqId/flowFlags, so per-flow numbering is
// consistent without locks. The reader never blocks on user code: requests run in their own
// goroutines and replies land in per-call mailboxes. A supervisor goroutine re-dials with
// exponential backoff (1 s doubling to 30 s) when the session dies (socket error, sentinel
// restart, or 30 s without a heartbeat ack) and re-binds and re-advertises every served
// address. Close ends everything and waits for every goroutine.
//
// Delivery. Under the at-most-once profile a call is sent once (rtype REPLY or STREAM). Under
// at-least-once (FAME_DELIVERY_PROFILE=at-least-once) requests and replies also ask for an ACK
// and are re-sent with the same envelope id until the peer acknowledges them; receivers
// acknowledge every such envelope and never run one request twice (a bounded LRU of recent
// envelope ids).
//
// Extension points kept deliberately small: Config.Outbound and Config.Inbound are hook chains
// run on every envelope sent (before stamping and encoding) and received (after decoding), for
// signing, verification and stickiness; Config.OnSecureClose receives SecureClose frames.
package node
