package gateway

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/fame-go/fame/admission/token"
	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/node/admit"
)

// Defaults and the reference's structural limits.
const (
	DefaultBasePath     = "/fame/v1/gateway"
	DefaultBodyLimit    = 1 << 20
	DefaultTimeout      = 30 * time.Second
	MaxTimeout          = 120 * time.Second
	DefaultMaxCallers   = 256
	DefaultCallerTTL    = 5 * time.Minute
	DefaultConnectRate  = 5
	DefaultConnectBurst = 20
	maxRefusedTokens    = 1024 // refused tokens remembered apart from the callers
	maxConnectLimiters  = 4096 // HTTP client addresses whose connects are counted
	maxMethodLength     = 256
	maxTargetLength     = 512
	maxTypeLength       = 256
	maxCapabilities     = 16
	maxCapabilityLength = 256
)

// Caller is what the gateway sends through for one HTTP caller (a *node.Node).
type Caller interface {
	Call(ctx context.Context, address, method string, params, result any) error
	CallCapabilities(ctx context.Context, caps []string, method string, params, result any) error
	Send(ctx context.Context, address string, caps []string, payload any) error
	Close() error
}

// Connector attaches a Caller presenting token ("" for none) to the sentinel. An attach the
// sentinel refuses must return an error matching node.ErrAttachRefused.
type Connector func(ctx context.Context, token string) (Caller, error)

// Options configure a Gateway.
type Options struct {
	BasePath       string        // DefaultBasePath when empty
	BodyLimit      int64         // DefaultBodyLimit when 0
	AllowedOrigins []string      // CORS origins allowed; none: CORS off, cross-origin requests refused
	RequireToken   bool          // refuse requests without a bearer token (gated and strict profiles)
	MaxCallers     int           // cached per-token nodes; DefaultMaxCallers when 0
	CallerTTL      time.Duration // longest life of a cached node; DefaultCallerTTL when 0
	// ConnectRate and ConnectBurst bound the new caller nodes (sentinel attaches) one HTTP
	// client address may cause: DefaultConnectRate per second, burst DefaultConnectBurst,
	// when 0. Past them the request is refused 429 with Retry-After.
	ConnectRate  float64
	ConnectBurst int
	Connect      Connector // required
	Logger       *slog.Logger
	Registerer   prometheus.Registerer // fame_gateway_refusals_total when set
}

// Gateway serves the HTTP gateway. Close it to close the callers' nodes.
type Gateway struct {
	opts     Options
	log      *slog.Logger
	refusals *prometheus.CounterVec
	mu       sync.Mutex
	callers  map[[32]byte]*list.Element // of *callerEntry: nodes of tokens the sentinel took
	lru      *list.List                 // front: most recently used
	closed   bool
	closing  sync.WaitGroup // closeEntry goroutines; Close waits for them
	lastLog  atomic.Int64   // unix nanos of the last refusal logged
	heldBack atomic.Int64   // refusals not logged since
	// refused remembers tokens the sentinel refused, apart from callers, so that a stream
	// of bad tokens neither costs an attach each nor evicts the good callers.
	refused *lru.Cache[[32]byte, refusedToken]
	// connects limits the new caller nodes per HTTP client address (by IP).
	connects *lru.Cache[string, *rate.Limiter]
}

// callerEntry is one token's node. mu guards users and gone.
type callerEntry struct {
	key     [32]byte
	ready   chan struct{} // closed once c/err are set
	c       Caller
	err     error
	created time.Time
	users   int  // requests using c now (g.mu)
	gone    bool // out of the cache: closed when the last user releases it (g.mu)
}

type refusedToken struct {
	at  time.Time
	err error
}

// refusedTTL is how long a refused token is answered from the cache.
const refusedTTL = 10 * time.Second

// New builds a Gateway.
func New(opts Options) (*Gateway, error) {
	if opts.Connect == nil {
		return nil, errors.New("gateway: Options.Connect is required")
	}
	if opts.BodyLimit < 0 || opts.MaxCallers < 0 || opts.CallerTTL < 0 {
		return nil, errors.New("gateway: negative option")
	}
	if opts.BasePath == "" {
		opts.BasePath = DefaultBasePath
	}
	if !strings.HasPrefix(opts.BasePath, "/") {
		opts.BasePath = "/" + opts.BasePath
	}
	opts.BasePath = strings.TrimSuffix(opts.BasePath, "/")
	if opts.BodyLimit == 0 {
		opts.BodyLimit = DefaultBodyLimit
	}
	if opts.MaxCallers == 0 {
		opts.MaxCallers = DefaultMaxCallers
	}
	if opts.CallerTTL == 0 {
		opts.CallerTTL = DefaultCallerTTL
	}
	if opts.ConnectRate <= 0 {
		opts.ConnectRate = DefaultConnectRate
	}
	if opts.ConnectBurst <= 0 {
		opts.ConnectBurst = DefaultConnectBurst
	}
	g := &Gateway{opts: opts, log: opts.Logger, callers: map[[32]byte]*list.Element{}, lru: list.New()}
	g.refused, _ = lru.New[[32]byte, refusedToken](maxRefusedTokens)
	g.connects, _ = lru.New[string, *rate.Limiter](maxConnectLimiters)
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fame_gateway_refusals_total",
		Help: "HTTP gateway requests refused, by reason."}, []string{"reason"})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(g.refusals); err != nil {
			return nil, fmt.Errorf("gateway: register metrics: %w", err)
		}
	}
	return g, nil
}

// Register adds fame_gateway_refusals_total to r (when the registry exists only after New).
func (g *Gateway) Register(r prometheus.Registerer) error {
	if err := r.Register(g.refusals); err != nil {
		return fmt.Errorf("gateway: register metrics: %w", err)
	}
	return nil
}

// Handler serves BasePath/rpc, /messages and /health.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(g.opts.BasePath+"/rpc", g.cors(http.MethodPost, g.rpc))
	mux.HandleFunc(g.opts.BasePath+"/messages", g.cors(http.MethodPost, g.messages))
	mux.HandleFunc(g.opts.BasePath+"/health", g.cors(http.MethodGet, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "healthy", "listenerType": "AgentHttpGatewayListener"})
	}))
	return mux
}

// Close closes every cached caller node.
func (g *Gateway) Close() error {
	g.mu.Lock()
	g.closed = true
	var all []*callerEntry
	for _, el := range g.callers {
		all = append(all, el.Value.(*callerEntry))
	}
	g.callers, g.lru = map[[32]byte]*list.Element{}, list.New()
	for _, e := range all {
		e.gone = true
	}
	g.mu.Unlock()
	// At Close every node goes, in use or not: the sentinel is shutting the gateway down.
	for _, e := range all {
		g.closeEntry(e)
	}
	g.closing.Wait()
	return nil
}

// closeEntry closes e's caller once it is ready (a connect in progress finishes first), on a
// goroutine Close waits for.
func (g *Gateway) closeEntry(e *callerEntry) {
	g.closing.Add(1)
	go func() {
		defer g.closing.Done()
		<-e.ready // bounded by the node's attach timeout
		if e.c != nil {
			_ = e.c.Close()
		}
	}()
}

// refusal is an HTTP refusal: status, wire code and message.
type refusal struct {
	status int
	code   string
	msg    string
	retry  time.Duration // > 0: sent as Retry-After (whole seconds, rounded up)
}

func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, rf refusal) {
	g.refuseErrDetail(w, r, rf, nil)
}

// refuseErrDetail is refuse with the error behind rf logged whole: the HTTP body carries
// rf.msg only, since the error may name internal services (the welcome service's or the
// sentinel's URL) that an HTTP caller must not learn.
func (g *Gateway) refuseErrDetail(w http.ResponseWriter, r *http.Request, rf refusal, err error) {
	g.refusals.WithLabelValues(rf.code).Inc()
	// One log line a second at most, with the number held back: a flood of bad requests must
	// not become a flood of log lines (the counter sees every one).
	now := time.Now().UnixNano()
	if last := g.lastLog.Load(); now-last >= int64(time.Second) && g.lastLog.CompareAndSwap(last, now) {
		g.log.Warn("gateway request refused (logged at most once a second)", "remote", r.RemoteAddr, "path", r.URL.Path,
			"status", rf.status, "code", rf.code, "reason", rf.msg, "err", err, "held_back", g.heldBack.Swap(0))
	} else {
		g.heldBack.Add(1)
	}
	if rf.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(rf.retry.Seconds()))))
	}
	writeJSON(w, rf.status, map[string]any{"ok": false, "error": rf.msg, "code": rf.code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// cors checks the method and the Origin: a cross-origin request (or preflight) from an
// origin not in AllowedOrigins is refused 403; an allowed one gets the CORS headers.
func (g *Gateway) cors(method string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			if !slices.Contains(g.opts.AllowedOrigins, origin) {
				g.refuse(w, r, refusal{http.StatusForbidden, "forbidden", "origin " + origin + " is not allowed", 0})
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", method+", OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if r.Method != method {
			w.Header().Set("Allow", method)
			g.refuse(w, r, refusal{http.StatusMethodNotAllowed, "method_not_allowed", "use " + method, 0})
			return
		}
		next(w, r)
	}
}

// target is where a request goes: an address or capabilities.
type target struct {
	addr string
	caps []string
}

// readBody reads the JSON object body within BodyLimit.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, *refusal) {
	if r.ContentLength > g.opts.BodyLimit {
		return nil, &refusal{http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("body exceeds %d bytes", g.opts.BodyLimit), 0}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.opts.BodyLimit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &refusal{http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("body exceeds %d bytes", g.opts.BodyLimit), 0}
	}
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, "invalid_request", "reading body: " + err.Error(), 0}
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(b, &body); err != nil || body == nil {
		return nil, &refusal{http.StatusBadRequest, "invalid_request", "body must be a JSON object", 0}
	}
	return body, nil
}

func str(body map[string]json.RawMessage, key string) string {
	var s string
	if raw, ok := body[key]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return strings.TrimSpace(s)
}

// parseTarget reads targetAddr or capabilities within the reference's limits.
func parseTarget(body map[string]json.RawMessage) (target, *refusal) {
	bad := func(msg string) (target, *refusal) {
		return target{}, &refusal{http.StatusBadRequest, "invalid_request", msg, 0}
	}
	t := target{addr: str(body, "targetAddr")}
	if len(t.addr) > maxTargetLength {
		return bad(fmt.Sprintf("targetAddr longer than %d", maxTargetLength))
	}
	if t.addr != "" {
		if _, err := envelope.ParseAddress(t.addr); err != nil {
			return bad("invalid targetAddr: " + err.Error())
		}
		return t, nil
	}
	var raw []string
	if c, ok := body["capabilities"]; ok && string(c) != "null" {
		if json.Unmarshal(c, &raw) != nil {
			return bad("invalid request: capabilities must be an array of strings")
		}
	}
	for _, v := range raw {
		if strings.TrimSpace(v) == "" {
			return bad("invalid request: an empty capability")
		}
		t.caps = append(t.caps, strings.TrimSpace(v))
	}
	if len(t.caps) > maxCapabilities {
		return bad(fmt.Sprintf("more than %d capabilities", maxCapabilities))
	}
	for _, c := range t.caps {
		if len(c) > maxCapabilityLength {
			return bad(fmt.Sprintf("a capability longer than %d", maxCapabilityLength))
		}
	}
	if len(t.caps) == 0 {
		return bad("invalid request: neither targetAddr nor capabilities")
	}
	return t, nil
}

// bearer returns the request's bearer token ("" for none) or a refusal.
func (g *Gateway) bearer(r *http.Request) (string, *refusal) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if g.opts.RequireToken {
			return "", &refusal{http.StatusUnauthorized, "unauthorized", "authentication failed: a bearer token is required", 0}
		}
		return "", nil
	}
	tok, ok := token.BearerFromHeader(h)
	if !ok {
		return "", &refusal{http.StatusUnauthorized, "unauthorized", "authentication failed: Authorization must be Bearer <token>", 0}
	}
	return tok, nil
}

func (g *Gateway) rpc(w http.ResponseWriter, r *http.Request) {
	tok, rf := g.bearer(r)
	if rf != nil {
		g.refuse(w, r, *rf)
		return
	}
	body, rf := g.readBody(w, r)
	if rf != nil {
		g.refuse(w, r, *rf)
		return
	}
	method := str(body, "method")
	if method == "" || len(method) > maxMethodLength {
		g.refuse(w, r, refusal{http.StatusBadRequest, "invalid_request", "invalid RPC request body: method missing or too long", 0})
		return
	}
	t, rf := parseTarget(body)
	if rf != nil {
		g.refuse(w, r, *rf)
		return
	}
	params := json.RawMessage("{}")
	if p, ok := body["params"]; ok && string(p) != "null" {
		if len(p) == 0 || (p[0] != '{' && p[0] != '[') {
			g.refuse(w, r, refusal{http.StatusBadRequest, "invalid_request", "invalid RPC request body: params must be an object or an array", 0})
			return
		}
		params = p
	}
	timeout := DefaultTimeout
	if raw, ok := body["timeoutMs"]; ok && string(raw) != "null" {
		var ms float64
		if json.Unmarshal(raw, &ms) != nil || ms <= 0 {
			g.refuse(w, r, refusal{http.StatusBadRequest, "invalid_request", "invalid RPC request body: timeoutMs must be a positive number", 0})
			return
		}
		timeout = min(time.Duration(ms)*time.Millisecond, MaxTimeout)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	c, release, err := g.caller(ctx, r, tok)
	if err != nil {
		g.refuseErr(w, r, err)
		return
	}
	defer release()
	var result json.RawMessage
	if t.addr != "" {
		err = c.Call(ctx, t.addr, method, params, &result)
	} else {
		err = c.CallCapabilities(ctx, t.caps, method, params, &result)
	}
	if err != nil {
		g.refuseErrDetail(w, r, mapErr(err), err)
		return
	}
	if result == nil {
		result = json.RawMessage("null")
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "result": result})
}

func (g *Gateway) messages(w http.ResponseWriter, r *http.Request) {
	tok, rf := g.bearer(r)
	if rf != nil {
		g.refuse(w, r, *rf)
		return
	}
	body, rf := g.readBody(w, r)
	if rf != nil {
		g.refuse(w, r, *rf)
		return
	}
	t, rf := parseTarget(body)
	if rf != nil {
		g.refuse(w, r, *rf)
		return
	}
	typ := str(body, "type")
	payload, hasPayload := body["payload"]
	if hasPayload && string(payload) == "null" {
		hasPayload = false
	}
	if len(typ) > maxTypeLength || (typ == "" && !hasPayload) {
		g.refuse(w, r, refusal{http.StatusBadRequest, "invalid_request", "invalid message request body: type or payload required", 0})
		return
	}
	frame := map[string]any{}
	if typ != "" {
		frame["type"] = typ
	}
	if hasPayload {
		frame["payload"] = payload
	}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultTimeout)
	defer cancel()
	c, release, err := g.caller(ctx, r, tok)
	if err == nil {
		err = c.Send(ctx, t.addr, t.caps, frame)
		release()
	}
	if err != nil {
		g.refuseErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "message_accepted"})
}

// errConnectRate is the refusal of a new caller node past the per-address connect rate.
type errConnectRate struct{ retry time.Duration }

func (e errConnectRate) Error() string {
	return fmt.Sprintf("too many new gateway callers from this address: retry in %d ms", e.retry.Milliseconds())
}

// refuseErr is refuse for an error of caller or of a call.
func (g *Gateway) refuseErr(w http.ResponseWriter, r *http.Request, err error) {
	var cr errConnectRate
	if errors.As(err, &cr) {
		g.refuse(w, r, refusal{http.StatusTooManyRequests, "connect_rate_limited", err.Error(), cr.retry})
		return
	}
	g.refuseErrDetail(w, r, mapErr(err), err)
}

// caller returns the cached node for token, connecting it on first use (one connect per
// token even when requests race), and the release the request must call when done with it.
// A node leaves the cache (LRU, TTL) without being closed under a request that uses it: it
// is closed when its last user releases it. Tokens the sentinel refused are remembered apart
// (refused), and new connects are limited per HTTP client address.
func (g *Gateway) caller(ctx context.Context, r *http.Request, tok string) (Caller, func(), error) {
	key := sha256.Sum256([]byte("fame-gateway\x00" + tok))
	if rt, ok := g.refused.Get(key); ok {
		if time.Since(rt.at) <= refusedTTL {
			return nil, nil, rt.err
		}
		g.refused.Remove(key)
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, nil, node.ErrClosed
	}
	if el, ok := g.callers[key]; ok {
		e := el.Value.(*callerEntry)
		if time.Since(e.created) <= g.opts.CallerTTL {
			g.lru.MoveToFront(el)
			e.users++
			g.mu.Unlock()
			return g.wait(ctx, e)
		}
		g.removeLocked(el)
	}
	if d, ok := g.allowConnect(r); !ok {
		g.mu.Unlock()
		return nil, nil, errConnectRate{retry: d}
	}
	e := &callerEntry{key: key, ready: make(chan struct{}), created: time.Now(), users: 1}
	g.callers[key] = g.lru.PushFront(e)
	for g.lru.Len() > g.opts.MaxCallers {
		g.removeLocked(g.lru.Back())
	}
	g.mu.Unlock()
	// The connect outlives this request's context only as long as it takes; it is bounded by
	// the node's own attach timeout.
	c, err := g.opts.Connect(context.WithoutCancel(ctx), tok)
	e.c, e.err = c, err
	close(e.ready)
	if err != nil {
		var attach *node.AttachError
		if errors.As(err, &attach) && attach.Refused || errors.Is(err, admit.ErrUnauthorized) {
			// Answered 401 from memory for refusedTTL: replaying a bad token costs no attach.
			g.refused.Add(key, refusedToken{at: time.Now(), err: err})
		}
		g.mu.Lock()
		if el, ok := g.callers[key]; ok && el.Value.(*callerEntry) == e {
			g.lru.Remove(el)
			delete(g.callers, key)
		}
		e.gone = true
		e.users--
		g.mu.Unlock()
		return nil, nil, err
	}
	return c, g.releaser(e), nil
}

// allowConnect reports whether the HTTP client of r may cause one more caller node now, else
// how long until it may. Called with g.mu held.
func (g *Gateway) allowConnect(r *http.Request) (time.Duration, bool) {
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	lim, ok := g.connects.Get(host)
	if !ok {
		lim = rate.NewLimiter(rate.Limit(g.opts.ConnectRate), g.opts.ConnectBurst)
		g.connects.Add(host, lim)
	}
	now := time.Now()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 || !res.OK() {
		res.CancelAt(now)
		return max(d, time.Millisecond), false
	}
	return 0, true
}

func (g *Gateway) wait(ctx context.Context, e *callerEntry) (Caller, func(), error) {
	release := g.releaser(e)
	select {
	case <-e.ready:
		if e.err != nil {
			release()
			return nil, nil, e.err
		}
		return e.c, release, nil
	case <-ctx.Done():
		release()
		return nil, nil, node.ErrTimeout
	}
}

// releaser is the release of one use of e: the last user of an entry out of the cache
// closes its node.
func (g *Gateway) releaser(e *callerEntry) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			e.users--
			closeNow := e.gone && e.users == 0
			g.mu.Unlock()
			if closeNow {
				g.closeEntry(e)
			}
		})
	}
}

// removeLocked takes el out of the cache; its node is closed now if nobody uses it, else by
// its last user. Called with g.mu held.
func (g *Gateway) removeLocked(el *list.Element) {
	e := el.Value.(*callerEntry)
	g.lru.Remove(el)
	delete(g.callers, e.key)
	e.gone = true
	if e.users == 0 {
		g.closeEntry(e)
	}
}

// publicDetail is what an HTTP caller may learn of an admission or attach failure: the
// refusing service's own answer (operation, status, code, description; a negative attach
// ack's reason), never a URL or a transport error, which name internal services. Empty when
// there is nothing but those.
func publicDetail(err error) string {
	var h *admit.HTTPError
	if errors.As(err, &h) {
		d := fmt.Sprintf(": %s answered HTTP %d", h.Op, h.Status)
		if h.Code != "" {
			d += " " + h.Code
		}
		if h.Description != "" && h.Description != h.Code {
			d += ": " + h.Description
		}
		return d
	}
	var attach *node.AttachError
	if errors.As(err, &attach) && attach.Refused && attach.Reason != "" {
		return ": " + attach.Reason
	}
	return ""
}

// mapErr maps a node error to the HTTP refusal, as the reference maps its exceptions.
func mapErr(err error) refusal {
	var nack *node.NackError
	var remote *node.RemoteError
	var attach *node.AttachError
	switch {
	case errors.As(err, &attach) && (attach.Refused || attach.CloseCode == websocket.StatusPolicyViolation):
		return refusal{http.StatusUnauthorized, "unauthorized", "authentication failed" + publicDetail(err), 0}
	case errors.Is(err, admit.ErrUnauthorized):
		// Under strict-overlay: the welcome service (or the CA) refused the caller's bearer.
		return refusal{http.StatusUnauthorized, "unauthorized", "authentication failed" + publicDetail(err), 0}
	case errors.Is(err, admit.ErrRejected):
		return refusal{http.StatusForbidden, "forbidden", "admission refused" + publicDetail(err), 0}
	case errors.Is(err, admit.ErrUnavailable):
		return refusal{http.StatusServiceUnavailable, "unavailable", "admission unavailable" + publicDetail(err), 0}
	case errors.As(err, &attach):
		return refusal{http.StatusServiceUnavailable, "unavailable", "fabric unavailable" + publicDetail(err), 0}
	case errors.Is(err, node.ErrNoRoute):
		return refusal{http.StatusNotFound, "not_found", "no route: " + err.Error(), 0}
	case errors.Is(err, node.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return refusal{http.StatusGatewayTimeout, "timeout", "timeout: " + err.Error(), 0}
	case errors.As(err, &nack) && nack.Code == envelope.CodeUnauthorized:
		return refusal{http.StatusForbidden, "forbidden", "forbidden: " + err.Error(), 0}
	case errors.As(err, &nack) && nack.Code == "RATE_LIMITED":
		return refusal{http.StatusTooManyRequests, "rate_limited", "rate limit exceeded: " + err.Error(), retryHint(nack.Reason)}
	case errors.As(err, &nack) && nack.Code == "DRAINING":
		return refusal{http.StatusServiceUnavailable, "unavailable", "sentinel draining: " + err.Error(), time.Second}
	case errors.As(err, &nack) && (nack.Code == "OVERLOADED" || strings.Contains(nack.Code, "LIMIT")):
		return refusal{http.StatusTooManyRequests, "queue_full", "receiver busy: " + err.Error(), 0}
	case errors.As(err, &remote) && remote.Code == -32029:
		return refusal{http.StatusTooManyRequests, "queue_full", "rate limit exceeded: " + remote.Message, 0}
	case errors.As(err, &remote) && (remote.Code == -32600 || remote.Code == -32602):
		return refusal{http.StatusBadRequest, "invalid_request", remote.Message, 0}
	case errors.As(err, &remote) && remote.Code == -32601:
		return refusal{http.StatusNotFound, "not_found", remote.Message, 0}
	case errors.Is(err, envelope.ErrBadAddress):
		return refusal{http.StatusBadRequest, "invalid_request", "invalid target: " + err.Error(), 0}
	}
	return refusal{http.StatusInternalServerError, "internal", err.Error(), 0}
}

// retryHint reads the sentinel's "retry_after_ms=N" from a RATE_LIMITED nack's reason (1 s
// when it has none).
func retryHint(reason string) time.Duration {
	_, v, ok := strings.Cut(reason, "retry_after_ms=")
	if !ok {
		return time.Second
	}
	if i := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		v = v[:i]
	}
	ms, err := strconv.Atoi(v)
	if err != nil || ms <= 0 {
		return time.Second
	}
	return time.Duration(ms) * time.Millisecond
}
