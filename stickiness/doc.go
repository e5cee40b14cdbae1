// Package stickiness keeps every client session of a replicated service on
// the replica that holds its end-to-end channel keys, and moves it — loudly —
// when that replica goes away.
//
// # Where it sits
//
// The sentinel calls it on its hot path for every envelope addressed to a
// pooled logical address (math@fame.fabric served by pool math@*.fame.fabric,
// whose members are replica system ids):
//
//  1. Table.Lookup(envelope.sid) — the client's session binding, if any and
//     if the replica is still a pool member, decides (LookupChannel(cid) is
//     there for traffic routed by channel id);
//  2. on a miss, balancer.Strategy.Pick(sid, members) chooses a replica
//     (Load = Table.SessionsOn(member)) and Table.Bind(sid, replica, 0) pins
//     the session;
//  3. replies from replicas go through ExtractAFT(meta) and Table.LearnAFT,
//     which verifies the replica's Affinity Tag at the configured Level and
//     pins the token's client_sid to the replica the reply came from; the
//     sentinel also calls BindChannel when it sees SecureOpen/SecureAccept;
//  4. when a replica detaches, misses heartbeats or its socket closes, the
//     sentinel removes it from its pools and calls Table.PurgeReplica, then
//     sends SecureClose{cid} to each client for each lost channel, so the
//     next envelope of those sessions is load-balanced to a live replica and
//     the client re-opens its channel there.
//
// # Bindings
//
// Session bindings (client sid → replica) and channel bindings (channel id →
// client sid, replica) are kept in two LRUs (hashicorp/golang-lru/v2
// simplelru), each bounded by Config.CacheMax and split into independently
// locked shards when large, plus a reverse index replica → bindings that the
// LRU eviction callback keeps exact, so PurgeReplica costs O(bindings of that
// replica). Lookup takes one shard lock and does not allocate.
//
// TTL: a binding lives while it is used. Each has an idle TTL (DefaultTTL,
// 1 h by default, capped by MaxTTL, 2 h); every Lookup hit slides the expiry
// to now+TTL. Idle bindings expire lazily on Lookup or via Sweep. The
// reference's 30 s default_ttl_sec is only advertised in Negotiate (as
// AdvertisedTTL); a 30 s idle TTL would break any client that pauses.
//
// # AFT tokens
//
// Minting and verifying the tokens is package security/aft, a leaf the node
// SDK imports without linking this package's bbolt and golang-lru; the table
// calls aft.Verify at its configured aft.Level and counts refusals by
// aft.Reason. Table.LearnAFTConfirmed lets the caller decide on the
// verified claims before anything is bound. Negotiate answers a replica's stickiness offer in
// NodeAttachAck.
//
// # Persistence
//
// A Store (bbolt) attached to the Table receives every bind/unbind through a
// bounded queue drained by one goroutine in batches (every 100 ms or 1000
// changes); a full queue drops and counts, the hot path never blocks or
// touches the disk.
//
// Opening reads the whole file once, where damage can still be answered:
// plain reads check the meta pages, the B+trees (every page in range, typed,
// referenced once, every element inside its page) and the freelist before
// bbolt maps the file, because bbolt trusts its pages and loops, panics or
// faults on a damaged one; then every key is walked (faults turned into
// panics, panics into ErrCorruptStore) and the file is cleaned: expired
// records, undecodable ones (after a copy of the file is kept as
// <path>.corrupt-<UTC time>) and memberships of replicas no live binding
// names are deleted. With StoreOptions.RecoverCorrupt a corrupt file is
// renamed to <path>.corrupt-<UTC time>, logged and counted, and a fresh store
// is opened; a file locked by another process (ErrStoreLocked) or one we may
// not open is an error, never moved.
//
// Records leave the file when the table drops their binding (expiry, Sweep,
// LRU eviction, unbind, PurgeReplica, which also forgets the replica's pool
// memberships); a periodic disk sweep deletes the ones whose delete was lost
// (full queue, failed commit), waiting TTL/2 past the stored expiry because
// a slid expiry is re-persisted only once it lags by that much. So the record
// count stays bounded by the table's and the file by bbolt's page reuse.
//
// The sentinel opens the store with RecoverCorrupt, then Table.RestoreFrom
// (attach, Load, Restore), so LRU evictions while restoring reach the file.
package stickiness
