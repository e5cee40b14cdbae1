package balancer

import "sync/atomic"

// RoundRobin cycles through the members in the order given. The zero value is
// ready to use. It ignores the key and Load.
type RoundRobin struct {
	next atomic.Uint64
}

// Pick implements Strategy.
func (r *RoundRobin) Pick(_ string, members []Member) (string, bool) {
	if len(members) == 0 {
		return "", false
	}
	i := (r.next.Add(1) - 1) % uint64(len(members))
	return members[i].ID, true
}
