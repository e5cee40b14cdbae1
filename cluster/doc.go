// Package cluster lets several sentinels act as one (issue #15): they agree
// on which replica every client session and channel is pinned to, forward
// envelopes to each other one hop, and know which sentinels and replicas are
// alive. The engine is NATS, embedded in the sentinel (nats-server with
// routes and JetStream) or run by the operator; this package wraps it in
// small interfaces the sentinel routes through.
//
// # Pieces
//
//   - BindingStore: session id / channel id -> {replica, sentinel, epoch}.
//     LocalStore is today's stickiness.Table (and its bbolt write-behind)
//     behind the interface: no cluster, behaviour exactly as before.
//     KVStore is the cluster's: a JetStream KV bucket replicated
//     R = min(3, cluster size) times, and a local sharded LRU kept current by
//     a watch of the bucket.
//   - Bus (NATSBus): raw envelope bytes to fame.<cluster>.s.<sentinelId>
//     (core NATS, no acknowledgement: FAME has its own), the sender in the
//     reply subject; heartbeats on fame.<cluster>.hb.<id> every Heartbeat (1 s),
//     a peer unheard for MissedBeats (3) is down, one that closes says bye.
//   - Directory: replica -> {sentinel, up/draining/down, pools}, one KV entry
//     per replica with a per-key TTL, refreshed by its sentinel; a replica
//     whose sentinel the bus reports down is down at once.
//   - KeyDirectory: kid -> {sentinel, owner's physical path, public JWK}, the
//     keys each sentinel vouches for under the signing profiles, one KV entry
//     per kid with a per-key TTL like the Directory's, each change also
//     announced on fame.<cluster>.keys (core NATS) so that it crosses while a
//     KV stream elects a leader. Watch delivers the other sentinels' keys.
//   - Pick / Next / Rank: rendezvous hashing over the live replica set, the
//     same on every sentinel with no coordination.
//   - Embedded, Connect, Open/Member: the server, the connection, and all of
//     the above opened and closed in order.
//
// # The hot path never waits on the cluster
//
// Lookup reads local memory only (one shard lock, no allocation). A new pin
// is placed by Pick over the live set, routed at once and Created in the
// background; if another sentinel created the key first the store reads
// the winner from the stream leader, installs it locally and reports it
// (Result.Won false), so both sentinels route to one replica. A re-pin is
// Next (every sentinel computes the same replica), Update(rev) in the
// background. Writes to one key run in order on one of eight workers; each
// KV request gets 250 ms, the whole write WriteTimeout, then it fails and
// the local binding stays. Measured on loopback with three embedded servers
// (2-core machine, tests running): R3 create acknowledged p50 0.3-0.6 ms,
// p99 2-4 ms; visible on another sentinel through the watch p50 0.3-0.5 ms,
// p99 1.5-4 ms. When the leader of the bucket crashes, writes on the
// survivors resume after the election while lookups go on hitting the LRU;
// a lame-duck Close moves leadership first and writes barely stall (see
// TestLeaderLoss for the figures).
//
// Bindings live BindingTTL (2 h) in the bucket after their last write; a
// lookup of one written more than BindingTTL/2 ago rewrites it in the
// background, so a binding in use never ages out, and one that does leaves a
// marker that every watch turns into a delete.
//
// # Locked
//
// The cluster is inside the trust boundary. Every route and client link of
// the embedded server is mutual TLS 1.3 with certificates chaining to the
// stack CA (TLSConfig builds it from files) and authenticated: routes with
// the cluster user and password, clients with them or with an nkey. Since
// the stack CA also issues node certificates, the certificate alone admits
// nobody: the credentials are what keeps replicas and agents out. The
// sentinel itself connects in-process. The client port listens on loopback
// by default (it exists for tools and because lame-duck mode only runs with
// a client listener).
//
// # Wired into the sentinel
//
// fame sentinel opens a Member when a cluster is configured and hands its
// Store, Bus, Directory and Keys to sentinel.WithCluster; the sentinel routes
// logical addresses over Directory.Live with Pick/Next, keeps session and
// channel bindings in the Store, forwards to peers over the Bus, shares the
// keys it vouches for through Keys and keeps a lost replica's bindings for
// Config.Grace (docs/cluster.md). Not yet wired: AFT stickiness,
// replica drain and capability routing across sentinels, and SIGTERM's
// draining heartbeat (Bus.SetDraining).
package cluster
