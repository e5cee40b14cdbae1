package admit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// RenewFraction is the part of a credential's lifetime after which it is
// replaced: a token, ticket or certificate obtained at t0 and valid until t1
// is renewed from t0 + 2/3·(t1-t0) on. The remaining third leaves room for a
// slow or failing service: until t1 the old value is still served.
const (
	renewNum = 2
	renewDen = 3
)

// failureBackoff is how long a failed renewal is not retried while the
// current value is still valid, so a down service is not hammered by every
// caller.
const failureBackoff = time.Second

// lease is one credential with the local-clock window it is good for.
type lease[T any] struct {
	val     T
	start   time.Time // when we obtained it (local clock)
	expires time.Time // local clock
}

func (l *lease[T]) renewAt() time.Time {
	life := l.expires.Sub(l.start)
	if life <= 0 {
		return l.start
	}
	return l.start.Add(life * renewNum / renewDen)
}

// flight is one fetch in progress; done is closed when l/err are set.
type flight[T any] struct {
	done chan struct{}
	l    *lease[T]
	err  error
}

// renewer caches a credential and fetches a new one single-flight when the
// current one has passed its renewal point. Safe for concurrent use.
type renewer[T any] struct {
	what string // for error messages: "access token", "welcome grant", ...
	// fetch obtains a new value and its absolute expiry; start is the local
	// time the fetch began (passed in so tests with a fake clock agree).
	fetch   func(ctx context.Context, start time.Time) (T, time.Time, error)
	now     func() time.Time
	timeout time.Duration // bounds one fetch, independent of the callers

	mu       sync.Mutex
	cur      *lease[T]
	inflight *flight[T]
	failedAt time.Time
	lastErr  error
	gen      uint64 // bumped by invalidate so a stale flight is not stored
}

func newRenewer[T any](what string, now func() time.Time, timeout time.Duration,
	fetch func(ctx context.Context, start time.Time) (T, time.Time, error)) *renewer[T] {
	if now == nil {
		now = time.Now
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &renewer[T]{what: what, fetch: fetch, now: now, timeout: timeout}
}

// get returns the cached value, renewing it first when due. A renewal that
// fails while the old value is still valid is not an error: the old value is
// returned and the renewal retried after failureBackoff.
func (r *renewer[T]) get(ctx context.Context) (T, error) {
	var zero T
	r.mu.Lock()
	now := r.now()
	cur := r.cur
	valid := cur != nil && now.Before(cur.expires)
	if cur != nil && now.Before(cur.renewAt()) {
		r.mu.Unlock()
		return cur.val, nil
	}
	if valid && r.inflight == nil && !r.failedAt.IsZero() && now.Sub(r.failedAt) < failureBackoff {
		r.mu.Unlock()
		return cur.val, nil
	}
	f := r.inflight
	if f == nil {
		f = &flight[T]{done: make(chan struct{})}
		r.inflight = f
		// The fetch runs on its own goroutine under its own timeout so that
		// one caller giving up does not fail the others waiting on it; it
		// always ends within r.timeout.
		go r.run(context.WithoutCancel(ctx), f, now, r.gen)
	}
	r.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		if valid {
			return cur.val, nil
		}
		return zero, fmt.Errorf("admit: waiting for %s: %w", r.what, ctx.Err())
	}
	if f.err != nil {
		if valid && r.now().Before(cur.expires) {
			return cur.val, nil
		}
		return zero, f.err
	}
	return f.l.val, nil
}

func (r *renewer[T]) run(ctx context.Context, f *flight[T], start time.Time, gen uint64) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, exp, err := r.fetch(ctx, start)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		f.err = fmt.Errorf("admit: obtaining %s: %w", r.what, err)
		r.failedAt, r.lastErr = r.now(), f.err
	} else {
		f.l = &lease[T]{val: v, start: start, expires: exp}
		if gen == r.gen {
			r.cur = f.l
		}
		r.failedAt, r.lastErr = time.Time{}, nil
	}
	if r.inflight == f {
		r.inflight = nil
	}
	close(f.done)
}

// invalidate drops the cached value: the next get fetches a new one. Used
// when a service refuses a credential we still thought valid (its issuer
// restarted with a new key, for example).
func (r *renewer[T]) invalidate() {
	r.mu.Lock()
	r.cur = nil
	r.inflight = nil // a flight already under way may carry the refused value
	r.failedAt = time.Time{}
	r.gen++
	r.mu.Unlock()
}

// state reports the cached lease (zero values when none) and the last
// renewal error, for diagnostics and tests.
func (r *renewer[T]) state() (start, renewAt, expires time.Time, lastErr error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil {
		start, renewAt, expires = r.cur.start, r.cur.renewAt(), r.cur.expires
	}
	return start, renewAt, expires, r.lastErr
}
