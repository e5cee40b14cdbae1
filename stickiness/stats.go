package stickiness

import "github.com/fame-go/fame/security/aft"

// Stats is a point-in-time view of the table's counters (all monotonic
// except Size and Channels). The json names are those of the sentinel's
// /stats "stickiness" object (documented in sentinel/doc.go).
type Stats struct {
	Size           int                   `json:"size"`     // session bindings
	Channels       int                   `json:"channels"` // channel bindings
	Hits           uint64                `json:"hits"`
	Misses         uint64                `json:"misses"`
	ChannelHits    uint64                `json:"channelHits"`
	ChannelMisses  uint64                `json:"channelMisses"`
	Evictions      uint64                `json:"evictions"`      // dropped by the LRU bound (sessions + channels)
	Expired        uint64                `json:"expired"`        // dropped because idle past their TTL
	Repins         uint64                `json:"repins"`         // sessions bound to a different replica than before
	PurgedSessions uint64                `json:"purgedSessions"` // removed by PurgeReplica
	PurgedChannels uint64                `json:"purgedChannels"`
	AFTVerified    uint64                `json:"aftVerified"`
	AFTNoClientSID uint64                `json:"aftNoClientSid"` // verified but carrying no client_sid (nothing to bind)
	AFTRefused     map[aft.Reason]uint64 `json:"aftRefused"`
	StoreDropped   uint64                `json:"storeDropped"` // changes the store queue could not take
	Store          StoreStats            `json:"store"`
}

// Stats collects the counters; it takes each shard lock briefly.
func (t *Table) Stats() Stats {
	var st Stats
	collect := func(ss *shardSet, hits, misses *uint64) int {
		n := 0
		for i := range ss.shards {
			s := &ss.shards[i]
			s.mu.Lock()
			n += s.lru.Len()
			*hits += s.hits
			*misses += s.misses
			st.Evictions += s.evictions
			st.Expired += s.expired
			s.mu.Unlock()
		}
		return n
	}
	st.Size = collect(t.sessions, &st.Hits, &st.Misses)
	st.Channels = collect(t.channels, &st.ChannelHits, &st.ChannelMisses)
	st.Repins = t.repins.Load()
	st.PurgedSessions = t.purgedSessions.Load()
	st.PurgedChannels = t.purgedChannels.Load()
	st.AFTVerified = t.aftVerified.Load()
	st.AFTNoClientSID = t.aftNoClient.Load()
	t.refusedMu.Lock()
	st.AFTRefused = make(map[aft.Reason]uint64, len(t.refused))
	for r, n := range t.refused {
		st.AFTRefused[r] = n
	}
	t.refusedMu.Unlock()
	if s := t.store.Load(); s != nil {
		st.StoreDropped = s.Dropped()
		st.Store = s.Stats()
	}
	return st
}
