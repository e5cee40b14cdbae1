package sentinel

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/envelope"
)

// Graceful drain (SIGTERM in `fame sentinel`, POST /admin/drain, Sentinel.StartDrain).
//
// From the moment it starts: /readyz answers 503 (a load balancer stops sending new peers
// here); a new attach is refused with a reason (a WebSocket upgrade is closed with 1013 Try
// Again Later, a NodeAttach on a connection upgraded before the drain gets a negative
// NodeAttachAck with code DRAINING and the same close); a request that would start a new
// call (Data with replyTo, corrId and rtype REPLY or STREAM, or a SecureOpen) is nacked
// DRAINING to its replyTo at once, unless it is the re-send of a call already in flight on
// its destination. Everything else flows: replies, stream items, acks, heartbeats. When no
// request awaits its reply and every send queue is flushed, or at DrainTimeout, each client
// gets a SecureClose for every channel it holds (so that it re-opens them wherever it
// attaches next), the calls still open are nacked DRAINING, and every connection is closed
// with 1012 Service Restart and a reason asking the peer to re-attach. The HTTP endpoints
// answer throughout; Serve returns when the drain has finished.
//
// Why 1012 for the final close and 1013 for a refused attach: 1012 (Service Restart) says
// the server is going away for a restart and the client should reconnect, which it does
// through the load balancer to another sentinel (this one is not ready any more); 1013 (Try
// Again Later) says this server will not take the attach now, without implying it restarts.
// Both are "reconnect" codes to a WebSocket client, unlike 1008 (policy), which a client
// reads as "your request was wrong".

// clusterDrainSettle is how long a clustered sentinel's drain gives its peers to hear its
// draining heartbeat (sent at once, one hop over the cluster's routes) before it waits for
// the calls in flight.
const clusterDrainSettle = 250 * time.Millisecond

// CodeDraining is the nack code of a call refused because the sentinel is draining, and of an
// attach refused for the same reason.
const CodeDraining = "DRAINING"

const (
	// drainPoll is how often the drain looks at what is still in flight.
	drainPoll = 10 * time.Millisecond
	// drainFlush bounds the wait for the last replies, nacks and SecureCloses to leave the
	// send queues before the connections are closed.
	drainFlush = 2 * time.Second
	// drainCloseWait bounds the close handshakes at the end of the drain.
	drainCloseWait = 5 * time.Second

	closeReasonDrained  = "sentinel drained for a restart: re-attach (the load balancer sends you to another sentinel)"
	refuseAttachDrained = "sentinel is draining: attach to another sentinel"
	nackReasonDraining  = "sentinel is draining: call again (on another sentinel, after re-attaching)"
	nackReasonAbandoned = "sentinel drain timeout reached before the reply: call again (on another sentinel, after re-attaching)"
)

// drainPeer is what the drain needs of a connection beyond peer: how much it still has in
// flight, and the requests still awaiting their replies. *conn implements it; the unit tests'
// fakes do too.
type drainPeer interface {
	peer
	// awaiting is the number of requests routed to this peer that the drain waits for
	// (conn.awaiting: callers still attached, no opaque stream gone quiet).
	awaiting(now time.Time, live func(replyTo string) bool, sids map[string]bool) int
	// queuedBytes is what its send queue still holds (including a batch being written).
	queuedBytes() int64
	takePending() []pendingReq
}

func (c *conn) queuedBytes() int64 { return c.q.Bytes() }

// drainDeps is what the drainer is built with.
type drainDeps struct {
	timeout time.Duration
	log     *slog.Logger
	reg     prometheus.Registerer
	// peers lists the attached peers (routeTable.attached).
	peers func() []peer
	// live reports whether a reply to replyTo could still be delivered (Sentinel.reachable);
	// requests whose caller left are not waited for. nil: every request counts.
	live func(replyTo string) bool
	// closeChannels sends each client a SecureClose per channel it holds (stickyRouter).
	closeChannels func(reason string) int
	// refuse nacks a pending request to its replyTo (the Sentinel).
	refuse refuser
	// recent remembers refusals for the status page (nil: none).
	recent *refusalRing
}

// drainer holds the drain state and runs the wait. It has no pointer back to the Sentinel.
type drainer struct {
	drainDeps
	on      atomic.Bool
	startMu sync.Mutex // orders start against the first reader of started/done
	started chan struct{}
	done    chan struct{} // closed when the drain has finished (connections closed)
	// lastLog throttles the refusal log lines to one a second (unix nanos), held back counted.
	lastLog  atomic.Int64
	held     atomic.Int64
	total    atomic.Int64           // refusals of calls and attaches, for the final log line
	refusals *prometheus.CounterVec // fame_drain_refusals_total{reason}
	active   prometheus.Gauge       // fame_draining
	inflight prometheus.GaugeFunc   // fame_drain_in_flight
	finished *prometheus.CounterVec // fame_drains_total{result}
}

func newDrainer(d drainDeps) *drainer {
	if d.timeout <= 0 {
		d.timeout = 30 * time.Second
	}
	dr := &drainer{drainDeps: d, started: make(chan struct{}), done: make(chan struct{})}
	dr.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_drain_refusals_total",
		Help: "Requests (new_call), attaches (attach, node_attach) refused and calls abandoned at the drain timeout (abandoned) while draining."}, []string{"reason"})
	for _, r := range []string{"new_call", "attach", "node_attach", "abandoned"} {
		dr.refusals.WithLabelValues(r)
	}
	dr.active = prometheus.NewGauge(prometheus.GaugeOpts{Name: "fame_draining", Help: "1 while the sentinel drains (SIGTERM or POST /admin/drain)."})
	dr.inflight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fame_drain_in_flight", Help: "Requests routed and awaiting their reply, over all connections."},
		func() float64 { p, _ := dr.inFlight(); return float64(p) })
	dr.finished = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_drains_total",
		Help: "Finished drains by result: idle (nothing left in flight) or timeout (drain_timeout reached)."}, []string{"result"})
	if d.reg != nil {
		d.reg.MustRegister(dr.refusals, dr.active, dr.inflight, dr.finished)
	}
	return dr
}

// draining reports whether a drain has started; one atomic load, on the routing path.
func (d *drainer) draining() bool { return d.on.Load() }

// start begins the drain; false when it had begun already.
func (d *drainer) start() bool {
	d.startMu.Lock()
	defer d.startMu.Unlock()
	if !d.on.CompareAndSwap(false, true) {
		return false
	}
	d.active.Set(1)
	close(d.started)
	return true
}

// inFlight sums the requests worth waiting for and the bytes queued over every attached peer.
func (d *drainer) inFlight() (pending int, queued int64) {
	now := time.Now()
	for _, p := range d.peers() {
		if dp, ok := p.(drainPeer); ok {
			pending += dp.awaiting(now, d.live, nil)
			queued += dp.queuedBytes()
		}
	}
	return pending, queued
}

// waitIdle returns true once nothing is in flight and every queue is flushed, seen twice in a
// row a poll apart (a reply is cleared from its replica's pending set just before it enters
// the client's queue; the second look covers that step). False when stop closes or the
// deadline passes first.
func (d *drainer) waitIdle(deadline time.Time, stop <-chan struct{}) bool {
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	idleOnce := false
	for {
		p, q := d.inFlight()
		if p == 0 && q == 0 {
			if idleOnce {
				return true
			}
			idleOnce = true
		} else {
			idleOnce = false
		}
		if !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-stop:
			return false
		case <-t.C:
		}
	}
}

// run waits for the calls in flight (or the timeout), nacks what is left, sends the
// SecureCloses and returns once the queues are flushed (or drainFlush passed): the caller
// then closes the connections. stop ends it early (Shutdown).
func (d *drainer) run(stop <-chan struct{}) (idle bool) {
	start := time.Now()
	p, _ := d.inFlight()
	d.log.Info("draining: refusing new attaches and calls; waiting for the calls in flight",
		"in_flight", p, "timeout", d.timeout)
	idle = d.waitIdle(start.Add(d.timeout), stop)
	abandoned := 0
	if !idle {
		select {
		case <-stop:
			return false
		default:
		}
		for _, pr := range d.peers() {
			dp, ok := pr.(drainPeer)
			if !ok {
				continue
			}
			for _, r := range dp.takePending() {
				d.refuse.nackPending(r, CodeDraining, nackReasonAbandoned)
				abandoned++
			}
		}
		d.refusals.WithLabelValues("abandoned").Add(float64(abandoned))
	}
	closes := d.closeChannels("sentinel is draining: re-open the channel after re-attaching")
	// The nacks and SecureCloses are queued; give them a moment to reach the wire.
	d.waitIdle(time.Now().Add(drainFlush), stop)
	result := "idle"
	if !idle {
		result = "timeout"
	}
	d.finished.WithLabelValues(result).Inc()
	d.log.Info("drain finished; closing every connection", "result", result, "took", time.Since(start),
		"abandoned", abandoned, "secure_close_sent", closes, "refused", d.total.Load())
	return idle
}

// drainRefusalText is the status page's text for a drain refusal of what; the usual ones are
// constants, so that a flood of refusals allocates nothing for the page.
func drainRefusalText(what string) string {
	switch what {
	case "call":
		return "draining: call refused"
	case "attach":
		return "draining: attach refused"
	case "NodeAttach":
		return "draining: NodeAttach refused"
	}
	return "draining: " + what + " refused"
}

// refused counts a drain refusal and logs it naming the peer, at most once a second (with the
// number held back since the last line); the counter sees every one.
func (d *drainer) refused(reason, peerID, remote, what string, args ...any) {
	d.refusals.WithLabelValues(reason).Inc()
	d.total.Add(1)
	d.recent.add(reason, peerID, remote, drainRefusalText(what))
	now := time.Now().UnixNano()
	last := d.lastLog.Load()
	if now-last < int64(time.Second) || !d.lastLog.CompareAndSwap(last, now) {
		d.held.Add(1)
		return
	}
	d.log.Info("draining: "+what+" refused (logged at most once a second)",
		append([]any{"reason", reason, "peer", peerID, "remote", remote, "held_back", d.held.Swap(0)}, args...)...)
}

// newCall reports whether an envelope would start a call: a request expecting a reply or a
// stream (Data with replyTo and corrId), or a channel open. Replies carry rtype ACK at most,
// so they are never new calls.
func newCall(h *envelope.Header) bool {
	if len(h.ReplyTo) == 0 || len(h.CorrID) == 0 || len(h.ID) == 0 {
		return false
	}
	switch string(h.FrameType) {
	case envelope.TypeData:
		return h.RType.Has(envelope.RTypeReply) || h.RType.Has(envelope.RTypeStream)
	case envelope.TypeSecureOpen:
		return true
	}
	return false
}

// isPending reports whether corrID is a request already awaiting its reply on c (an
// at-least-once re-send of a call in flight).
func (c *conn) isPending(corrID []byte) bool {
	c.pendMu.Lock()
	_, ok := c.pending[string(corrID)]
	c.pendMu.Unlock()
	return ok
}

// refuseDraining nacks a new call DRAINING while the sentinel drains. dst is the resolved
// destination (nil for capability routing): the re-send of a call already in flight there
// is not new, and is forwarded.
func (s *Sentinel) refuseDraining(src, dst *conn, h *envelope.Header, dest []byte) bool {
	if !s.drain.draining() || !newCall(h) || (dst != nil && dst.isPending(h.CorrID)) {
		return false
	}
	s.drain.refused("new_call", src.systemID, src.remote, "call", "to", string(dest), "frame", string(h.FrameType))
	s.dropWith(src, h, dest, CodeDraining, nackReasonDraining)
	return true
}

// refuseDrainingUpgrade completes a WebSocket upgrade that arrived during the drain and
// closes it with 1013 and the reason (plain HTTP gets 503 with the reason).
func (s *Sentinel) refuseDrainingUpgrade(w http.ResponseWriter, r *http.Request, urlID string) {
	s.drain.refused("attach", urlID, r.RemoteAddr, "attach")
	if r.Header.Get("Upgrade") == "" {
		w.Header().Set("Retry-After", "1")
		http.Error(w, refuseAttachDrained, http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, s.acceptOptions(r))
	if err != nil {
		return
	}
	_ = ws.Close(websocket.StatusTryAgainLater, refuseAttachDrained)
}

// drainAttachRefusal is the refusal of a NodeAttach read after the drain started.
func (s *Sentinel) drainAttachRefusal(c *conn) error {
	if !s.drain.draining() {
		return nil
	}
	s.drain.refused("node_attach", c.urlID, c.remote, "NodeAttach")
	return &attachRefusal{code: CodeDraining, reason: refuseAttachDrained}
}

// attachCloseCode is the WebSocket close code of a refused attach: 1013 for a drain, so that
// the client reconnects (elsewhere), else 1008.
func attachCloseCode(err error) websocket.StatusCode {
	if attachCode(err) == CodeDraining {
		return websocket.StatusTryAgainLater
	}
	return websocket.StatusPolicyViolation
}

// StartDrain begins a graceful drain (see the top of drain.go) and returns at once; false
// when a drain or a shutdown had begun already. Serve returns once the drain has finished.
func (s *Sentinel) StartDrain(why string) bool {
	select {
	case <-s.drainCh: // Shutdown has begun: nothing left to drain
		return false
	default:
	}
	if !s.drain.start() {
		return false
	}
	s.log.Info("drain started", "why", why, "timeout", s.drain.timeout)
	if s.cl != nil {
		// Peers stop placing pins on this sentinel's replicas and move the sessions pinned
		// there (cluster_repin.go); the member leaves (bye, lame duck) after the drain.
		s.cl.bus.SetDraining(true)
	}
	// The drain goroutine is the Sentinel's; it is not counted in s.wg because it ends by
	// calling shutdown, which waits for s.wg. It ends at the latest after the drain timeout,
	// drainFlush and drainCloseWait, and at once (after a no-op shutdown) when Shutdown has
	// begun meanwhile (drainCh).
	go func() {
		defer close(s.drain.done)
		if s.cl != nil {
			// A call a peer routed here before it heard the draining heartbeat may still be
			// on its way: waiting for the calls in flight starts once it has arrived.
			select {
			case <-time.After(clusterDrainSettle):
			case <-s.drainCh:
			}
		}
		s.drain.run(s.drainCh)
		ctx, cancel := context.WithTimeout(context.Background(), drainCloseWait)
		defer cancel()
		s.shutdown(ctx, websocket.StatusServiceRestart, closeReasonDrained)
	}()
	return true
}

// Drain starts a drain (or joins the one running) and waits until it has finished or ctx ends.
func (s *Sentinel) Drain(ctx context.Context) error {
	s.StartDrain("Drain")
	select {
	case <-s.Drained():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Drained is closed once a drain has finished and the connections are closed (or the close
// handshakes timed out).
func (s *Sentinel) Drained() <-chan struct{} { return s.drain.done }

// Draining reports whether a drain (or a shutdown) has started.
func (s *Sentinel) Draining() bool { return s.drain.draining() || s.draining.Load() }

// handleDrain is POST /admin/drain. A request that can stop the sentinel is refused unless an
// admin token is configured (the admin wrapper then checks it): with no token, anyone who can
// reach the port could take the sentinel out of service.
func (s *Sentinel) handleDrain(w http.ResponseWriter, r *http.Request) {
	if s.opts.AdminToken == "" {
		s.limits.refused(limitAdminToken, "", r.RemoteAddr, "admin endpoint refused", "path", r.URL.Path,
			"reason", "POST /admin/drain needs an admin token configured")
		http.Error(w, "POST /admin/drain is disabled: no admin token is configured (FAME_ADMIN_TOKEN); send SIGTERM instead", http.StatusForbidden)
		return
	}
	started := s.StartDrain("POST /admin/drain from " + r.RemoteAddr)
	p, _ := s.drain.inFlight()
	w.Header().Set("Content-Type", "application/json")
	status := http.StatusAccepted
	if !started {
		status = http.StatusOK // already draining
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"draining": true, "started": started, "inFlight": p,
		"timeout": s.drain.timeout.String()})
}

// closeAllChannels sends every attached client a SecureClose for each channel it holds (the
// channel bindings of the stickiness table), at the end of a drain: the client re-opens them
// wherever it re-attaches instead of sending ciphertext for a channel no one there knows. The
// bindings themselves stay (and stay persisted): a restarted sentinel restores them.
func (r *stickyRouter) closeAllChannels(reason string) int {
	if r.table == nil {
		return 0
	}
	closes := 0
	for _, b := range r.table.Snapshot() {
		if b.ChannelID == "" {
			continue
		}
		client := r.routes.bySID(b.ClientSID)
		if client == nil || client.closed() {
			continue
		}
		if r.sendSecureClose(client, b.ChannelID, reason) {
			closes++
		}
	}
	r.metrics.secureCloses.Add(float64(closes))
	return closes
}
