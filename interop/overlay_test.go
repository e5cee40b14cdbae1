//go:build interop

package interop

import "testing"

// overlayEnv puts a peer in the overlay profile (every envelope EdDSA-signed) without a JWT
// issuer, as the reference's overlay-noop-authz scenario does.
var overlayEnv = []string{"FAME_SECURITY_PROFILE=overlay", "FAME_ADMISSION_PROFILE=open", "FAME_AUTHORIZATION_PROFILE=noop"}

// Overlay row: the real TS agents and client sign every envelope; our sentinel verifies them,
// hands out keys (NodeAttachAck, KeyRequest/KeyAnnounce) and signs what it originates.
func testOverlayTSPeers(t *testing.T) {
	c := newCase(t)
	port := c.fameSentinel(overlayEnv...)
	c.tsAgent("ts-math-1", port, append([]string{pool}, overlayEnv...)...)
	c.tsAgent("ts-math-2", port, append([]string{pool}, overlayEnv...)...)
	cl := c.tsClient("ts-client", port, append([]string{"WHOAMI=4", "CONCURRENCY=50"}, overlayEnv...)...)
	checkMath(t, cl, 1)
	checkWhoami(t, cl, 4, "ts-math-1", "ts-math-2")
	requireLine(t, cl, "concurrent 50 ok")
}

// Overlay, mixed: the real TS client calls two Go replicas, every envelope signed, through our
// sentinel.
func testOverlayTSClientGoReplicas(t *testing.T) {
	c := newCase(t)
	port := c.fameSentinel(overlayEnv...)
	c.goAgent("go-math-1", port, append([]string{pool}, overlayEnv...)...)
	c.goAgent("go-math-2", port, append([]string{pool}, overlayEnv...)...)
	cl := c.tsClient("ts-client", port, append([]string{"WHOAMI=4"}, overlayEnv...)...)
	checkMath(t, cl, 1)
	checkWhoami(t, cl, 4, "go-math-1", "go-math-2")
}

// Overlay, mixed the other way: our Go client calls two TS replicas.
func testOverlayGoClientTSReplicas(t *testing.T) {
	c2 := newCase(t)
	port2 := c2.fameSentinel(overlayEnv...)
	c2.tsAgent("ts-math-1", port2, append([]string{pool}, overlayEnv...)...)
	c2.tsAgent("ts-math-2", port2, append([]string{pool}, overlayEnv...)...)
	gc := c2.goClient("go-client", port2, []string{"-whoami", "4"}, overlayEnv...)
	checkMath(t, gc, 1)
	checkWhoami(t, gc, 4, "ts-math-1", "ts-math-2")
}
