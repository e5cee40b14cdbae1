package node

import (
	"context"
	"errors"
	"testing"

	"github.com/fame-go/fame/envelope"
)

// TestResponderPath: a reply names its sender's path only when its replyTo offers pinning
// (PinnedParticipant@path) and the path hashes to the reply's sid; anything else is "" (the
// caller then does not pin).
func TestResponderPath(t *testing.T) {
	const path = "/S1/C1"
	sid := envelope.SecureDigest(path)
	cases := []struct {
		replyTo, sid, want string
	}{
		{PinnedParticipant + "@" + path, sid, path},
		{"__sys__@" + path, sid, ""},                                          // a reference node: it does not take pinned calls
		{PinnedParticipant + "@" + path, envelope.SecureDigest("/S1/C2"), ""}, // claims another node's path
		{PinnedParticipant + "@" + path, "", ""},
		{PinnedParticipant + "@fame.fabric", envelope.SecureDigest("fame.fabric"), ""}, // not a physical path
		{"", sid, ""},
		{"no-at-sign", sid, ""},
	}
	for _, c := range cases {
		if got := responderPath(c.replyTo, c.sid); got != c.want {
			t.Errorf("responderPath(%q, %q) = %q, want %q", c.replyTo, c.sid, got, c.want)
		}
	}
}

// TestPinnedAddressRefusesBadInput: a pinned call needs a physical path and capabilities;
// anything else is refused before a send, as ErrBadAddress.
func TestPinnedAddressRefusesBadInput(t *testing.T) {
	for _, c := range []struct {
		path string
		caps []string
	}{
		{"fame.fabric", []string{"x"}},
		{"", []string{"x"}},
		{"/S1/C1", nil},
		{"/S1/C1 x", []string{"x"}},
	} {
		if _, err := pinnedAddress(c.path, c.caps); !errors.Is(err, envelope.ErrBadAddress) {
			t.Errorf("pinnedAddress(%q, %v) = %v, want ErrBadAddress", c.path, c.caps, err)
		}
	}
	if got, err := pinnedAddress("/S1/C1", []string{"x"}); err != nil || got != PinnedParticipant+"@/S1/C1" {
		t.Fatalf("pinnedAddress = %q, %v", got, err)
	}
	n := &Node{}
	if err := n.CallAt(context.Background(), "nope", []string{"x"}, "m", nil, nil); !errors.Is(err, envelope.ErrBadAddress) {
		t.Fatalf("CallAt with a bad path: %v", err)
	}
	if _, err := n.StreamAt(context.Background(), "/S1/C1", nil, "m", nil); !errors.Is(err, envelope.ErrBadAddress) {
		t.Fatalf("StreamAt without capabilities: %v", err)
	}
}

// TestPinnable: only replies to capability-routed or pinned requests offer pinning.
func TestPinnable(t *testing.T) {
	for _, c := range []struct {
		to   string
		caps []string
		want bool
	}{
		{"", []string{"x"}, true},
		{PinnedParticipant + "@/S1/C1", []string{"x"}, true},
		{"calc@fame.fabric", nil, false},
		{PinnedParticipant + "@/S1/C1", nil, false},
		{"calc@fame.fabric", []string{"x"}, false},
		{"", nil, false},
	} {
		if got := pinnable(&envelope.Envelope{To: c.to, Capabilities: c.caps}); got != c.want {
			t.Errorf("pinnable(to %q, caps %v) = %v, want %v", c.to, c.caps, got, c.want)
		}
	}
}
