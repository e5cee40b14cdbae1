package stickiness

// ReplicaCount is how many bindings point at one replica now.
type ReplicaCount struct {
	Sessions int `json:"sessions"`
	Channels int `json:"channels"`
}

// ReplicaCounts returns the session and channel bindings of every replica that holds any, for
// the sentinel's status page. It takes the reverse index lock once, for one pass over the
// replicas (not their bindings), so a page refresh costs O(replicas).
func (t *Table) ReplicaCounts() map[string]ReplicaCount {
	ix := t.idx
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make(map[string]ReplicaCount, len(ix.m))
	for r, set := range ix.m {
		out[r.Value()] = ReplicaCount{Sessions: len(set.sessions), Channels: len(set.channels)}
	}
	return out
}
