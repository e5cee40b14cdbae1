package sentinel

import (
	"bytes"
	"strings"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/internal/wsengine"
)

// route forwards an envelope from src to the peer that serves dest, or nacks it. With
// tracing on it records the route span (tracing.go); off, the one pointer check is the cost.
func (s *Sentinel) route(src *conn, msg []byte, h *envelope.Header, dest []byte) {
	if s.tracer != nil {
		s.routeTraced(src, msg, h, dest)
		return
	}
	s.routeOnce(src, msg, h, dest, nil)
}

// routeOnce is route; it returns the outcome and, when tr is not nil, fills in the chosen
// peer and whether stickiness chose it (for the route span).
func (s *Sentinel) routeOnce(src *conn, msg []byte, h *envelope.Header, dest []byte, tr *routeTrace) string {
	if !s.sticky.learn(src, h) {
		return outRefused
	}
	// Answered whatever happens to the reply next: a caller that left, or a full queue, does
	// not make the request pending again (its entry would hold up a drain).
	replied := isReplyFrame(h) && src.answered(h.CorrID, msg)
	// Before the pick: a call over its rate must not create or refresh sticky bindings.
	if s.rate != nil && s.rateLimited(src, h, dest, replied) {
		return outRateLimited
	}
	to, reason, sticky := s.resolveWhy(src, h, dest)
	dst := asConn(to)
	if tr != nil && dst != nil {
		tr.dst, tr.sticky = dst, sticky
	}
	if dst == nil && to != nil && s.cl != nil {
		if rp, ok := to.(*remotePeer); ok {
			return s.routeRemote(src, msg, h, dest, rp) // on another sentinel (cluster.go)
		}
	}
	if dst == nil {
		switch reason {
		case reasonReplicaLost:
			s.cl.m.graceNacks.Inc()
			src.log.Info("call to a lost replica nacked within the grace window", "to", string(dest))
			s.dropWith(src, h, dest, envelope.CodePeerUnreachable,
				"the replica bound to this session lost its sentinel; retry (grace window)")
			return outNoRoute
		case reasonPoolAway:
			s.cl.m.awayNacks.Inc()
			src.log.Info("call nacked: no replica of the address is reachable right now", "to", string(dest))
			s.dropWith(src, h, dest, envelope.CodePeerUnreachable,
				"no replica of "+string(dest)+" is reachable right now (its sentinel is silent or draining); retry")
			return outNoRoute
		case reasonReplicaRestoring:
			s.metrics.restoreWaits.Inc()
			src.log.Info("call nacked while its replica re-attaches after the restart", "to", string(dest))
			s.dropWith(src, h, dest, envelope.CodePeerUnreachable,
				"the replica bound to this session has not re-attached since the sentinel restarted; retry")
			return outNoRoute
		case reasonLocal:
			return outLocal
		case reasonChannelClosed:
			src.log.Info("request on a closed channel refused; the client must re-open it",
				"channel", string(h.EncKID), "to", string(dest), "frame", string(h.FrameType))
			s.dropWith(src, h, dest, codeChannelClosed,
				"channel "+string(h.EncKID)+" closed: its replica is gone; re-open the channel")
			return outChannelClosed
		}
		s.drop(src, h, dest, envelope.CodeNoRoute)
		return outNoRoute
	}
	if dst == src {
		// Never bounce an envelope back where it came from (loop guard, as the reference).
		s.metrics.dropped.WithLabelValues("loop").Inc()
		src.log.Debug("dropping envelope routed back to its sender", "to", string(dest), "frame", string(h.FrameType))
		return outLoop
	}
	if s.drain.draining() && s.refuseDraining(src, dst, h, dest) {
		return outDraining
	}
	// Tracked before it is forwarded, so that a reply cannot overtake its tracking; past the
	// pending bound the request is refused rather than forwarded untracked.
	if !dst.trackPending(h) {
		dst.overloaded(limitPending, src, h)
		s.nackOverloaded(src, h, dest, overloadReason(limitPending, string(dest)))
		return outOverloaded
	}
	if why := dst.forward(msg, h, src); why != wsengine.Accepted {
		dst.untrack(h)
		if why == wsengine.RefusedClosed {
			s.drop(src, h, dest, envelope.CodeRouteConnectorClosed)
			return outClosed
		}
		s.nackOverloaded(src, h, dest, overloadReason(why, string(dest)))
		src.throttle(h)
		return outOverloaded
	}
	src.pause = 0
	s.metrics.routed(h.FrameType)
	if s.sticky.drains.on() && isReplyFrame(h) {
		s.sticky.replyPassed(src, h) // a draining replica's client may be idle now (replicadrain.go)
	}
	return outForwarded
}

// isReplyFrame reports whether an envelope from a serving peer answers a pending request.
func isReplyFrame(h *envelope.Header) bool {
	switch string(h.FrameType) {
	case envelope.TypeData, envelope.TypeSecureAccept:
		return len(h.CorrID) > 0
	}
	return false
}

type resolveReason int

const (
	reasonNone resolveReason = iota
	reasonLocal
	reasonChannelClosed    // encrypted for a channel purged with its replica (closedchan.go)
	reasonReplicaLost      // clustered: the bound replica is lost, within the grace window (cluster.go)
	reasonPoolAway         // clustered: no live replica, but the directory lists some that are away (cluster_repin.go)
	reasonReplicaRestoring // after a restart: the restored binding's replica has not re-attached yet (sticky.go)
)

// resolve finds the connection for dest with the reference's order: exact route, host pool,
// physical path. Envelopes for the sentinel's own path are consumed (reasonLocal).
func (s *Sentinel) resolve(src peer, h *envelope.Header, dest []byte) (peer, resolveReason) {
	p, r, _ := s.resolveWhy(src, h, dest)
	return p, r
}

// resolveWhy is resolve that also says whether a stickiness binding chose the peer.
func (s *Sentinel) resolveWhy(src peer, h *envelope.Header, dest []byte) (peer, resolveReason, bool) {
	if c := s.routes.lookupExact(dest); c != nil {
		return c, reasonNone, false
	}
	if s.cl != nil {
		return s.resolveClustered(src, h, dest) // cluster.go; kept out of line so this path stays as it was
	}
	at := bytes.LastIndexByte(dest, '@')
	if at < 0 {
		return nil, reasonNone, false
	}
	participant, loc := dest[:at], dest[at+1:]
	if len(loc) == 0 {
		return nil, reasonNone, false
	}
	if loc[0] != '/' {
		host := loc
		if i := bytes.IndexByte(loc, '/'); i >= 0 {
			host = loc[:i]
		}
		if p, members := s.routes.lookupPool(participant, host); p != nil {
			if s.sticky.channelClosed(h) {
				return nil, reasonChannelClosed, false
			}
			c, sticky, wait := s.sticky.pickWhy(src, p, members, h)
			if wait {
				return nil, reasonReplicaRestoring, false
			}
			return c, reasonNone, sticky
		}
		return nil, reasonNone, false
	}
	c, r := s.resolvePath(loc)
	return c, r, false
}

// reachable reports whether a reply to replyTo could be delivered now: it names a bound
// address, a logical one (a pool may serve it), or a physical path that leads to an attached
// peer or to this sentinel. The drains ask, so that a caller that left holds nothing up.
func (s *Sentinel) reachable(replyTo string) bool {
	if s.routes.lookupExact([]byte(replyTo)) != nil {
		return true
	}
	at := strings.LastIndexByte(replyTo, '@')
	if at < 0 {
		return false
	}
	loc := replyTo[at+1:]
	if len(loc) == 0 || loc[0] != '/' {
		return true
	}
	p, r := s.resolvePath([]byte(loc))
	if p == nil && r == reasonNone && s.cl != nil {
		// A caller on a peer sentinel (a request forwarded over the bus): its reply goes back
		// by its path's sentinel, so a drain waits for it while that sentinel is alive.
		return s.cl.peerPathAlive(loc)
	}
	return p != nil || r == reasonLocal
}

// resolvePath routes /<sentinelId>/<childId>/... to the child; /<sentinelId> is local.
func (s *Sentinel) resolvePath(path []byte) (peer, resolveReason) {
	rest := path
	if bytes.HasPrefix(path, []byte(s.path)) && (len(path) == len(s.path) || path[len(s.path)] == '/') {
		rest = path[len(s.path):]
		if len(rest) <= 1 {
			return nil, reasonLocal
		}
	}
	rest = rest[1:]
	if i := bytes.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return s.routes.child(rest), reasonNone
}

func (s *Sentinel) routeByCapabilities(src *conn, msg []byte, h *envelope.Header) {
	if string(h.FrameType) != envelope.TypeData {
		s.metrics.dropped.WithLabelValues("no_destination").Inc()
		src.log.Debug("dropping envelope without destination", "frame", string(h.FrameType))
		return
	}
	e, err := envelope.Decode(msg)
	if err != nil || len(e.Capabilities) == 0 {
		s.dropWith(src, h, nil, envelope.CodeNoRoute, "no destination: the envelope has neither to nor capabilities")
		return
	}
	if s.rate != nil && s.rateLimited(src, h, nil, false) {
		return
	}
	providers := s.routes.lookupCapabilities(e.Capabilities)
	var dst *conn
	for _, p := range providers {
		if p != peer(src) {
			dst = asConn(p)
			break
		}
	}
	if dst != nil && s.sticky.drains.on() && s.sticky.drains.draining(dst) {
		// A draining replica is the capability's provider of last resort (replicadrain.go).
		for _, p := range providers {
			if p != peer(src) && !s.sticky.drains.draining(p) {
				dst = asConn(p)
				break
			}
		}
	}
	if s.cl != nil && (dst == nil || s.sticky.drains.on() && s.sticky.drains.draining(dst)) {
		// Clustered: a live provider on a peer sentinel before a draining one here (cluster.go).
		if rp := s.cl.capabilityProvider(e.Capabilities, h.ID); rp != nil {
			s.routeRemote(src, msg, h, nil, rp)
			return
		}
	}
	if dst == nil {
		s.dropWith(src, h, nil, envelope.CodeNoRoute, "no node advertises capabilities "+strings.Join(e.Capabilities, ","))
		return
	}
	if s.drain.draining() && s.refuseDraining(src, nil, h, nil) {
		return
	}
	if why := dst.forward(msg, h, src); why != wsengine.Accepted {
		if why == wsengine.RefusedClosed {
			s.drop(src, h, nil, envelope.CodeNoRoute)
			return
		}
		s.nackOverloaded(src, h, nil, overloadReason(why, dst.systemID))
		src.throttle(h)
		return
	}
	s.metrics.routed(h.FrameType)
}

// drop answers an unroutable Data or SecureOpen that carries id, replyTo and corrId with a
// negative DeliveryAck (SecureAccept{ok:false} for SecureOpen) to its replyTo, as the
// reference does; anything else is dropped with a log line.
func (s *Sentinel) drop(src *conn, h *envelope.Header, dest []byte, code string) {
	s.dropWith(src, h, dest, code, "Unroutable to "+string(dest))
}

// dropWith is drop with the nack's reason given.
func (s *Sentinel) dropWith(src *conn, h *envelope.Header, dest []byte, code, reason string) {
	s.metrics.nacks.WithLabelValues(code).Inc()
	ft := string(h.FrameType)
	src.log.Debug("unroutable envelope", "to", string(dest), "frame", ft, "code", code)
	if len(h.ID) == 0 || len(h.ReplyTo) == 0 || len(h.CorrID) == 0 ||
		(ft != envelope.TypeData && ft != envelope.TypeSecureOpen) {
		return
	}
	s.nackPending(pendingReq{id: string(h.ID), traceID: string(h.TraceID), replyTo: string(h.ReplyTo),
		to: string(dest), frameType: ft, corrID: string(h.CorrID), cid: string(h.FrameCID)}, code, reason)
}

// nackPending sends the negative answer for a request that will not be delivered.
func (s *Sentinel) nackPending(p pendingReq, code, reason string) {
	var frame envelope.Frame = &envelope.DeliveryAck{Ack: envelope.Ack{OK: false, Code: code, Reason: reason, RefID: p.id}}
	if p.frameType == envelope.TypeSecureOpen {
		frame = &envelope.SecureAccept{Ack: envelope.Ack{OK: false, Code: code, Reason: reason, RefID: p.id}, CID: p.cid}
	}
	e, err := envelope.New(frame)
	if err != nil {
		return
	}
	e.SID, e.TraceID, e.To, e.CorrID = s.sid, p.traceID, p.replyTo, p.corrID
	dst, _ := s.resolve(nil, &envelope.Header{}, []byte(p.replyTo))
	if dst == nil {
		return
	}
	s.sec.signOwn(e)
	dst.sendOwn(e, envelope.FlowReset)
}

func (s *Sentinel) ackHeartbeat(c *conn, h *envelope.Header, msg []byte) {
	e, err := envelope.New(&envelope.NodeHeartbeatAck{Ack: envelope.Ack{OK: true, RefID: string(h.ID)}, RoutingEpoch: s.epoch,
		Payload: s.drainHeartbeat(c, h, msg)}) // replica drain status (replicadrain.go), nil unless draining
	if err != nil {
		return
	}
	e.SID, e.TraceID, e.CorrID = s.sid, string(h.TraceID), string(h.CorrID)
	c.sendOwn(e, 0)
}

// handleControl processes bind/unbind/advertise/withdraw and acknowledges each.
func (s *Sentinel) handleControl(c *conn, msg []byte) {
	e, err := envelope.Decode(msg)
	if err != nil {
		return
	}
	f, err := e.DecodeFrame()
	if err != nil {
		c.log.Warn("bad control frame", "err", err)
		return
	}
	var ack envelope.Frame
	refuse := func(code, reason string) envelope.Ack {
		s.metrics.nacks.WithLabelValues(code).Inc()
		c.log.Warn("control frame refused", "frame", e.FrameType(), "reason", reason)
		return envelope.Ack{OK: false, Code: code, Reason: reason, RefID: e.ID}
	}
	okAck := envelope.Ack{OK: true, RefID: e.ID}
	switch f := f.(type) {
	case *envelope.AddressBind:
		a, perr := envelope.ParseAddress(f.Address)
		switch {
		case perr != nil:
			ack = &envelope.AddressBindAck{Ack: refuse("INVALID_ADDRESS", perr.Error()), Address: f.Address}
		case !s.mayBind(c, a):
			why := "address " + f.Address + " is outside the logicals this node's attach and credentials grant"
			s.securityRefusal(c, refusalBindUnauthorized, why, "address", f.Address)
			ack = &envelope.AddressBindAck{Ack: refuse(envelope.CodeUnauthorized, why), Address: f.Address}
		case !s.limits.holdRoute(c, a.String()):
			ack = &envelope.AddressBindAck{Ack: refuse(CodeLimitExceeded, s.limits.message(limitRoutes)), Address: f.Address}
		default:
			why := ""
			if s.cl != nil {
				why = s.cl.conflict(a, c.systemID) // across the cluster (cluster.go)
			}
			if why == "" {
				why = s.bindOwned(c, a)
			}
			if why != "" {
				s.securityRefusal(c, refusalBindConflict, why, "address", f.Address)
				c.held.dropRoute(a.String()) // not bound: it does not count against the limit
				ack = &envelope.AddressBindAck{Ack: refuse(codeBindConflict, why), Address: f.Address}
				break
			}
			s.sticky.memberJoined(c, a)
			if s.cl != nil {
				s.cl.publishAddresses(c)
			}
			c.startPinger()
			c.log.Info("address bound", "address", f.Address)
			ack = &envelope.AddressBindAck{Ack: okAck, Address: f.Address}
		}
	case *envelope.AddressUnbind:
		if a, perr := envelope.ParseAddress(f.Address); perr == nil {
			s.routes.unbind(c, a)
			c.held.dropRoute(a.String())
			if s.cl != nil {
				s.cl.publishAddresses(c)
			}
		}
		ack = &envelope.AddressUnbindAck{Ack: okAck, Address: f.Address}
	case *envelope.CapabilityAdvertise:
		// Capability routing delivers to the advertiser itself, so advertising for an address
		// is held to the same rule as binding it: only within what the node's attach and
		// credentials grant (otherwise any node could pose as another domain's agent).
		a, perr := envelope.ParseAddress(f.Address)
		if perr != nil {
			ack = &envelope.CapabilityAdvertiseAck{Ack: refuse("INVALID_ADDRESS", perr.Error()),
				Capabilities: f.Capabilities, Address: f.Address}
			break
		}
		if !s.mayBind(c, a) {
			why := "capabilities for " + f.Address + ": the address is outside the logicals this node's attach and credentials grant"
			s.securityRefusal(c, refusalAdvertiseUnauthorized, why, "address", f.Address)
			ack = &envelope.CapabilityAdvertiseAck{Ack: refuse(envelope.CodeUnauthorized, why),
				Capabilities: f.Capabilities, Address: f.Address}
			break
		}
		if code, why := s.routes.advertiseOwned(c, a); code != "" {
			reason := refusalAdvertiseUnauthorized
			if code == codeBindConflict {
				reason = refusalBindConflict
			}
			s.securityRefusal(c, reason, why, "address", f.Address)
			ack = &envelope.CapabilityAdvertiseAck{Ack: refuse(code, why), Capabilities: f.Capabilities, Address: f.Address}
			break
		}
		if !s.limits.holdCaps(c, f.Address, f.Capabilities) {
			ack = &envelope.CapabilityAdvertiseAck{Ack: refuse(CodeLimitExceeded, s.limits.message(limitCapabilities)),
				Capabilities: f.Capabilities, Address: f.Address}
			break
		}
		s.routes.advertise(c, f.Address, f.Capabilities)
		if s.cl != nil {
			s.cl.publishAddresses(c) // its capabilities go in its directory entry
		}
		ack = &envelope.CapabilityAdvertiseAck{Ack: okAck, Capabilities: f.Capabilities, Address: f.Address}
	case *envelope.CapabilityWithdraw:
		s.routes.withdraw(c, f.Address, f.Capabilities)
		c.held.dropCaps(f.Address, f.Capabilities)
		if s.cl != nil {
			s.cl.publishAddresses(c)
		}
		ack = &envelope.CapabilityWithdrawAck{Ack: okAck, Capabilities: f.Capabilities, Address: f.Address}
	default:
		return
	}
	out, err := envelope.New(ack)
	if err != nil {
		return
	}
	out.SID, out.TraceID, out.CorrID = s.sid, e.TraceID, e.CorrID
	s.sec.signOwn(out)
	c.sendOwn(out, 0)
}

// mayBind checks an address against the logicals the node asked for at attach (and those its
// admission token allows). Physical addresses must lie under the node's own path.
func (s *Sentinel) mayBind(c *conn, a envelope.Address) bool {
	if a.Host == "" {
		return a.Path == c.path || len(a.Path) > len(c.path) && a.Path[:len(c.path)+1] == c.path+"/"
	}
	logicals := c.logicals
	if len(logicals) == 0 {
		// A node that declared nothing may serve what this sentinel serves.
		logicals = s.opts.RequestedLogicals
	}
	if !envelope.LogicalAllowed(logicals, a.Host) {
		return false
	}
	if c.principal != nil && c.principal.Logicals != nil && !envelope.LogicalAllowed(c.principal.Logicals, a.Host) {
		return false
	}
	return s.sec.credentialAllows(c, a.Host)
}
