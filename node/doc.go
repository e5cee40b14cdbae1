// Package node is the Go node SDK for a FAME fabric: it attaches to a sentinel (Go or the
// reference TypeScript one) over WebSocket, serves JSON-RPC operations under a logical address
// and calls operations served by other nodes. A Go node is a drop-in for a reference node: same
// attach handshake, binds, capability adverts, JSON-RPC conventions, end-to-end delivery acks,
// credit updates and heartbeats as the captures in the protocol notes show.
//
// Configuration. Config carries every setting; the package reads no environment variable.
// config.Node (package config) fills a Config from the FAME_* variables a reference node
// reads, the names listed in README's variable table.
//
// Admission (FAME_ADMISSION_PROFILE; package node/admit). config.Node leaves the
// admission to Connect (Config.AdmissionSettings), which builds it once the program has set RequestedLogicals: none
// and open attach to FAME_DIRECT_ADMISSION_URL without a token; direct adds an OAuth2
// client-credentials access token (and without FAME_ADMISSION_TOKEN_URL means none, as
// before); welcome POSTs a NodeHello and attaches with the grant's URL, attach ticket and
// accepted logicals, under the system and instance id the ticket is bound to. Tokens and
// tickets are renewed at 2/3 of their life and dropped after the sentinel refuses them
// (negative NodeAttachAck or close 1008), so the next reconnect presents fresh ones. The
// WebSocket handshake uses the admission's HTTP client, which trusts FAME_CA_CERTS (wss://
// with the dev CA). Under strict-overlay the node also obtains a certificate for its
// signing key from the welcome's CA grant before attaching, sends the chain as the JWK's
// x5c, renews it at 2/3 of its life and re-announces its keys (signed KeyAnnounce) on the
// open connection, so the sentinel never verifies under an expired certificate. The
// certificate names the sid of the grant's assigned path, so it follows the grant: a dial
// to a sentinel that cannot be reached drops the grant (the next hello may place the node
// on another sentinel of a cluster, tried at once), and before every NodeAttach a
// certificate for the grant's path is obtained when the held one names another; the key
// pair and kid stay. A renewal whose grant names another path re-attaches there.
//
// Shape of a Node. Words: a "session" in FAME is a client's sid (what stickiness pins); the
// lifetime of one WebSocket to the sentinel is a link (link.go). Connect dials
// `<attach URL>/<systemId>`, sends NodeAttach and waits for NodeAttachAck; from then on one
// link owns the socket with one goroutine (its reader), a writer only while it has
// something queued to write, a timer for its heartbeats, plus the key-request loop on
// secured nodes. Ownership is one way:
//
//   - The Node owns identity and policy: admission and credentials, the NodeAttach it sends
//     and the attachment it reads back (paths, sid, inboxes), keys, signatures, replay and
//     channel state, served addresses, pending calls and the handler pool. It builds each
//     link with linkDeps (config values, the inbound hooks, a seal function that runs the
//     outbound hooks and signs what the link originates, deliver for inbound envelopes, lost
//     for its failure, and the per-link loops to run). It drives the link only through
//     send, post, flush, done/alive, heartbeatAcked and shutdown; the attachment fields on
//     the link (paths, sid, inboxes, epoch, key waits) are the Node's, set before start.
//   - A link owns the socket and the engine that moves envelopes, the one the sentinel's
//     connections use too (internal/wsengine): the send queue bounded in envelopes and bytes,
//     the corked on-demand writer, per-flow stamping, both sides of credit flow control
//     (CreditUpdates never leave it) and the heartbeat. It holds no pointer to the Node: it reports inbound envelopes to deliver
//     and its failure to lost, once (not when the Node shuts it down).
//
// A sender stamps seqId/flowFlags and encodes its envelope under the link's smu, which it
// holds until the envelope is queued, held by the credit gate, or written: by the sender
// itself when the link's writing is idle (internal/wsengine's direct write; what the socket
// cannot take at once is left to the writer), else by the writer goroutine in a corked batch.
// So a flow's wire order is its seqId order. A full queue (Config.SendQueue envelopes, 64 MiB)
// makes send wait for room up to its context; the reader's posts are refused instead, and
// logged. The reader
// never blocks on user code: requests run in their own goroutines and replies land in
// per-call mailboxes. A supervisor goroutine re-dials with exponential backoff (1 s doubling
// to 30 s) when the link dies (socket error, sentinel restart, or 30 s without a heartbeat
// ack) and re-binds and re-advertises every served address. Close ends everything and waits
// for every goroutine.
//
// Delivery. Under the at-most-once profile a call is sent once (rtype REPLY or STREAM). Under
// at-least-once (FAME_DELIVERY_PROFILE=at-least-once) requests and replies also ask for an ACK
// and are re-sent with the same envelope id until the peer acknowledges them; receivers
// acknowledge every such envelope and never run one request twice (a bounded LRU of recent
// envelope ids). An at-least-once call nacked ROUTE_CONNECTOR_CLOSED, CHILD_UNREACHABLE or
// PEER_UNREACHABLE is re-sent after the back-off; one nacked DRAINING (its own sentinel is
// draining) is re-sent once the node has attached elsewhere, or after the back-off, when
// Config.AttachURL chooses the sentinel before every dial; with a fixed URL it fails with the
// nack at once.
//
// Re-sent requests. A node keeps the replies of the requests it ran (Config.ReplyCacheSize,
// 4096 requests; ReplyCacheBytes, 4 MiB; ReplyCacheTTL, 2 min; an LRU), so that a re-send of
// a request whose reply was lost (the caller's sentinel died with it, or the caller moved to
// another sentinel) gets the reply again, at the re-send's replyTo with its corrId, instead of
// only an ack: the handler still runs once per envelope id. The copies keep the original
// reply envelope ids, so a caller that did get the original drops them as duplicates. A
// stream's items and its end are kept and sent again together. A re-send that arrives while
// the request runs is acknowledged and answered when it completes (the latest four such
// replyTos per request). Only the original sender's re-send is answered (the same signing
// key under the signing profiles; the sid of an unsigned one; on open nodes the envelope id is
// the only check). A copy goes over the secure channel the re-send came on, or in plaintext
// when that channel has closed, as a handler's reply does after a SecureClose. A request whose
// replies came to more than ReplyCacheBytes/16, or that the cache forgot, gets a
// REPLY_NOT_KEPT nack rather than silence. The reference runtime acknowledges a re-send and
// forgets a request's id once handled, so it runs a later re-send again (deduplication is the
// agent's job there) and replies anew; to its callers a re-sent reply from here is an
// ordinary reply with their corrId.
//
// Flow control. Both sides of the connector's credits (fame-protocol §5.5): the reader grants
// the sender a fresh window of 32 after every 24 envelopes of a flow, and a sender spends one
// credit per envelope it sends on a flow; at zero the link's gate holds that flow's envelopes
// in a FIFO until a CreditUpdate arrives, which the reader applies by queueing them (other
// flows keep going; the reader never blocks; when the held envelopes reach their bound, 4096
// or 64 MiB, senders wait on their context). Without this a Go node floods the reference TS sentinel and
// stalls around 40 concurrent calls.
//
// Security (FAME_SECURITY_PROFILE=overlay or strict-overlay). The node makes an ephemeral
// Ed25519 signing key and X25519 encryption key, sends both JWKs in NodeAttach.keys and
// stores the sentinel's from NodeAttachAck.keys. It signs every envelope it originates after
// NodeAttach (CreditUpdates, hop-local and without sid, excepted) and verifies everything it
// receives except NodeAttachAck, NodeHeartbeatAck and CreditUpdate: unsigned envelopes that
// must be signed and bad signatures are dropped, requests answered with a
// signature_required / signature_verification_failed nack. An envelope signed with an
// unknown kid waits while KeyRequest{kid, physicalPath} goes to the sentinel (re-sent every
// KeyRequestTimeout, KeyRequestAttempts times); then it is dropped and a call waiting for it
// fails with ErrUnknownKey instead of hanging. Replayed envelope ids are refused, and so is
// any envelope whose ts is outside the replay window (Config.ReplayWindow, 10 min, and
// ReplayFutureSkew, 1 min) or older than the ids the bounded guard had to forget
// (ReplayCacheSize, 65536); at-least-once re-sends are re-acknowledged (and answered from the reply cache) instead. The ts is not
// covered by the reference's signature, so the window stops byte-for-byte replays; a replayer
// who also rewrites ts is stopped only while the id is remembered.
//
// Keys. KeyAnnounce is stored only after its signature verifies: from the sentinel (the key
// directory, answering our KeyRequests) for any path, from any other node only for its own
// path or below it; a kid already stored under another path is never re-assigned by an
// announce (but an envelope its sentinel let through whose sid no longer matches the kid's
// stored path, its owner having moved to another sentinel of a cluster, drops the stored key
// and asks the sentinel again, once per envelope); under
// strict-overlay every signing key needs an x5c chaining to Config.Trust (FAME_CA_CERTS,
// required there) with the sid of its path, and a node's own announce must be signed by such
// a certified key. NodeHeartbeatAck is accepted only from the sentinel (no "to", its sid, its
// signature when signed). Refusals are logged with the peer, counted (Node.Refusals, and
// fame_node_refusals_total{reason} when Config.Registerer is set) and, where a request can be
// answered, nacked (KEY_ANNOUNCE_REFUSED to the announcer).
//
// Bounds. At most Config.MaxHandlers (1024) requests run at once, HandlerQueue (1024) more
// wait, and the next is refused with an OVERLOADED nack. At most MaxPending (65536) calls,
// streams and acknowledged replies are tracked; past that a call fails at once with
// ErrTooManyPending. A sentinel nack for an open call or stream ends it with a *NackError at
// once. Secure channels idle for ChannelIdleTimeout (10 min) are dropped (those this node
// opened with a SecureClose), and Close sends SecureClose for every channel it opened.
//
// Channel encryption (strict-overlay, or EncryptionLevel channel). A call opens one channel
// per destination address (SecureOpen, signed; SecureAccept back) and encrypts Data with it
// after signing; a request that came over a channel is answered over it. A pool replica
// whose sentinel enabled AFT stickiness attaches meta.set.aft (client_sid = opener's sid,
// scope node) to its SecureAccept. SecureClose (from the sentinel when a replica left, or
// from a peer answering a cid it does not know, which this node does instead of delivering
// ciphertext) drops the channel; a call in flight on it is re-sent once over a new channel.
// Channels are replaced when Config.Channel limits are reached. Sealed encryption is only
// decrypted on receipt; sending at level sealed uses a channel.
//
// Replica drain (drain.go). Drain asks the sentinel to move this node's sessions to the other
// replicas of its pools (a NodeHeartbeat with a drain payload, which a reference sentinel
// acknowledges as a plain heartbeat: then ErrDrainUnsupported), keeps serving, and returns
// once the sentinel reports the node drained; DrainRequested is closed when the sentinel
// reports a drain an operator started. math-agent drains on SIGTERM. A reply that arrives on
// a channel a SecureClose took from under its call (the call was re-sent over a new channel)
// is dropped instead of failing the call.
// Tracing (Config.Tracer, package tracing; nil is off). A call records a client span and
// sends its W3C trace context as meta.traceparent (and tracestate) on the request and every
// re-send; a served request records a server span, a child of the caller's span or, when the
// sentinel's NodeAttachAck announced route spans (meta fame-trace-hop), of the sentinel's
// route span, and hands its context to the operation; replies carry the serve span's
// context. Without a traceparent the span joins the trace the reference derives from the
// envelope traceId. A bad traceparent is ignored, never refused. With no tracer the call and
// serve paths check one pointer and allocate nothing for tracing.
//
// Extension points kept deliberately small: Config.Outbound and Config.Inbound are hook chains
// run on every envelope sent (before stamping and encoding) and received (after decoding), for
// signing, verification and stickiness; Config.OnSecureClose receives SecureClose frames.
package node
