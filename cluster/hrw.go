package cluster

import (
	"math"
	"sync"

	"github.com/fame-go/fame/balancer"
)

// HRW placement over the cluster's live replica set. It is pure rendezvous
// hashing, balancer.HRW without the load bound and with the same fixed
// hash: every sentinel that sees the same live set computes the same
// replica for a key with no coordination, which is what lets a new pin be
// routed at once while its Create is still in flight, and a re-pin after a
// replica's loss land on the same replica everywhere. (The bound of the
// single-sentinel balancer depends on each sentinel's local load, so it is
// not deterministic across sentinels.) Moving from n to n-1 live replicas
// moves only the keys of the lost one, about 1/n of them.
var pureHRW = balancer.NewHRW(math.Inf(1))

var hrwMembers = sync.Pool{New: func() any { s := make([]balancer.Member, 0, 16); return &s }}

// Pick returns the replica of live that key belongs to; false for an empty set.
func Pick(key string, live []string) (string, bool) {
	return pickExcept(key, live, "")
}

// Next returns the replica a key re-pins to when it must leave current
// (gone, draining): the highest-ranked member of live other than current.
// Every sentinel computes the same one from the same live set.
func Next(key string, live []string, current string) (string, bool) {
	return pickExcept(key, live, current)
}

func pickExcept(key string, live []string, except string) (string, bool) {
	mp := hrwMembers.Get().(*[]balancer.Member)
	ms := (*mp)[:0]
	for _, id := range live {
		if id != except && id != "" {
			ms = append(ms, balancer.Member{ID: id})
		}
	}
	id, ok := pureHRW.Pick(key, ms)
	clear(ms)
	*mp = ms[:0]
	hrwMembers.Put(mp)
	return id, ok
}

// Rank returns live ordered from the replica key belongs to down to the
// last resort (a re-pin walks it). Duplicates and empty ids are dropped.
func Rank(key string, live []string) []string {
	rest := make([]string, 0, len(live))
	seen := make(map[string]bool, len(live))
	for _, id := range live {
		if id != "" && !seen[id] {
			seen[id] = true
			rest = append(rest, id)
		}
	}
	out := make([]string, 0, len(rest))
	for len(rest) > 0 {
		top, _ := Pick(key, rest)
		out = append(out, top)
		for i, id := range rest {
			if id == top {
				rest = append(rest[:i], rest[i+1:]...)
				break
			}
		}
	}
	return out
}
