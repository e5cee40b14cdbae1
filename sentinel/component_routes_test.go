package sentinel

import (
	"slices"
	"testing"

	"github.com/fame-go/fame/envelope"
)

// The route table with fake peers: no sockets, no Sentinel.

func TestRouteTableLookup(t *testing.T) {
	rt := newRouteTable()
	a, b, c, d := newFakePeer("/s", "a"), newFakePeer("/s", "b"), newFakePeer("/s", "c"), newFakePeer("/s", "d")
	for _, p := range []*fakePeer{a, b, c, d} {
		rt.attach(p)
	}
	rt.bind(a, mustAddr(t, "echo@fame.fabric"))
	rt.bind(b, mustAddr(t, "math@*.fame.fabric"))
	rt.bind(c, mustAddr(t, "math@*.fame.fabric"))
	rt.bind(c, mustAddr(t, "math@*.fame.fabric")) // a second bind does not add c twice
	rt.bind(d, mustAddr(t, "math@*.eu.fame.fabric"))

	exact := []struct {
		to   string
		want string
	}{
		{"echo@fame.fabric", "a"},
		{"math@fame.fabric", ""}, // a pool address is not an exact route
		{"nobody@fame.fabric", ""},
	}
	for _, tc := range exact {
		got := ""
		if p := rt.lookupExact([]byte(tc.to)); p != nil {
			got = p.ident().systemID
		}
		if got != tc.want {
			t.Errorf("lookupExact(%s) = %q, want %q", tc.to, got, tc.want)
		}
	}

	pools := []struct {
		participant, host string
		wantKey           string
		want              []string
	}{
		{"math", "fame.fabric", "math@*.fame.fabric", []string{"b", "c"}},
		{"math", "r1.fame.fabric", "math@*.fame.fabric", []string{"b", "c"}},
		{"math", "eu.fame.fabric", "math@*.eu.fame.fabric", []string{"d"}}, // most specific suffix first
		{"math", "x.eu.fame.fabric", "math@*.eu.fame.fabric", []string{"d"}},
		{"math", "other.net", "", nil},
		{"echo", "fame.fabric", "", nil},
	}
	for _, tc := range pools {
		p, members := rt.lookupPool([]byte(tc.participant), []byte(tc.host))
		key := ""
		if p != nil {
			key = p.key
		}
		if key != tc.wantKey || !slices.Equal(ids(members), orEmpty(tc.want)) {
			t.Errorf("lookupPool(%s, %s) = %q %v, want %q %v", tc.participant, tc.host, key, ids(members), tc.wantKey, tc.want)
		}
	}

	if got := rt.bySID(b.sid); got != peer(b) {
		t.Errorf("bySID(b) = %v", got)
	}
	if got := rt.child([]byte("c")); got != peer(c) {
		t.Errorf("child(c) = %v", got)
	}
	if !rt.sharePool(b, "c") || rt.sharePool(b, "d") || rt.sharePool(a, "b") {
		t.Error("sharePool: b and c share math@*.fame.fabric, b and d and a and b share nothing")
	}
	children, nExact, nPools := rt.sizes()
	if children != 4 || nExact != 1 || nPools != 2 {
		t.Errorf("sizes = %d %d %d, want 4 1 2", children, nExact, nPools)
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TestRouteTableReattach: a node that re-attaches on a new connection replaces the old one, and
// the old connection's late teardown leaves the new one's routes alone.
func TestRouteTableReattach(t *testing.T) {
	rt := newRouteTable()
	old, other := newFakePeer("/s", "r1"), newFakePeer("/s", "r2")
	rt.attach(old)
	rt.attach(other)
	rt.bind(old, mustAddr(t, "math@*.fame.fabric"))
	rt.bind(other, mustAddr(t, "math@*.fame.fabric"))
	rt.bind(old, mustAddr(t, "solo@fame.fabric"))

	fresh := newFakePeer("/s", "r1")
	if got := rt.attach(fresh); got != peer(old) {
		t.Fatalf("attach returned %v, want the replaced connection", got)
	}
	// attach removed every route of the old connection.
	if rt.lookupExact([]byte("solo@fame.fabric")) != nil {
		t.Error("the replaced connection's exact route survived")
	}
	if _, m := rt.lookupPool([]byte("math"), []byte("fame.fabric")); !slices.Equal(ids(m), []string{"r2"}) {
		t.Errorf("pool after replace = %v, want [r2]", ids(m))
	}
	rt.bind(fresh, mustAddr(t, "math@*.fame.fabric"))
	rt.bind(fresh, mustAddr(t, "solo@fame.fabric"))

	left, held := rt.detach(old) // the old connection's teardown arrives late
	if len(left) != 0 || held {
		t.Errorf("late detach of the replaced connection left pools %v, held %v", left, held)
	}
	if rt.child([]byte("r1")) != peer(fresh) || rt.bySID(fresh.sid) != peer(fresh) {
		t.Error("late detach removed the new connection")
	}
	if rt.lookupExact([]byte("solo@fame.fabric")) != peer(fresh) {
		t.Error("late detach removed the new connection's exact route")
	}

	left, held = rt.detach(fresh)
	if !slices.Equal(left, []string{"math@*.fame.fabric"}) || !held {
		t.Errorf("detach left %v (held %v), want [math@*.fame.fabric] (held)", left, held)
	}
	if _, m := rt.lookupPool([]byte("math"), []byte("fame.fabric")); !slices.Equal(ids(m), []string{"r2"}) {
		t.Errorf("pool after detach = %v, want [r2]", ids(m))
	}
	if rt.detach(other); len(rt.snapshot().Pools) != 0 {
		t.Errorf("an empty pool stayed: %v", rt.snapshot().Pools)
	}
}

// TestRouteTableUnbindOwnerOnly: unbind and withdraw remove only the caller's own entries.
func TestRouteTableUnbindOwnerOnly(t *testing.T) {
	rt := newRouteTable()
	a, b := newFakePeer("/s", "a"), newFakePeer("/s", "b")
	rt.attach(a)
	rt.attach(b)
	rt.bind(a, mustAddr(t, "x@fame.fabric"))
	rt.bind(a, mustAddr(t, "p@*.fame.fabric"))
	rt.bind(b, mustAddr(t, "p@*.fame.fabric"))

	steps := []struct {
		name      string
		do        func()
		wantExact string
		wantPool  []string
	}{
		{"b unbinds a's exact address", func() { rt.unbind(b, mustAddr(t, "x@fame.fabric")) }, "a", []string{"a", "b"}},
		{"b leaves the pool", func() { rt.unbind(b, mustAddr(t, "p@*.fame.fabric")) }, "a", []string{"a"}},
		{"a unbinds its address", func() { rt.unbind(a, mustAddr(t, "x@fame.fabric")) }, "", []string{"a"}},
		{"a leaves the pool", func() { rt.unbind(a, mustAddr(t, "p@*.fame.fabric")) }, "", []string{}},
	}
	for _, st := range steps {
		st.do()
		got := ""
		if p := rt.lookupExact([]byte("x@fame.fabric")); p != nil {
			got = p.ident().systemID
		}
		_, m := rt.lookupPool([]byte("p"), []byte("fame.fabric"))
		if got != st.wantExact || !slices.Equal(ids(m), st.wantPool) {
			t.Errorf("%s: exact %q pool %v, want %q %v", st.name, got, ids(m), st.wantExact, st.wantPool)
		}
	}
}

// TestRouteTableCapabilities: providers must have advertised every capability asked for, and
// one provider's entry never replaces another's.
func TestRouteTableCapabilities(t *testing.T) {
	rt := newRouteTable()
	a, b, c := newFakePeer("/s", "a"), newFakePeer("/s", "b"), newFakePeer("/s", "c")
	rt.advertise(a, "math@fame.fabric", []string{"add", "mul"})
	rt.advertise(b, "math@fame.fabric", []string{"add"}) // same address, another provider
	rt.advertise(c, "calc@fame.fabric", []string{"mul", "add"})
	cases := []struct {
		caps []string
		want []string
	}{
		{[]string{"add"}, []string{"a", "b", "c"}},
		{[]string{"add", "mul"}, []string{"a", "c"}},
		{[]string{"mul", "add"}, []string{"a", "c"}},
		{[]string{"div"}, []string{}},
		{nil, []string{}},
	}
	for _, tc := range cases {
		if got := ids(rt.lookupCapabilities(tc.caps)); !slices.Equal(got, tc.want) {
			t.Errorf("lookupCapabilities(%v) = %v, want %v", tc.caps, got, tc.want)
		}
	}
	rt.withdraw(b, "math@fame.fabric", []string{"add", "mul"}) // mul was never b's: no effect
	rt.withdraw(c, "math@fame.fabric", []string{"add"})        // not c's address: no effect
	if got := ids(rt.lookupCapabilities([]string{"add"})); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("after withdraw: %v, want [a c]", got)
	}
}

// TestRouteTableOwnership: the ownership checks (ownership.go) on the table, with live and
// closed holders.
func TestRouteTableOwnership(t *testing.T) {
	rt := newRouteTable()
	a, b, gone := newFakePeer("/s", "a"), newFakePeer("/s", "b"), newFakePeer("/s", "gone")
	for _, p := range []*fakePeer{a, b, gone} {
		rt.attach(p)
	}
	rt.bind(a, mustAddr(t, "x@fame.fabric"))
	rt.bind(a, mustAddr(t, "p@*.fame.fabric"))
	rt.bind(gone, mustAddr(t, "old@fame.fabric"))
	gone.close(1000, "test")

	cases := []struct {
		who      *fakePeer
		addr     string
		conflict bool
	}{
		{b, "x@fame.fabric", true},         // a's exact address
		{a, "x@fame.fabric", false},        // a's own
		{b, "p@r1.fame.fabric", true},      // inside a's live pool
		{b, "p@*.fame.fabric", false},      // joining the pool is not a conflict
		{b, "p@*.eu.fame.fabric", true},    // a narrower pool would shadow a's
		{b, "old@fame.fabric", false},      // its binder is closed
		{b, "inbox@/s/b", false},           // physical addresses are mayBind's
		{b, "other@elsewhere.net", false},  // nobody's
		{a, "p@*.eu.fame.fabric", false},   // shadowing only its own pool
		{b, "p@x.other.fame.net", false},   // outside the pool's domain
		{b, "q@r1.fame.fabric", false},     // another participant
		{b, "p@fame.fabric", true},         // the pool's bare domain
		{b, "x@fame.fabric/path", false},   // another exact address
		{gone, "x@fame.fabric", true},      // a closed node is refused too
		{b, "p@deep.r1.fame.fabric", true}, // nested host in the pool's domain
		{b, "p@*.fame.fabric.example", false},
	}
	for _, tc := range cases {
		a, err := envelope.ParseAddress(tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		if got := rt.conflict(tc.who, a) != ""; got != tc.conflict {
			t.Errorf("conflict(%s, %s) = %v, want %v", tc.who.systemID, tc.addr, got, tc.conflict)
		}
	}
}
