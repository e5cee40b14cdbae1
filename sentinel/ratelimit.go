package sentinel

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
)

// Rate limits on the calls a peer starts (limits.rate in the YAML, FAME_RATE_LIMIT_*): a token
// bucket per caller identity and one per target address. A request past either bucket is
// nacked RATE_LIMITED to its replyTo at once, with the retry hint in the reason
// ("retry_after_ms=N"; the reference's DeliveryAck has no retry field, and a reason is what
// every client already surfaces). Nothing waits: the caller's reader goes on to its next
// envelope, so other callers and the caller's own later calls are never held up. Credit flow
// is unaffected: credits are counted when an envelope is read (serve.go countCredit), before
// routing, so a refused request is credited back exactly like a forwarded one and the caller's
// window does not shrink.
//
// Only requests that start work are limited (startsWork): a SecureOpen, and a Data that asks
// for a reply or a stream, or is addressed to a logical address. Replies and stream items
// (a corrId, no reply rtype, addressed to a physical path such as __rpc__…@/sentinel/client)
// pass: a replica answering its calls must never be refused mid-stream because its clients
// are busy. Acks, heartbeats, key and control frames are never limited.
//
// The buckets are counted by this sentinel alone unless it is clustered with rate sharing
// (ratelimit_cluster.go): then each sentinel also charges its peers' consumption into its own
// buckets, so a caller spread over N sentinels gets its limit once, not N times.

// CodeRateLimited is the nack code of a request refused by a rate limit.
const CodeRateLimited = "RATE_LIMITED"

// Kinds of fame_rate_limited_total.
const (
	rateKindIdentity = "identity"
	rateKindAddress  = "address"
)

// RateSpec is one token bucket: Rate calls per second, Burst calls at once. A Rate of 0 means
// unlimited.
type RateSpec struct {
	Rate  float64
	Burst int
}

// RateRule limits calls by one key (the caller's identity, or the target address): Default
// for every key, Overrides for named ones (a Rate of 0 there exempts the key).
type RateRule struct {
	Default   RateSpec
	Overrides map[string]RateSpec
}

func (r RateRule) on() bool {
	if r.Default.Rate > 0 {
		return true
	}
	for _, o := range r.Overrides {
		if o.Rate > 0 {
			return true
		}
	}
	return false
}

// RateLimitOptions are the call rate limits (off when both rules are).
type RateLimitOptions struct {
	PerIdentity RateRule // by the caller's identity (rateIdentity)
	PerAddress  RateRule // by the envelope's to address
	// MaxEntries bounds each table of buckets created from a Default (least recently used
	// evicted): a peer spraying identities or addresses costs at most this many buckets.
	MaxEntries int
}

// withBurst fills in the default burst: one second's worth of calls, at least 1.
func (s RateSpec) withBurst() RateSpec {
	if s.Burst == 0 && s.Rate > 0 {
		s.Burst = max(1, int(math.Ceil(s.Rate)))
	}
	return s
}

func (o RateLimitOptions) validate() []string {
	var p []string
	check := func(what string, s RateSpec) {
		if s.Rate < 0 || math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) {
			p = append(p, fmt.Sprintf("limits.rate.%s.rate %v must be a number >= 0 (0: unlimited)", what, s.Rate))
		}
		if s.Burst < 0 {
			p = append(p, fmt.Sprintf("limits.rate.%s.burst %d must be >= 0 (0: one second's worth)", what, s.Burst))
		}
	}
	for name, r := range map[string]RateRule{"per_identity": o.PerIdentity, "per_address": o.PerAddress} {
		check(name, r.Default)
		for k, s := range r.Overrides {
			if k == "" {
				p = append(p, fmt.Sprintf("limits.rate.%s.overrides: an empty key", name))
			}
			check(name+".overrides["+strconv.Quote(k)+"]", s)
		}
	}
	if o.MaxEntries < 0 {
		p = append(p, fmt.Sprintf("limits.rate.max_entries %d must be positive", o.MaxEntries))
	}
	return p
}

// rateTable holds the buckets of one rule.
type rateTable struct {
	kind  string
	def   RateSpec
	fixed map[string]*rateEntry // overrides, built once; a nil limiter exempts the key
	lru   *lru.Cache[string, *rateEntry]
}

func newRateTable(kind string, r RateRule, maxEntries int) *rateTable {
	if !r.on() {
		return nil
	}
	t := &rateTable{kind: kind, def: r.Default.withBurst(), fixed: make(map[string]*rateEntry, len(r.Overrides))}
	for k, s := range r.Overrides {
		if s = s.withBurst(); s.Rate > 0 {
			t.fixed[k] = &rateEntry{Limiter: rate.NewLimiter(rate.Limit(s.Rate), s.Burst), kind: kind, key: k}
		} else {
			t.fixed[k] = nil
		}
	}
	if t.def.Rate > 0 {
		t.lru, _ = lru.New[string, *rateEntry](maxEntries)
	}
	return t
}

// limiter returns key's bucket, nil when key is not limited.
func (t *rateTable) limiter(key string) *rateEntry {
	if l, ok := t.fixed[key]; ok {
		return l
	}
	return t.fromDefault(key)
}

// limiterBytes is limiter for a key read from the envelope; an override costs no allocation.
func (t *rateTable) limiterBytes(key []byte) *rateEntry {
	if l, ok := t.fixed[string(key)]; ok {
		return l
	}
	if t.lru == nil {
		return nil
	}
	return t.fromDefault(string(key))
}

func (t *rateTable) fromDefault(key string) *rateEntry {
	if t.lru == nil {
		return nil
	}
	if l, ok := t.lru.Get(key); ok {
		return l
	}
	l := &rateEntry{Limiter: rate.NewLimiter(rate.Limit(t.def.Rate), t.def.Burst), kind: t.kind, key: key}
	if prev, found, _ := t.lru.PeekOrAdd(key, l); found {
		return prev // another reader created it first
	}
	return l
}

func (t *rateTable) len() int {
	if t == nil || t.lru == nil {
		return 0
	}
	return t.lru.Len()
}

// rateLimits applies both rules. It is nil when no rate limit is configured, so that the
// route path pays one nil check.
type rateLimits struct {
	ident, addr *rateTable // nil: that rule is off
	sec         *secLayer  // SPIFFE IDs of strict-overlay peers (nil-safe)
	limited     *prometheus.CounterVec
	log         *slog.Logger
	lastLog     atomic.Int64 // unix nanos of the last refusal logged
	held        atomic.Int64 // refusals not logged since then
	shareM      *rateShareMetrics
	shared      bool // consumption is shared with the cluster (ratelimit_cluster.go); set before serving

	// dirtyMu guards dirty: the entries whose used went from 0 since the last batch, so
	// that a batch costs what was used, not a walk of every bucket (ratelimit_cluster.go).
	dirtyMu sync.Mutex
	dirty   []*rateEntry
	// lastDropLog and heldDrops throttle the log of malformed batches from peers.
	lastDropLog atomic.Int64
	heldDrops   atomic.Int64
}

// rateEntry is one key's bucket and the tokens it consumed locally since the last batch
// published to the cluster (used stays 0 when the limits are not shared).
type rateEntry struct {
	*rate.Limiter
	used      atomic.Int64
	kind, key string // what the cluster batch names it by
}

func newRateLimits(o RateLimitOptions, sec *secLayer, log *slog.Logger, reg prometheus.Registerer) *rateLimits {
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_rate_limited_total",
		Help: "Requests nacked RATE_LIMITED, by the limit they ran into (identity: the caller's, address: the target's)."}, []string{"kind"})
	limited.WithLabelValues(rateKindIdentity)
	limited.WithLabelValues(rateKindAddress)
	reg.MustRegister(limited) // shown at 0 with limits off too, so dashboards need no special case
	n := o.MaxEntries
	if n <= 0 {
		n = config.DefaultRateMaxEntries
	}
	r := &rateLimits{ident: newRateTable(rateKindIdentity, o.PerIdentity, n), addr: newRateTable(rateKindAddress, o.PerAddress, n),
		sec: sec, limited: limited, log: log}
	if r.ident == nil && r.addr == nil {
		return nil
	}
	log.Info("rate limits on", "per_identity", o.PerIdentity.Default.withBurst(), "identity_overrides", len(o.PerIdentity.Overrides),
		"per_address", o.PerAddress.Default.withBurst(), "address_overrides", len(o.PerAddress.Overrides), "max_entries", n)
	return r
}

// startsWork reports whether an envelope starts work on its destination, which is what the
// rate limits count: a SecureOpen; a Data asking for a reply or stream; any other Data unless
// it answered a request routed to its sender (replied: a reply or stream item the sender owed).
// Whether a Data "looks like" a reply (corrId, a physical-path destination) does not matter:
// a node runs a Data with a replyTo whatever its rtype, so only the pending table can tell.
func startsWork(h *envelope.Header, replied bool) bool {
	switch string(h.FrameType) {
	case envelope.TypeSecureOpen:
		return true
	case envelope.TypeData:
		if h.RType.Has(envelope.RTypeReply) || h.RType.Has(envelope.RTypeStream) {
			return true
		}
		return !replied
	}
	return false
}

// rateIdentity is the identity the per-identity limit counts src under: the SPIFFE ID of its
// certificate (strict-overlay), else the subject of its access token or welcome ticket, else
// its system id. Computed once per connection (held on its reader goroutine).
func (r *rateLimits) rateIdentity(c *conn) string {
	if c.held.rateID != "" {
		return c.held.rateID
	}
	id := r.sec.spiffeID(c)
	if id == "" && c.principal != nil {
		id = c.principal.Subject
	}
	if id == "" {
		id = c.systemID
	}
	c.held.rateID = id
	return id
}

// check reports whether src may start the work of h on dest now; otherwise it returns the
// refusal's kind, nack reason and retry hint. On src's reader goroutine.
func (r *rateLimits) check(src *conn, h *envelope.Header, dest []byte, replied bool) (kind, reason string, retry time.Duration, ok bool) {
	if !startsWork(h, replied) {
		return "", "", 0, true
	}
	now := time.Now()
	var held *rate.Reservation
	var identLim, addrLim *rateEntry
	if r.ident != nil {
		if lim := r.ident.limiter(r.rateIdentity(src)); lim != nil {
			identLim = lim
			res := lim.ReserveN(now, 1)
			if d := res.DelayFrom(now); d > 0 || !res.OK() {
				res.CancelAt(now)
				return rateKindIdentity, fmt.Sprintf("RATE_LIMITED: this caller may start %g calls/s (burst %d); retry_after_ms=%d",
					float64(lim.Limit()), lim.Burst(), retryMs(d)), d, false
			}
			held = res
		}
	}
	if r.addr != nil && len(dest) > 0 {
		if lim := r.addr.limiterBytes(dest); lim != nil {
			addrLim = lim
			res := lim.ReserveN(now, 1)
			if d := res.DelayFrom(now); d > 0 || !res.OK() {
				res.CancelAt(now)
				if held != nil {
					held.CancelAt(now) // the caller's token is given back: this call did not start
				}
				return rateKindAddress, fmt.Sprintf("RATE_LIMITED: %s takes %g calls/s (burst %d); retry_after_ms=%d",
					dest, float64(lim.Limit()), lim.Burst(), retryMs(d)), d, false
			}
		}
	}
	if r.shared {
		// The call started: count it for the cluster (ratelimit_cluster.go); one atomic add
		// on the key's own entry, no lock, no NATS call.
		// The first use of an interval also puts the entry on the dirty list (a short lock
		// once per key per interval).
		if identLim != nil && identLim.used.Add(1) == 1 {
			r.markDirty(identLim)
		}
		if addrLim != nil && addrLim.used.Add(1) == 1 {
			r.markDirty(addrLim)
		}
	}
	return "", "", 0, true
}

// retryMs is the retry hint in whole milliseconds, rounded up, at least 1.
func retryMs(d time.Duration) int64 {
	if d <= 0 || d == rate.InfDuration {
		return 1000
	}
	return max(1, int64((d+time.Millisecond-1)/time.Millisecond))
}

// refused counts a refusal and logs it, at most one line a second for the whole sentinel (with
// the number of refusals held back since the last line), so a flood cannot flood the log.
func (r *rateLimits) refused(src *conn, kind string, h *envelope.Header, dest []byte, retry time.Duration) {
	r.limited.WithLabelValues(kind).Inc()
	now := time.Now().UnixNano()
	last := r.lastLog.Load()
	if now-last < int64(time.Second) || !r.lastLog.CompareAndSwap(last, now) {
		r.held.Add(1)
		return
	}
	r.log.Warn("rate limit: request nacked RATE_LIMITED (logged at most once a second)", "limit", kind,
		"peer", src.systemID, "remote", src.remote, "identity", src.held.rateID, "to", string(dest),
		"frame", string(h.FrameType), "retry_after", retry, "held_back", r.held.Swap(0))
}

// rateLimited applies the rate limits to a request from src to dest and nacks it
// RATE_LIMITED when it is past one; true when it was refused. dest is nil for capability
// routing (only the identity limit applies).
func (s *Sentinel) rateLimited(src *conn, h *envelope.Header, dest []byte, replied bool) bool {
	kind, reason, retry, ok := s.rate.check(src, h, dest, replied)
	if ok {
		return false
	}
	s.rate.refused(src, kind, h, dest, retry)
	s.dropWith(src, h, dest, CodeRateLimited, reason)
	return true
}

// spiffeID is the SPIFFE ID of c's certificate (strict-overlay), "" without one.
func (l *secLayer) spiffeID(c peer) string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	id := l.idents[c]
	l.mu.Unlock()
	if id == nil || id.SPIFFEID.IsZero() {
		return ""
	}
	return id.SPIFFEID.String()
}
