package stickiness

import (
	"sort"
	"unique"
)

// ReplicaBindings lists what is bound to replica, grouped by client session, without
// removing anything (a replica drain moves the sessions one at a time, each when it is idle).
// A client appears once, with the channel ids it holds on replica sorted; Session says
// whether its session binding (not only channels) points at replica. Cost is O(bindings of
// replica), under the reverse index's lock only.
func (t *Table) ReplicaBindings(replica string) []ReplicaClient {
	t.idx.mu.Lock()
	set := t.idx.m[unique.Make(replica)]
	var out []ReplicaClient
	if set != nil {
		pos := make(map[string]int, len(set.sessions)+len(set.channels))
		at := func(sid string) *ReplicaClient {
			i, ok := pos[sid]
			if !ok {
				i = len(out)
				pos[sid] = i
				out = append(out, ReplicaClient{ClientSID: sid})
			}
			return &out[i]
		}
		for _, b := range set.sessions {
			at(b.clientSID).Session = true
		}
		for _, b := range set.channels {
			c := at(b.clientSID)
			c.ChannelIDs = append(c.ChannelIDs, b.key)
		}
	}
	t.idx.mu.Unlock()
	for i := range out {
		sort.Strings(out[i].ChannelIDs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientSID < out[j].ClientSID })
	return out
}

// ReplicaClient is one client session's bindings on a replica (ReplicaBindings).
type ReplicaClient struct {
	ClientSID  string
	Session    bool     // the session itself is pinned to the replica
	ChannelIDs []string // channels of this session held by the replica
}

// UnbindIf removes the session binding of clientSID only while it still points at replica,
// and reports whether it did: a session that was re-pinned elsewhere meanwhile keeps its
// new binding.
func (t *Table) UnbindIf(clientSID, replica string) bool {
	return t.unbindIf(t.sessions, clientSID, replica)
}

// UnbindChannelIf removes the binding of channel cid only while it still points at replica.
func (t *Table) UnbindChannelIf(cid, replica string) bool {
	return t.unbindIf(t.channels, cid, replica)
}

func (t *Table) unbindIf(ss *shardSet, key, replica string) bool {
	if key == "" {
		return false
	}
	h := unique.Make(replica)
	s := ss.shardFor(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.lru.Peek(key)
	if !ok || b.replica != h {
		return false
	}
	s.removeLocked(key)
	return true
}
