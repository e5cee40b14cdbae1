//go:build interop

package interop

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

// TestInteropPy runs the rows with the reference Python packages (naylence-runtime,
// naylence-agent-sdk, naylence-advanced-security): one after another, like the "main" TS group.
func TestInteropPy(t *testing.T) {
	t.Run("py6a_open_py_peers", testPyOpen)
	t.Run("py6b_gated_py_peers", testPyGated)
	t.Run("py6c_overlay_py_peers", testPyOverlay)
	t.Run("py1_strict_seed_py_peers_fame_stack", testPyStrictSeed)
	t.Run("py2_strict_reference_services_fame_sentinel", testPyStrictReferenceServices)
	t.Run("py4_strict_mixed_fame_stack", testPyStrictMixed)
	t.Run("py5_strict_failover_fame_sentinel", testPyStrictFailover)
	t.Run("py3_go_peers_py_strict_sentinel", testGoPeersPyStrictSentinel)
	t.Run("py5b_strict_failover_reference_sentinel_baseline", testPyStrictFailoverReferenceBaseline)
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

// checkChannelOnWire requires the client's envelope dump (FAME_SHOW_ENVELOPES=true, on stderr)
// to show the channel handshake, channel-encrypted Data (sec.enc with the channel alg), the
// sender's x509 chain and an AFT, and returns the counts as figures.
func checkChannelOnWire(t *testing.T, p *proc) string {
	t.Helper()
	errs := p.errLines()
	counts := map[string]int{}
	for _, marker := range []string{"SecureOpen", "SecureAccept", `"alg": "chacha20-poly1305-channel"`, `"x5c"`, `"aft"`} {
		counts[marker] = countContaining(errs, marker)
		if counts[marker] == 0 {
			t.Errorf("%s: no %s in its envelope dump", p.name, marker)
		}
	}
	return fmt.Sprintf("SecureOpen=%d SecureAccept=%d sec.enc(channel)=%d x5c=%d aft=%d", counts["SecureOpen"],
		counts["SecureAccept"], counts[`"alg": "chacha20-poly1305-channel"`], counts[`"x5c"`], counts[`"aft"`])
}

// Row 1, the seed example on our stack: Python client + two Python replicas, strict-overlay,
// channel encryption, welcome admission, SPIFFE certificates, AFT strict, with our oauth2 /
// welcome / CA services and our sentinel. Three results, whoami 30/30 on one replica, sec.enc
// with the channel alg on the wire.
func testPyStrictSeed(t *testing.T) {
	const calls = 30
	c := newCase(t)
	s := c.fameStrict()
	c.pyAgent("py-math-1", s.sentinelPort, append([]string{pool}, s.nodeEnv...)...)
	c.pyAgent("py-math-2", s.sentinelPort, append([]string{pool}, s.nodeEnv...)...)
	cl := c.pyClient("py-client", s.sentinelPort, append([]string{fmt.Sprintf("WHOAMI=%d", calls), "FAME_SHOW_ENVELOPES=true"}, s.nodeEnv...)...)
	checkMath(t, cl, 1)
	counts := checkWhoami(t, cl, calls, "py-math-1", "py-math-2")
	if len(counts) != 1 {
		t.Errorf("one session spread over replicas under AFT strict: %s", formatCounts(counts))
	}
	t.Logf("whoami: %s; wire: %s", formatCounts(counts), checkChannelOnWire(t, cl))
}

// Row 4, mixed under the strict stack: the Python client calls two Go replicas, and our Go
// client calls two Python replicas, every channel encrypted, through our sentinel.
func testPyStrictMixed(t *testing.T) {
	const calls = 10
	t.Run("py_client_go_replicas", func(t *testing.T) {
		c := newCase(t)
		s := c.fameStrict()
		c.goAgent("go-math-1", s.sentinelPort, append([]string{pool}, s.nodeEnv...)...)
		c.goAgent("go-math-2", s.sentinelPort, append([]string{pool}, s.nodeEnv...)...)
		cl := c.pyClient("py-client", s.sentinelPort, append([]string{fmt.Sprintf("WHOAMI=%d", calls), "FAME_SHOW_ENVELOPES=true"}, s.nodeEnv...)...)
		checkMath(t, cl, 1)
		counts := checkWhoami(t, cl, calls, "go-math-1", "go-math-2")
		if len(counts) != 1 {
			t.Errorf("one session spread over replicas under AFT strict: %s", formatCounts(counts))
		}
		t.Logf("whoami: %s; wire: %s", formatCounts(counts), checkChannelOnWire(t, cl))
	})
	t.Run("go_client_py_replicas", func(t *testing.T) {
		c := newCase(t)
		s := c.fameStrict()
		c.pyAgent("py-math-1", s.sentinelPort, append([]string{pool}, s.nodeEnv...)...)
		c.pyAgent("py-math-2", s.sentinelPort, append([]string{pool}, s.nodeEnv...)...)
		gc := c.goClient("go-client", s.sentinelPort, []string{"-whoami", fmt.Sprint(calls)}, append([]string{"FAME_SHOW_ENVELOPES=true"}, s.nodeEnv...)...)
		checkMath(t, gc, 1)
		counts := checkWhoami(t, gc, calls, "py-math-1", "py-math-2")
		if len(counts) != 1 {
			t.Errorf("one session spread over replicas under AFT strict: %s", formatCounts(counts))
		}
		t.Logf("whoami: %s; wire: %s", formatCounts(counts), checkChannelOnWire(t, gc))
	})
}

// pyStrictSentinelEnv is the reference Python sentinel's configuration for the strict stack, as
// the reference example's .env.sentinel has it: a root node (FAME_ROOT) that is itself admitted
// through welcome to get its certificate, AFT stickiness at level strict.
func (s *strictStack) pySentinelEnv() []string {
	return append(append([]string{}, s.nodeEnv...), "FAME_ROOT=true", "FAME_NODE_ID="+stackSentinelID,
		"PY_STICKINESS=aft-strict", "FAME_JWT_TRUSTED_ISSUER="+s.ticketIssuer)
}

// pyStrict starts our oauth2 / welcome / CA services and the reference Python sentinel.
// The sentinel logs at debug level: its stickiness decisions are only logged there.
func (c *caseEnv) pyStrict() (*strictStack, *proc) {
	c.t.Helper()
	port := freePort(c.t)
	s := c.fameStrictServices(port, true)
	p := c.pySentinelOn(port, append(s.pySentinelEnv(), "FAME_LOG_LEVEL=debug")...)
	return s, p
}

// Row 3: our Go client and two Go replicas through the reference Python sentinel, strict-overlay,
// channel encryption, welcome + CA, AFTLoadBalancerStickinessManager at level strict.
func testGoPeersPyStrictSentinel(t *testing.T) {
	const calls = 10
	c := newCase(t)
	s, sentinel := c.pyStrict()
	c.goAgent("go-math-1", s.sentinelPort, append([]string{pool}, s.nodeEnv...)...)
	c.goAgent("go-math-2", s.sentinelPort, append([]string{pool}, s.nodeEnv...)...)
	gc := c.goClient("go-client", s.sentinelPort, []string{"-whoami", fmt.Sprint(calls)}, append([]string{"FAME_SHOW_ENVELOPES=true"}, s.nodeEnv...)...)
	checkMath(t, gc, 1)
	counts := checkWhoami(t, gc, calls, "go-math-1", "go-math-2")
	if len(counts) != 1 {
		t.Errorf("one session spread over replicas under the reference's AFT strict: %s", formatCounts(counts))
	}
	t.Logf("whoami: %s; wire: %s", formatCounts(counts), checkChannelOnWire(t, gc))
	// The reference sentinel really ran its AFT manager at level strict and trusted our AFT.
	logs := stripANSI(sentinel.errLines())
	for _, want := range []string{"stickiness_manager_initialized enabled=True security_level=strict verifier_type=StrictAFTVerifier",
		"aft_association_created", "trust_level=trusted"} {
		if countContaining(logs, want) == 0 {
			t.Errorf("reference sentinel log has no %q", want)
		}
	}
}

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// stripANSI drops the colour codes the Python runtime's console logger writes.
func stripANSI(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = ansiEscape.ReplaceAllString(l, "")
	}
	return out
}
