package lru

import "errors"

// ErrSize is returned by New for a size below one.
var ErrSize = errors.New("lru: size must be positive")

// entry is one element of the recency list; the list is circular through the
// cache's root, newest first.
type entry[K comparable, V any] struct {
	prev, next *entry[K, V]
	key        K
	value      V
}

// LRU is a size-bounded least-recently-used map, not safe for concurrent use. The zero value
// is not usable; call NewLRU.
type LRU[K comparable, V any] struct {
	size    int
	items   map[K]*entry[K, V]
	root    entry[K, V] // sentinel: root.next is the newest, root.prev the oldest
	onEvict func(K, V)
}

// NewLRU returns a cache holding at most size entries; onEvict (may be nil) is
// called, with the cache's caller still holding whatever lock it holds, for
// every entry the cache removes.
func NewLRU[K comparable, V any](size int, onEvict func(K, V)) (*LRU[K, V], error) {
	if size <= 0 {
		return nil, ErrSize
	}
	c := &LRU[K, V]{size: size, items: make(map[K]*entry[K, V]), onEvict: onEvict}
	c.root.next, c.root.prev = &c.root, &c.root
	return c, nil
}

func (c *LRU[K, V]) unlink(e *entry[K, V]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *LRU[K, V]) pushFront(e *entry[K, V]) {
	e.prev, e.next = &c.root, c.root.next
	c.root.next.prev = e
	c.root.next = e
}

// Add sets key to value and makes it the newest entry; it reports whether the
// oldest entry was evicted to make room.
func (c *LRU[K, V]) Add(key K, value V) (evicted bool) {
	if e, ok := c.items[key]; ok {
		e.value = value
		c.unlink(e)
		c.pushFront(e)
		return false
	}
	e := &entry[K, V]{key: key, value: value}
	c.pushFront(e)
	c.items[key] = e
	if len(c.items) > c.size {
		c.removeOldest()
		return true
	}
	return false
}

// Get returns the value of key and makes it the newest entry.
func (c *LRU[K, V]) Get(key K) (value V, ok bool) {
	e, ok := c.items[key]
	if !ok {
		return value, false
	}
	c.unlink(e)
	c.pushFront(e)
	return e.value, true
}

// Peek returns the value of key without changing its recency.
func (c *LRU[K, V]) Peek(key K) (value V, ok bool) {
	e, ok := c.items[key]
	if !ok {
		return value, false
	}
	return e.value, true
}

// Contains reports whether key is present, without changing its recency.
func (c *LRU[K, V]) Contains(key K) bool {
	_, ok := c.items[key]
	return ok
}

// GetOldest returns the oldest entry without changing its recency.
func (c *LRU[K, V]) GetOldest() (key K, value V, ok bool) {
	if e := c.root.prev; e != &c.root {
		return e.key, e.value, true
	}
	return key, value, false
}

// RemoveOldest removes the oldest entry (calling onEvict) and returns it.
func (c *LRU[K, V]) RemoveOldest() (key K, value V, ok bool) {
	if c.root.prev == &c.root {
		return key, value, false
	}
	e := c.removeOldest()
	return e.key, e.value, true
}

func (c *LRU[K, V]) removeOldest() *entry[K, V] {
	e := c.root.prev
	c.unlink(e)
	delete(c.items, e.key)
	if c.onEvict != nil {
		c.onEvict(e.key, e.value)
	}
	return e
}

// Keys returns the keys from oldest to newest.
func (c *LRU[K, V]) Keys() []K {
	keys := make([]K, 0, len(c.items))
	for e := c.root.prev; e != &c.root; e = e.prev {
		keys = append(keys, e.key)
	}
	return keys
}

// Len is the number of entries.
func (c *LRU[K, V]) Len() int { return len(c.items) }

// remove deletes key without calling onEvict (only Cache, which has no callback, uses it).
func (c *LRU[K, V]) remove(key K) bool {
	e, ok := c.items[key]
	if !ok {
		return false
	}
	c.unlink(e)
	delete(c.items, key)
	return true
}
