package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
)

// TestAttackStrictOverlayBindShadow: in strict-overlay with welcome admission, a node that was
// legitimately admitted (valid ticket, valid SVID) for the logical fame.fabric serves
// math@fame.fabric exactly while the math@*.fame.fabric pool is live: the exact route would
// win, and it would answer the clients' SecureOpen with a valid certificate. Refused with
// BIND_CONFLICT; the pool keeps serving a real client over encrypted channels.
func TestAttackStrictOverlayBindShadow(t *testing.T) {
	st := newStrictStack(t)
	st.replica(t, "r1")
	st.replica(t, "r2")
	client, err := st.connect(t, st.nodeConfig("client1"))
	if err != nil {
		t.Fatal(err)
	}
	servesTen(t, client, "r1", "r2")

	m, err := st.connect(t, st.nodeConfig("mallory", "fame.fabric"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = m.Serve(ctx, mathagent.Address, mathagent.Ops("mallory"))
	if err == nil || !strings.Contains(err.Error(), "BIND_CONFLICT") {
		t.Fatalf("shadowing serve: %v", err)
	}
	if got := st.metric(t, "fame_security_refusals_total", `reason="bind_conflict"`); got != 1 {
		t.Fatalf("bind_conflict counter %v", got)
	}
	servesTen(t, client, "r1", "r2")
}

// TestAttackStrictOverlaySystemIDTakeover: an admitted node (same OAuth2 client, so the same
// token subject) attaches with the system id of a live replica. Its credentials are valid,
// but it cannot prove it is that replica and the replica answers the liveness probe: refused
// with SYSTEM_ID_IN_USE, the replica keeps its path and pool slot.
func TestAttackStrictOverlaySystemIDTakeover(t *testing.T) {
	st := newStrictStack(t)
	st.replica(t, "r1")
	st.replica(t, "r2")
	client, err := st.connect(t, st.nodeConfig("client1"))
	if err != nil {
		t.Fatal(err)
	}
	servesTen(t, client, "r1", "r2")

	cfg := st.nodeConfig("r1", "*.fame.fabric")
	cfg.AttachTimeout = 5 * time.Second
	if _, err := st.connect(t, cfg); err == nil || !strings.Contains(err.Error(), "SYSTEM_ID_IN_USE") {
		t.Fatalf("take-over attach: %v", err)
	}
	if got := st.metric(t, "fame_security_refusals_total", `reason="system_id_in_use"`); got < 1 {
		t.Fatalf("system_id_in_use counter %v", got)
	}
	servesTen(t, client, "r1", "r2")
}
