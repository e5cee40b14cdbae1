package sentinel

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security"
)

// Bounds of the KeyRequest correlation map, as the reference's (security.md §5.5).
const (
	corrMapSize = 2048
	corrTTL     = 30 * time.Second
)

// keyFrame handles KeyRequest/KeyAnnounce addressed to the sentinel. It returns true when the
// frame was consumed.
func (l *secLayer) keyFrame(c peer, msg []byte, h *envelope.Header) bool {
	if l == nil {
		return false
	}
	if len(h.To) > 0 && !l.forSentinel(h.To) {
		return false // end to end between two nodes: route it like anything else
	}
	e, err := envelope.Decode(msg)
	if err != nil {
		c.logger().Warn("bad key frame", "frame", string(h.FrameType), "err", err)
		return true
	}
	f, err := e.DecodeFrame()
	if err != nil {
		c.logger().Warn("bad key frame", "frame", e.FrameType(), "err", err)
		return true
	}
	switch f := f.(type) {
	case *envelope.KeyRequest:
		return l.keyRequest(c, e, f)
	case *envelope.KeyAnnounce:
		return l.keyAnnounce(c, e, f)
	}
	return false
}

// forSentinel reports whether to names the sentinel itself (any participant at its path).
func (l *secLayer) forSentinel(to []byte) bool {
	at := bytes.LastIndexByte(to, '@')
	return at >= 0 && string(to[at+1:]) == l.path
}

// keyRequest answers a request by kid from the directory. A request by address is left to
// routing (by frame.address) after remembering who asked, so that the owner's KeyAnnounce can
// be brought back to the requester.
func (l *secLayer) keyRequest(c peer, e *envelope.Envelope, f *envelope.KeyRequest) bool {
	if f.Address != "" {
		if e.CorrID != "" {
			l.corr.put(e.CorrID, c, f.Address)
		}
		return false
	}
	if f.Kid == "" {
		c.logger().Warn("KeyRequest without kid or address ignored", "id", e.ID)
		return true
	}
	path, keys, err := l.keys.KeyAnnounceKeys(f.Kid)
	if err != nil && l.awaitKid(c, e, f.Kid) {
		return true // clustered: the key may be on its way from a peer sentinel
	}
	if err != nil {
		l.metrics.nacks.WithLabelValues(codeKeyNotFound).Inc()
		c.logger().Info("KeyRequest for unknown kid", "kid", f.Kid, "requester_path", f.PhysicalPath)
		l.sendOwn(c, &envelope.DeliveryAck{Ack: envelope.Ack{OK: false, Code: codeKeyNotFound,
			Reason: "no key with kid " + f.Kid, RefID: e.ID}}, e, envelope.FlowReset)
		return true
	}
	l.noteServed(path)
	ka := &envelope.KeyAnnounce{PhysicalPath: path, Keys: keys, Created: envelope.Now()}
	l.sendOwn(c, ka, e, 0)
	return true
}

// keyAnnounce re-wraps the answer to a KeyRequest{address} for its requester, or stores the
// keys a node announces for itself or its subtree.
func (l *secLayer) keyAnnounce(c peer, e *envelope.Envelope, f *envelope.KeyAnnounce) bool {
	// Whatever it answers, a node may only speak for its own subtree: the sentinel's signature
	// on the re-wrapped announce vouches for these keys.
	if !envelope.UnderPath(f.PhysicalPath, c.ident().path) || e.SID != c.ident().sid {
		l.refuseAnnounce(c, e, refusalKeyAnnounceForeignPath, "KeyAnnounce refused: a node may only announce keys under its own path",
			"physical_path", f.PhysicalPath, "sid", e.SID)
		return true
	}
	if e.CorrID != "" {
		if req, addr, ok := l.corr.get(e.CorrID); ok {
			if !l.serves(c, addr) {
				// Only the node the request could have been routed to may answer it.
				l.refuseAnnounce(c, e, refusalKeyAnnounceUnserved,
					"KeyAnnounce refused: answers a KeyRequest for an address this node does not serve",
					"address", addr, "corr_id", e.CorrID)
				return true
			}
			l.corr.remove(e.CorrID)
			l.rewrap(c, req, e, f)
			return true
		}
	}
	jwks := make([]security.JWK, 0, len(f.Keys))
	for i, raw := range f.Keys {
		j, err := security.ParseJWK(raw)
		if err != nil {
			c.logger().Warn("skipping invalid announced key", "index", i, "err", err)
			continue
		}
		jwks = append(jwks, j)
	}
	if err := l.register(c, f.PhysicalPath, jwks); err != nil {
		reason := refusalKeyAnnounceInvalid
		if errors.Is(err, errKidOnPeer) {
			reason = refusalKidOnPeer
		}
		l.refuseAnnounce(c, e, reason, "KeyAnnounce refused: "+err.Error(), "physical_path", f.PhysicalPath)
		if errors.Is(err, errKeyLimit) {
			// KeyAnnounce has no ack to carry the reason; a node past the bound is cut.
			go c.close(websocket.StatusPolicyViolation, err.Error())
		}
		return true
	}
	c.logger().Debug("announced keys stored", "physical_path", f.PhysicalPath, "keys", len(jwks))
	return true
}

// refuseAnnounce counts and logs a refused KeyAnnounce and nacks it (KEY_ANNOUNCE_REFUSED) to
// the announcer's __sys__ inbox: KeyAnnounce has no ack of its own to carry the reason.
func (l *secLayer) refuseAnnounce(c peer, e *envelope.Envelope, reason, detail string, attrs ...any) {
	l.refuse.securityRefusal(c, reason, detail, attrs...)
	h := &envelope.Header{ID: []byte(e.ID), TraceID: []byte(e.TraceID), CorrID: []byte(e.CorrID)}
	l.refuse.nackSys(c, h, codeKeyAnnounce, detail)
}

// rewrap forwards a KeyAnnounce to the node whose KeyRequest produced it, as the reference
// does: a new envelope from the sentinel (new id, sentinel sid, its signature) carrying the
// same trace, flow, reply address and correlation id, and the frame f as the sentinel decoded
// and checked it, re-encoded: the sentinel's signature vouches for what it read, never for
// raw bytes another parser might read differently.
func (l *secLayer) rewrap(from, to peer, e *envelope.Envelope, f *envelope.KeyAnnounce) {
	if to.closed() {
		from.logger().Debug("KeyAnnounce requester gone", "corr_id", e.CorrID)
		return
	}
	frame, err := envelope.EncodeFrame(f)
	if err != nil {
		l.metrics.dropped.WithLabelValues("key_announce").Inc()
		from.logger().Warn("KeyAnnounce not re-wrapped: cannot encode it", "corr_id", e.CorrID, "err", err)
		return
	}
	out := &envelope.Envelope{Version: envelope.Version, ID: envelope.NewID(), SID: l.sid,
		TraceID: e.TraceID, ReplyTo: e.ReplyTo, CorrID: e.CorrID, FlowID: e.FlowID,
		Frame: frame, TS: envelope.Now()}
	if rp, ok := to.(*remotePeer); ok {
		// A requester on a peer sentinel: that sentinel delivers by path (and signs it again).
		out.To = "__sys__@" + rp.path
	}
	l.signOwn(out)
	if to.sendOwn(out, 0) {
		l.metrics.routed([]byte(envelope.TypeKeyAnnounce))
	}
}

// sendOwn sends a frame the sentinel originates in answer to req, signed, on c.
func (l *secLayer) sendOwn(c peer, f envelope.Frame, req *envelope.Envelope, flags envelope.FlowFlags) {
	out, err := envelope.New(f)
	if err != nil {
		c.logger().Error("encode key frame", "frame", f.FrameType(), "err", err)
		return
	}
	out.SID, out.TraceID, out.CorrID = l.sid, req.TraceID, req.CorrID
	l.signOwn(out)
	c.sendOwn(out, flags)
}

// corrMap remembers which connection asked a KeyRequest{address}, bounded in size and age.
// Entries expire lazily on lookup, so no goroutine is needed.
type corrMap struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   *simplelru.LRU[string, corrEntry]
}

type corrEntry struct {
	c    peer
	addr string // the requested address
	at   time.Time
}

func newCorrMap(size int, ttl time.Duration) *corrMap {
	m, err := simplelru.NewLRU[string, corrEntry](size, nil)
	if err != nil {
		panic(fmt.Sprintf("sentinel: corr map size %d: %v", size, err)) // constant size, cannot happen
	}
	return &corrMap{ttl: ttl, now: time.Now, m: m}
}

func (m *corrMap) put(corrID string, c peer, addr string) {
	m.mu.Lock()
	m.m.Add(corrID, corrEntry{c: c, addr: addr, at: m.now()})
	m.mu.Unlock()
}

// get returns the requester of corrID and the address it asked for; ok is false when the id
// is unknown or expired. The entry stays until remove: a wrong answerer must not use it up.
func (m *corrMap) get(corrID string) (c peer, addr string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, found := m.m.Get(corrID)
	if !found {
		return nil, "", false
	}
	if m.now().Sub(e.at) > m.ttl {
		m.m.Remove(corrID)
		return nil, "", false
	}
	return e.c, e.addr, true
}

func (m *corrMap) remove(corrID string) {
	m.mu.Lock()
	m.m.Remove(corrID)
	m.mu.Unlock()
}

func (m *corrMap) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m.Len()
}

// serves reports whether c is a node that routing may deliver addr to: its exact binder, a
// member of the pool that serves it, or the owner of the physical path it names.
func (l *secLayer) serves(c peer, addr string) bool {
	a := []byte(addr)
	if l.routes.lookupExact(a) == c {
		return true
	}
	at := bytes.LastIndexByte(a, '@')
	if at < 0 {
		return false
	}
	loc := a[at+1:]
	if len(loc) > 0 && loc[0] == '/' {
		return envelope.UnderPath(string(loc), c.ident().path)
	}
	host := loc
	if i := bytes.IndexByte(loc, '/'); i >= 0 {
		host = loc[:i]
	}
	_, members := l.routes.lookupPool(a[:at], host)
	for _, m := range members {
		if m == c {
			return true
		}
	}
	return false
}
