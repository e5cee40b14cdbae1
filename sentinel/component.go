package sentinel

import (
	"log/slog"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/fame-go/fame/envelope"
	"github.com/fame-go/fame/security/aft"
)

// The sentinel's parts are components that get what they need when they are built (New wires
// them) and hold no pointer back to the Sentinel: the route table, the sticky router, the
// security layer and the limiter. They see a connection only through peer, sign through
// ownSigner and refuse through refuser, so that each of them can be driven in a unit test with
// fake peers and no sockets (component_*_test.go). The per-connection engine (conn: queue,
// writer, credits) implements peer and reports its close to its owner (connOwner).

// identity is what the sentinel knows of a peer: the URL id, remote address and origin from
// the upgrade, then the system id, path and sid assigned at attach. The reader goroutine
// writes the attach fields before the peer enters the route table, whose lock orders those
// writes before every read by another goroutine; they never change afterwards.
type identity struct {
	urlID    string // system id from the URL
	remote   string // remote address of the socket
	origin   string // "downstream" or "peer"
	systemID string
	path     string // assigned physical path
	sid      string // SecureDigest(path): the sid this peer signs with
}

// ident is how a component reads a peer's identity; conn and the test fakes embed identity.
func (i *identity) ident() *identity { return i }

// peer is what the components see of an attached connection: who it is, and how to send it
// an envelope the sentinel originates or close it. The route table is keyed on peer values,
// so a fake peer routes like a real one. Forwarding received bytes (with its queue refusal
// reasons) stays on the concrete engine, which the dispatcher owns (route.go).
type peer interface {
	ident() *identity
	logger() *slog.Logger
	// sendOwn queues an envelope the sentinel originates (signed by the caller where the
	// profile signs); false when the peer is gone or its queue refused it, which the engine
	// has counted and logged. flags, when non-zero, replaces the computed flow flags.
	sendOwn(e *envelope.Envelope, flags envelope.FlowFlags) bool
	// close tears the peer down once, with a WebSocket close code and reason; safe from any
	// goroutine. closed reports whether that has happened.
	close(code websocket.StatusCode, reason string)
	closed() bool
	// keyCount is the number of keys registered for this peer, held against MaxKeys.
	keyCount() *atomic.Int32
}

// connOwner is told once when a connection closes, so that it can leave every table and tell
// the affected parties. The Sentinel owns every conn (sentinel.go, connClosed).
type connOwner interface {
	connClosed(c *conn, reason string)
}

// ownSigner signs the envelopes the sentinel originates. *secLayer implements it, and a nil
// *secLayer (open and gated profiles) is a valid signer that signs nothing.
type ownSigner interface {
	signOwn(e *envelope.Envelope)
}

// refuser puts a refusal on the wire and in the counters and logs (ownership.go,
// aft_check.go, route.go). The Sentinel implements it: nackPending resolves the reply address
// through the whole routing path.
type refuser interface {
	// securityRefusal counts a refusal by reason and logs it naming the peer (throttled).
	securityRefusal(p peer, reason, detail string, attrs ...any)
	// nackSys sends a negative DeliveryAck to the peer's own __sys__ inbox.
	nackSys(p peer, h *envelope.Header, code, reason string)
	// nackPending sends the negative answer of a request to its replyTo.
	nackPending(r pendingReq, code, reason string)
}

// keyOwners answers the sticky router's AFT checks (aft_check.go): whether a sid is the
// sender's or its subtree's, which path a signing kid is registered under, and the AFT key
// lookup restricted to the sender's own keys. *secLayer implements it; a nil *secLayer (the
// profiles that verify nothing) answers "not the sender's" to every question.
type keyOwners interface {
	sidOwnedBy(p peer, sid string) bool
	keyOwner(kid string) (path string, ok bool)
	aftKeyFor(src peer, foreign *bool) aft.KeyLookup
}

// The concrete engine is a peer, the Sentinel owns connections and refuses on the wire.
var (
	_ peer      = (*conn)(nil)
	_ connOwner = (*Sentinel)(nil)
	_ refuser   = (*Sentinel)(nil)
	_ ownSigner = (*secLayer)(nil)
	_ keyOwners = (*secLayer)(nil)
)

func (c *conn) logger() *slog.Logger    { return c.log }
func (c *conn) keyCount() *atomic.Int32 { return &c.keysHeld }

// asConn returns the engine behind a peer found in the route table; nil for anything else (a
// test fake), which the dispatcher then treats as no route.
func asConn(p peer) *conn {
	c, _ := p.(*conn)
	return c
}
