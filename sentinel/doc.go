// Package sentinel is the FAME router. Nodes (agents and clients) attach over WebSocket at
// /fame/v1/attach/ws/{downstream|peer}/<systemId>; the sentinel assigns each a physical path
// below its own (/<sentinelId>/<systemId>), keeps the addresses they bind (exact routes and
// wildcard replica pools participant@*.suffix) and forwards every envelope by its `to`
// address: exact route, then pool, then physical path, otherwise a NO_ROUTE nack to the
// sender's replyTo. The forward path never builds an envelope: it reads the routing header
// (envelope.ParseHeader) and writes the received bytes on with only seqId and flowFlags
// re-stamped, so signatures stay valid and an envelope costs little.
//
// # Components and who owns what
//
// The Sentinel (sentinel.go) wires the parts in New and owns every connection. The parts are
// components: each gets its dependencies at construction (logger, the metrics struct of
// counters, the small interfaces of component.go) and holds no pointer back to the Sentinel,
// so each is unit-tested with fake peers and no sockets (component_*_test.go).
//
//   - peer (component.go) is what a component sees of a connection: identity (system id,
//     path, sid, remote, origin), sendOwn for envelopes the sentinel originates (false when
//     the peer is gone or its queue refused it), close with a code and reason, and its key
//     count. ownSigner signs what the sentinel originates; refuser counts, logs and nacks a
//     refusal (the Sentinel implements it, since a nack to a replyTo is routed).
//   - routeTable (routes.go; ownership checks in ownership.go) maps system ids, sids, exact
//     addresses, pools and capabilities to peers. It depends on nothing; mu guards its maps,
//     own.bindMu makes check-and-bind atomic, own.mu guards the system-id claims.
//   - stickyRouter (sticky.go, aft_check.go, closedchan.go) picks the replica of a pool: the
//     channel's replica (sec.enc.kid, SecureOpen cid), else the session's (envelope sid), else
//     the balancer (package balancer, HRW with bounded load by default) keyed by sid, which
//     pins the session. It learns pins from replicas' AFTs and SecureAccepts, refuses foreign
//     ones, and on a replica's loss purges its bindings and sends each affected client a
//     signed SecureClose per channel. Built with the route table, the security layer (key and
//     sid ownership), a signer and a refuser; it owns the stickiness table and store and its
//     sweeper goroutine (stopped by close).
//   - secLayer (seclayer.go, seclayer_keys.go, seclayer_verify.go) is the key directory and the
//     signature check (nil, and every method a no-op, under the open and gated profiles).
//     Built with the route table (who may answer a KeyRequest{address}), the limiter
//     (MaxKeys) and a refuser. mu guards its ownership tables; sids is read without it.
//   - limiter (limits.go) holds the sentinel-wide bounds (connections, attach rate, queued
//     bytes) and counts every limit refusal; per-connection holdings live on the connection.
//   - rateLimits (ratelimit.go) applies the call rate limits (limits.rate): a token bucket per
//     caller identity (SPIFFE ID, else token or ticket subject, else system id) and per target
//     address; a request past one is nacked RATE_LIMITED with retry_after_ms in the reason.
//     nil when no limit is configured, so route pays one nil check.
//   - drainer (drain.go) runs a graceful drain (SIGTERM in `fame sentinel`, POST /admin/drain):
//     /readyz 503, attaches refused (1013), new calls nacked DRAINING, calls in flight answered,
//     then SecureClose per channel and close 1012; built with the attached-peer list, the
//     sticky router's closeAllChannels and a refuser. Serve returns when it has finished.
//   - replicaDrains (replicadrain.go) belongs to the sticky router: the replicas being drained
//     (POST /admin/replicas/{systemId}/drain, or the replica's own drain heartbeat, a
//     NodeHeartbeat whose payload is {"drain":{"request":true}}, envelope/drain.go). A draining
//     replica gets no new pins and is not picked while its pool has another member; each
//     session pinned to it moves when idle (binding removed, SecureClose per channel, the next
//     call re-pins elsewhere); the status ("draining", then "drained") rides in the payload of
//     the replica's NodeHeartbeatAcks and is pushed to it when an operator starts the drain and
//     when it ends. Its loop goroutine runs from the first drain until the router closes.
//   - conn (conn.go, serve.go) is the per-connection engine: reader, bounded send
//     queue (internal/wsengine.Queue, shared with the node SDK), on-demand writer, credits; the ping sweeper (conn.go) probes the serving ones. It implements peer, and reports its close once to its
//     owner (connOwner: Sentinel.connClosed) instead of calling into the router.
//
// Goroutines: an idle connection has one, its reader (conn.serve, started by handleAttach so
// that net/http frees the upgrade request). A writer goroutine runs only while the
// connection's bounded queue holds something: a push to an idle queue starts it, and it exits
// 250 ms after the queue drained, returning its buffers to shared pools. One sweeper
// (pingSweeper, conn.go) probes every peer that serves an address, a probe holding a
// goroutine only while it waits for its pong; a short goroutine waits for the close handshake;
// the Sentinel runs the idle sweeper. All of these are counted in Sentinel.wg, which Shutdown
// waits for. The sticky router's sweeper ends with its close.
//
// # The data path of one call
//
// A client calls math@fame.fabric, served by the pool math@*.fame.fabric:
//
//  1. sentinel.go handleAttach: the upgrade passes limiter.admitUpgrade (limits.go:
//     connection cap, attach rate per address) and the Authenticator (admission*.go), becomes
//     a conn (newConn, conn.go) and runs conn.serve on a goroutine of its own (the handler returns).
//  2. serve.go conn.serve / conn.handleAttach: the first message must be a NodeAttach within
//     AttachTimeout. It is checked (system id, credentials, the direct admission grant in
//     admission_direct.go); claimSystemID (ownership.go) settles a live holder of the id;
//     secLayer.attachKeys registers the node's keys; routeTable.attach enters the conn; the
//     NodeAttachAck is queued and the writer started.
//  3. serve.go conn.readOne: each message is read into a pooled buffer, parsed by
//     envelope.ParseHeader (a malformed one closes the connection), credited (countCredit: a
//     CreditUpdate every 24 envelopes of a flow) and handed to Sentinel.dispatch.
//  4. serve.go dispatch: secLayer.inbound (seclayer_verify.go) checks the signature and that
//     the key is the sender's own; control frames go to handleControl (route.go: mayBind,
//     bindOwned in ownership.go, the limiter's holdRoute/holdCaps); key frames addressed to
//     the sentinel to secLayer.keyFrame (seclayer_keys.go); everything else to route.
//  5. route.go route / resolve: stickyRouter.learn (sticky.go) reads AFTs and SecureAccepts
//     coming up from replicas; resolve tries routeTable.lookupExact, then lookupPool (routes.go,
//     most specific suffix first), then the physical path (resolvePath → routeTable.child).
//  6. For a pool: stickyRouter.channelClosed (closedchan.go) refuses a request still encrypted
//     for a channel lost with its replica (CHANNEL_CLOSED); stickyRouter.pick (sticky.go)
//     chooses the member: channel binding, session binding, else the balancer, which pins it.
//  7. route.go, on the chosen conn: trackPending remembers a request awaiting its reply (so the
//     replica's death nacks it), and conn.forward (conn.go) re-stamps the bytes into a pooled
//     buffer under seqMu and pushes them on its send queue (internal/wsengine.Queue). A full queue, a sender's
//     fair share or the global byte bound refuses: the sender is nacked OVERLOADED
//     (nackOverloaded, limits.go) and its reader throttled.
//  8. What a reader routes is queued without waking the destination's writer when that
//     writer is idle (enqueueForReader, wsengine.Queue.PushDeferred), and the same reader writes it
//     out itself right before its next read from its socket (the corkconn read hook,
//     flushOwed): everything one read brought for a connection goes out corked in one
//     non-blocking system call, leaving what the socket cannot take to the writer. The
//     sentinel's own envelopes (nacks, credits, cluster deliveries) are written at once by
//     their sender when the writing is idle and no burst is on (writeDirect,
//     internal/wsengine). Otherwise the conn.go writer, the only goroutine then writing the
//     socket, takes batches off the queue and writes them corked (internal/corkconn), one
//     system call per batch; a peer that takes nothing for SlowConsumerTimeout is cut.
//  9. The reply comes back on the replica's reader to __rpc__…@/<sentinel>/<client>: steps 3
//     to 5 again, resolved by path; conn.answered clears the pending entry (a stream's at its
//     final item) and the client's writer delivers it.
//
// When a connection closes (read error, liveness, idle sweep, slow consumer, take-over),
// conn.close reports to Sentinel.connClosed (sentinel.go): the conn leaves the route table,
// stickyRouter.replicaGone purges its bindings and sends SecureClose to the clients of its
// channels, secLayer.forget drops its keys, and every request still open on it is nacked
// ROUTE_CONNECTOR_CLOSED to its sender.
//
// # Identity-bound routing
//
// Routing is bound to identity in every profile (ownership.go): an address has one owner (an
// exact binder or a pool), so a bind that would shadow or take over another node's address is
// refused (BIND_CONFLICT), and binds must lie within what the node declared and what its
// credentials grant (ticket logicals, SVID logicals, and under direct admission the per-client
// grant of the access token's subject). Direct admission (an OAuth2 access token straight to the
// sentinel) takes Options.Admission.Grants / GrantsFile (FAME_ADMISSION_GRANTS / _FILE), grants in the welcome
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
// Session ownership refusals (aft_check.go) have their reason on the wire too: a refused AFT
// (AFT_FOREIGN_SID, AFT_FOREIGN_KID, AFT_FOREIGN_SESSION, AFT_INVALID), a SecureAccept for a
// channel opened towards another replica (CHANNEL_TAKEOVER; the accept is dropped), a
// KeyAnnounce outside the sender's subtree or otherwise refused (KEY_ANNOUNCE_REFUSED) and a
// foreign-signed envelope without a usable reply address (FOREIGN_SIGNING_KEY) are answered
// with a negative DeliveryAck (refId = the refused envelope) to the sender's own system inbox
// __sys__@<path>. Refusal warnings are logged at most once a second per peer and reason, with
// the count of the held-back ones; the counter sees every refusal.
//
// # Bounds
//
// Under hostile load the sentinel stays bounded and says what it refuses (limits.go): send
// queues are bounded in envelopes and bytes, per connection and in total (internal/wsengine.Queue); a full
// queue nacks the *sender* OVERLOADED and slows its reads, so a flood costs the flooder, not
// the destination or other senders. Routes, capability entries, keys and open requests per
// connection, connections, and attach attempts per address are capped; each refusal carries a
// reason on the wire, a log line naming the peer and a fame_limit_refusals_total count.
// Call rate limits, when configured, nack a request past its caller's or its target's rate
// RATE_LIMITED at once (never queued, never waited for; replies and stream items pass).
// Requests stay tracked until answered (streams until their final item), so a replica's death
// nacks them all at once. A peer that stops answering pings, or takes nothing for the
// slow-consumer timeout, is disconnected and leaves every route and pool at once. Credit
// updates are hop-local: the sentinel grants credit to senders and does not block on the
// credits its peers grant it. The operator endpoints need the admin token when one is set
// (admin.go).
//
// # Hot reload
//
// Reload (reload.go) puts new Options in force without dropping a connection: the log level
// (with WithLogLevel), the load-balancing strategy, the stickiness TTLs and capacity, most
// limits, the direct admission's grants and the trust bundle (both re-read from the files the
// options name). Each lives in its component behind an atomic pointer or the component's own
// lock, so the envelope path reads one atomic pointer and takes no new lock. A reload is all or
// nothing: invalid options are refused with every problem (*ConfigError), and a change of a
// setting a running sentinel cannot change (listen address, id, profiles, storage, timeouts,
// admin token, ...; the settings table in reload.go says which) with every such key
// (*RestartRequiredError); the old configuration stays in force either way. Load and Check are
// what `fame validate` runs, so a file that validates is one a reload accepts, but for the
// restart-only keys. The package installs no signal handler and watches no file: `fame
// sentinel` reloads on SIGHUP and on file change (cmd/fame/reload.go).
// # Tracing
//
// With WithTracer (package tracing; cmd/fame sets it up from the `tracing:` block or
// OTEL_EXPORTER_OTLP_ENDPOINT) the sentinel records a span per routed envelope
// (fame.sentinel.route: env.id, env.trace_id, env.to, the chosen replica, whether a
// stickiness binding chose it, the outcome), per attach and per re-pin of a lost replica's
// sessions. The route span's parent is the sender's meta.traceparent; the sentinel never
// writes trace context into what it forwards (overlay signatures and the bytes stay intact),
// so its span id is derived from the sender's span and the envelope id, which a Go node that
// read fame-trace-hop in its NodeAttachAck meta uses as its serve span's parent. A
// traceparent that is oversize, malformed or not a plain string is ignored (counted in
// fame_trace_context_ignored_total{reason}) and the envelope routed unchanged. Without a
// tracer, route checks one pointer and allocates nothing for tracing.
//
// # /stats
//
// GET /stats (admin token when set) returns one JSON object; every field name is camelCase
// (stats_test.go holds the list):
//
//   - id, path: the sentinel's system id and physical path; routingEpoch: changes with every
//     start (NodeHeartbeatAck carries it).
//   - peers[]: one per attached connection: systemId, path, remote (address:port), attachedAt
//     (RFC 3339), received and sent (envelopes), queued and queuedBytes (its send queue,
//     including the batch being written), pending (requests routed to it awaiting a reply),
//     stickySessions (client sessions pinned to it).
//   - routes: children (attached nodes), exact (address → system id), pools (pool address →
//     member system ids), capabilities (capability → advertised addresses).
//   - stickiness: size and channels (session and channel bindings now); hits, misses,
//     channelHits, channelMisses (lookups); evictions (LRU bound), expired (idle TTL), repins
//     (sessions bound to another replica than before), purgedSessions and purgedChannels
//     (removed with a lost replica); aftVerified, aftNoClientSid (verified, nothing to bind),
//     aftRefused (reason → count); storeDropped (changes the persistence queue could not
//     take); store: dropped, failed (lost to a failed commit), corrupt (files set aside),
//     deletedExpired, deletedBad (undecodable), deletedMembers (departed replicas). All
//     counters count from the start of the process; all are 0 with stickiness off.
//
// # The status page: GET /admin/ and /admin/status.json
//
// GET /admin/ (statuspage.go, statuspage.html) is a read-only HTML page for operators, rendered
// on the server from the same struct that GET /admin/status.json returns: no script, a
// <meta refresh> every 5 s, one inline style allowed by its hash, and a Content-Security-Policy
// that allows nothing else (no script, image, frame or connection; forms post only to the page
// itself; frame-ancestors 'none'). Every string on it is escaped by html/template: system ids,
// addresses and refusal reasons come from peers. With an admin token set it needs either
// Authorization: Bearer <token> (curl) or the session cookie of its login form (POST
// /admin/login with the token; the cookie is HttpOnly, SameSite=Strict, Path=/admin/, Secure
// over TLS, lasts 12 h, and holds an expiry and nonce MACed with a key derived from the token,
// never the token: changing the token ends every session). No credentials: 401 and the login
// form only; a wrong token: 403; both counted as fame_limit_refusals_total{reason="admin_token"}.
// The cookie opens only these two GETs, never /stats, /metrics or POST /admin/drain. POST
// /admin/logout clears it. Without an admin token the page is open, like /stats, and says so.
//
// status.json fields (camelCase, statuspage_test.go holds the list): id, path, routingEpoch,
// generatedAt, securityProfile, admissionProfile, loadBalancing, stickiness (on/off), draining,
// open (no admin token); peers[]: systemId, path, remote, origin, identity (the admitted subject,
// "" under open admission), profile (the admission profile), role (replica: member of a pool;
// agent: holds an exact address; client), logicals, attachedAt, queued, queuedBytes, pending,
// stickySessions, stickyChannels; pools[]: address (participant@*.suffix) and replicas[]:
// systemId, stickySessions, stickyChannels; sessions, channels (bindings now), repins,
// purgedSessions, purgedChannels (since start); refusals[]: the most recent refusals, newest
// first: time, peer, remote, code (the counter's reason label; attach refusals attach_<reason>),
// reason, count (repeats of the same refusal in a row); refusalsTotal (since start),
// refusalsKept (64). The refusals are kept in a fixed ring (refusalring.go) fed where the
// refusal counters are incremented (limits, security, drain, attach), one short critical
// section with no allocation per refusal, none on the forwarding path.
//   - replicaDrains[]: one per attached replica being drained or drained: systemId, state
//     (draining, drained), by (admin, self), result (idle, timeout; once drained),
//     pinnedSessions, inFlight (requests routed to it awaiting their reply), moved (sessions
//     moved off it), lastOfPools (pools it leaves empty), startedAt.
package sentinel
