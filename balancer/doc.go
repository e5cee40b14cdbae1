// Package balancer picks a pool member for a session that has no binding yet.
//
// The sentinel routes an envelope addressed to a pooled logical address
// (for example math@fame.fabric, served by the pool math@*.fame.fabric whose
// members are replica system ids) in three steps:
//
//  1. stickiness.Table.Lookup(clientSID) — an existing binding wins;
//  2. on a miss, Strategy.Pick(clientSID, members) chooses a replica;
//  3. stickiness.Table.Bind(clientSID, replica, 0) pins the session.
//
// So a Strategy only ever decides where a NEW session goes. The default, "hrw",
// is rendezvous (highest random weight) hashing keyed by the client session id
// with bounded load: every member gets a pseudo-random score for the key, the
// highest-scoring member wins unless it already carries more than
// ceil(c * average) sessions (c = 1.25), in which case the next-best member
// with room is taken. Because scores depend only on (key, member id), losing
// a member moves only the sessions whose winner it was, and every sentinel
// that sees the same member set agrees on the same owner without sharing
// state. The hash is deterministic across processes (no random seed) for
// exactly that reason.
//
// The other strategies are "round_robin" (atomic counter), "random" (power of
// two random choices on Load) and "least_connections" (minimum Load, ties
// broken by the HRW score so that the choice is still deterministic).
//
// Member.Load is maintained by the caller (sessions attached to the replica);
// strategies never mutate the slice they are given. All strategies are safe
// for concurrent use and Pick does not allocate.
package balancer
