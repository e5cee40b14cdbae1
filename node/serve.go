package node

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/fame-go/fame/envelope"
)

// UnaryFunc answers one request. params is the flat JSON object the caller sent.
type UnaryFunc func(ctx context.Context, params json.RawMessage) (any, error)

// StreamFunc answers a streaming request by calling emit once per item; returning ends the
// stream (a nil error sends the final "result":null, an error sends a JSON-RPC error).
type StreamFunc func(ctx context.Context, params json.RawMessage, emit func(any) error) error

// Op is one operation: exactly one of Unary and Stream is set.
type Op struct {
	Unary  UnaryFunc
	Stream StreamFunc
}

// Ops maps JSON-RPC method names to operations.
type Ops map[string]Op

// Unary and Streaming build an Op.
func Unary(f UnaryFunc) Op      { return Op{Unary: f} }
func Streaming(f StreamFunc) Op { return Op{Stream: f} }

// CapabilityAgent is the capability every served agent advertises.
const CapabilityAgent = "fame.capability.agent"

// registration is one served address and how it is bound.
type registration struct {
	address   string   // what callers use: math@fame.fabric
	bind      string   // what is bound: the address, or math@*.fame.fabric for a pool replica
	advertise string   // the CapabilityAdvertise address: the address, or math@<systemId>.fame.fabric
	pool      string   // "*.fame.fabric" when bound as a pool replica
	caps      []string // capabilities advertised beyond CapabilityAgent (ServeCapabilities)
	ops       Ops
}

// Serve binds address (e.g. "math@fame.fabric") and answers its requests with ops until the
// node is closed. When a requested logical is a wildcard that covers the address's host
// ("*.fame.fabric"), the node joins the pool as the reference agent does: it binds
// "math@*.fame.fabric" and advertises "math@<systemId>.fame.fabric". Otherwise it binds and
// advertises the address itself. Serve returns once both are acknowledged; after a reconnect
// they are repeated automatically.
func (n *Node) Serve(ctx context.Context, address string, ops Ops) error {
	return n.ServeCapabilities(ctx, address, ops, nil)
}

// ServeCapabilities is Serve that also advertises caps for the address, so callers that name
// capabilities instead of an address (CallCapabilities, the reference's remoteByCapabilities)
// reach it. CapabilityAgent is always advertised.
func (n *Node) ServeCapabilities(ctx context.Context, address string, ops Ops, caps []string) error {
	a, err := envelope.ParseAddress(address)
	if err != nil {
		return fmt.Errorf("node: serve: %w", err)
	}
	if a.Host == "" || a.IsWildcard() {
		return fmt.Errorf("node: serve %q: %w: need a logical host address like math@fame.fabric", address, envelope.ErrBadAddress)
	}
	for name, op := range ops {
		if (op.Unary == nil) == (op.Stream == nil) {
			return fmt.Errorf("node: serve %q: op %q must set exactly one of Unary and Stream", address, name)
		}
	}
	for _, c := range caps {
		if c == "" {
			return fmt.Errorf("node: serve %q: empty capability", address)
		}
	}
	r := &registration{address: address, bind: address, advertise: address, caps: append([]string(nil), caps...), ops: ops}
	for _, l := range n.cfg.RequestedLogicals {
		if strings.HasPrefix(l, "*.") && envelope.MatchPool(l, a.Host) {
			r.pool = l
			r.bind = a.Participant + "@" + l
			r.advertise = a.Participant + "@" + n.cfg.SystemID + "." + strings.TrimPrefix(l, "*.")
			break
		}
	}
	n.mu.Lock()
	n.regs = append(n.regs, r)
	n.mu.Unlock()
	l, err := n.current(ctx)
	if err != nil {
		return err
	}
	return n.bind(ctx, l, r)
}

// lookup finds the registration serving a request's to address, or for a capability-routed
// request (no to) the one that advertised every capability it names.
func (n *Node) lookup(to string, caps []string) *registration {
	participant, loc, ok := envelope.SplitInbox(to)
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.regs {
		if to == r.address || to == r.advertise || to == r.bind {
			return r
		}
		if ok && r.pool != "" && strings.HasPrefix(r.bind, participant+"@") && !strings.Contains(loc, "/") && envelope.MatchPool(r.pool, loc) {
			return r
		}
	}
	// By capability, or pinned to this node's physical path with the capabilities (CallAt):
	// the registration that advertised them.
	if len(caps) > 0 && (to == "" || strings.HasPrefix(loc, "/")) {
		for _, r := range n.regs {
			if r.provides(caps) {
				return r
			}
		}
	}
	// Capability-routed or path-routed requests carry no service address we know; with one
	// registration there is no ambiguity.
	if len(n.regs) == 1 && (to == "" || strings.HasPrefix(loc, "/")) {
		return n.regs[0]
	}
	return nil
}

// provides reports whether r advertised every capability in caps.
func (r *registration) provides(caps []string) bool {
	for _, c := range caps {
		if c != CapabilityAgent && !slices.Contains(r.caps, c) {
			return false
		}
	}
	return true
}

// bind sends AddressBind then CapabilityAdvertise, each after the previous ack.
func (n *Node) bind(ctx context.Context, l *link, r *registration) error {
	ab := &envelope.AddressBind{Address: r.bind, PhysicalPath: l.assignedPath}
	if n.sec != nil {
		ab.EncryptionKeyID = n.sec.encKid // as the reference agent: sealed senders find our key
	}
	frames := []envelope.Frame{
		ab,
		&envelope.CapabilityAdvertise{Capabilities: append([]string{CapabilityAgent}, r.caps...), Address: r.advertise},
	}
	for _, f := range frames {
		if err := n.control(ctx, l, f); err != nil {
			return fmt.Errorf("node: %s %s: %w", f.FrameType(), r.bind, err)
		}
	}
	n.log.Info("serving", "address", r.address, "bind", r.bind, "advertise", r.advertise)
	return nil
}

// control sends a hop-local control frame that wants an ack (rtype ACK, replyTo __sys__) and
// waits for the ack.
func (n *Node) control(ctx context.Context, l *link, f envelope.Frame) error {
	env, err := envelope.New(f)
	if err != nil {
		return err
	}
	env.SID, env.TraceID, env.ReplyTo, env.RType, env.CorrID = l.sid, l.traceID, l.sysInbox, envelope.RTypeAck, envelope.NewID()
	w, _ := n.pend.add(env.CorrID, false) // uncapped: cannot fail
	defer n.pend.remove(w)
	n.pend.track(w, env.ID)
	ctx, cancel := context.WithTimeout(ctx, n.cfg.AttachTimeout)
	defer cancel()
	if err := n.sendOn(ctx, l, env); err != nil {
		return err
	}
	for {
		if ev, _, ok := w.pop(); ok {
			switch ev.kind {
			case evAck:
				return nil
			case evNack:
				return ev.nack
			}
			continue
		}
		select {
		case <-w.notify:
		case <-ctx.Done():
			return ctxErr(ctx)
		case <-l.done():
			return errLinkLost
		}
	}
}
