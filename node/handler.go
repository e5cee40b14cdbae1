package node

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
	"github.com/fame-go/fame/tracing"
)

// handle runs one request on a handler goroutine (see runHandler) and sends the reply (or stream items) back to
// the request's replyTo with its corrId and traceId.
// A request that came over a secure channel is answered over the same channel.
func (n *Node) handle(r *registration, env *envelope.Envelope, ch *security.Channel) {
	f, err := env.DecodeFrame()
	if err != nil {
		n.replies.abort(env.ID)
		return
	}
	req, rerr := decodeRequest(f.(*envelope.Data).Payload)
	id, _ := json.Marshal(env.CorrID)
	if req != nil && len(req.ID) > 0 {
		id = req.ID
	}
	ctx := n.ctx
	var span trace.Span
	var replyMeta []byte // the serve span's trace context, on every reply
	if n.cfg.Tracer != nil {
		ctx, span = n.traceServe(env, req)
		defer span.End()
		replyMeta = tracing.MetaFor(ctx)
	}
	// Every reply is also kept (replies.go) for a re-send of this request whose reply was
	// lost; the re-sends that came while it ran are answered after its last reply.
	rec := n.replies.recorder(env)
	if rec != nil {
		defer n.finishReplies(env, rec)
	}
	respond := func(p json.RawMessage) error {
		if env.ReplyTo == "" {
			return nil // a notification: nobody to answer
		}
		id := envelope.NewID()
		rec.add(id, p, replyMeta)
		return n.sendReply(env, id, p, ch, replyMeta)
	}
	fail := func(e *RemoteError) {
		if span != nil {
			span.SetStatus(codes.Error, e.Message)
		}
		if p, err := encodeError(id, e); err == nil {
			if err := respond(p); err != nil {
				n.log.Debug("error reply not delivered", "corrId", env.CorrID, "err", err)
			}
		}
	}
	if rerr != nil {
		fail(rerr)
		return
	}
	op, ok := r.ops[req.Method]
	if !ok {
		data, _ := json.Marshal(map[string]string{"method": req.Method})
		fail(&RemoteError{Code: CodeMethodNotFound, Message: "Method not found: " + req.Method, Data: data})
		return
	}
	wantsStream := env.RType.Has(envelope.RTypeStream)
	if op.Unary != nil {
		res, err := callUnary(ctx, op.Unary, req.Params)
		if err != nil {
			fail(toRemoteError(err))
			return
		}
		p, err := encodeResult(id, res)
		if err != nil {
			fail(&RemoteError{Code: CodeInternalError, Message: "result not encodable: " + err.Error()})
			return
		}
		if err := respond(p); err == nil && wantsStream && res != nil {
			// A streaming caller of a unary op sees one item, then the end of the stream.
			end, _ := encodeResult(id, nil)
			_ = respond(end)
		}
		return
	}
	if !wantsStream {
		// A plain call of a streaming op gets every item as one array.
		var items []json.RawMessage
		err := callStream(ctx, op.Stream, req.Params, func(v any) error {
			b, err := json.Marshal(v)
			items = append(items, b)
			return err
		})
		if err != nil {
			fail(toRemoteError(err))
			return
		}
		if items == nil {
			items = []json.RawMessage{}
		}
		if p, err := encodeResult(id, items); err == nil {
			_ = respond(p)
		}
		return
	}
	st := n.served.add(env.CorrID)
	defer n.served.remove(env.CorrID, st)
	err = callStream(ctx, op.Stream, req.Params, func(v any) error {
		if err := st.err(); err != nil {
			return err // the caller would see a gap
		}
		p, err := encodeResult(id, v)
		if err != nil {
			return fmt.Errorf("stream item not encodable: %w", err)
		}
		return respond(p)
	})
	if err == nil {
		err = st.err()
	}
	if err != nil {
		fail(toRemoteError(err))
		return
	}
	end, _ := encodeResult(id, nil)
	_ = respond(end)
}

// callUnary and callStream turn a panic in user code into an internal error instead of
// taking the node down.
func callUnary(ctx context.Context, f UnaryFunc, p json.RawMessage) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("operation panicked: %v", r)
		}
	}()
	return f(ctx, p)
}

func callStream(ctx context.Context, f StreamFunc, p json.RawMessage, emit func(any) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("operation panicked: %v", r)
		}
	}()
	return f(ctx, p, emit)
}

// replyEnvelope builds the reply envelope id with payload for req on link l.
func (n *Node) replyEnvelope(l *link, req *envelope.Envelope, id string, payload json.RawMessage, meta []byte) (*envelope.Envelope, error) {
	env, err := envelope.New(&envelope.Data{Payload: payload})
	if err != nil {
		return nil, err
	}
	env.ID, env.SID, env.TraceID, env.To, env.ReplyTo, env.CorrID = id, l.sid, req.TraceID, req.ReplyTo, l.sysInbox, req.CorrID
	if pinnable(req) {
		// Says "calls pinned to this node reach me" (responder.go); acks still arrive,
		// routed by the same path.
		env.ReplyTo = PinnedParticipant + "@" + l.assignedPath
	}
	env.Meta = meta
	if n.cfg.Delivery == AtLeastOnce {
		env.RType = envelope.RTypeAck
	}
	return env, nil
}

// sendReply sends one reply envelope (id) for req. Under at-least-once it asks for an ACK and
// re-sends (same envelope id, so the caller dedupes) until acknowledged.
func (n *Node) sendReply(req *envelope.Envelope, id string, payload json.RawMessage, ch *security.Channel, meta []byte) error {
	alo := n.cfg.Delivery == AtLeastOnce
	build := func(l *link) (*envelope.Envelope, error) {
		return n.replyEnvelope(l, req, id, payload, meta)
	}
	ctx := n.ctx
	if !alo {
		l, err := n.current(ctx)
		if err != nil {
			return err
		}
		env, err := build(l)
		if err != nil {
			return err
		}
		return n.sendSecured(ctx, l, env, n.replyChannel(ch))
	}
	w, err := n.pend.add("", true)
	if err != nil {
		n.refused.inc(RefusedPendingFull)
		return fmt.Errorf("node: reply to %s: %w", req.ReplyTo, err)
	}
	defer n.pend.remove(w)
	n.pend.track(w, id)
	pol := n.cfg.ReceiverRetry
	for attempt := 0; ; attempt++ {
		l, err := n.current(ctx)
		if err != nil {
			return err
		}
		env, err := build(l)
		if err != nil {
			return err
		}
		if err := n.sendSecured(ctx, l, env, n.replyChannel(ch)); err != nil && err != errLinkLost {
			return err
		}
		acked, nack, err := n.awaitAck(ctx, w, pol.delay(attempt, jitter))
		switch {
		case err != nil:
			return err
		case acked:
			return nil
		case nack != nil && !replyRetryable(nack.Code):
			return nack
		case attempt >= pol.MaxRetries:
			return fmt.Errorf("%w: reply %s not acknowledged after %d retries", ErrTimeout, id, pol.MaxRetries)
		}
	}
}

// awaitAck waits up to d for an ack or nack on w. Replies on w are not expected here.
func (n *Node) awaitAck(ctx context.Context, w *waiter, d time.Duration) (acked bool, nack *NackError, err error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		if ev, _, ok := w.pop(); ok {
			switch ev.kind {
			case evAck:
				return true, nil, nil
			case evNack:
				if !replyRetryable(ev.nack.Code) {
					return false, ev.nack, nil
				}
				// The sentinel re-routes; wait out the delay before re-sending.
			}
			continue
		}
		select {
		case <-w.notify:
		case <-t.C:
			return false, nil, nil
		case <-ctx.Done():
			if n.ctx.Err() != nil {
				return false, nil, ErrClosed
			}
			return false, nil, ctxErr(ctx)
		}
	}
}

// retryable reports whether an at-least-once sender should re-send after this nack: the
// route died under the envelope and the sentinel will pick another one.
func retryable(code string) bool {
	switch code {
	case envelope.CodeRouteConnectorClosed, envelope.CodeChildUnreachable, envelope.CodePeerUnreachable:
		return true
	}
	return false
}

// codeDrainingNack is the sentinel's DRAINING nack (fame-go, sentinel.CodeDraining; the
// node does not import the sentinel): the sender's own sentinel is draining for a restart and
// refused the call before routing it, or gave up on it at its drain timeout.
const codeDrainingNack = "DRAINING"

// resendsOnDraining reports whether an at-least-once call nacked DRAINING is sent again
// rather than failed: only when the node asks where to attach before every dial
// (Config.AttachURL: a list of the cluster's sentinels, or welcome admission placing it), so
// that once the drain closes the link the node attaches to another sentinel and the call is
// re-sent there (the linkLost re-send), or after the back-off, whichever comes first. With a
// fixed URL the node would come back to the same sentinel, so the caller is told at once, as
// a single sentinel's drain promises. An at-most-once call always gets the nack as its error:
// a drain-timeout DRAINING may follow a call that ran, which it must not run twice.
func (n *Node) resendsOnDraining() bool { return n.cfg.AttachURL != nil }

// replyRetryable is retryable for an at-least-once reply, plus NO_ROUTE: a reply goes to one
// node's inbox, and after a sentinel restart the replica may re-attach before its caller, whose
// path then has no route for a moment. Given up at once, the reply was lost for good: the
// caller's re-send of the request is recognised as a duplicate and not run again (#20).
func replyRetryable(code string) bool {
	return retryable(code) || code == envelope.CodeNoRoute
}

func jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}

// replyChannel is ch while it is still open (a SecureClose may have come meanwhile; then
// the reply goes in plaintext, which strict-overlay accepts).
func (n *Node) replyChannel(ch *security.Channel) *security.Channel {
	if ch == nil || n.sec == nil {
		return nil
	}
	if cur, ok := n.sec.channels.table.Get(ch.CID()); ok && !cur.NeedsRekey() {
		return cur
	}
	return nil
}
