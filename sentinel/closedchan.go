package sentinel

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fame-go/fame/envelope"
)

// codeChannelClosed is the nack code for a request encrypted for a channel whose replica is gone.
const codeChannelClosed = envelope.CodeChannelClosed

// Bounds of the closed-channel memory: a request that was in flight when its replica died arrives
// within milliseconds, so a short memory is enough; past the cap the sentinel falls back to
// routing such requests like any other (the replica they reach drops them).
const (
	closedChannelTTL  = 30 * time.Second
	maxClosedChannels = 65536
)

// closedChannels remembers the channels purged with their replica (replicaGone), so that a
// request still encrypted for one of them is nacked at once instead of being routed to another
// replica, which has no such channel and drops it silently (the caller then waits for its
// timeout). Safe for concurrent use.
type closedChannels struct {
	n  atomic.Int64 // entries, read without the lock on the hot path
	mu sync.Mutex
	m  map[string]time.Time // cid → forget after
}

func (cc *closedChannels) add(cid string, now time.Time) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m == nil {
		cc.m = make(map[string]time.Time)
	}
	if len(cc.m) >= maxClosedChannels {
		for k, exp := range cc.m {
			if now.After(exp) {
				delete(cc.m, k)
			}
		}
		if len(cc.m) >= maxClosedChannels {
			cc.n.Store(int64(len(cc.m)))
			return
		}
	}
	cc.m[cid] = now.Add(closedChannelTTL)
	cc.n.Store(int64(len(cc.m)))
}

func (cc *closedChannels) has(cid string, now time.Time) bool {
	if cc.n.Load() == 0 {
		return false
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	exp, ok := cc.m[cid]
	if ok && now.After(exp) {
		delete(cc.m, cid)
		cc.n.Store(int64(len(cc.m)))
		ok = false
	}
	return ok
}

// channelClosed reports whether h is encrypted for a channel that was purged with its replica
// and has not been bound again since.
func (r *stickyRouter) channelClosed(h *envelope.Header) bool {
	if r.table == nil || len(h.EncKID) == 0 || !r.closed.has(string(h.EncKID), time.Now()) {
		return false
	}
	_, bound := r.table.LookupChannel(string(h.EncKID))
	return !bound
}
