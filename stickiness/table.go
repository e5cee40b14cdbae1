package stickiness

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/fame-go/fame/security/aft"
)

// Table maps client sessions (client sid) and end-to-end channels (channel
// id) to the pool replica that serves them. It is safe for concurrent use.
//
// TTL semantics: every binding has an idle TTL (Bind's ttl, DefaultTTL by
// default, never above MaxTTL). A Lookup hit slides its expiry to now+TTL, so
// a session in use never expires; an idle one is dropped lazily on its next
// Lookup or by Sweep. Session and channel bindings age independently: traffic
// routed by client sid refreshes the session, traffic routed by channel id
// refreshes the channel.
type Table struct {
	cfg Config // DefaultTTL, MaxTTL and CacheMax here are the values at NewTable; see ttls
	// ttls holds the DefaultTTL and MaxTTL in force, swapped whole by SetLimits (a hot
	// reload); binds read it with one atomic load.
	ttls     atomic.Pointer[ttlPair]
	cacheMax atomic.Int64
	limitsMu sync.Mutex // serialises SetLimits
	clock    func() time.Time
	start    time.Time // epoch of the int64 expiry times; carries a monotonic reading

	sessions, channels *shardSet
	idx                *index
	store              atomic.Pointer[Store]

	repins, purgedSessions, purgedChannels atomic.Uint64
	aftVerified, aftNoClient               atomic.Uint64
	refusedMu                              sync.Mutex
	refused                                map[aft.Reason]uint64
}

// Option customises a Table.
type Option func(*Table)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(t *Table) { t.clock = now } }

// WithStore attaches a persistence store from the start (see AttachStore).
func WithStore(s *Store) Option { return func(t *Table) { t.store.Store(s) } }

// Lost is what a replica's disappearance cost one client session: the
// sentinel sends SecureClose{cid} for each channel so that the client
// re-opens it on a live replica.
type Lost struct {
	ClientSID  string
	ChannelIDs []string
}

// NewTable builds a table; zero durations and CacheMax take their defaults.
func NewTable(cfg Config, opts ...Option) (*Table, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	t := &Table{cfg: cfg, clock: time.Now, idx: newIndex(), refused: map[aft.Reason]uint64{}}
	for _, o := range opts {
		o(t)
	}
	t.start = t.clock()
	t.ttls.Store(&ttlPair{def: cfg.DefaultTTL, max: cfg.MaxTTL})
	t.cacheMax.Store(int64(cfg.CacheMax))
	if t.sessions, err = newShardSet(cfg.CacheMax, t.onRemove(kindSession)); err != nil {
		return nil, fmt.Errorf("stickiness: session cache: %w", err)
	}
	if t.channels, err = newShardSet(cfg.CacheMax, t.onRemove(kindChannel)); err != nil {
		return nil, fmt.Errorf("stickiness: channel cache: %w", err)
	}
	return t, nil
}

// ttlPair is the DefaultTTL and MaxTTL in force.
type ttlPair struct{ def, max time.Duration }

// Config returns the effective (normalised) configuration, with the TTLs and CacheMax of
// the last SetLimits.
func (t *Table) Config() Config {
	c := t.cfg
	p := t.ttls.Load()
	c.DefaultTTL, c.MaxTTL, c.CacheMax = p.def, p.max, int(t.cacheMax.Load())
	return c
}

// SetLimits changes the idle TTL, the TTL cap and the capacity of a live table (a hot reload);
// zero values take their defaults, as in Config. Bindings made before keep the TTL they were
// made with until their next bind; new binds and LearnAFT use the new values. A smaller
// capacity evicts the least recently used bindings at once (counted as evictions, removed
// from the store like any eviction); the shard count stays what NewTable chose.
func (t *Table) SetLimits(defaultTTL, maxTTL time.Duration, cacheMax int) error {
	c := t.cfg
	c.DefaultTTL, c.MaxTTL, c.CacheMax = defaultTTL, maxTTL, cacheMax
	c, err := c.normalize()
	if err != nil {
		return err
	}
	t.limitsMu.Lock()
	defer t.limitsMu.Unlock()
	t.ttls.Store(&ttlPair{def: c.DefaultTTL, max: c.MaxTTL})
	if int64(c.CacheMax) != t.cacheMax.Load() {
		t.sessions.resize(c.CacheMax)
		t.channels.resize(c.CacheMax)
		t.cacheMax.Store(int64(c.CacheMax))
	}
	return nil
}

// AttachStore makes the table write every bind/unbind behind to s (nil
// detaches). Changes are queued, never written on the caller's goroutine.
func (t *Table) AttachStore(s *Store) { t.store.Store(s) }

// RestoreFrom attaches s and restores what it holds (Store.Load, which also
// deletes expired and undecodable records from the file). The store is
// attached first so that bindings the LRU bound evicts while restoring are
// deleted from the file too. It returns how many bindings were restored and
// how many were stored.
func (t *Table) RestoreFrom(s *Store) (restored, stored int, err error) {
	t.AttachStore(s)
	bs, err := s.Load()
	if err != nil {
		return 0, 0, err
	}
	return t.Restore(bs), len(bs), nil
}

// promoteEvery is the LRU recency granularity of Lookup.
const promoteEvery = int64(time.Second)

func (t *Table) now() int64 { return int64(t.clock().Sub(t.start)) }

func (t *Table) wall(exp int64) time.Time { return t.start.Add(time.Duration(exp)).Round(0) }

// onRemove runs under the shard lock whenever the LRU drops an entry, be it
// by capacity eviction or by the table's own Remove: it keeps the reverse
// index and the store in step with the LRU.
func (t *Table) onRemove(k kind) func(s *shard, b *binding) {
	return func(s *shard, b *binding) {
		if !s.explicit {
			s.evictions++
		}
		t.idx.remove(k, b)
		if st := t.store.Load(); st != nil {
			st.enqueue(change{op: opDelete, kind: k, key: b.key})
		}
	}
}

func (t *Table) clampTTL(ttl time.Duration) int64 {
	p := t.ttls.Load()
	if ttl <= 0 {
		ttl = p.def
	}
	if ttl > p.max {
		ttl = p.max
	}
	return int64(ttl)
}

// Lookup returns the replica bound to a client session and slides the
// binding's expiry. It does not allocate.
func (t *Table) Lookup(clientSID string) (replica string, ok bool) {
	return t.lookup(kindSession, t.sessions, clientSID)
}

// LookupChannel returns the replica that holds channel cid.
func (t *Table) LookupChannel(cid string) (replica string, ok bool) {
	return t.lookup(kindChannel, t.channels, cid)
}

func (t *Table) lookup(k kind, ss *shardSet, key string) (string, bool) {
	if !t.cfg.Enabled || key == "" {
		return "", false
	}
	now := t.now()
	s := ss.shardFor(key)
	s.mu.Lock()
	b, ok := s.lru.Peek(key)
	if !ok {
		s.misses++
		s.mu.Unlock()
		return "", false
	}
	if now >= b.exp {
		s.removeLocked(key)
		s.expired++
		s.misses++
		s.mu.Unlock()
		return "", false
	}
	s.hits++
	// Move to the LRU front at most once per promoteEvery per binding: the
	// move touches three list nodes (cache misses on a big table) and
	// recency finer than that does not change which binding is evicted in
	// any way that matters.
	if now-(b.exp-b.ttl) >= promoteEvery {
		s.lru.Get(key)
	}
	b.exp = now + b.ttl
	replica := b.replica.Value()
	// Persist the slid expiry only when the stored one lags by more than half
	// a TTL: at most two store writes per TTL per active binding, and a
	// restart never loses a binding that was in use.
	var c change
	st := t.store.Load()
	if st != nil && b.exp-b.persisted > b.ttl/2 {
		b.persisted = b.exp
		c = t.putChange(k, b)
	} else {
		st = nil
	}
	s.mu.Unlock()
	if st != nil {
		st.enqueue(c)
	}
	return replica, true
}

// putChange snapshots b for the store; caller holds the shard lock.
func (t *Table) putChange(k kind, b *binding) change {
	return change{op: opPut, kind: k, key: b.key, clientSID: b.clientSID, replica: b.replica.Value(),
		ttl: b.ttl, expires: t.wall(b.exp).UnixNano()}
}

// Bind pins a client session to replica. ttl <= 0 means DefaultTTL; ttl is
// capped at MaxTTL. Binding a session that is already bound elsewhere
// re-pins it (counted in Stats.Repins). Empty arguments are ignored.
func (t *Table) Bind(clientSID, replica string, ttl time.Duration) {
	if !t.cfg.Enabled || clientSID == "" || replica == "" {
		return
	}
	d := t.clampTTL(ttl)
	t.bind(kindSession, t.sessions, clientSID, clientSID, replica, d, t.now()+d, true)
}

// BindChannel records that channel cid of session clientSID lives on
// replica (learned from SecureOpen/SecureAccept or sec.enc.kid). It uses the
// DefaultTTL, sliding on LookupChannel.
func (t *Table) BindChannel(cid, clientSID, replica string) {
	if !t.cfg.Enabled || cid == "" || replica == "" {
		return
	}
	d := t.clampTTL(0)
	t.bind(kindChannel, t.channels, cid, clientSID, replica, d, t.now()+d, true)
}

func (t *Table) bind(k kind, ss *shardSet, key, clientSID, replica string, ttl, exp int64, persist bool) {
	h := unique.Make(replica)
	si := ss.indexOf(key)
	s := &ss.shards[si]
	var c change
	s.mu.Lock()
	old, had := s.lru.Get(key)
	if had && old.replica == h && old.clientSID == clientSID {
		old.ttl, old.exp = ttl, exp
		if persist {
			old.persisted = exp
			c = t.putChange(k, old)
		}
		s.mu.Unlock()
		t.persist(persist, c)
		return
	}
	if had {
		s.removeLocked(key)
		if old.replica != h {
			t.repins.Add(1)
		}
	}
	b := &binding{key: key, clientSID: clientSID, replica: h, ttl: ttl, exp: exp, persisted: exp, shard: uint16(si)}
	// Index before the LRU: a PurgeReplica racing with this Bind then either
	// finds b in the index and removes it, or runs entirely before it.
	t.idx.add(k, b)
	s.lru.Add(key, b)
	if persist {
		c = t.putChange(k, b)
	}
	s.mu.Unlock()
	t.persist(persist, c)
}

func (t *Table) persist(do bool, c change) {
	if !do {
		return
	}
	if st := t.store.Load(); st != nil {
		st.enqueue(c)
	}
}

// Unbind removes a session binding (for example when the client detaches).
func (t *Table) Unbind(clientSID string) { t.unbind(t.sessions, clientSID) }

// UnbindChannel removes a channel binding (SecureClose seen).
func (t *Table) UnbindChannel(cid string) { t.unbind(t.channels, cid) }

func (t *Table) unbind(ss *shardSet, key string) {
	s := ss.shardFor(key)
	s.mu.Lock()
	s.removeLocked(key)
	s.mu.Unlock()
}

// PurgeReplica removes every session and channel binding of replica at once
// and returns them grouped by client session (sessions in no particular
// order, each one's channel ids sorted), so that the sentinel can send
// SecureClose{cid} for each lost channel. Cost is O(bindings of that
// replica), one lock round per shard. Bindings made to replica after the
// purge are kept: the caller must take the replica out of its pools first.
// An attached store deletes the purged bindings and every stored pool
// membership of replica.
func (t *Table) PurgeReplica(replica string) []Lost {
	if st := t.store.Load(); st != nil && replica != "" {
		st.ForgetReplica(replica)
	}
	set := t.idx.take(unique.Make(replica))
	if set == nil {
		return nil
	}
	out := make([]Lost, 0, len(set.sessions))
	var pos map[string]int // client sid -> index in out; only needed for channels
	if len(set.channels) > 0 {
		pos = make(map[string]int, len(set.sessions)+len(set.channels))
	}
	ns := t.sessions.removeAll(set.sessions, func(b *binding) {
		if pos != nil {
			pos[b.clientSID] = len(out)
		}
		out = append(out, Lost{ClientSID: b.clientSID})
	})
	nc := t.channels.removeAll(set.channels, func(b *binding) {
		i, ok := pos[b.clientSID]
		if !ok {
			i = len(out)
			pos[b.clientSID] = i
			out = append(out, Lost{ClientSID: b.clientSID})
		}
		out[i].ChannelIDs = append(out[i].ChannelIDs, b.key)
	})
	for i := range out {
		if len(out[i].ChannelIDs) > 1 {
			sort.Strings(out[i].ChannelIDs)
		}
	}
	t.purgedSessions.Add(uint64(ns))
	t.purgedChannels.Add(uint64(nc))
	if len(out) == 0 {
		return nil
	}
	return out
}

// Sweep drops every expired binding and returns how many it dropped. The
// sentinel calls it from its maintenance ticker; lookups expire lazily
// without it, Sweep only reclaims memory of sessions that never come back.
func (t *Table) Sweep() int {
	now := t.now()
	n := 0
	for _, ss := range []*shardSet{t.sessions, t.channels} {
		for i := range ss.shards {
			s := &ss.shards[i]
			s.mu.Lock()
			for _, key := range s.lru.Keys() {
				if b, ok := s.lru.Peek(key); ok && now >= b.exp {
					s.removeLocked(key)
					s.expired++
					n++
				}
			}
			s.mu.Unlock()
		}
	}
	return n
}

// SessionsOn returns how many sessions are bound to replica: the Load to
// give the balancer for that member.
func (t *Table) SessionsOn(replica string) int {
	n, _ := t.idx.counts(unique.Make(replica))
	return n
}

// ReplicaSessions returns the session count per replica (imbalance metric).
func (t *Table) ReplicaSessions() map[string]int { return t.idx.all() }
