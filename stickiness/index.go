package stickiness

import (
	"sync"
	"unique"
)

// replicaSet is everything bound to one replica.
type replicaSet struct {
	sessions map[string]*binding
	channels map[string]*binding
}

// index is the reverse index replica → bindings, so that losing a replica
// costs O(its bindings), not a scan of the table. Lock order: a shard lock
// may be held while taking index.mu, never the other way round.
type index struct {
	mu sync.Mutex
	m  map[unique.Handle[string]]*replicaSet
}

func newIndex() *index { return &index{m: make(map[unique.Handle[string]]*replicaSet)} }

func (ix *index) add(k kind, b *binding) {
	ix.mu.Lock()
	set := ix.m[b.replica]
	if set == nil {
		set = &replicaSet{sessions: map[string]*binding{}, channels: map[string]*binding{}}
		ix.m[b.replica] = set
	}
	set.of(k)[b.key] = b
	ix.mu.Unlock()
}

// remove forgets b, but only if the index still holds this very binding: a
// newer binding of the same key must survive the removal of an older one.
func (ix *index) remove(k kind, b *binding) {
	ix.mu.Lock()
	if set := ix.m[b.replica]; set != nil {
		m := set.of(k)
		if m[b.key] == b {
			delete(m, b.key)
			if len(set.sessions) == 0 && len(set.channels) == 0 {
				delete(ix.m, b.replica)
			}
		}
	}
	ix.mu.Unlock()
}

// take detaches and returns everything bound to replica.
func (ix *index) take(replica unique.Handle[string]) *replicaSet {
	ix.mu.Lock()
	set := ix.m[replica]
	delete(ix.m, replica)
	ix.mu.Unlock()
	return set
}

func (ix *index) counts(replica unique.Handle[string]) (sessions, channels int) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if set := ix.m[replica]; set != nil {
		return len(set.sessions), len(set.channels)
	}
	return 0, 0
}

func (ix *index) all() map[string]int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make(map[string]int, len(ix.m))
	for r, set := range ix.m {
		out[r.Value()] = len(set.sessions)
	}
	return out
}

func (s *replicaSet) of(k kind) map[string]*binding {
	if k == kindChannel {
		return s.channels
	}
	return s.sessions
}
