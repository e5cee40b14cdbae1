package security

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// ReplayGuard refuses an envelope id seen within the last TTL. Memory is bounded by Size:
// when full, the oldest ids are forgotten first, so the guard degrades to a shorter window
// under flood instead of growing. It runs no goroutine; expiry is checked on lookup. Safe for
// concurrent use.
type ReplayGuard struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	lru *simplelru.LRU[string, time.Time]
}

// NewReplayGuard keeps up to size ids for ttl each; now may be nil (time.Now).
func NewReplayGuard(size int, ttl time.Duration, now func() time.Time) (*ReplayGuard, error) {
	if size <= 0 || ttl <= 0 {
		return nil, fmt.Errorf("replay guard: size and ttl must be positive (got %d, %s)", size, ttl)
	}
	l, err := simplelru.NewLRU[string, time.Time](size, nil)
	if err != nil {
		return nil, fmt.Errorf("replay guard: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &ReplayGuard{ttl: ttl, now: now, lru: l}, nil
}

// Check records id and returns ErrReplay if it was already recorded within the TTL. An empty
// id cannot be tracked and is refused too.
func (g *ReplayGuard) Check(id string) error {
	if id == "" {
		return fmt.Errorf("%w: envelope without id", ErrReplay)
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if seen, ok := g.lru.Peek(id); ok && now.Sub(seen) < g.ttl {
		return fmt.Errorf("%w: %s", ErrReplay, id)
	}
	g.lru.Add(id, now)
	return nil
}

// Len is the number of ids currently remembered (expired ones included until evicted).
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lru.Len()
}
