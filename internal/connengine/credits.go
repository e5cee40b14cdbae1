package connengine

// RecvCredits is the receiver side of credit flow control: it counts the envelopes of each
// flow (CreditUpdates excepted, the caller skips them) and says when to grant the sender a
// fresh window. The first flow is counted inline and further ones in a map, so that a peer
// using one flow (an idle node's heartbeats) costs no map. Not safe for concurrent use: the
// reader goroutine owns it.
//
// At MaxFlows the map is cleared. A sender may then be part-way through a window the
// receiver no longer remembers; so that it never waits for a grant that would not come, every
// flow met after a clear is granted a window at once (a grant too many costs the sender
// nothing but a window in hand).
type RecvCredits struct {
	first     string
	firstLeft int
	m         map[string]int
	forgot    bool // the map was cleared once: unknown flows may be part-way through a window
}

// Count records one envelope of flow and reports whether to send CreditUpdate{flow,
// CreditWindow} now. An empty flow is not counted.
func (r *RecvCredits) Count(flow []byte) bool {
	if len(flow) == 0 {
		return false
	}
	var n int
	inline := r.first == string(flow)
	switch {
	case inline:
		n = r.firstLeft
	case r.first == "":
		r.first, inline, n = string(flow), true, CreditWindow
	default:
		var ok bool
		if n, ok = r.m[string(flow)]; !ok {
			if r.m == nil {
				r.m = make(map[string]int, 1)
			} else if len(r.m) >= MaxFlows {
				clear(r.m)
				r.forgot = true
			}
			n = CreditWindow
			if r.forgot {
				n = CreditLowWater + 1 // grant at once (below)
			}
		}
	}
	n--
	grant := n <= CreditLowWater
	if grant {
		n = CreditWindow
	}
	if inline {
		r.firstLeft = n
	} else {
		r.m[string(flow)] = n
	}
	return grant
}

// Flows is how many flows are counted in the map (the first one excepted).
func (r *RecvCredits) Flows() int { return len(r.m) }
