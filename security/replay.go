package security

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// ReplayGuard refuses envelopes seen before. Memory is bounded by Size ids. Two checks:
//
//   - Check(id) (ids only): an id seen within the last TTL is refused. When full, the oldest
//     ids are forgotten first.
//   - CheckAt(id, ts) (ids and the envelope's ts): an envelope whose ts is older than the
//     window (TTL) or more than the future skew ahead is refused whatever its id, so an id the
//     guard has forgotten because it expired cannot come back. An id the guard had to forget
//     early (size bound reached inside the window) raises a floor: every envelope whose ts is
//     not after the newest ts forgotten that way is refused too. Under a flood the window so
//     shrinks to what the guard remembers instead of letting evicted ids through.
//
// It runs no goroutine; expiry is checked on lookup. Safe for concurrent use.
type ReplayGuard struct {
	ttl  time.Duration
	skew time.Duration
	now  func() time.Time
	mu   sync.Mutex
	lru  *simplelru.LRU[string, time.Time]
	// floor is the newest ts of an id evicted while still inside the window; at is the time of
	// the call in progress (for the eviction callback). Both guarded by mu.
	floor time.Time
	at    time.Time
}

// NewReplayGuard keeps up to size ids for ttl each; now may be nil (time.Now). The future
// skew of CheckAt is one minute (see NewReplayWindow).
func NewReplayGuard(size int, ttl time.Duration, now func() time.Time) (*ReplayGuard, error) {
	return NewReplayWindow(size, ttl, time.Minute, now)
}

// NewReplayWindow is NewReplayGuard with the future skew CheckAt allows.
func NewReplayWindow(size int, ttl, skew time.Duration, now func() time.Time) (*ReplayGuard, error) {
	if size <= 0 || ttl <= 0 || skew < 0 {
		return nil, fmt.Errorf("replay guard: size and ttl must be positive, skew not negative (got %d, %s, %s)", size, ttl, skew)
	}
	if now == nil {
		now = time.Now
	}
	g := &ReplayGuard{ttl: ttl, skew: skew, now: now}
	l, err := simplelru.NewLRU[string, time.Time](size, g.evicted)
	if err != nil {
		return nil, fmt.Errorf("replay guard: %w", err)
	}
	g.lru = l
	return g, nil
}

// evicted runs under mu when the size bound pushes an id out.
func (g *ReplayGuard) evicted(_ string, ts time.Time) {
	if g.at.Sub(ts) < g.ttl && ts.After(g.floor) {
		g.floor = ts
	}
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
	g.at = now
	if seen, ok := g.lru.Peek(id); ok && now.Sub(seen) < g.ttl {
		return fmt.Errorf("%w: %s", ErrReplay, id)
	}
	g.lru.Add(id, now)
	return nil
}

// CheckAt records id with the envelope's ts and refuses it with ErrReplay if the id is
// remembered, or ErrStale if ts is zero (no or unreadable ts), outside the window, or not
// after the floor (see the type doc).
func (g *ReplayGuard) CheckAt(id string, ts time.Time) error {
	if id == "" {
		return fmt.Errorf("%w: envelope without id", ErrReplay)
	}
	if ts.IsZero() {
		return fmt.Errorf("%w: envelope %s has no timestamp", ErrStale, id)
	}
	now := g.now()
	if age := now.Sub(ts); age >= g.ttl {
		return fmt.Errorf("%w: envelope %s is %s old (window %s)", ErrStale, id, age.Truncate(time.Millisecond), g.ttl)
	} else if -age > g.skew {
		return fmt.Errorf("%w: envelope %s is dated %s ahead (allowed %s)", ErrStale, id, (-age).Truncate(time.Millisecond), g.skew)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.at = now
	if _, ok := g.lru.Peek(id); ok {
		return fmt.Errorf("%w: %s", ErrReplay, id)
	}
	if !ts.After(g.floor) {
		return fmt.Errorf("%w: envelope %s is older than the ids the replay guard had to forget (%s)", ErrStale, id, g.floor.UTC().Format(time.RFC3339Nano))
	}
	g.lru.Add(id, ts)
	return nil
}

// Len is the number of ids currently remembered (expired ones included until evicted).
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lru.Len()
}
