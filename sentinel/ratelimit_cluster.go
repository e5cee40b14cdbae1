package sentinel

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/cluster"
)

// Cluster-shared rate limits. Every sentinel keeps its own buckets (ratelimit.go) and counts,
// per key, the tokens its started calls took (rateEntry.used: one atomic add on the route
// path, no lock, no NATS call). Every RateShareInterval a goroutine swaps those counters to 0
// and publishes them (RateSharer, cluster/rate.go); each peer charges them into its own bucket
// for the key with ReserveN at the time of receipt, letting the bucket go into debt, so its
// next local calls wait out the cluster's consumption. A caller spread over N sentinels thus
// gets about its limit once: over T seconds, limit*T + burst + what one interval carries.

// RateShareInterval is how often a sentinel publishes its consumption.
const RateShareInterval = 100 * time.Millisecond

// maxChargeBursts bounds what one remote use may charge into a bucket (in bursts), so a
// confused peer cannot put a key into debt for hours.
const maxChargeBursts = 64

// RateSharer is what the sentinel uses of cluster.RateShare.
type RateSharer interface {
	PublishRate(uses []cluster.RateUse) error
	SubscribeRate(fn func(from string, uses []cluster.RateUse, err error)) (stop func(), err error)
}

// rateShareMetrics are fame_rate_shared_*_total (uses, i.e. key/token pairs, not messages).
type rateShareMetrics struct {
	published, received, dropped prometheus.Counter
}

func newRateShareMetrics(reg prometheus.Registerer) *rateShareMetrics {
	m := &rateShareMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_rate_shared_published_total",
			Help: "Rate-limit key consumptions published to the cluster."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_rate_shared_received_total",
			Help: "Rate-limit key consumptions received from peer sentinels and charged."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "fame_rate_shared_dropped_total",
			Help: "Rate batches dropped: malformed from a peer, or not published."}),
	}
	reg.MustRegister(m.published, m.received, m.dropped)
	return m
}

// share starts sharing r's consumption over sh until ctx ends; the publishing goroutine is
// counted in wg (the sentinel's, waited at shutdown). Before serving.
func (r *rateLimits) share(ctx context.Context, wg *sync.WaitGroup, sh RateSharer, reg prometheus.Registerer) error {
	r.shareM = newRateShareMetrics(reg)
	stop, err := sh.SubscribeRate(func(from string, uses []cluster.RateUse, err error) {
		if err != nil {
			r.shareM.dropped.Inc()
			r.dropLogged(from, err)
			return
		}
		r.charge(uses, time.Now())
	})
	if err != nil {
		return fmt.Errorf("rate sharing: %w", err)
	}
	r.shared = true
	wg.Add(1)
	go func() { // owned by the sentinel: exits when its context ends
		defer wg.Done()
		defer stop()
		t := time.NewTicker(RateShareInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if uses := r.collect(); len(uses) > 0 {
					if err := sh.PublishRate(uses); err != nil {
						r.shareM.dropped.Inc()
						r.log.Warn("rate sharing: publish failed", "err", err)
						continue
					}
					r.shareM.published.Add(float64(len(uses)))
				}
			}
		}
	}()
	return nil
}

// markDirty notes that e was used since the last batch.
func (r *rateLimits) markDirty(e *rateEntry) {
	r.dirtyMu.Lock()
	r.dirty = append(r.dirty, e)
	r.dirtyMu.Unlock()
}

// collect swaps the local consumption of every key used since the last batch to 0 and
// returns the non-zero ones. It walks only the dirty list: an entry whose used went from 0
// after the list was taken is on the next list, so no use is lost between batches.
func (r *rateLimits) collect() []cluster.RateUse {
	r.dirtyMu.Lock()
	dirty := r.dirty
	r.dirty = make([]*rateEntry, 0, len(dirty))
	r.dirtyMu.Unlock()
	var uses []cluster.RateUse
	for _, e := range dirty {
		if n := e.used.Swap(0); n > 0 {
			uses = append(uses, cluster.RateUse{Kind: e.kind, Key: e.key, Tokens: n})
		}
	}
	return uses
}

// dropLogged logs a malformed batch from a peer at most once a second, with the number of
// drops held back since the last line, so a confused peer cannot flood the log.
func (r *rateLimits) dropLogged(from string, err error) {
	now := time.Now().UnixNano()
	last := r.lastDropLog.Load()
	if now-last < int64(time.Second) || !r.lastDropLog.CompareAndSwap(last, now) {
		r.heldDrops.Add(1)
		return
	}
	r.log.Warn("rate sharing: malformed batch from the cluster dropped (logged at most once a second)",
		"from", from, "err", err, "held_back", r.heldDrops.Swap(0))
}

// charge takes the peers' consumption out of this sentinel's buckets at now, into debt.
func (r *rateLimits) charge(uses []cluster.RateUse, now time.Time) {
	for _, u := range uses {
		var t *rateTable
		switch u.Kind {
		case rateKindIdentity:
			t = r.ident
		case rateKindAddress:
			t = r.addr
		}
		if t == nil {
			continue // that rule is off here (a config difference between sentinels)
		}
		e := t.limiter(u.Key)
		if e == nil {
			continue // exempt here
		}
		if r.shareM != nil {
			r.shareM.received.Inc()
		}
		b := max(1, e.Burst())
		n := min(u.Tokens, int64(b)*maxChargeBursts)
		for n > 0 { // ReserveN refuses more than a burst at once
			k := min(n, int64(b))
			e.ReserveN(now, int(k))
			n -= k
		}
	}
}
