package node

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/corkconn"
	"github.com/fame-go/fame/security"
	"github.com/fame-go/fame/tracing"
)

// dial gathers the admission (URL, token, logicals), opens the socket, runs the attach
// handshake and returns a link that is not yet running (install starts it). The Node
// builds what carries its identity (NodeAttach, the sentinel's keys, the inboxes); the link
// only moves envelopes.
func (n *Node) dial(ctx context.Context) (*link, error) {
	cfg := &n.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.AttachTimeout)
	defer cancel()
	var cork atomic.Pointer[corkconn.Conn]
	opts := &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled, HTTPClient: corkingClient(cfg.HTTPClient, &cork)}
	// The URL, the token and the logicals come from the same welcome grant: fetch the grant
	// (URL) first so the other two read the cached one.
	base, err := n.attachURL(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Token != nil {
		tok, err := cfg.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("node: admission token: %w", err)
		}
		opts.Subprotocols = []string{"bearer", tok}
	}
	logicals, err := n.attachLogicals(ctx)
	if err != nil {
		return nil, err
	}
	// The certificate must name the path this grant places us at (a new one after a move).
	if err := n.certificateForGrant(ctx); err != nil {
		return nil, err
	}
	url := strings.TrimRight(base, "/") + "/" + cfg.SystemID
	conn, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, fmt.Errorf("node: dial %s: %w", url, err)
	}
	conn.SetReadLimit(envelope.MaxMessageSize + 64<<10)

	l := newLink(conn, cork.Load(), n.linkDeps())
	hello, err := n.hello(l, logicals)
	if err != nil {
		conn.CloseNow()
		return nil, err
	}
	ack, err := l.attach(ctx, hello)
	if err != nil {
		conn.CloseNow()
		return nil, err
	}
	l.assignedPath = ack.AssignedPath
	l.parentPath = ack.TargetPhysicalPath
	if l.parentPath == "" {
		l.parentPath = ack.TargetPhysicalPathSnake
	}
	if ns := n.sec; ns != nil {
		parent := l.parentPath
		for i, raw := range ack.Keys {
			j, err := security.ParseJWK(raw)
			if err == nil {
				// The sentinel is authenticated by the attach itself (the socket we dialled); its
				// certificate, if any, names its own trust domain and is not ours to check.
				j.X5C = nil
				err = ns.keys.Add(j, parent)
			}
			if err != nil {
				n.log.Warn("invalid sentinel key skipped", "index", i, "err", err)
			}
		}
		l.aft = isReplica(cfg.RequestedLogicals) && aftEnabled(ack.Stickiness)
	}
	n.hopTraced.Store(tracing.HopTraced(l.ackMeta))
	l.sid = envelope.SecureDigest(ack.AssignedPath)
	l.sysInbox = "__sys__@" + ack.AssignedPath
	l.rpcInbox = "__rpc__" + n.rpcID + "@" + ack.AssignedPath
	l.epoch.Store(&ack.RoutingEpoch)
	l.lastAck.Store(time.Now().UnixNano())
	return l, nil
}

// hello builds the NodeAttach for l (the first envelope of its flow, seqId 0, SYN) with
// the acceptedLogicals to send (see attachLogicals) and, on secured nodes, the public keys,
// whose certificate generation l then records. Outbound hooks run; NodeAttach is not signed.
func (n *Node) hello(l *link, logicals []string) (*envelope.Envelope, error) {
	cfg := &n.cfg
	f := &envelope.NodeAttach{OriginType: "downstream", SystemID: cfg.SystemID, InstanceID: cfg.InstanceID, AcceptedLogicals: logicals}
	if ns := n.sec; ns != nil {
		var gen uint64
		var notAfter time.Time
		f.Keys, gen, notAfter = ns.publicKeys()
		l.certGen.Store(gen)
		l.certNotAfter.Store(unixNanos(notAfter))
		if isReplica(cfg.RequestedLogicals) {
			f.Stickiness = stickinessOffer
		}
	}
	env, err := envelope.New(f)
	if err != nil {
		return nil, err
	}
	env.TraceID, env.CorrID, env.FlowID = envelope.NewID(), envelope.NewID(), l.flowID
	env.SeqID, env.FlowFlags = 0, envelope.FlowSyn
	if err := runHooks(cfg.Outbound, env); err != nil {
		return nil, fmt.Errorf("node: outbound hook on NodeAttach: %w", err)
	}
	return env, nil
}

// linkDeps is what this Node gives each link it dials.
func (n *Node) linkDeps() linkDeps {
	d := linkDeps{
		log:          n.log,
		heartbeat:    n.cfg.HeartbeatInterval,
		sendQueue:    n.cfg.SendQueue,
		flowControl:  !n.cfg.DisableFlowControl,
		inboundHooks: n.cfg.Inbound,
		seal:         n.seal,
		deliver:      n.receive,
		lost:         n.linkLost,
		busy:         &n.busy,
	}
	if n.cfg.ShowEnvelopes {
		d.show = n.show
	}
	if n.sec != nil {
		d.loops = []func(*link){n.keyLoop}
	}
	return d
}
