package token

import (
	"sync"
	"time"
)

// ReplayGuard remembers the jti of accepted tokens until they expire, so a
// one-shot token (attach ticket, CA grant) is accepted once. Memory is bounded
// by Max entries; when the table is full of unexpired ids new tokens are
// refused (fail closed) rather than forgetting an id that could then be
// replayed.
type ReplayGuard struct {
	mu   sync.Mutex
	seen map[string]time.Time
	max  int
}

// NewReplayGuard returns a guard holding at most max ids (default 100k).
func NewReplayGuard(max int) *ReplayGuard {
	if max <= 0 {
		max = 100_000
	}
	return &ReplayGuard{seen: make(map[string]time.Time), max: max}
}

// Use records jti as used until exp, as seen at time now (the verifier's
// clock). It returns false when jti was already used (or the table is full).
func (g *ReplayGuard) Use(jti string, exp, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until, ok := g.seen[jti]; ok && now.Before(until) {
		return false
	}
	if len(g.seen) >= g.max {
		g.purgeLocked(now)
		if len(g.seen) >= g.max {
			return false
		}
	}
	g.seen[jti] = exp
	return true
}

// Len is the number of remembered ids.
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

func (g *ReplayGuard) purgeLocked(now time.Time) {
	for id, until := range g.seen {
		if !now.Before(until) {
			delete(g.seen, id)
		}
	}
}
