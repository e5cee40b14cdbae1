package sentinel

import (
	"sort"
	"strings"
	"sync"

	"github.com/fame-go/fame/envelope"
)

// routeTable holds who is attached and which addresses they serve. Reads happen on every
// envelope and take the read lock only; writes happen on attach, bind and detach. It is keyed
// on peer values (component.go) and depends on nothing else: mu guards every map below.
type routeTable struct {
	mu       sync.RWMutex
	children map[string]peer             // systemId -> live connection
	sids     map[string]peer             // envelope sid (SecureDigest of path) -> live connection
	exact    map[string]peer             // exact address -> binder (last writer wins)
	pools    map[string]map[string]*pool // participant -> host suffix ("fame.fabric" for *.fame.fabric) -> pool
	caps     map[string]map[string]peer  // capability -> capKey(provider address, provider) -> provider
	own      ownState                    // ownership decisions (ownership.go)
}

// pool is the set of replicas bound under participant@*.suffix.
type pool struct {
	key     string // participant@*.suffix, for logs and stats
	members []peer
}

func newRouteTable() *routeTable {
	return &routeTable{
		children: map[string]peer{},
		sids:     map[string]peer{},
		exact:    map[string]peer{},
		pools:    map[string]map[string]*pool{},
		caps:     map[string]map[string]peer{},
	}
}

// attach registers c under its system id and returns the connection it replaces, if any.
func (t *routeTable) attach(c peer) (old peer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := c.ident()
	old = t.children[id.systemID]
	t.children[id.systemID] = c
	t.sids[id.sid] = c
	if old != nil {
		t.removeLocked(old)
	}
	return old
}

// detach removes c from every table, but only the entries that still point at c: a node that
// re-attached on a new connection keeps its new routes. It returns the pools c left, and held:
// whether c was the system id's current holder (false for a connection whose attach was
// refused, and for one already replaced by a newer attach of the same id).
func (t *routeTable) detach(c peer) (left []string, held bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := c.ident()
	if t.children[id.systemID] == c {
		delete(t.children, id.systemID)
		held = true
	}
	if t.sids[id.sid] == c {
		delete(t.sids, id.sid)
	}
	return t.removeLocked(c), held
}

func (t *routeTable) removeLocked(c peer) (left []string) {
	for addr, owner := range t.exact {
		if owner == c {
			delete(t.exact, addr)
		}
	}
	for participant, bySuffix := range t.pools {
		for suffix, p := range bySuffix {
			if p.remove(c) {
				left = append(left, p.key)
			}
			if len(p.members) == 0 {
				delete(bySuffix, suffix)
			}
		}
		if len(bySuffix) == 0 {
			delete(t.pools, participant)
		}
	}
	for capName, providers := range t.caps {
		for addr, owner := range providers {
			if owner == c {
				delete(providers, addr)
			}
		}
		if len(providers) == 0 {
			delete(t.caps, capName)
		}
	}
	return left
}

// remove drops c from the pool; the member slice is replaced, never edited in place, so
// readers holding the old slice stay consistent.
func (p *pool) remove(c peer) bool {
	for i, m := range p.members {
		if m == c {
			n := make([]peer, 0, len(p.members)-1)
			n = append(append(n, p.members[:i]...), p.members[i+1:]...)
			p.members = n
			return true
		}
	}
	return false
}

// bind records an address bound by c. Wildcard hosts join a pool; everything else is an
// exact route where the last binder wins, as in the reference.
func (t *routeTable) bind(c peer, a envelope.Address) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if suffix, ok := strings.CutPrefix(a.Host, "*."); ok && a.Path == "" {
		bySuffix := t.pools[a.Participant]
		if bySuffix == nil {
			bySuffix = map[string]*pool{}
			t.pools[a.Participant] = bySuffix
		}
		p := bySuffix[suffix]
		if p == nil {
			p = &pool{key: a.String()}
			bySuffix[suffix] = p
		}
		for _, m := range p.members {
			if m == c {
				return
			}
		}
		n := make([]peer, 0, len(p.members)+1)
		p.members = append(append(n, p.members...), c)
		return
	}
	t.exact[a.String()] = c
}

// unbind removes an address only if c owns it (or c's membership of the pool).
func (t *routeTable) unbind(c peer, a envelope.Address) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if suffix, ok := strings.CutPrefix(a.Host, "*."); ok && a.Path == "" {
		if p := t.pools[a.Participant][suffix]; p != nil {
			p.remove(c)
			if len(p.members) == 0 {
				delete(t.pools[a.Participant], suffix)
			}
		}
		return
	}
	if t.exact[a.String()] == c {
		delete(t.exact, a.String())
	}
}

// capKey keys a capability entry by address and provider, so that one provider's advertise
// never replaces another's (pool members may each advertise the pool's address).
func capKey(address string, c peer) string { return address + "\x00" + c.ident().systemID }

// advertise records c's capabilities for address; advertiseOwned has checked that address is
// c's.
func (t *routeTable) advertise(c peer, address string, caps []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, name := range caps {
		m := t.caps[name]
		if m == nil {
			m = map[string]peer{}
			t.caps[name] = m
		}
		m[capKey(address, c)] = c
	}
}

// capsOf lists the capabilities c advertises, under any address (for the cluster's
// directory entry of c).
func (t *routeTable) capsOf(c peer) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for name, providers := range t.caps {
		for _, p := range providers {
			if p == c {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

func (t *routeTable) withdraw(c peer, address string, caps []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, name := range caps {
		if t.caps[name][capKey(address, c)] == c {
			delete(t.caps[name], capKey(address, c))
		}
	}
}

// lookupExact and friends are the hot-path reads. Map lookups keyed by string(bytes) do not
// allocate.
func (t *routeTable) lookupExact(to []byte) peer {
	t.mu.RLock()
	c := t.exact[string(to)]
	t.mu.RUnlock()
	return c
}

func (t *routeTable) attached() []peer {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]peer, 0, len(t.children))
	for _, c := range t.children {
		out = append(out, c)
	}
	return out
}

func (t *routeTable) bySID(sid string) peer {
	t.mu.RLock()
	c := t.sids[sid]
	t.mu.RUnlock()
	return c
}

func (t *routeTable) child(id []byte) peer {
	t.mu.RLock()
	c := t.children[string(id)]
	t.mu.RUnlock()
	return c
}

// lookupPool finds the pool serving participant@host: the pool bound as participant@*.S where
// host is S or ends with ".S", most specific suffix first.
func (t *routeTable) lookupPool(participant, host []byte) (*pool, []peer) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	bySuffix := t.pools[string(participant)]
	if bySuffix == nil {
		return nil, nil
	}
	for h := host; len(h) > 0; {
		if p := bySuffix[string(h)]; p != nil && len(p.members) > 0 {
			return p, p.members
		}
		dot := indexByte(h, '.')
		if dot < 0 {
			break
		}
		h = h[dot+1:]
	}
	return nil, nil
}

// lookupCapabilities returns the providers that advertised every capability in caps.
func (t *routeTable) lookupCapabilities(caps []string) []peer {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(caps) == 0 {
		return nil
	}
	var out []peer
	for _, c := range t.caps[caps[0]] {
		ok := true
		for _, other := range caps[1:] {
			found := false
			for _, c2 := range t.caps[other] {
				if c2 == c {
					found = true
					break
				}
			}
			if !found {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ident().systemID < out[j].ident().systemID })
	return out
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// snapshot is the route table as the operator sees it (/stats).
type routeSnapshot struct {
	Children int                 `json:"children"`
	Exact    map[string]string   `json:"exact"`
	Pools    map[string][]string `json:"pools"`
	Caps     map[string][]string `json:"capabilities"`
}

func (t *routeTable) snapshot() routeSnapshot {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s := routeSnapshot{Children: len(t.children), Exact: map[string]string{}, Pools: map[string][]string{}, Caps: map[string][]string{}}
	for a, c := range t.exact {
		s.Exact[a] = c.ident().systemID
	}
	for _, bySuffix := range t.pools {
		for _, p := range bySuffix {
			for _, m := range p.members {
				s.Pools[p.key] = append(s.Pools[p.key], m.ident().systemID)
			}
		}
	}
	for name, providers := range t.caps {
		for key := range providers {
			addr, _, _ := strings.Cut(key, "\x00")
			s.Caps[name] = append(s.Caps[name], addr)
		}
		sort.Strings(s.Caps[name])
	}
	return s
}

func (t *routeTable) sizes() (children, exact, pools int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, b := range t.pools {
		pools += len(b)
	}
	return len(t.children), len(t.exact), pools
}

// poolsOf lists the pools p is a member of, with each pool's other members (replica drain:
// which pools a drained replica would leave empty).
func (t *routeTable) poolsOf(p peer) map[string][]peer {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out map[string][]peer
	for _, bySuffix := range t.pools {
		for _, pl := range bySuffix {
			in := false
			var others []peer
			for _, m := range pl.members {
				if m == p {
					in = true
				} else {
					others = append(others, m)
				}
			}
			if in {
				if out == nil {
					out = map[string][]peer{}
				}
				out[pl.key] = others
			}
		}
	}
	return out
}
