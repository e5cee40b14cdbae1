package security

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// ReplayGuard refuses envelopes seen before. Two modes:
//
//   - Check(id) (ids only): an id seen within the last TTL is refused. Memory is bounded by
//     Size ids; when full, the oldest ids are forgotten first.
//   - CheckFrom(sender, id, ts) (ids, the authenticated sender, and the envelope's ts): an
//     envelope whose ts is older than the window (TTL) or more than the future skew ahead is
//     refused, and so is an id the guard remembers for that sender. Ids are kept per sender:
//     each sender gets at most Size/8 ids (its budget; at least min(Size, 64), so that a
//     small guard still covers a burst: ts has millisecond precision and a sender forgetting
//     an id of the current millisecond would refuse its own next envelope), all senders
//     together at most Size. A sender over budget forgets its own oldest id; when the total is reached,
//     the least recently active sender forgets its oldest id. Forgetting an id raises that
//     sender's floor to the time recorded for it, min(ts, now): every later envelope of that
//     sender whose ts is not after its floor is refused, so an evicted id cannot come back
//     with its original ts. A sender forgotten altogether leaves its floor in a shared floor
//     for unknown senders; that floor is never later than the clock at the time it was
//     raised, so it refuses nothing fresh.
//
// Because a floor only ever holds min(ts, now) and only binds its own sender, a sender that
// dates its envelopes in the future or floods ids can make only its own envelopes be refused,
// never another sender's; and one sender can hold at most its budget of the ids.
//
// What ts-rewriting can still do: ts is not in the signed bytes (wire compatibility with the
// reference), so the window and the floor bind only a replayer that keeps the original ts.
// One that rewrites ts to "now" is stopped by the id alone: an envelope is refused as long as
// the guard remembers its id, that is for the sender's last budget (Size/8) envelopes (fewer if many
// senders are active and the Size total forces evictions). Ids do not expire by age in this
// mode (only by those bounds), so a low-rate sender is covered well past the window; a sender
// that has sent more than its budget since the original can have that original replayed with
// a rewritten ts. Signed ids bound what can be replayed to what the sender really sent;
// at-least-once handlers must stay idempotent for that residual case.
//
// It runs no goroutine; expiry is checked on lookup. Safe for concurrent use.
type ReplayGuard struct {
	ttl  time.Duration
	skew time.Duration
	now  func() time.Time
	mu   sync.Mutex
	lru  *simplelru.LRU[string, time.Time] // Check's ids

	// CheckFrom's state, guarded by mu. senders holds each active sender's ids, least
	// recently active first; total counts the ids of all senders; lostFloor is the newest
	// floor of a sender dropped from senders (applies to senders not in it).
	senders   *simplelru.LRU[string, *senderIDs]
	budget    int
	size      int
	total     int
	lostFloor time.Time
}

// senderIDs is one sender's remembered ids (id → min(ts, now) when recorded) and its floor.
type senderIDs struct {
	ids   *simplelru.LRU[string, time.Time]
	floor time.Time
}

// NewReplayGuard keeps up to size ids for ttl each; now may be nil (time.Now). The future
// skew of CheckAt is one minute (see NewReplayWindow).
func NewReplayGuard(size int, ttl time.Duration, now func() time.Time) (*ReplayGuard, error) {
	return NewReplayWindow(size, ttl, time.Minute, now)
}

// NewReplayWindow is NewReplayGuard with the future skew CheckFrom allows.
func NewReplayWindow(size int, ttl, skew time.Duration, now func() time.Time) (*ReplayGuard, error) {
	if size <= 0 || ttl <= 0 || skew < 0 {
		return nil, fmt.Errorf("replay guard: size and ttl must be positive, skew not negative (got %d, %s, %s)", size, ttl, skew)
	}
	if now == nil {
		now = time.Now
	}
	g := &ReplayGuard{ttl: ttl, skew: skew, now: now, size: size, budget: max(size/8, min(size, 64))}
	l, err := simplelru.NewLRU[string, time.Time](size, nil)
	if err != nil {
		return nil, fmt.Errorf("replay guard: %w", err)
	}
	g.lru = l
	// Every sender in senders holds at least one id, so size senders is the most there can be.
	if g.senders, err = simplelru.NewLRU[string, *senderIDs](size, g.senderDropped); err != nil {
		return nil, fmt.Errorf("replay guard: %w", err)
	}
	return g, nil
}

// senderDropped runs under mu when a sender leaves senders: its ids are forgotten, so its
// floor (raised to the newest of them) moves to the floor for unknown senders.
func (g *ReplayGuard) senderDropped(_ string, s *senderIDs) {
	for _, id := range s.ids.Keys() {
		if r, ok := s.ids.Peek(id); ok && r.After(s.floor) {
			s.floor = r
		}
	}
	g.total -= s.ids.Len()
	if s.floor.After(g.lostFloor) {
		g.lostFloor = s.floor
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
	if seen, ok := g.lru.Peek(id); ok && now.Sub(seen) < g.ttl {
		return fmt.Errorf("%w: %s", ErrReplay, id)
	}
	g.lru.Add(id, now)
	return nil
}

// CheckAt is CheckFrom with no sender: all callers share one budget and floor.
func (g *ReplayGuard) CheckAt(id string, ts time.Time) error { return g.CheckFrom("", id, ts) }

// CheckFrom records id for sender (an authenticated identity, e.g. the signing key id) with
// the envelope's ts and refuses it with ErrReplay if the sender's id is remembered, or
// ErrStale if ts is zero (no or unreadable ts), outside the window, or not after the sender's
// floor (see the type doc).
func (g *ReplayGuard) CheckFrom(sender, id string, ts time.Time) error {
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
	s, known := g.senders.Get(sender)
	floor := g.lostFloor
	if known {
		if _, ok := s.ids.Peek(id); ok {
			return fmt.Errorf("%w: %s", ErrReplay, id)
		}
		floor = s.floor
	}
	if !ts.After(floor) {
		return fmt.Errorf("%w: envelope %s is older than the ids the replay guard had to forget for its sender (%s)", ErrStale, id, floor.UTC().Format(time.RFC3339Nano))
	}
	if !known {
		s = &senderIDs{floor: g.lostFloor}
		ids, err := simplelru.NewLRU[string, time.Time](g.budget, func(_ string, r time.Time) {
			// The sender's own budget or the total pushed this id out.
			g.total--
			if r.After(s.floor) {
				s.floor = r
			}
		})
		if err != nil {
			return fmt.Errorf("replay guard: %w", err)
		}
		s.ids = ids
	}
	// Make room in the total first: the least recently active sender forgets its oldest id
	// (and is dropped once it has none).
	for (s.ids.Len() < g.budget) && g.total >= g.size {
		_, old, ok := g.senders.GetOldest()
		if !ok {
			break
		}
		old.ids.RemoveOldest()
		if old.ids.Len() == 0 {
			g.senders.RemoveOldest()
		}
	}
	if !g.senders.Contains(sender) { // new, or dropped by the loop above (tiny sizes)
		g.senders.Add(sender, s)
	}
	// Recording min(ts, now) keeps any floor this id may later raise at or before the clock
	// of today, so a future-dated envelope cannot lift a floor past fresh envelopes; and the
	// floor it raises is its own sender's only.
	r := ts
	if r.After(now) {
		r = now
	}
	g.total++
	s.ids.Add(id, r)
	return nil
}

// Len is the number of ids currently remembered (both modes; expired ones included until evicted).
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lru.Len() + g.total
}
