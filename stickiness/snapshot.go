package stickiness

import (
	"time"
)

// Binding is the persistent form of one table entry.
type Binding struct {
	ClientSID string        `json:"clientSid"`
	ChannelID string        `json:"channelId,omitempty"` // set for channel bindings
	Replica   string        `json:"replica"`
	TTL       time.Duration `json:"ttl"`
	Expires   time.Time     `json:"expires"`
}

// Snapshot returns every live binding, sessions first, each shard from least
// to most recently used (the order Restore needs to keep recency).
func (t *Table) Snapshot() []Binding {
	now := t.now()
	var out []Binding
	for _, k := range []kind{kindSession, kindChannel} {
		ss := t.sessions
		if k == kindChannel {
			ss = t.channels
		}
		for i := range ss.shards {
			s := &ss.shards[i]
			s.mu.Lock()
			for _, key := range s.lru.Keys() {
				b, ok := s.lru.Peek(key)
				if !ok || now >= b.exp {
					continue
				}
				bd := Binding{ClientSID: b.clientSID, Replica: b.replica.Value(), TTL: time.Duration(b.ttl), Expires: t.wall(b.exp)}
				if k == kindChannel {
					bd.ChannelID = key
				}
				out = append(out, bd)
			}
			s.mu.Unlock()
		}
	}
	return out
}

// Restore loads bindings (from Snapshot or Store.Load), skipping expired or
// incomplete ones, and returns how many it restored. A zero Expires means
// "fresh": now + TTL. Restored bindings are not written back to an attached
// store (they came from it). Later entries win over earlier ones.
func (t *Table) Restore(bs []Binding) int {
	if !t.cfg.Enabled {
		return 0
	}
	now := t.now()
	n := 0
	for _, b := range bs {
		if b.Replica == "" || b.ClientSID == "" && b.ChannelID == "" {
			continue
		}
		ttl := t.clampTTL(b.TTL)
		exp := now + ttl
		if !b.Expires.IsZero() {
			exp = int64(b.Expires.Sub(t.start))
			if exp <= now {
				continue
			}
			if exp > now+ttl {
				exp = now + ttl // a clock step must not make a binding immortal
			}
		}
		if b.ChannelID != "" {
			t.bind(kindChannel, t.channels, b.ChannelID, b.ClientSID, b.Replica, ttl, exp, false)
		} else {
			t.bind(kindSession, t.sessions, b.ClientSID, b.ClientSID, b.Replica, ttl, exp, false)
		}
		n++
	}
	return n
}
