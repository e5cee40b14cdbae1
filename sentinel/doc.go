// Package sentinel is the FAME router. Nodes (agents and clients) attach over WebSocket at
// /fame/v1/attach/ws/downstream/<systemId>; the sentinel assigns each a physical path below its
// own, keeps the addresses they bind (exact routes and wildcard replica pools), and forwards
// every envelope by its `to` address: exact route, then pool, then physical path, otherwise a
// NO_ROUTE nack to the sender's replyTo.
//
// The forward path never builds an envelope: it reads the routing header with
// envelope.ParseHeader and writes the received bytes on with only seqId/flowFlags re-stamped,
// so signatures stay valid and the cost per envelope stays small. Each connection has one reader
// goroutine; a writer goroutine runs only while its bounded queue holds something, and one
// sweeper pings every peer that serves an address; a peer that stops answering pings, or takes nothing for the slow-consumer timeout, is disconnected and
// leaves every route and pool at once, so nothing is routed to a dead replica. Pools pick
// replicas through the stickiness table (channel and session pinning) and a load-balancing
// strategy from package balancer.
//
// Routing is bound to identity in every profile (ownership.go): an address has one owner (an
// exact binder or a pool), so a bind that would shadow or take over another node's address is
// refused (BIND_CONFLICT), and binds must lie within what the node declared and what its
// credentials grant (ticket logicals, SVID logicals, and under direct admission the per-client
// grant of the access token's subject). Direct admission (an OAuth2 access token straight to the
// sentinel) reads FAME_ADMISSION_GRANTS / FAME_ADMISSION_GRANTS_FILE, grants in the welcome
// service's syntax ("sub=<client> system_ids=<id|prefix*|*>[,…] [logicals=<pattern>[,…]]",
// separated by ";" or new lines): the token's sub (else client_id) must have a grant
// (NO_ADMISSION_GRANT), the system id must match it (SYSTEM_ID_NOT_GRANTED), the declared
// logicals must lie within it (LOGICAL_NOT_GRANTED; the wildcard "*" a plain client declares
// claims nothing), and so must every bind (UNAUTHORIZED). Without grants any valid token may
// attach with any system id, and the sentinel warns so at start. A live system id is kept by its holder
// unless the newcomer proves it is the owner (NodeAttach signed by the key registered for the
// path: the same process; a certificate for the same SPIFFE ID is no proof, a shared replica
// credential can obtain one) or the holder fails a 3 s liveness probe, where any frame the
// holder sends during the probe counts as alive (SYSTEM_ID_IN_USE otherwise, without the
// holder's address). Claims for one id are serialised (a second waits for the first's
// decision, up to 4 s, rather than being refused), and a holder that proved alive is not
// probed again for 1 s (claims in that second are refused at once). System ids are one
// allow-list for the sentinel and the welcome service (envelope.ValidSystemID:
// [A-Za-z0-9_.-], at most 128 bytes, not "." or ".."; INVALID_SYSTEM_ID otherwise). Binds are
// checked against the SVID's logicals under strict-overlay, and a certificate without logicals
// grants no logical bind. A pool may not be joined inside the domain of a wider live pool of
// other nodes (BIND_CONFLICT); a pool join is not refused because another node bound an exact
// address in its domain first (that node keeps its address; nothing is diverted from the
// pool). A capability is advertised only for an address the node owns: its exact binding,
// participant@S or participant@<system id>.S of a pool *.S it is a member of (as the reference
// agents advertise), or an address under its own path (UNAUTHORIZED, or BIND_CONFLICT when
// another node bound it); one node's entry never replaces another's.
// An envelope must be signed by a key of the sending connection's subtree
// (FOREIGN_SIGNING_KEY), and an AFT re-pins only a session that was routed to the replica
// carrying it. Every refusal is counted in fame_security_refusals_total{reason}.
//
// Under hostile load the sentinel stays bounded and says what it refuses (limits.go): send
// queues are bounded in envelopes and bytes, per connection and in total (queue.go); a full
// queue nacks the *sender* OVERLOADED and slows its reads, so a flood costs the flooder, not the
// destination or other senders. Routes, capability entries, keys and open requests per
// connection, connections, and attach attempts per address are capped; each refusal carries a
// reason on the wire, a log line naming the peer and a fame_limit_refusals_total count. Requests
// stay tracked until answered (streams until their final item), so a replica's death nacks them
// all at once. The operator endpoints need the admin token when one is set (admin.go).
//
// Session ownership refusals (aft_check.go) have their reason on the wire too: a refused AFT
// (AFT_FOREIGN_SID, AFT_FOREIGN_KID, AFT_FOREIGN_SESSION, AFT_INVALID), a SecureAccept for a
// channel opened towards another replica (CHANNEL_TAKEOVER; the accept is dropped), a
// KeyAnnounce outside the sender's subtree or otherwise refused (KEY_ANNOUNCE_REFUSED) and a
// foreign-signed envelope without a usable reply address (FOREIGN_SIGNING_KEY) are answered
// with a negative DeliveryAck (refId = the refused envelope) to the sender's own system inbox
// __sys__@<path>. Refusal warnings are logged at most once a second per peer and reason, with
// the count of the held-back ones; the counter sees every refusal.
package sentinel
