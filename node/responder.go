package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/fame-go/fame/envelope"
)

// PinnedParticipant is the participant of the address a pinned call (CallAt, StreamAt) is
// sent to: the sentinel routes it by the physical path after the '@', and the node there
// picks its registration by the capabilities the envelope carries.
//
// Only a node that says so is pinned to: a Go node answers a capability-routed (or pinned)
// request with replyTo PinnedParticipant@<its path> instead of __sys__@<its path>. The
// reference's nodes answer with their __sys__ inbox and deliver only to the addresses they
// bound (a pinned call to them would be dropped unanswered), so calls to them are never
// pinned.
const PinnedParticipant = "agent"

// pinnable reports whether req came by capability or pinned, so that its reply says where
// pinned calls reach this node.
func pinnable(req *envelope.Envelope) bool {
	if req.To == "" {
		return len(req.Capabilities) > 0
	}
	return len(req.Capabilities) > 0 && strings.HasPrefix(req.To, PinnedParticipant+"@/")
}

// responderPath is the physical path of the node that sent a reply with replyTo and sid, or
// "" when the reply does not offer pinning (its replyTo is not PinnedParticipant@<path>) or
// does not claim its path consistently: the path must hash to the reply's sid (sid =
// secureDigest(path)). Under the signing profiles the sid is bound to the signer, so a
// responder cannot name another node's path; under open nothing is authenticated, and a
// responder that lies only misdirects the later calls about the work it took itself.
func responderPath(replyTo, sid string) string {
	participant, loc, ok := envelope.SplitInbox(replyTo)
	if !ok || participant != PinnedParticipant || !strings.HasPrefix(loc, "/") || sid == "" || envelope.SecureDigest(loc) != sid {
		return ""
	}
	return loc
}

// CallCapabilitiesFrom is CallCapabilities that also returns the physical path of the node
// that answered ("" when its reply did not prove it; see CallAt), so that the next calls about
// the same piece of work can go to the same node.
func (n *Node) CallCapabilitiesFrom(ctx context.Context, caps []string, method string, params, result any) (string, error) {
	ctx, cancel := n.withCallTimeout(ctx)
	defer cancel()
	c, err := n.startCall(ctx, "", caps, method, params, false)
	if err != nil {
		return "", err
	}
	defer c.close()
	err = c.await(ctx, result)
	if c.tr != nil {
		c.spanErr(err)
	}
	return responderPath(c.from, c.fromSID), err
}

// pinnedAddress is the address of a pinned call to the node at path.
func pinnedAddress(path string, caps []string) (string, error) {
	if !strings.HasPrefix(path, "/") || len(caps) == 0 {
		return "", fmt.Errorf("node: pinned call: %w: want a physical path and capabilities, got %q %v", envelope.ErrBadAddress, path, caps)
	}
	address := PinnedParticipant + "@" + path
	if _, err := envelope.ParseAddress(address); err != nil {
		return "", fmt.Errorf("node: pinned call: %w", err)
	}
	return address, nil
}

// CallAt calls method on the node at physical path (from CallCapabilitiesFrom or
// Stream.Responder) that advertised caps: the envelope goes to PinnedParticipant@path, which
// the sentinel routes by path, and carries caps, by which that node picks the registration.
// Like a capability call it is not channel-encrypted (ErrCapabilityEncrypted under channel
// encryption). A node no longer at path is a *NackError matching ErrNoRoute.
func (n *Node) CallAt(ctx context.Context, path string, caps []string, method string, params, result any) error {
	address, err := pinnedAddress(path, caps)
	if err != nil {
		return err
	}
	return n.call(ctx, address, caps, method, params, result)
}

// StreamAt is Stream pinned like CallAt.
func (n *Node) StreamAt(ctx context.Context, path string, caps []string, method string, params any) (*Stream, error) {
	address, err := pinnedAddress(path, caps)
	if err != nil {
		return nil, err
	}
	c, err := n.startCall(ctx, address, caps, method, params, true)
	if err != nil {
		return nil, err
	}
	return &Stream{c: c}, nil
}

// Responder is the physical path of the node that sent the stream's first item, "" before
// one arrived or when it did not prove its path (see CallAt). Call it from the goroutine
// that reads the stream.
func (st *Stream) Responder() string { return responderPath(st.c.from, st.c.fromSID) }
