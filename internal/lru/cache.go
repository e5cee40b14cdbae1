package lru

import "sync"

// Cache is an LRU behind a mutex, with the methods (and meaning) of golang-lru/v2's Cache that
// the node uses. Safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu  sync.Mutex
	lru *LRU[K, V]
}

// New returns a concurrency-safe cache of at most size entries.
func New[K comparable, V any](size int) (*Cache[K, V], error) {
	l, err := NewLRU[K, V](size, nil)
	if err != nil {
		return nil, err
	}
	return &Cache[K, V]{lru: l}, nil
}

// Add sets key to value, making it the newest; it reports whether an entry was evicted.
func (c *Cache[K, V]) Add(key K, value V) (evicted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Add(key, value)
}

// Get returns the value of key and makes it the newest.
func (c *Cache[K, V]) Get(key K) (value V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Get(key)
}

// ContainsOrAdd reports whether key is present without changing its recency; when it is not,
// it adds it as the newest entry (evicted says whether that pushed the oldest out).
func (c *Cache[K, V]) ContainsOrAdd(key K, value V) (ok, evicted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Contains(key) {
		return true, false
	}
	return false, c.lru.Add(key, value)
}

// Remove deletes key; it reports whether it was present. Unlike eviction it makes no callback
// (Cache has none).
func (c *Cache[K, V]) Remove(key K) (present bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.remove(key)
}

// Len is the number of entries.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
