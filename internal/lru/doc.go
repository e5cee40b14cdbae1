// Package lru is a small size-bounded least-recently-used map: LRU (not safe
// for concurrent use; the replay guard holds its own lock) and Cache (LRU
// behind a mutex, for the node's dedupe and flow-credit tables).
//
// It exists so that the node SDK (package node and the replay guard of
// package security, which every agent links) does not pull in
// hashicorp/golang-lru: an agent's dependency list stays free of the
// sentinel's binding-table libraries (see examples/math/math-agent's
// dependency test). The sentinel's stickiness table keeps golang-lru.
//
// Its semantics are those of golang-lru's simplelru (for LRU) and
// golang-lru/v2's Cache (for Cache) on the methods they share, which the
// tests check against both: Add of a present key updates it and makes it the
// newest without an eviction; Add past the size evicts the oldest; LRU's
// eviction callback runs for every removal it makes (capacity eviction and
// RemoveOldest).
package lru
