package sentinel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/balancer"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/corkconn"
	"github.com/fame-go/fame/stickiness"
	"github.com/fame-go/fame/tracing"
)

// Principal is what admission established about a connecting peer (nil under open admission).
type Principal struct {
	Subject    string
	SystemID   string
	InstanceID string   // when set, NodeAttach must carry the same instanceId
	Logicals   []string // logicals the token allows; nil means no restriction from admission

	// grant: direct profile with grants, checked at NodeAttach (admission_direct.go).
	grant *directGrant
}

// Authenticator checks a peer's credentials at upgrade time. The bearer token comes from
// `Sec-WebSocket-Protocol: bearer,<token>` or `Authorization: Bearer <token>`.
type Authenticator interface {
	Authenticate(ctx context.Context, token string, systemID string) (*Principal, error)
}

// Sentinel is the router. Create it with New, serve it with Serve or Handler, stop it with
// Shutdown. It wires the components (doc.go, component.go) and owns every connection: each
// reports its close here (connClosed).
type Sentinel struct {
	// Fixed by New.
	extraRoutes []extraRoute // WithRoute
	opts        Options
	log         *slog.Logger
	id          string
	path        string
	sid         string
	epoch       string
	lb          *swapStrategy // a reload swaps the strategy behind it (reload.go)
	auth        Authenticator
	tracer      *tracing.Tracer // nil: tracing off (tracing.go)
	traceMx     *traceMetrics   // ignored trace contexts (tracing.go)
	showOut     io.Writer

	// Components, built by New with their dependencies; none points back here.
	routes  *routeTable
	metrics *metrics
	sticky  *stickyRouter
	sec     *secLayer // nil under the open and gated profiles
	limits  *limiter
	drain   *drainer    // graceful drain (drain.go)
	rate    *rateLimits // call rate limits (ratelimit.go); nil when none is configured
	// refusalLog throttles security-refusal warnings per peer and reason (aft_check.go).
	refusalLog refusalLogger
	pings      pingSweeper // liveness probes of serving peers (conn.go)

	// ctx ends the reads and probes of every connection at shutdown; wg counts every
	// goroutine the sentinel starts (each connection's reader, its on-demand writer and
	// close handshake, the ping sweeper and its probes, the idle sweeper), which Shutdown
	// waits for.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	connsMu sync.Mutex // guards conns
	conns   map[*conn]struct{}

	draining atomic.Bool
	drainCh  chan struct{} // closed when Shutdown starts: stops the sentinel's own loops
	showMu   sync.Mutex    // serialises FAME_SHOW_ENVELOPES output

	// clusterLink is WithCluster's membership; cl routes over it (cluster.go), nil when the
	// sentinel is not clustered.
	clusterLink *ClusterLink
	cl          *clusterRouter

	logLevel *slog.LevelVar // WithLogLevel: what a reload of logging.level sets
	reload   *reloader      // hot reload state and metrics (reload.go)
}

// Option customises a Sentinel beyond its Options.
type Option func(*Sentinel)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Sentinel) { s.log = l } }

// WithAuthenticator sets the admission check for attaching peers.
func WithAuthenticator(a Authenticator) Option { return func(s *Sentinel) { s.auth = a } }

// WithEnvelopeOutput sets where FAME_SHOW_ENVELOPES output goes (stderr by default).
func WithEnvelopeOutput(w io.Writer) Option { return func(s *Sentinel) { s.showOut = w } }

// WithRoute serves h under pattern beside the sentinel's own routes (the HTTP gateway,
// mounted by cmd/fame); h does its own authorization.
func WithRoute(pattern string, h http.Handler) Option {
	return func(s *Sentinel) { s.extraRoutes = append(s.extraRoutes, extraRoute{pattern, h}) }
}

// extraRoute is one WithRoute.
type extraRoute struct {
	pattern string
	h       http.Handler
}

// Registerer is the registry /metrics serves, for components mounted beside the sentinel.
func (s *Sentinel) Registerer() prometheus.Registerer { return s.metrics.reg }

// New creates a sentinel from resolved options.
func New(opts Options, extra ...Option) (*Sentinel, error) {
	lb, err := balancer.New(string(opts.LoadBalancing))
	if err != nil {
		return nil, fmt.Errorf("sentinel: load balancing: %w", err)
	}
	s := &Sentinel{
		opts:    opts,
		log:     slog.Default(),
		id:      opts.ID,
		epoch:   envelope.NewID(),
		routes:  newRouteTable(),
		lb:      newSwapStrategy(lb, opts.LoadBalancing),
		conns:   map[*conn]struct{}{},
		showOut: os.Stderr,
	}
	for _, o := range extra {
		o(s)
	}
	if s.id == "" {
		s.id = envelope.NewID()
	}
	s.path = "/" + s.id
	s.sid = envelope.SecureDigest(s.path)
	s.log = s.log.With("sentinel", s.id)
	// The components get what they need here; none holds a pointer back to the Sentinel
	// (component.go). The gauges read the components lazily, at scrape time.
	s.metrics = newMetrics(metricSources{
		queuedBytes:      func() int64 { return s.limits.queued.Load() },
		globalQueueBytes: opts.GlobalQueueBytes,
		routeSizes:       s.routes.sizes,
		sticky:           func() stickiness.Stats { return s.sticky.stats() },
	})
	s.traceMx = newTraceMetrics(s.metrics.reg)
	s.limits = newLimiter(opts, s.log, s.metrics.limitRefusals)
	s.limits.recent = s.metrics.recent
	s.reload = newReloader(opts, s.logLevel, s.metrics.reg)
	if opts.StoragePath != "" && opts.ID == "" {
		s.log.Warn("bindings are persisted but FAME_NODE_ID (node.id) is not set: this sentinel gets a new id on every start, so restored bindings cannot match the re-attached replicas; set a fixed id",
			"storage_path", opts.StoragePath)
	}
	if s.sec, err = newSecLayer(secDeps{opts: opts, path: s.path, sid: s.sid, log: s.log, metrics: s.metrics,
		routes: s.routes, limits: s.limits, refuse: s}); err != nil {
		return nil, err
	}
	// s.sec may be nil (open and gated profiles): a nil *secLayer signs nothing.
	stickyOpts := opts
	if s.clusterLink != nil {
		if err := s.checkClusterLink(); err != nil {
			return nil, err
		}
		// Clustered, the bindings live in the cluster's store (cluster.go); the local table
		// would purge and SecureClose on a detach that the grace window may yet undo.
		stickyOpts.Stickiness = false
		s.cl = newClusterRouter(*s.clusterLink, s.id, s.routes, opts.Stickiness, s.log, s.metrics.reg, s)
		if err := s.sec.joinCluster(s.clusterLink.Keys, s.id, s.clusterLink.Bus.State, s.metrics.reg); err != nil {
			return nil, err
		}
		s.cl.secureClose = func(client peer, cid, reason string) bool {
			if !s.sticky.sendSecureClose(client, cid, reason) {
				return false
			}
			s.metrics.secureCloses.Inc()
			return true
		}
		s.cl.drainingHere = func(p peer) bool { return s.sticky.drains.on() && s.sticky.drains.draining(p) }
	}
	if s.sticky, err = newStickyRouter(stickyDeps{opts: stickyOpts, log: s.log, metrics: s.metrics, lb: s.lb,
		routes: s.routes, sec: s.sec, sign: s.sec, refuse: s, sid: s.sid, tracer: s.tracer}); err != nil {
		return nil, err
	}
	if s.auth == nil {
		if s.auth, err = newAuthenticator(s); err != nil {
			s.sticky.close() // its sweeper and store are started already
			return nil, err
		}
	}
	s.sticky.drains.push = s.pushDrainStatus // replica drain status, unasked (replicadrain.go)
	s.sticky.drains.live = s.reachable
	s.rate = newRateLimits(opts.RateLimits, s.sec, s.log, s.metrics.reg)
	s.drain = newDrainer(drainDeps{timeout: opts.DrainTimeout, log: s.log, reg: s.metrics.reg,
		peers: s.routes.attached, live: s.reachable, closeChannels: s.sticky.closeAllChannels, refuse: s, recent: s.metrics.recent})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.drainCh = make(chan struct{})
	if s.cl != nil {
		if err := s.cl.start(s.deliverFromPeer); err != nil {
			s.sticky.close()
			return nil, fmt.Errorf("sentinel: cluster bus: %w", err)
		}
		s.log.Info("clustered: routing over the cluster's replica set", "grace", s.cl.grace, "stickiness", opts.Stickiness)
		if s.rate != nil && s.clusterLink.Rate != nil {
			if err := s.rate.share(s.ctx, &s.wg, s.clusterLink.Rate, s.metrics.reg); err != nil {
				s.sticky.close()
				return nil, err
			}
		}
	}
	if s.cl != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.cl.sweepChannels(s.drainCh) }() // cluster_repin.go
	}
	s.wg.Add(1)
	go s.sweepIdle()
	return s, nil
}

// ID returns the sentinel's system id; PhysicalPath its path ("/<id>").
func (s *Sentinel) ID() string           { return s.id }
func (s *Sentinel) PhysicalPath() string { return s.path }

// Handler returns the HTTP handler with every route the sentinel serves.
func (s *Sentinel) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fame/v1/attach/ws/{origin}/{systemId}", s.handleAttach)
	mux.HandleFunc("GET /fame/v1/attach/ws/{origin}", s.handleAttachNoID)
	mux.HandleFunc("GET /fame/v1/attach/ws/{origin}/", s.handleAttachNoID)
	mux.HandleFunc("GET /fame/v1/attach/health", s.handleHealth)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.handleReady)
	// The operator endpoints need the admin token when one is configured (admin.go).
	mux.Handle("GET /metrics", s.admin(s.metrics.handler()))
	mux.Handle("GET /stats", s.admin(http.HandlerFunc(s.handleStats)))
	mux.Handle("POST /admin/drain", s.admin(http.HandlerFunc(s.handleDrain)))
	s.statusRoutes(mux) // GET /admin/, /admin/status.json, POST /admin/login, /admin/logout (statuspage.go)
	mux.Handle("POST /admin/replicas/{systemId}/drain", s.admin(http.HandlerFunc(s.handleReplicaDrain)))
	for _, r := range s.extraRoutes {
		mux.Handle(r.pattern, r.h)
	}
	if s.opts.Pprof {
		mux.Handle("GET /debug/pprof/", s.admin(http.HandlerFunc(pprof.Index)))
		mux.Handle("GET /debug/pprof/profile", s.admin(http.HandlerFunc(pprof.Profile)))
		mux.Handle("GET /debug/pprof/trace", s.admin(http.HandlerFunc(pprof.Trace)))
		mux.Handle("GET /debug/pprof/symbol", s.admin(http.HandlerFunc(pprof.Symbol)))
	}
	return mux
}

// Serve accepts connections on l until ctx is cancelled, then shuts down at once, or until a
// drain (StartDrain, POST /admin/drain) has finished; the HTTP endpoints answer during a drain.
func (s *Sentinel) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnContext: corkconn.ConnContext}
	l = corkconn.Listener{Listener: l}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	s.log.Info("sentinel listening", "addr", l.Addr().String(), "path", s.path,
		"security", s.opts.SecurityProfile, "admission", s.opts.AdmissionProfile,
		"load_balancing", s.opts.LoadBalancing, "stickiness", s.opts.Stickiness)
	select {
	case err := <-errc:
		s.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	case <-s.drain.done:
	}
	shCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(shCtx)
	_ = srv.Shutdown(shCtx)
	return nil
}

// Shutdown stops accepting attaches, closes every connection with 1000 and waits for the
// connection goroutines to finish (or ctx to expire).
func (s *Sentinel) Shutdown(ctx context.Context) {
	s.shutdown(ctx, websocket.StatusNormalClosure, "sentinel shutting down")
}

// shutdown is Shutdown with the close code and reason the connections get.
func (s *Sentinel) shutdown(ctx context.Context, code websocket.StatusCode, reason string) {
	if !s.draining.CompareAndSwap(false, true) {
		return
	}
	close(s.drainCh)
	s.connsMu.Lock()
	all := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	s.connsMu.Unlock()
	for _, c := range all {
		c.close(code, reason)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range all {
			_ = c.ws.CloseNow()
		}
	}
	s.cancel()
	s.sticky.close()
}

func (s *Sentinel) handleHealth(w http.ResponseWriter, _ *http.Request) {
	s.connsMu.Lock()
	n := len(s.conns)
	s.connsMu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	status := "healthy"
	if s.Draining() {
		status = "draining"
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "active_connections": n,
		"listenerType": "WebSocketListener", "listener_type": "WebSocketListener"})
}

func (s *Sentinel) handleReady(w http.ResponseWriter, _ *http.Request) {
	if s.Draining() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

func (s *Sentinel) handleAttachNoID(w http.ResponseWriter, r *http.Request) {
	s.refuseUpgrade(w, r, "Missing system id")
}

// refuseUpgrade completes the upgrade and closes with 1008 and a reason, as the reference does,
// so that WebSocket clients see why; plain HTTP requests get a 404.
func (s *Sentinel) refuseUpgrade(w http.ResponseWriter, r *http.Request, reason string) {
	s.log.Warn("attach refused", "remote", r.RemoteAddr, "path", r.URL.Path, "reason", reason)
	s.metrics.attachRefused.WithLabelValues(reasonLabel(reason)).Inc()
	s.metrics.recent.add("attach_"+reasonLabel(reason), r.PathValue("systemId"), r.RemoteAddr, reason)
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.NotFound(w, r)
		return
	}
	ws, err := websocket.Accept(w, r, s.acceptOptions(r))
	if err != nil {
		return
	}
	_ = ws.Close(websocket.StatusPolicyViolation, reason)
}

func (s *Sentinel) acceptOptions(r *http.Request) *websocket.AcceptOptions {
	o := &websocket.AcceptOptions{
		CompressionMode:    websocket.CompressionDisabled,
		InsecureSkipVerify: true, // peers are authenticated by admission, not by Origin
	}
	if proto, _ := bearerFromSubprotocol(r); proto != "" {
		o.Subprotocols = []string{proto}
	}
	return o
}

// bearerFromSubprotocol reads `Sec-WebSocket-Protocol: bearer,<token>`.
func bearerFromSubprotocol(r *http.Request) (proto, token string) {
	var items []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			items = append(items, strings.TrimSpace(p))
		}
	}
	if len(items) >= 1 && items[0] == "bearer" {
		if len(items) >= 2 {
			return "bearer", items[1]
		}
		return "bearer", ""
	}
	return "", ""
}

func bearerToken(r *http.Request) string {
	if _, tok := bearerFromSubprotocol(r); tok != "" {
		return tok
	}
	tok, _ := token.BearerFromHeader(r.Header.Get("Authorization"))
	return tok
}

func (s *Sentinel) handleAttach(w http.ResponseWriter, r *http.Request) {
	origin, urlID := r.PathValue("origin"), r.PathValue("systemId")
	if s.draining.Load() {
		http.Error(w, "sentinel is shutting down", http.StatusServiceUnavailable)
		return
	}
	if s.drain.draining() {
		s.refuseDrainingUpgrade(w, r, urlID)
		return
	}
	release, ok := s.limits.admitUpgrade(w, r, urlID)
	if !ok {
		return
	}
	served := false // once serving, the connection's goroutine releases the slot
	defer func() {
		if !served {
			release()
		}
	}()
	switch {
	case origin != "downstream" && origin != "peer":
		s.refuseUpgrade(w, r, "Invalid origin type")
		return
	case urlID == "":
		s.refuseUpgrade(w, r, "Missing system id")
		return
	case urlID == s.id:
		s.refuseUpgrade(w, r, "Self attachment not allowed")
		return
	}
	ws, err := websocket.Accept(w, r, s.acceptOptions(r))
	if err != nil {
		s.log.Warn("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	ws.SetReadLimit(envelope.MaxMessageSize)
	c := newConn(s, ws, r.RemoteAddr, urlID, origin)
	c.cork = corkconn.FromContext(r.Context())
	if c.cork != nil {
		c.cork.SetReadHook(c.flushOwed) // before this connection's reader reads (serve)
	}

	if s.auth != nil {
		p, err := s.auth.Authenticate(r.Context(), bearerToken(r), urlID)
		if err != nil {
			c.log.Warn("authentication failed", "err", err)
			s.metrics.attachRefused.WithLabelValues("auth").Inc()
			s.metrics.recent.add("attach_auth", urlID, r.RemoteAddr, "Authentication failed")
			s.rejectAuth(ws)
			return
		}
		c.principal = p
	}
	s.connsMu.Lock()
	if s.draining.Load() {
		s.connsMu.Unlock()
		_ = ws.Close(websocket.StatusGoingAway, "sentinel shutting down")
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.connsMu.Unlock()
	s.metrics.connections.Inc()
	// The connection is served by a goroutine of its own and this handler returns: net/http
	// then drops the request, its headers and its connection state, kilobytes that an idle
	// connection would otherwise hold for its whole life.
	served = true
	go func() {
		defer release()
		defer s.metrics.connections.Dec()
		c.serve()
	}()
}

// rejectAuth sends the reference's text-frame negative NodeAttachAck (snake_case) and closes
// with 1008 "Authentication failed".
func (s *Sentinel) rejectAuth(ws *websocket.Conn) {
	ack, _ := json.Marshal(map[string]any{"version": envelope.Version, "id": envelope.NewID(),
		"trace_id": envelope.NewID(), "seq_id": 0, "flow_flags": 0,
		"frame": map[string]any{"type": envelope.TypeNodeAttachAck, "ok": false, "reason": "Authentication failed"},
		"ts":    envelope.Now()})
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	_ = ws.Write(ctx, websocket.MessageText, ack)
	cancel()
	_ = ws.Close(websocket.StatusPolicyViolation, "Authentication failed")
}

// connClosed removes a closed connection from every table and tells the affected parties:
// the connection reports its close here (connOwner), once.
func (s *Sentinel) connClosed(c *conn, reason string) {
	s.connsMu.Lock()
	delete(s.conns, c)
	s.connsMu.Unlock()
	if c.systemID == "" {
		return // never attached
	}
	left, held := s.routes.detach(c)
	if held && !s.draining.Load() {
		// The bindings are purged by system id, so only the id's holder may purge them: a
		// connection whose attach was refused (say SYSTEM_ID_IN_USE, a hostile claim of a
		// live replica's id) or one already replaced by a newer attach must not wipe the live
		// holder's sessions. On shutdown the bindings must outlive the connections: a
		// restarted sentinel restores them from the store when the replicas re-attach.
		s.sticky.replicaGone(c)
	}
	if held && s.cl != nil {
		s.cl.left(c) // out of the cluster's directory; its bindings wait out the grace window
	}
	s.sticky.drainGone(c, 0) // a replica drain ends with its connection (replicadrain.go)
	s.sec.forget(c)
	pend := c.takePending()
	for _, p := range pend {
		s.nackPending(p, envelope.CodeRouteConnectorClosed, "Route to "+p.to+" closed: "+c.systemID+" detached")
	}
	if !held && len(pend) == 0 && len(left) == 0 {
		c.log.Debug("connection closed without holding its system id", "reason", reason)
		return
	}
	s.log.Info("node detached", "system_id", c.systemID, "path", c.path, "reason", reason,
		"pools_left", left, "inflight_nacked", len(pend))
}

// sweepIdle closes attached connections that have sent nothing for IdleTimeout: reference
// peers heartbeat every 15 s, so silence means the peer is gone without a close (a dead host,
// a cut network). It is the one liveness goroutine for all plain clients.
func (s *Sentinel) sweepIdle() {
	defer s.wg.Done()
	iv := s.opts.IdleTimeout / 4
	if s.opts.IdleTimeout <= 0 {
		return
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-s.drainCh:
			return
		case <-t.C:
			now := time.Now()
			limit := now.Add(-s.opts.IdleTimeout).UnixNano()
			if s.cl != nil {
				s.cl.forgetStaleStreams(now)
			}
			for _, p := range s.routes.attached() {
				c := asConn(p)
				if c == nil {
					continue
				}
				c.forgetStaleStreams(now)
				if c.lastRx.Load() < limit {
					c.log.Warn("closing idle connection", "idle_for", s.opts.IdleTimeout)
					go c.close(websocket.StatusGoingAway, "idle: nothing received for "+s.opts.IdleTimeout.String())
				}
			}
		}
	}
}

// showEnvelope prints an envelope for FAME_SHOW_ENVELOPES=true.
func (s *Sentinel) showEnvelope(label string, b []byte) {
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, b, "", "  "); err != nil {
		pretty.Reset()
		pretty.Write(b)
	}
	s.showMu.Lock()
	fmt.Fprintf(s.showOut, "\n%s - %s\n%s\n", time.Now().UTC().Format(time.RFC3339Nano), label, pretty.Bytes())
	s.showMu.Unlock()
}

func (s *Sentinel) handleStats(w http.ResponseWriter, _ *http.Request) {
	type peerStats struct {
		SystemID string    `json:"systemId"`
		Path     string    `json:"path"`
		Remote   string    `json:"remote"`
		Since    time.Time `json:"attachedAt"`
		Rx       uint64    `json:"received"`
		Tx       uint64    `json:"sent"`
		Queue    int       `json:"queued"`
		QBytes   int64     `json:"queuedBytes"`
		Pending  int       `json:"pending"`
		Sessions int64     `json:"stickySessions"`
	}
	var peers []peerStats
	// Only attached peers: their identity fields are written before they enter the route
	// table, whose lock orders those writes before this read.
	for _, p := range s.routes.attached() {
		c := asConn(p)
		if c == nil {
			continue
		}
		peers = append(peers, peerStats{c.systemID, c.path, c.remote, c.attachedAt, c.rx.Load(), c.tx.Load(), c.q.Len(), c.q.Bytes(), c.pendingLen(), int64(s.sticky.sessionsOn(c))})
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{"id": s.id, "path": s.path, "routingEpoch": s.epoch,
		"peers": peers, "routes": s.routes.snapshot(), "stickiness": s.sticky.stats(),
		"replicaDrains": s.sticky.replicaDrainStats()})
}

func reasonLabel(r string) string {
	switch r {
	case "Invalid origin type":
		return "origin"
	case "Missing system id":
		return "missing_id"
	case "Self attachment not allowed":
		return "self"
	}
	return "other"
}
