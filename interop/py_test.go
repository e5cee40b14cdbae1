//go:build interop

package interop

import (
	"testing"
	"time"
)

// TestInteropPy runs the rows with the reference Python packages (naylence-runtime,
// naylence-agent-sdk, naylence-advanced-security): one after another, like the "main" TS group.
func TestInteropPy(t *testing.T) {
	t.Run("py6a_open_py_peers", testPyOpen)
	t.Run("py6b_gated_py_peers", testPyGated)
	t.Run("py6c_overlay_py_peers", testPyOverlay)
}

// Row 6, open: Python client → our sentinel → two Python replicas in the pool.
func testPyOpen(t *testing.T) {
	c := newCase(t)
	port := c.fameSentinel()
	c.pyAgent("py-math-1", port, pool)
	c.pyAgent("py-math-2", port, pool)
	cl := c.pyClient("py-client", port, "WHOAMI=4", "CONCURRENCY=20")
	checkMath(t, cl, 1)
	checkWhoami(t, cl, 4, "py-math-1", "py-math-2")
	requireLine(t, cl, "concurrent 20 ok")
}

// Row 6, gated: the Python peers get OAuth2 tokens from `fame oauth2` (direct admission); a
// client with a wrong secret is refused.
func testPyGated(t *testing.T) {
	c := newCase(t)
	issuer := c.oauth2Server("peer-client", "peer-secret")
	port := c.fameSentinel("FAME_ADMISSION_PROFILE=direct", "FAME_SECURITY_PROFILE=gated",
		"FAME_JWT_TRUSTED_ISSUER="+issuer, "FAME_JWT_AUDIENCE=fame.fabric")
	// The Python runtime's gated profile also resolves FAME_JWT_TRUSTED_ISSUER on every node (the
	// TS runtime does not); without it the node refuses to start.
	env := append(gatedEnv(issuer, "peer-client", "peer-secret"), "FAME_JWT_TRUSTED_ISSUER="+issuer)
	c.pyAgent("py-math-1", port, append([]string{pool}, env...)...)
	c.pyAgent("py-math-2", port, append([]string{pool}, env...)...)
	cl := c.pyClient("py-client", port, append([]string{"WHOAMI=4"}, env...)...)
	checkMath(t, cl, 1)
	checkWhoami(t, cl, 4, "py-math-1", "py-math-2")

	bad := c.startPyClient("py-client-bad-secret", port, append(gatedEnv(issuer, "peer-client", "wrong"), "FAME_JWT_TRUSTED_ISSUER="+issuer)...)
	code, err := bad.waitExit(90 * time.Second)
	if err != nil {
		t.Fatalf("client with a wrong secret did not exit: %v", err)
	}
	if code == 0 {
		t.Fatal("client with a wrong secret succeeded")
	}
}

// Row 6, overlay: every envelope of the Python peers is signed; our sentinel verifies them.
func testPyOverlay(t *testing.T) {
	c := newCase(t)
	port := c.fameSentinel(overlayEnv...)
	c.pyAgent("py-math-1", port, append([]string{pool}, overlayEnv...)...)
	c.pyAgent("py-math-2", port, append([]string{pool}, overlayEnv...)...)
	cl := c.pyClient("py-client", port, append([]string{"WHOAMI=4", "CONCURRENCY=20"}, overlayEnv...)...)
	checkMath(t, cl, 1)
	checkWhoami(t, cl, 4, "py-math-1", "py-math-2")
	requireLine(t, cl, "concurrent 20 ok")
}
