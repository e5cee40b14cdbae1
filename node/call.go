package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// Call invokes method on the agent at address with params (marshalled to the flat JSON object
// the reference SDK sends; nil sends {}) and decodes the result into result (may be nil, or a
// *json.RawMessage). Without a deadline on ctx the call times out after Config.CallTimeout.
// Errors: *RemoteError (the operation failed), *NackError (matching ErrNoRoute for NO_ROUTE),
// ErrTimeout, ErrClosed.
func (n *Node) Call(ctx context.Context, address, method string, params, result any) error {
	return n.call(ctx, address, nil, method, params, result)
}

// CallCapabilities is Call addressed by capability: the envelope carries capabilities instead
// of to and the sentinel picks a node that advertised all of them (ServeCapabilities); none
// is a *NackError matching ErrNoRoute. Capability calls are not channel-encrypted (a channel
// is per destination address), so under channel encryption they fail with ErrCapabilityEncrypted.
func (n *Node) CallCapabilities(ctx context.Context, caps []string, method string, params, result any) error {
	return n.call(ctx, "", caps, method, params, result)
}

// StreamCapabilities is Stream addressed by capability (see CallCapabilities).
func (n *Node) StreamCapabilities(ctx context.Context, caps []string, method string, params any) (*Stream, error) {
	c, err := n.startCall(ctx, "", caps, method, params, true)
	if err != nil {
		return nil, err
	}
	return &Stream{c: c}, nil
}

func (n *Node) call(ctx context.Context, address string, caps []string, method string, params, result any) error {
	ctx, cancel := n.withCallTimeout(ctx)
	defer cancel()
	c, err := n.startCall(ctx, address, caps, method, params, false)
	if err != nil {
		return err
	}
	defer c.close()
	err = c.await(ctx, result)
	if c.tr != nil {
		c.spanErr(err)
	}
	return err
}

// await waits for the reply of a unary call and decodes it into result.
func (c *call) await(ctx context.Context, result any) error {
	method := c.method
	payload, err := c.next(ctx)
	if err != nil {
		return err
	}
	resp, err := decodeResponse(payload)
	if err != nil {
		return fmt.Errorf("node: %s reply: %w", method, err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("node: decode %s result: %w", method, err)
	}
	return nil
}

// Stream is the caller's side of a streaming call.
type Stream struct {
	c    *call
	once sync.Once
	done bool
}

// Stream starts a streaming call (rtype STREAM). Read the items with Next until io.EOF, and
// Close the stream if you stop early.
func (n *Node) Stream(ctx context.Context, address, method string, params any) (*Stream, error) {
	c, err := n.startCall(ctx, address, nil, method, params, true)
	if err != nil {
		return nil, err
	}
	return &Stream{c: c}, nil
}

// Next returns the next item's JSON result, io.EOF after the final "result":null, or the
// error that ended the stream. Items are never skipped: an item refused on its way ends the
// stream with an error (ErrReplyRefused when this node refused it, a *RemoteError when the
// sentinel nacked it to the serving node, a *NackError when the serving node's connection
// died). Without a deadline on ctx each Next waits at most Config.CallTimeout.
func (st *Stream) Next(ctx context.Context) (json.RawMessage, error) {
	if st.done {
		return nil, io.EOF
	}
	ctx, cancel := st.c.n.withCallTimeout(ctx)
	defer cancel()
	payload, err := st.c.next(ctx)
	if err != nil {
		st.c.spanErr(err)
		st.finish()
		return nil, err
	}
	item, err := streamItem(payload)
	if err == io.EOF {
		st.finish()
		return nil, io.EOF
	}
	if err != nil {
		st.c.spanErr(err)
		st.finish()
		var remote *RemoteError
		if errors.As(err, &remote) {
			return nil, remote
		}
		return nil, fmt.Errorf("node: %s stream item: %w", st.c.method, err)
	}
	return item, nil
}

// streamItem decodes one stream reply: the item's result, io.EOF at the end of the stream, or
// the remote error that ended it. The end is "result": null (the TS SDK) or a response with
// neither result nor error (the Python SDK drops its "result": None when it serialises).
func streamItem(payload []byte) (json.RawMessage, error) {
	resp, err := decodeResponse(payload)
	if errors.Is(err, errNoResult) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	if string(resp.Result) == "null" {
		return nil, io.EOF
	}
	return resp.Result, nil
}

// Close stops listening for the stream's items.
func (st *Stream) Close() error {
	st.finish()
	return nil
}

func (st *Stream) finish() {
	st.done = true
	st.once.Do(st.c.close)
}

func (n *Node) withCallTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, n.cfg.CallTimeout)
}

// codeChannelClosedNack is the sentinel's nack of a request encrypted for a channel it closed
// (its replica left or was drained).
const codeChannelClosedNack = envelope.CodeChannelClosed

// call is one outstanding request: its waiter and, under at-least-once, its re-send state.
type call struct {
	n       *Node
	w       *waiter
	counted bool // counts in n.busy until close
	method  string
	id      string // envelope id, the same on every re-send so the receiver dedupes
	corrID  string
	traceID string
	to      string
	caps    []string // capability-routed when to is empty
	payload json.RawMessage
	rtype   envelope.RType
	alo     bool
	acked   bool
	replied bool // a reply (or stream item) arrived: the request ran to completion somewhere
	// from, fromSID: the first reply's replyTo and sid (responder.go).
	from, fromSID string
	reopened      bool // re-sent once over a new channel after SecureClose
	// superseded is the envelope id of the send a SecureClose superseded: the re-send goes
	// out under a new id, so that the sentinel's nack of the old send (CHANNEL_CLOSED, or
	// ROUTE_CONNECTOR_CLOSED when the old replica's connection is closed after its channels)
	// is told apart from an answer to the re-send and does not fail the call.
	superseded string
	sentOn     *link // the link of the last send
	attempt    int
	retryAt    *time.Timer
	closeOne   sync.Once
	// tr is the call's tracing (tracing.go); nil when tracing is off, so that an untraced
	// call carries one pointer for it.
	tr *callTrace
}

// reopen re-sends the call over a new channel after its channel was closed under it (a
// SecureClose, or the sentinel's CHANNEL_CLOSED nack), once; a second close fails the call.
func (c *call) reopen(ctx context.Context) error {
	if c.reopened {
		return fmt.Errorf("node: %s on %s: %w twice", c.method, c.to, errChannelClosed)
	}
	if c.replied {
		// A stream that already delivered items: a re-send would run it again from its
		// first item. The caller is told it was cut.
		return fmt.Errorf("node: %s on %s: secure channel closed after items were delivered: %w", c.method, c.to, ErrConnectionLost)
	}
	c.reopened = true
	c.n.log.Debug("secure channel closed under a call, re-sending", "method", c.method)
	c.superseded, c.id = c.id, envelope.NewID()
	c.n.pend.track(c.w, c.id)
	if err := c.send(ctx); err != nil {
		return c.mapErr(ctx, err)
	}
	return nil
}

// checkTarget validates where a Data goes: a valid address, or (caps not nil) a non-empty
// capability list, which channel encryption cannot serve (no channel to a peer not chosen yet).
func (n *Node) checkTarget(address string, caps []string) error {
	if caps == nil {
		_, err := envelope.ParseAddress(address)
		return err
	}
	if len(caps) == 0 || slices.Contains(caps, "") {
		return fmt.Errorf("%w: empty capability list or entry", envelope.ErrBadAddress)
	}
	if n.sec != nil && n.sec.level != security.LevelPlaintext {
		return fmt.Errorf("by capability: %w", ErrCapabilityEncrypted)
	}
	return nil
}

// sendData sends the Data that build makes for the current link, through the channel to `to`
// (none when caps routes it), until it is written: it waits for the next link when the link
// is lost and re-keys a channel past its message or age limit. chosen (nil: none) sees the
// channel before the send and may ask for another try (false).
func (n *Node) sendData(ctx context.Context, to string, viaChannel bool, build func(l *link) (*envelope.Envelope, error),
	chosen func(ch *security.Channel) bool) error {
	for {
		l, err := n.current(ctx)
		if err != nil {
			return err
		}
		env, err := build(l)
		if err != nil {
			return err
		}
		var ch *security.Channel
		if viaChannel {
			ch, err = n.outboundChannel(ctx, l, to)
		}
		if err == nil {
			if ch != nil && chosen != nil && !chosen(ch) {
				continue
			}
			err = n.sendSecured(ctx, l, env, ch)
		}
		if errors.Is(err, errLinkLost) {
			continue // wait for the next link
		}
		if ch != nil && errors.Is(err, security.ErrChannelExhausted) {
			n.closeChannel(l, ch.CID(), to, "rekey")
			continue
		}
		return err
	}
}

func (n *Node) startCall(ctx context.Context, address string, caps []string, method string, params any, stream bool) (*call, error) {
	if err := n.checkTarget(address, caps); err != nil {
		return nil, fmt.Errorf("node: call %s: %w", method, err)
	}
	c := &call{n: n, method: method, id: envelope.NewID(), corrID: envelope.NewID(), traceID: envelope.NewID(), to: address, caps: caps}
	var err error
	if c.payload, err = encodeRequest(c.corrID, method, params); err != nil {
		return nil, err
	}
	if n.cfg.Tracer != nil {
		n.traceCall(ctx, c)
	}
	c.rtype = envelope.RTypeReply
	if stream {
		c.rtype = envelope.RTypeStream
	}
	if n.cfg.Delivery == AtLeastOnce {
		c.alo = true
		c.rtype |= envelope.RTypeAck
	}
	if c.w, err = n.pend.add(c.corrID, true); err != nil {
		n.refused.inc(RefusedPendingFull)
		err = fmt.Errorf("node: call %s on %s: %w", method, address, err)
		c.spanErr(err)
		c.endSpan()
		return nil, err
	}
	n.pend.track(c.w, c.id)
	n.busy.Add(1) // until close
	c.counted = true
	if err := c.send(ctx); err != nil {
		c.spanErr(err)
		c.close()
		return nil, err
	}
	return c, nil
}

// send (re-)sends the request on the current link. The link may change between
// attempts (reconnect), so sid and the reply inbox are filled in each time.
func (c *call) send(ctx context.Context) error {
	n := c.n
	err := n.sendData(ctx, c.to, c.caps == nil, func(l *link) (*envelope.Envelope, error) {
		env, err := envelope.New(&envelope.Data{Payload: c.payload})
		if err != nil {
			return nil, err
		}
		env.ID, env.SID, env.TraceID, env.To, env.ReplyTo = c.id, l.sid, c.traceID, c.to, l.rpcInbox
		env.RType, env.CorrID, env.Capabilities = c.rtype, c.corrID, c.caps
		if c.tr != nil {
			env.Meta = c.tr.meta
		}
		// The link this send goes over: when it dies with the call unanswered, the
		// supervisor's linkLost tells the call (see next).
		c.sentOn = l
		c.w.setSent(l, "")
		return env, nil
	}, func(ch *security.Channel) bool {
		c.w.setCID(ch.CID())
		// A SecureClose that took the channel between its choice and setCID did not mark
		// this call for a re-send: its reply could not be read. Choose again.
		return !ch.Closed()
	})
	if err == nil && !c.sentOn.alive() {
		// The link died under the send, maybe before linkLost looked at this call: handled
		// as its loss (a second report of the same link is ignored).
		c.w.push(event{kind: evLinkLost, link: c.sentOn})
	}
	if err == nil && c.alo {
		c.armRetry()
	}
	return err
}

func (c *call) armRetry() {
	d := c.n.cfg.SenderRetry.delay(c.attempt, jitter)
	if c.retryAt == nil {
		c.retryAt = time.NewTimer(d)
		return
	}
	c.retryAt.Reset(d)
}

// next waits for the next reply payload, handling acks, nacks and re-sends on the way.
func (c *call) next(ctx context.Context) (json.RawMessage, error) {
	for {
		ev, overflow, ok := c.w.pop()
		if overflow {
			return nil, fmt.Errorf("node: %s: reader fell %d items behind the stream", c.method, maxQueued)
		}
		if ok {
			switch ev.kind {
			case evAck:
				if c.superseded != "" && ev.ref == c.superseded {
					continue // the superseded send's ack says nothing of the re-send
				}
				c.stopRetry()
			case evReply:
				c.stopRetry()
				if !c.replied {
					c.from, c.fromSID = ev.from, ev.sid
				}
				c.replied = true
				return ev.payload, nil
			case evFail:
				return nil, ev.err
			case evReopen:
				if err := c.reopen(ctx); err != nil {
					return nil, err
				}
			case evLinkLost:
				if ev.link != c.sentOn {
					continue // a link this call no longer waits on
				}
				if c.alo && !c.replied && c.attempt < c.n.cfg.SenderRetry.MaxRetries {
					// Whether or not the request arrived, its ack or reply died with the link:
					// sent again (same envelope id, so a receiver that ran it does not run it
					// twice) once the node has a new link.
					c.attempt++
					c.acked = false
					c.n.log.Debug("connection lost under a call, re-sending", "method", c.method)
					if err := c.send(ctx); err != nil {
						return nil, c.mapErr(ctx, err)
					}
					continue
				}
				return nil, fmt.Errorf("node: %s on %s: %w", c.method, c.to, ErrConnectionLost)
			case evNack:
				if c.superseded != "" && ev.ref == c.superseded {
					continue // the superseded send's nack; the re-send is what this call waits for
				}
				if !c.reopened && ev.nack.Code == codeChannelClosedNack && c.n.sec != nil {
					// The sentinel refused the request unrouted: the channel it was encrypted
					// for is closed (its replica left or was drained). The SecureClose saying
					// so may still be behind this nack, or lost; the nack alone says the
					// request did not run, so it goes again over a new channel, once.
					if cid, first := c.w.closeCID(); cid != "" {
						if first {
							c.n.sec.channels.forget(cid)
							if err := c.reopen(ctx); err != nil {
								return nil, err
							}
						}
						continue // else the SecureClose's evReopen is queued behind this nack
					}
				}
				if c.reopened && ev.nack.Code == codeChannelClosedNack {
					// The nack of the send that went over the channel a SecureClose closed
					// (the sentinel refuses requests still encrypted for it); the re-send
					// over the new channel is what this call waits for.
					continue
				}
				if c.alo && !c.replied && c.attempt < c.n.cfg.SenderRetry.MaxRetries &&
					(retryable(ev.nack.Code) || ev.nack.Code == codeDrainingNack && c.n.resendsOnDraining()) {
					// The route to the serving replica closed before it answered, even if it had
					// acknowledged: the request did not complete there, so it is sent again after
					// the backoff and the sentinel routes it to a live replica. DRAINING: the
					// sentinel refused it unrouted (or abandoned it at its drain timeout); it goes
					// again on the next link, or after the backoff.
					c.n.log.Debug("nack, will re-send", "method", c.method, "code", ev.nack.Code)
					c.acked = false
					c.armRetry()
					continue
				}
				return nil, ev.nack
			}
			continue
		}
		var retry <-chan time.Time
		if c.retryAt != nil && !c.acked {
			retry = c.retryAt.C
		}
		select {
		case <-c.w.notify:
		case <-retry:
			c.attempt++
			if c.attempt > c.n.cfg.SenderRetry.MaxRetries {
				c.acked = true // stop re-sending; a late reply may still come
				return nil, fmt.Errorf("%w: %s to %s not acknowledged after %d retries", ErrTimeout, c.method, c.to, c.n.cfg.SenderRetry.MaxRetries)
			}
			if err := c.send(ctx); err != nil {
				return nil, c.mapErr(ctx, err)
			}
		case <-ctx.Done():
			return nil, c.mapErr(ctx, ctx.Err())
		case <-c.n.ctx.Done():
			return nil, ErrClosed
		}
	}
}

func (c *call) mapErr(ctx context.Context, err error) error {
	if c.n.ctx.Err() != nil || errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	if ctx.Err() != nil {
		return fmt.Errorf("node: %s on %s: %w", c.method, c.to, ctxErr(ctx))
	}
	return err
}

func (c *call) stopRetry() {
	c.acked = true
	if c.retryAt != nil {
		c.retryAt.Stop()
	}
}

func (c *call) close() {
	c.closeOne.Do(func() {
		if c.retryAt != nil {
			c.retryAt.Stop()
		}
		c.n.pend.remove(c.w)
		if c.counted {
			c.n.busy.Add(-1)
		}
		c.endSpan()
	})
}

// Send delivers payload (marshalled as the Data frame's payload) to address, or to a node
// advertising caps when address is empty, without waiting for any answer (rtype none): the
// gateway's POST /messages. Under channel encryption only an address can be used.
func (n *Node) Send(ctx context.Context, address string, caps []string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("node: send: %w", err)
	}
	if address == "" && caps == nil {
		return fmt.Errorf("node: send: %w: neither an address nor capabilities", envelope.ErrBadAddress)
	}
	if address != "" {
		caps = nil
	}
	if err := n.checkTarget(address, caps); err != nil {
		return fmt.Errorf("node: send: %w", err)
	}
	return n.sendData(ctx, address, caps == nil, func(l *link) (*envelope.Envelope, error) {
		env, err := envelope.New(&envelope.Data{Payload: b})
		if err != nil {
			return nil, err
		}
		env.SID, env.TraceID, env.To, env.Capabilities = l.sid, envelope.NewID(), address, caps
		return env, nil
	}, nil)
}
