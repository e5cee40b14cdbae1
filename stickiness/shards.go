package stickiness

import (
	"hash/maphash"
	"sync"
	"unique"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// binding is one entry of the table: a session (key = client sid) or a
// channel (key = channel id). Its mutable fields are guarded by the lock of
// the shard that holds it.
type binding struct {
	key       string
	clientSID string // equals key for sessions
	replica   unique.Handle[string]
	ttl       int64  // sliding idle TTL, ns
	exp       int64  // expiry, ns since the table's epoch
	persisted int64  // exp last sent to the store; refreshes re-send when it lags
	shard     uint16 // index of the shard holding it, so a purge need not re-hash the key
}

type kind uint8

const (
	kindSession kind = iota
	kindChannel
)

// shard is one lock + LRU. The hot path takes exactly one shard lock, so
// lookups of different sessions rarely contend; counters live here too so
// that they need no atomics of their own.
type shard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, *binding]
	// explicit is set while the table itself removes an entry (expiry,
	// purge, re-pin) so that the eviction callback can tell capacity
	// evictions apart.
	explicit                         bool
	hits, misses, evictions, expired uint64
	_                                [64]byte // keep neighbouring shards' locks off one cache line
}

// shardSet is a bounded LRU split into independently locked shards.
type shardSet struct {
	shards []shard
	seed   maphash.Seed
}

// shardCount: one shard keeps exact global LRU order for small tables (and
// tests); big tables trade exactness for less lock contention. The capacity
// is split so that the shards add up to exactly max.
func shardCount(max int) int {
	if max < 4096 {
		return 1
	}
	return 32
}

func newShardSet(max int, onEvict func(s *shard, b *binding)) (*shardSet, error) {
	n := shardCount(max)
	ss := &shardSet{shards: make([]shard, n), seed: maphash.MakeSeed()}
	for i := range ss.shards {
		s := &ss.shards[i]
		size := max / n
		if i < max%n {
			size++
		}
		l, err := simplelru.NewLRU(size, func(_ string, b *binding) { onEvict(s, b) })
		if err != nil {
			return nil, err
		}
		s.lru = l
	}
	return ss, nil
}

// resize splits a new capacity over the shards as newShardSet does; a shard over its new
// size evicts its least recently used entries under its lock.
func (ss *shardSet) resize(total int) {
	n := len(ss.shards)
	for i := range ss.shards {
		size := total / n
		if i < total%n {
			size++
		}
		s := &ss.shards[i]
		s.mu.Lock()
		s.lru.Resize(max(size, 1))
		s.mu.Unlock()
	}
}

func (ss *shardSet) shardFor(key string) *shard { return &ss.shards[ss.indexOf(key)] }

func (ss *shardSet) indexOf(key string) int {
	if len(ss.shards) == 1 {
		return 0
	}
	return int(maphash.String(ss.seed, key) % uint64(len(ss.shards)))
}

// removeLocked removes key without counting it as an eviction; the caller
// holds s.mu.
func (s *shard) removeLocked(key string) {
	s.explicit = true
	s.lru.Remove(key)
	s.explicit = false
}

// removeAll removes every binding of m that is still current, taking each
// shard lock once, and calls removed for each one removed (under the lock).
func (ss *shardSet) removeAll(m map[string]*binding, removed func(*binding)) int {
	n := 0
	drop := func(s *shard, b *binding) {
		if cur, ok := s.lru.Peek(b.key); ok && cur == b {
			s.removeLocked(b.key)
			removed(b)
			n++
		}
	}
	if len(ss.shards) == 1 {
		s := &ss.shards[0]
		s.mu.Lock()
		for _, b := range m {
			drop(s, b)
		}
		s.mu.Unlock()
		return n
	}
	groups := make([][]*binding, len(ss.shards))
	for _, b := range m {
		groups[b.shard] = append(groups[b.shard], b)
	}
	for i, g := range groups {
		s := &ss.shards[i]
		s.mu.Lock()
		for _, b := range g {
			drop(s, b)
		}
		s.mu.Unlock()
	}
	return n
}

func (ss *shardSet) len() int {
	n := 0
	for i := range ss.shards {
		s := &ss.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}
