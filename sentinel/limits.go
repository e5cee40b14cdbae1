package sentinel

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/fame-go/fame/internal/wsengine"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
)

// CodeLimitExceeded is the ack code of a control frame refused because the connection holds
// as many routes, capability entries or keys as it may.
const CodeLimitExceeded = "LIMIT_EXCEEDED"

// Reasons of fame_limit_refusals_total. One label set per limit, so an operator sees which
// bound a hostile (or merely busy) peer ran into.
const (
	limitQueue        = wsengine.RefusedFull   // the destination's queue is full: the sender is nacked
	limitQueueFair    = wsengine.RefusedShare  // one sender holds most of a busy destination's queue
	limitGlobalQueue  = wsengine.RefusedGlobal // all queues together hold GlobalQueueBytes
	limitSlowConsumer = "slow_consumer"        // a peer took nothing for SlowConsumerTimeout and was cut
	limitRoutes       = "routes"               // AddressBind past MaxRoutes
	limitCapabilities = "capabilities"         // CapabilityAdvertise past MaxCapabilities
	limitKeys         = "keys"                 // keys past MaxKeys
	limitPending      = "pending"              // a request past MaxPending awaiting replies on its destination
	limitConnections  = "connections"          // upgrade past MaxConnections
	limitAttachRate   = "attach_rate"          // attach attempts from one address past the rate
	limitAdminToken   = "admin_token"          // an admin endpoint without the right bearer token
)

var allLimitReasons = []string{limitQueue, limitQueueFair, limitGlobalQueue, limitSlowConsumer, limitRoutes,
	limitCapabilities, limitKeys, limitPending, limitConnections, limitAttachRate, limitAdminToken}

// defaultGlobalQueueBytes is a quarter of the Go memory limit when one is set (GOMEMLIMIT), else
// 1 GiB: queued envelopes may take a share of the memory, never all of it.
func defaultGlobalQueueBytes() int64 {
	if lim := debug.SetMemoryLimit(-1); lim > 0 && lim != math.MaxInt64 {
		return lim / 4
	}
	return config.DefaultGlobalQueueBytesNoLimit
}

func (o *Options) validateLimits() []string {
	var p []string
	positive := func(field string, v int64) {
		if v <= 0 {
			p = append(p, fmt.Sprintf("limits.%s %d must be positive", field, v))
		}
	}
	if o.SendQueueBytes < 2*envelope.MaxMessageSize {
		// One sender may hold half a queue: a largest envelope must fit in that half.
		p = append(p, fmt.Sprintf("limits.send_queue_bytes %d is below %d (twice the largest envelope)", o.SendQueueBytes, 2*envelope.MaxMessageSize))
	}
	positive("global_queue_bytes", o.GlobalQueueBytes)
	positive("max_routes", int64(o.MaxRoutes))
	positive("max_capabilities", int64(o.MaxCapabilities))
	positive("max_keys", int64(o.MaxKeys))
	positive("max_pending", int64(o.MaxPending))
	positive("max_connections", int64(o.MaxConnections))
	positive("attach_burst", int64(o.AttachBurst))
	if o.AttachRate <= 0 || math.IsNaN(o.AttachRate) || math.IsInf(o.AttachRate, 0) {
		p = append(p, fmt.Sprintf("limits.attach_rate %v must be a positive number", o.AttachRate))
	}
	if o.SlowConsumerTimeout <= 0 {
		p = append(p, "limits.slow_consumer_timeout_ms must be positive")
	}
	p = append(p, o.RateLimits.validate()...)
	if o.AdminToken != "" && len(o.AdminToken) < config.MinAdminTokenLength {
		p = append(p, fmt.Sprintf("admin.token (FAME_ADMIN_TOKEN) is shorter than %d characters", config.MinAdminTokenLength))
	}
	return p
}

// limiter holds the sentinel-wide bounds: the connection count and the attach rate per remote
// address. Per-connection bounds live on the connection (conn.go; the send queue is internal/wsengine.Queue).
type limiter struct {
	// cur holds the limits.* settings; a hot reload swaps it whole (setOptions), so a reader
	// sees one consistent set and pays one atomic load, no lock.
	cur      atomic.Pointer[Options]
	log      *slog.Logger
	refusals *prometheus.CounterVec // fame_limit_refusals_total{reason}
	recent   *refusalRing           // the status page's last refusals; nil records nothing
	conns    atomic.Int64           // upgrades in progress or served, attached or not
	queued   atomic.Int64           // bytes queued across every connection
	attempts *lru.Cache[string, *rate.Limiter]
}

// maxRateEntries bounds the per-address limiter table; an address evicted from it starts with a
// full bucket again, which costs an attacker nothing it could not get from a fresh address.
const maxRateEntries = 65536

func newLimiter(opts Options, log *slog.Logger, refusals *prometheus.CounterVec) *limiter {
	c, _ := lru.New[string, *rate.Limiter](maxRateEntries)
	l := &limiter{log: log, refusals: refusals, attempts: c}
	l.cur.Store(&opts)
	return l
}

// o returns the limits in force.
func (l *limiter) o() *Options { return l.cur.Load() }

// setOptions puts new limits in force (a hot reload). The per-address attach-rate buckets
// are made with the rate they were created under, so a changed rate or burst starts every
// address with a fresh bucket of the new size.
func (l *limiter) setOptions(o Options) {
	old := l.cur.Swap(&o)
	if old.AttachRate != o.AttachRate || old.AttachBurst != o.AttachBurst {
		l.attempts.Purge()
	}
}

// refused counts and logs one refusal; the caller puts the reason on the wire.
func (l *limiter) refused(reason string, peer, remote string, msg string, args ...any) {
	l.refusals.WithLabelValues(reason).Inc()
	l.recent.add(reason, peer, remote, msg)
	l.log.Warn("limit: "+msg, append([]any{"limit", reason, "peer", peer, "remote", remote}, args...)...)
}

// admitUpgrade applies the connection cap and the attach rate before the WebSocket upgrade, so
// a refused attempt costs no more than its HTTP request. The release func undoes the count.
func (l *limiter) admitUpgrade(w http.ResponseWriter, r *http.Request, urlID string) (release func(), ok bool) {
	o := l.o()
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); o.AttachRateLoopback || ip == nil || !ip.IsLoopback() {
		lim, found := l.attempts.Get(host)
		if !found {
			lim = rate.NewLimiter(rate.Limit(o.AttachRate), o.AttachBurst)
			l.attempts.Add(host, lim)
		}
		if !lim.Allow() {
			reason := fmt.Sprintf("attach rate limit: more than %g attempts/s from %s", o.AttachRate, host)
			l.refused(limitAttachRate, urlID, r.RemoteAddr, "attach refused", "rate", o.AttachRate, "burst", o.AttachBurst)
			w.Header().Set("Retry-After", "1")
			http.Error(w, reason, http.StatusTooManyRequests)
			return nil, false
		}
	}
	if n := l.conns.Add(1); n > int64(o.MaxConnections) {
		l.conns.Add(-1)
		reason := fmt.Sprintf("connection limit: the sentinel serves %d connections", o.MaxConnections)
		l.refused(limitConnections, urlID, r.RemoteAddr, "attach refused", "max_connections", o.MaxConnections)
		w.Header().Set("Retry-After", "5")
		http.Error(w, reason, http.StatusServiceUnavailable)
		return nil, false
	}
	return func() { l.conns.Add(-1) }, true
}

// heldLimits is what one connection holds in the route table, counted against MaxRoutes and
// MaxCapabilities. Only the connection's reader goroutine (handleControl) touches it.
type heldLimits struct {
	routes map[string]struct{} // addresses bound: exact routes and pool memberships
	caps   map[string]struct{} // address + "\x00" + capability
	rateID string              // the identity the rate limits count this connection under (ratelimit.go)
}

// holdRoute counts address a for c, or reports false when c holds MaxRoutes already. A
// re-bind of an address c holds costs nothing.
func (l *limiter) holdRoute(c *conn, a string) bool {
	h := &c.held
	if _, ok := h.routes[a]; ok {
		return true
	}
	if lim := l.o().MaxRoutes; len(h.routes) >= lim {
		l.refused(limitRoutes, c.systemID, c.remote, "AddressBind refused", "address", a, "max_routes", lim)
		return false
	}
	if h.routes == nil {
		h.routes = map[string]struct{}{}
	}
	h.routes[a] = struct{}{}
	return true
}

func (h *heldLimits) dropRoute(a string) { delete(h.routes, a) }

// holdCaps counts the (address, capability) entries of an advertisement for c, all or none.
func (l *limiter) holdCaps(c *conn, address string, caps []string) bool {
	h := &c.held
	fresh := 0
	for _, name := range caps {
		if _, ok := h.caps[address+"\x00"+name]; !ok {
			fresh++
		}
	}
	if lim := l.o().MaxCapabilities; len(h.caps)+fresh > lim {
		l.refused(limitCapabilities, c.systemID, c.remote, "CapabilityAdvertise refused",
			"address", address, "entries", len(caps), "max_capabilities", lim)
		return false
	}
	if h.caps == nil {
		h.caps = map[string]struct{}{}
	}
	for _, name := range caps {
		h.caps[address+"\x00"+name] = struct{}{}
	}
	return true
}

func (h *heldLimits) dropCaps(address string, caps []string) {
	for _, name := range caps {
		delete(h.caps, address+"\x00"+name)
	}
}

// errKeyLimit refuses keys past MaxKeys for one connection.
var errKeyLimit = errors.New("key limit")

// checkKeys is called by the key directory before it stores keys for c: fresh is how many of
// them c does not hold yet.
func (l *limiter) checkKeys(c peer, fresh int) error {
	if held, lim := int(c.keyCount().Load()), l.o().MaxKeys; held+fresh > lim {
		id := c.ident()
		l.refused(limitKeys, id.urlID, id.remote, "keys refused", "held", held, "offered", fresh, "max_keys", lim)
		return fmt.Errorf("%w: %d keys would exceed the limit of %d per connection", errKeyLimit, held+fresh, lim)
	}
	return nil
}

// overloaded counts a queue refusal, and logs it at most once a second per destination: a
// flood must not turn into a flood of log lines.
func (c *conn) overloaded(why string, src *conn, h *envelope.Header) {
	c.limits.refusals.WithLabelValues(why).Inc()
	// The destination goes in its own field: a reason built per refusal would allocate on
	// every envelope of a flood.
	c.limits.recent.addTo(why, senderID(src), senderRemote(src), c.systemID, "envelope refused, sender nacked OVERLOADED")
	now := time.Now().UnixNano()
	last := c.lastRefusal.Load()
	if now-last < int64(time.Second) || !c.lastRefusal.CompareAndSwap(last, now) {
		return
	}
	args := []any{"limit", why, "peer", c.systemID, "remote", c.remote, "queued", c.q.Len(), "queued_bytes", c.q.Bytes()}
	if src != nil {
		args = append(args, "sender", src.systemID, "sender_remote", src.remote)
	}
	if h != nil {
		args = append(args, "frame", string(h.FrameType))
	}
	c.limits.log.Warn("limit: envelope refused, sender nacked OVERLOADED (logged once a second)", args...)
}

// overloadReason is the nack reason for a queue refusal.
func overloadReason(why, dest string) string {
	switch why {
	case limitQueueFair:
		return "OVERLOADED: this sender holds its share of the send queue of " + dest
	case limitGlobalQueue:
		return "OVERLOADED: the sentinel's send queues are full"
	case limitPending:
		return "OVERLOADED: " + dest + " has too many requests open"
	}
	return "OVERLOADED: the send queue of " + dest + " is full"
}

// streamEnded reports whether a reply is the final item of a stream: a JSON-RPC response whose
// result is null, or an error. An encrypted payload cannot be read; its stream stays tracked
// until the replica leaves or the stream goes quiet (forgetStaleStreams).
func streamEnded(msg []byte) bool {
	var e struct {
		Frame struct {
			Payload json.RawMessage `json:"payload"`
		} `json:"frame"`
	}
	if json.Unmarshal(msg, &e) != nil || len(e.Frame.Payload) == 0 || e.Frame.Payload[0] != '{' {
		return false
	}
	var r struct {
		Result json.RawMessage `json:"result"` // a JSON null arrives as "null", absence as nil
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(e.Frame.Payload, &r) != nil {
		return false
	}
	if len(r.Error) > 0 && string(r.Error) != "null" {
		return true
	}
	return string(r.Result) == "null"
}

// staleStream is how long a stream whose end cannot be seen (encrypted replies) stays tracked
// after its last item.
const staleStream = 2 * time.Minute

// forgetStaleStreams drops stream entries quiet for staleStream, so that streams whose final
// item is encrypted do not fill the pending table.
func (c *conn) forgetStaleStreams(now time.Time) {
	limit := now.Add(-staleStream).UnixMilli()
	c.pendMu.Lock()
	for k, p := range c.pending {
		if p.stream && p.seen < limit {
			delete(c.pending, k)
		}
	}
	c.pendMu.Unlock()
}

// nackOverloaded answers a request refused by a bound with a negative DeliveryAck OVERLOADED to
// its sender (SecureAccept{ok:false} for SecureOpen), like drop; anything without a reply
// address is dropped, counted under its limit already.
func (s *Sentinel) nackOverloaded(src *conn, h *envelope.Header, dest []byte, reason string) {
	s.metrics.nacks.WithLabelValues(envelope.CodeOverloaded).Inc()
	ft := string(h.FrameType)
	if len(h.ID) == 0 || len(h.ReplyTo) == 0 || len(h.CorrID) == 0 ||
		(ft != envelope.TypeData && ft != envelope.TypeSecureOpen) {
		return
	}
	s.nackPending(pendingReq{id: string(h.ID), traceID: string(h.TraceID), replyTo: string(h.ReplyTo),
		to: string(dest), frameType: ft, corrID: string(h.CorrID), cid: string(h.FrameCID)}, envelope.CodeOverloaded, reason)
}

// message is the ack reason of a control frame refused by a per-connection bound.
func (l *limiter) message(which string) string {
	switch which {
	case limitRoutes:
		return fmt.Sprintf("limit exceeded: a connection may bind at most %d addresses", l.o().MaxRoutes)
	case limitCapabilities:
		return fmt.Sprintf("limit exceeded: a connection may advertise at most %d capability entries", l.o().MaxCapabilities)
	}
	return "limit exceeded: " + which
}

func (c *conn) pendingLen() int {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	return len(c.pending)
}

// quietStream is how long an opaque stream (its items sealed for a channel, so that its final
// item cannot be recognised) may be quiet before a drain stops waiting for it. A stream that is
// still producing sends items far more often; one that ended is quiet for good.
const quietStream = time.Second

// awaiting counts the requests routed to c that a drain must wait for, and adds the sid of
// each one's caller to sids when sids is not nil. Not counted: a request whose caller cannot
// be reached any more (live says no: the caller detached, so its reply has nobody to go to),
// and an opaque stream quiet for quietStream (most likely ended; its entry stays, so that the
// replica's death or the drain's end still nacks a stream that was in fact unfinished).
func (c *conn) awaiting(now time.Time, live func(replyTo string) bool, sids map[string]bool) int {
	quiet := now.Add(-quietStream).UnixMilli()
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	n := 0
	for _, p := range c.pending {
		if p.opaque && p.seen < quiet {
			continue
		}
		if live != nil && !live(p.all[p.end[1]:p.end[2]]) {
			continue
		}
		n++
		if sid := p.all[p.end[6]:p.end[7]]; sids != nil && sid != "" {
			sids[sid] = true // the caller's session, as the sticky table keys it
		}
	}
	return n
}

// maxPause bounds the back-off of a sender whose envelopes are refused.
const maxPause = 64 * time.Millisecond

// throttle back-pressures a sender whose envelope a full queue refused: its reader goroutine
// (the caller) waits before reading on, 1 ms after the first refusal, doubling up to maxPause
// while refusals continue, so that TCP pushes back on the sender and its flood costs the
// sentinel neither memory nor CPU. Only this sender waits; its next accepted envelope resets
// the back-off. Responses are not throttled: a replica answering one slow client must not
// answer its other clients late.
func (c *conn) throttle(h *envelope.Header) {
	if isReplyFrame(h) && !h.RType.Has(envelope.RTypeReply) && !h.RType.Has(envelope.RTypeStream) {
		return
	}
	if c.pause == 0 {
		c.pause = time.Millisecond
	} else if c.pause < maxPause {
		c.pause *= 2
	}
	t := time.NewTimer(c.pause)
	select {
	case <-t.C:
	case <-c.done:
		t.Stop()
	}
}
