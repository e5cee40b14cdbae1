package balancer

import "math"

// DefaultLoadFactor is c in the bounded-load rule: a member may carry at most
// ceil(c * average) sessions before new keys spill to the next-ranked member.
const DefaultLoadFactor = 1.25

// HRW is rendezvous hashing with bounded load. The zero value is not usable;
// create it with NewHRW.
type HRW struct {
	// factor is c scaled by 1024 so the capacity is computed in integers.
	factor int64
}

// NewHRW returns an HRW strategy with load factor c. Values below 1 (or NaN)
// are raised to 1, the tightest bound that always leaves room for a new key;
// +Inf disables the bound (pure rendezvous hashing).
func NewHRW(c float64) *HRW {
	if !(c >= 1) {
		c = 1
	}
	if c > 1<<20 {
		return &HRW{factor: 0} // effectively unbounded; also keeps the integer maths in range
	}
	return &HRW{factor: int64(math.Ceil(c * 1024))}
}

// capacity is ceil(c * (total+1) / n): the average counts the session being
// placed, so the least-loaded member always has room.
func (h *HRW) capacity(members []Member) int64 {
	if h.factor == 0 {
		return math.MaxInt64
	}
	var total int64
	for _, m := range members {
		l := load(m)
		total += l
		if l > 1<<32 || total > 1<<32 {
			// factor <= 2^30, so keeping total <= 2^32 keeps factor*(total+1)
			// inside int64; at such loads the bound is meaningless anyway.
			return math.MaxInt64
		}
	}
	n := int64(len(members)) * 1024
	return (h.factor*(total+1) + n - 1) / n
}

// Pick implements Strategy.
func (h *HRW) Pick(key string, members []Member) (string, bool) {
	if len(members) == 0 {
		return "", false
	}
	limit := h.capacity(members)
	kh := hashString(key)
	best, bestID, found := uint64(0), "", false
	// The overall winner is kept too in case rounding leaves nobody under the
	// limit (cannot happen with factor >= 1, but a wrong Load must not fail).
	top, topID := uint64(0), ""
	for i, m := range members {
		s := score(kh, m.ID)
		if i == 0 || better(s, m.ID, top, topID) {
			top, topID = s, m.ID
		}
		if load(m) >= limit {
			continue
		}
		if !found || better(s, m.ID, best, bestID) {
			best, bestID, found = s, m.ID, true
		}
	}
	if !found {
		return topID, true
	}
	return bestID, true
}
