package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/node/admit"
	"github.com/fame-go/fame/security"
)

// Node is one attached FAME node. All methods are safe for concurrent use.
type Node struct {
	// busy counts the work in progress on this node: calls awaiting their answer and
	// requests accepted for a handler and not yet answered. A link writes an envelope on the
	// sender's goroutine (the direct write) only while busy is at most one: one call, or one
	// request, at a time, where a wake-up of the writer goroutine per envelope is what costs.
	// With more in progress the writer sends what they produce in batches.
	busy atomic.Int64

	cfg   Config
	log   *slog.Logger
	rpcID string // suffix of this node's __rpc__ inbox, stable across reconnects

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // supervisor and request handlers
	// handlers runs received requests (see workers.go).
	handlers *handlerPool

	mu      sync.Mutex
	cur     *link         // the attached link; nil while reconnecting
	ready   chan struct{} // closed when cur is set
	regs    []*registration
	closed  bool
	rebindC chan struct{} // routing epoch changed: re-bind everything

	sec *nodeSecurity // nil unless the profile signs (overlay, strict-overlay)
	// certs issues the node certificate (strict-overlay with welcome admission); nil otherwise.
	// Set before the first dial, read-only after.
	certs *admit.CertSource
	pend  *pendingTable
	// served are the streams being answered, for the nacks of their items (served.go).
	served servedStreams
	// refused counts refusals by reason (see refusals.go).
	refused *refusals
	seen    *lru.Cache[string, struct{}] // recently received Data envelope ids
	// replies keeps the replies of requests run here for their re-sends (replies.go); nil
	// when Config.ReplyCacheSize < 0. replaySem bounds the re-sends of kept replies at once.
	replies   *replyCache
	replaySem chan struct{}
	showMu    sync.Mutex
	// drain is what the sentinel's heartbeat acks said of this node's drain (drain.go).
	drain drainState

	// hopTraced: the sentinel of the current link records route spans (tracing.go).
	hopTraced atomic.Bool
}

// Connect attaches to the sentinel and returns a running node. The first attach failure is
// returned (an *AttachError when the sentinel refused); later connection losses are repaired
// in the background until Close.
func Connect(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := cfg.resolveAdmission(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger.With("node", cfg.SystemID),
		rpcID:   envelope.NewID(),
		ready:   make(chan struct{}),
		rebindC: make(chan struct{}, 1),
		pend:    newPendingTable(),
	}
	n.handlers = newHandlerPool(cfg.MaxHandlers, cfg.HandlerQueue)
	n.drain.init()
	var err error
	if n.refused, err = newRefusals(cfg.Registerer, cfg.SystemID); err != nil {
		return nil, fmt.Errorf("%w: metrics: %w", ErrConfig, err)
	}
	n.seen, _ = lru.New[string, struct{}](cfg.DedupeSize)
	n.replies = newReplyCache(cfg.ReplyCacheSize, cfg.ReplyCacheBytes, cfg.ReplyCacheTTL)
	if n.replies != nil {
		if n.replies.metrics, err = newReplyMetrics(cfg.Registerer, cfg.SystemID); err != nil {
			return nil, fmt.Errorf("%w: metrics: %w", ErrConfig, err)
		}
	}
	n.replaySem = make(chan struct{}, maxReplaysInFlight)
	n.pend.max = cfg.MaxPending
	sec, err := newNodeSecurity(&n.cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	n.sec = sec
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.startCertificates(ctx); err != nil {
		n.cancel()
		n.wg.Wait()
		return nil, err
	}
	l, err := n.connectDial(ctx)
	if err != nil {
		n.cancel()
		n.wg.Wait()
		return nil, err
	}
	n.install(l)
	n.wg.Add(1)
	go n.supervise(l)
	if n.sec != nil {
		n.wg.Add(1)
		go n.channelJanitor()
	}
	return n, nil
}

// connectDial is Connect's dial: a sentinel that cannot be reached is not the end while the
// node has others to try, the next sentinel of its list (AttachChoices), or one new
// placement from the welcome service (forgetPlacement). A refusal is final: credentials or
// an identity another sentinel would refuse the same way.
func (n *Node) connectDial(ctx context.Context) (*link, error) {
	placeAgain := true
	for tries := 1; ; tries++ {
		l, err := n.dial(ctx)
		if err == nil || authRefused(err) || ctx.Err() != nil || refusedAttach(err) {
			return l, err
		}
		switch {
		case tries < n.cfg.AttachChoices:
		case placeAgain && n.forgetPlacement():
			placeAgain = false
		default:
			return nil, err
		}
		n.log.Warn("sentinel unreachable; trying the next one", "err", err)
	}
}

// refusedAttach reports whether a sentinel answered the attach with a refusal (as opposed to
// not being reached).
func refusedAttach(err error) bool {
	var ae *AttachError
	return errors.As(err, &ae) && ae.Refused
}

// SystemID is this node's system id.
func (n *Node) SystemID() string { return n.cfg.SystemID }

// AssignedPath is the physical path of the current attachment ("" while reconnecting).
func (n *Node) AssignedPath() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cur == nil {
		return ""
	}
	return n.cur.assignedPath
}

// Close detaches (WebSocket close 1000) and stops every goroutine the node started, waiting
// for running handlers to see their context cancelled and return.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.closeChannelsOnExit()
	n.cancel()
	n.wg.Wait()
	return nil
}

func (n *Node) install(l *link) {
	l.start()
	n.mu.Lock()
	n.cur = l
	close(n.ready)
	n.mu.Unlock()
	// A certificate renewed while this link was attaching is not in its NodeAttach.
	n.syncKeys(l)
}

func (n *Node) uninstall(l *link) {
	n.mu.Lock()
	if n.cur == l {
		n.cur = nil
		n.ready = make(chan struct{})
	}
	n.mu.Unlock()
}

// linkLost is the links' report of their failure (linkDeps.lost): callers stop picking the
// dead link at once, and the supervisor, which watches done, replaces it.
func (n *Node) linkLost(l *link, cause error) {
	n.log.Warn("connection lost", "cause", cause)
	n.uninstall(l)
}

// supervise owns the current link: it re-binds on epoch changes, and when the link dies it
// reconnects with exponential backoff and re-binds every served address.
func (n *Node) supervise(l *link) {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			n.uninstall(l)
			l.shutdown()
			return
		case <-n.rebindC:
			n.rebindAll(l)
			continue
		case <-l.done():
		}
		n.uninstall(l)
		// Here and not in linkLost: the link reports its failure at most once and not when
		// this shutdown wins the race to its report, while every death of a link passes here.
		n.pend.linkLost(l)
		l.shutdown()
		var ok bool
		if l, ok = n.reconnect(); !ok {
			return
		}
	}
}

// reconnect dials until it succeeds (and the binds are back) or the node is closed.
func (n *Node) reconnect() (*link, bool) {
	backoff := n.cfg.ReconnectMin
	wait := backoff
	placeAgain := true // one immediate dial per outage on a new placement
	for {
		select {
		case <-n.ctx.Done():
			return nil, false
		case <-time.After(wait):
		}
		backoff = min(2*backoff, n.cfg.ReconnectMax)
		wait = backoff
		l, err := n.dial(n.ctx)
		if err != nil {
			if authRefused(err) {
				n.forgetCredentials()
			} else if n.forgetPlacement() && placeAgain {
				// The grant named a sentinel we could not reach (it died): the next hello may
				// place us on a live one of the cluster, so try that at once.
				placeAgain, wait = false, 0
			}
			n.log.Warn("reconnect failed", "err", err, "retry_in", wait)
			continue
		}
		n.install(l)
		if err := n.rebindAll(l); err != nil {
			n.log.Warn("re-bind after reconnect failed", "err", err)
			n.uninstall(l)
			l.shutdown()
			continue
		}
		n.log.Info("reconnected", "path", l.assignedPath)
		return l, true
	}
}

func (n *Node) rebindAll(l *link) error {
	n.mu.Lock()
	regs := append([]*registration(nil), n.regs...)
	n.mu.Unlock()
	for _, r := range regs {
		if err := n.bind(n.ctx, l, r); err != nil {
			return err
		}
	}
	return nil
}

// current waits for an attached, live link.
func (n *Node) current(ctx context.Context) (*link, error) {
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return nil, ErrClosed
		}
		l, ready := n.cur, n.ready
		n.mu.Unlock()
		if l != nil && l.alive() {
			return l, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctxErr(ctx)
		case <-n.ctx.Done():
			return nil, ErrClosed
		}
		if l != nil {
			// The current link is dead but not yet replaced: wait for the supervisor.
			select {
			case <-l.done():
			case <-ctx.Done():
				return nil, ctxErr(ctx)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// sendOn runs the outbound hooks, signs (overlay profiles) and queues env on l.
func (n *Node) sendOn(ctx context.Context, l *link, env *envelope.Envelope) error {
	return n.sendSecured(ctx, l, env, nil)
}

// sendSecured is sendOn that also encrypts a Data payload over ch (sign first: pd is the
// plaintext digest). ErrChannelExhausted means the channel must be replaced.
func (n *Node) sendSecured(ctx context.Context, l *link, env *envelope.Envelope, ch *security.Channel) error {
	if err := n.prepare(l, env, ch); err != nil {
		return err
	}
	return l.send(ctx, env)
}

// post queues an envelope from the reader goroutine, which must never block: when the
// queue is full the envelope is dropped (the peer re-sends or times out); link.post logs
// that, with the reason.
func (n *Node) post(l *link, env *envelope.Envelope) {
	if err := n.prepare(l, env, nil); err != nil {
		n.log.Warn("not sent", "type", env.FrameType(), "err", err)
		return
	}
	l.post(env)
}

// prepare gives env the link's flow unless it has one, seals it (see seal) and encrypts a
// Data payload over ch.
func (n *Node) prepare(l *link, env *envelope.Envelope, ch *security.Channel) error {
	if env.FlowID == "" {
		env.FlowID = l.flowID
	}
	if err := n.seal(env); err != nil {
		return err
	}
	if ch != nil {
		if err := ch.EncryptEnvelope(env); err != nil {
			return fmt.Errorf("node: encrypt for %s: %w", env.To, err)
		}
	}
	return nil
}

// outboundChannel is the channel a request to dest goes over, nil for plaintext. Sealed
// encryption is not implemented for sending: that level uses a channel too.
func (n *Node) outboundChannel(ctx context.Context, l *link, dest string) (*security.Channel, error) {
	if n.sec == nil || n.sec.level == security.LevelPlaintext {
		return nil, nil
	}
	for attempt := 1; ; attempt++ {
		ch, err := n.channelFor(ctx, l, dest)
		// A SecureClose for the channel while it was being opened (its replica is draining
		// or gone): open another, which the sentinel places on a replica that stays.
		if errors.Is(err, errChannelClosed) && attempt < maxChannelOpens {
			n.log.Debug("secure channel closed while opening, opening another", "dest", dest)
			continue
		}
		return ch, err
	}
}

// maxChannelOpens bounds the channel opens of one send that SecureCloses interrupt.
const maxChannelOpens = 3

// seal runs the outbound hooks and signs (overlay profiles): what every envelope this node
// originates after NodeAttach goes through, including the links' heartbeats.
func (n *Node) seal(env *envelope.Envelope) error {
	if err := runHooks(n.cfg.Outbound, env); err != nil {
		return fmt.Errorf("node: outbound hook: %w", err)
	}
	if n.sec == nil {
		return nil
	}
	return n.sec.sign(env)
}

func runHooks(hooks []EnvelopeHook, env *envelope.Envelope) error {
	for _, h := range hooks {
		if err := h(env); err != nil {
			return err
		}
	}
	return nil
}

// ctxErr maps a finished context to the SDK's errors: a deadline is ErrTimeout.
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
	return ctx.Err()
}
