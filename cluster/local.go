package cluster

import "github.com/fame-go/fame/stickiness"

// LocalStore is the BindingStore of a sentinel without a cluster: today's
// stickiness.Table (with its bbolt write-behind when the caller attached
// one) behind the cluster interface, so the sentinel has one code path.
// Behaviour is exactly the table's: sliding idle TTLs, LRU bound, purge by
// replica (through the table, which the caller keeps). There is no other
// sentinel, so Watch never fires and every write wins at once: done is
// called on the caller's goroutine before the method returns.
type LocalStore struct {
	t        *stickiness.Table
	sentinel string
}

// NewLocalStore wraps t; sentinelID is reported as every binding's Sentinel.
func NewLocalStore(t *stickiness.Table, sentinelID string) *LocalStore {
	return &LocalStore{t: t, sentinel: sentinelID}
}

// Table returns the wrapped table (PurgeReplica, SessionsOn, Stats).
func (s *LocalStore) Table() *stickiness.Table { return s.t }

// Lookup implements BindingStore; it slides the binding's idle TTL.
func (s *LocalStore) Lookup(k Kind, id string) (Binding, bool) {
	var r string
	var ok bool
	switch k {
	case Session:
		r, ok = s.t.Lookup(id)
	case Channel:
		r, ok = s.t.LookupChannel(id)
	}
	if !ok {
		return Binding{}, false
	}
	return Binding{Replica: r, Sentinel: s.sentinel}, true
}

// Create implements BindingStore. Like the sentinel's pick today, the
// look-up and the bind are two steps: one process, the last bind wins.
func (s *LocalStore) Create(k Kind, id string, b Binding, done func(Result)) (Binding, bool) {
	if !validKey(k, id) || b.Replica == "" {
		report(done, Result{Binding: b, Err: ErrBadKey})
		return Binding{}, false
	}
	if cur, ok := s.Lookup(k, id); ok {
		report(done, Result{Binding: cur})
		return cur, false
	}
	s.bind(k, id, b)
	report(done, Result{Binding: b, Won: true})
	return b, true
}

// Update implements BindingStore: a re-pin, unconditional (one writer).
func (s *LocalStore) Update(k Kind, id string, b Binding, _ uint64, done func(Result)) {
	if !validKey(k, id) || b.Replica == "" {
		report(done, Result{Binding: b, Err: ErrBadKey})
		return
	}
	s.bind(k, id, b)
	report(done, Result{Binding: b, Won: true})
}

func (s *LocalStore) bind(k Kind, id string, b Binding) {
	if k == Session {
		s.t.Bind(id, b.Replica, 0)
	} else {
		s.t.BindChannel(id, b.Client, b.Replica)
	}
}

// Delete implements BindingStore.
func (s *LocalStore) Delete(k Kind, id string) {
	switch k {
	case Session:
		s.t.Unbind(id)
	case Channel:
		s.t.UnbindChannel(id)
	}
}

// Watch implements BindingStore: no other sentinel ever changes a binding.
func (s *LocalStore) Watch(func(Event)) (stop func()) { return func() {} }

// Close implements BindingStore; the table and its store belong to the caller.
func (s *LocalStore) Close() error { return nil }

func report(done func(Result), r Result) {
	if done != nil {
		done(r)
	}
}
